"""The project speaks of itself only: its files say what the software does, never how or when it was made; the
README is a manual of about 250 lines whose links resolve."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (the spaces as [ ], so that this pattern is not itself a line of narration to a plain grep)
NARRATION = re.compile(r"\bsession[ ]\d+|\bdev[ ]VM\b|\bdev[ ]machines?\b|\bthis[ ]session\b|\bVM[ ]of[ ]the[ ]pool\b|"
                       r"\bdevelopment[ ]runs?\b|\bbeen[ ]lent\b|\bissue[ ]\d+\b|\bsession'?s[ ](?:commit|final)",
                       re.IGNORECASE)
THIS_FILE = Path(__file__).relative_to(ROOT).as_posix()


def tracked(*suffixes: str) -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith(suffixes) and n != THIS_FILE]


def test_no_project_file_narrates_its_development():
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
             for path in tracked(".md", ".py", ".yaml", ".toml", ".sh", ".txt") if path.is_file()
             for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1) if NARRATION.search(line)]
    assert not found, found


def test_the_readme_is_a_short_manual_whose_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "bash .ci/venv && .venv/bin/python -m study.run --space sgd_lr" in readme
    assert "bash .ci/venv && .venv/bin/ruff check . && .venv/bin/python -m pytest -q" in readme
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            assert target.startswith("http") or (page.parent / target).exists(), f"{page.name}: {target}"
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (ROOT / target).exists(), target


def test_ci_runs_exactly_the_readmes_test_command():
    command = "bash .ci/venv && .venv/bin/ruff check . && .venv/bin/python -m pytest -q"
    assert command in (ROOT / ".ci" / "run").read_text()


def test_the_docs_benchmark_tables_are_rendered_from_the_results_files():
    """Every table between bench markers is what bench/results/NAME.json renders: no figure is pasted by hand."""
    from bench import report
    assert report.main(["--check"]) == 0
    marked = "<!-- bench:bench_outage -->\n| pasted | 1.0x |\n<!-- /bench:bench_outage -->\n"
    assert "| pasted |" not in report.rendered(marked) and "Measured by `python -m bench.bench_outage`" in \
        report.rendered(marked)
