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


def test_a_benchmarks_recorded_command_is_what_was_typed_without_where_it_wrote(monkeypatch):
    """bench/results.command(): the figures' command line, ``--out`` dropped (it moves the file, not the figures)."""
    import sys
    from types import SimpleNamespace

    from bench import results
    monkeypatch.setitem(sys.modules, "__main__", SimpleNamespace(__spec__=SimpleNamespace(name="bench.bench_x")))
    monkeypatch.setattr("sys.argv", ["x.py", "--draws", "50", "--out", "/tmp/r", "--label", "a b", "--out=/tmp/s"])
    assert results.command() == "python -m bench.bench_x --draws 50 --label 'a b'"
    monkeypatch.setattr("sys.argv", ["x.py", "--storage", "/tmp/s", "--trials", "12", "--out", "/tmp/r"])
    assert results.command(places=("--out", "--storage")) == "python -m bench.bench_x --trials 12"


def test_the_error_rate_table_names_the_sizes_where_a_rate_misses_its_target():
    """bench_verdicts' rows at several trial counts read as one line; a size with no case is a dash, not a miss."""
    from bench import report
    row = {"verdict": '"lr matters"', "kind": "power", "truth": "lr window", "target": 0.8}
    result = {"figures": {"draws": 100, "rows": [
        {**row, "trials": 5, "rate": None, "se": None, "cases": 0, "ok": False},
        {**row, "trials": 8, "rate": 0.31, "se": 0.04, "cases": 100, "ok": False},
        {**row, "trials": 20, "rate": 0.97, "se": 0.04, "cases": 100, "ok": True}]}}
    table = report.RENDERERS["bench_verdicts"](result)
    line = next(line for line in table if line.startswith('| "lr matters"'))
    assert "— · 31.0% · 97.0% (5 · 8 · 20 trials)" in line and line.endswith("| not at 8 trials |")
