"""python -m bench.report: the docs' benchmark tables, rendered from bench/results/*.json.

A table in docs/*.md sits between two marker lines naming the result it shows:

    <!-- bench:bench_overhead -->
    ...the table, rewritten by this command...
    <!-- /bench:bench_overhead -->

``python -m bench.report`` rewrites every such table from its results file (the figures, the command that measured
them and the machine); ``--check`` rewrites nothing and exits 1 when a table differs from what its file renders
(tests/test_docs.py runs it), so the docs never quote a figure that no results file holds.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench import results

DOCS = Path(__file__).resolve().parents[1] / "docs"
MARKED = re.compile(r"(<!-- bench:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)


def _machine_line(result: dict) -> str:
    m = result["machine"]
    flags = f" ({', '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
    versions = ", ".join(f"{k} {m[k]}" for k in ("torch", "ray", "optuna") if m.get(k))
    return f"Measured by `{result['command']}` on {m['cpu']}{flags}, {m['cores']} cores; {versions}; {m['date']}."


def _overhead(result: dict) -> list[str]:
    f = result["figures"]
    target = f["targets"]
    return ["| figure | measured | target |", "|---|---|---|",
            f"| the study ({f['trials']} trials, {f['epochs']} epochs, {f['trials_at_once']} at once), `study.run` "
            f"without its report | {f['study_s']:.1f} s | |",
            f"| the same trials and epochs, plain Optuna with the trainer in process | {f['peer_s']:.1f} s | |",
            f"| study over peer | **{f['ray_over_peer']:.2f}x** | ≤ {target['ray_over_peer']:.2f}x |",
            f"| the main job with its report ({f['report_s']:.1f} s) | {f['main_job_s']:.1f} s | |",
            f"| its compute bound (sum of epoch times / cores) | {f['compute_bound_s']:.1f} s | |",
            f"| main job over its bound | **{f['main_job_over_bound']:.2f}x** | ≤ {target['main_job_over_bound']:.2f}x |"]


def _outage(result: dict) -> list[str]:
    f = result["figures"]
    rows = [f"| {check} | {'held' if held else '**failed**'} |" for check, held in f["checks"].items()]
    return [f"| an outage of {f['outage_s']:.0f} s ({f['epochs_recorded_during_outage']} epochs recorded during it, "
            f"{f['trials']} trials) | |", "|---|---|", *rows]


RENDERERS: dict[str, Callable[[dict], list[str]]] = {"bench_overhead": _overhead, "bench_outage": _outage}


def render(name: str) -> str:
    result = results.read(name)
    if result is None:
        return f"No result yet: run `python -m bench.{name}`.\n"
    return "\n".join([*RENDERERS[name](result), "", _machine_line(result)]) + "\n"


def rendered(text: str) -> str:
    def table(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise KeyError(f"<!-- bench:{name} -->: no renderer for {name} (known: {', '.join(RENDERERS)})")
        return match.group(1) + render(name) + match.group(4)
    return MARKED.sub(table, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 naming each doc whose tables differ from their results files")
    args = parser.parse_args(argv)
    stale = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text()
        new = rendered(text)
        if new != text:
            stale.append(doc)
            if not args.check:
                doc.write_text(new)
    for doc in stale:
        print(f"{doc}: {'differs from' if args.check else 'rewritten from'} bench/results", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
