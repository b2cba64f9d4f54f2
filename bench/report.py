"""python -m bench.report: the docs' benchmark tables, rendered from bench/results/*.json.

A table in README.md or docs/*.md sits between two marker lines naming the result it shows (and, after a colon,
which view of it, where a result has more than one):

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
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from bench import results

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"(<!-- bench:(?P<name>[a-z_]+(?::[a-z_]+)?) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)


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
            *_drift_free(f),
            f"| the main job with its report ({f['report_s']:.1f} s) | {f['main_job_s']:.1f} s | |",
            f"| its compute bound (sum of epoch times / cores) | {f['compute_bound_s']:.1f} s | |",
            f"| main job over its bound | **{f['main_job_over_bound']:.2f}x** | ≤ {target['main_job_over_bound']:.2f}x |",
            *_ray_floor(f)]


def _drift_free(f: dict) -> list[str]:
    """The CPU seconds by kind of process (medians over the runs), and the ratio with the machine's drift out."""
    if not f.get("ray_over_peer_drift_free"):
        return []
    def cpu(side: str) -> str:
        runs = f["cpu_s"][side]
        return ", ".join(f"{kind} {statistics.median(run[kind] for run in runs):.0f}" for kind in runs[0])
    return [f"| CPU seconds by process, study (median) | {cpu('study')} | |",
            f"| CPU seconds by process, peer (median) | {cpu('peer')} | |",
            f"| study over peer, wall time per trainer CPU second (the machine's drift taken out) | "
            f"**{f['ray_over_peer_drift_free']:.2f}x** | ≤ {f['targets']['ray_over_peer']:.2f}x |"]


def _ray_floor(f: dict) -> list[str]:
    """The least a study on an idle local Ray costs over the peer: its start, idle services and stop alone."""
    return [f"| the least any study on a local Ray {row['setup']} costs over "
            f"the peer: its start ({row['init_cpu_s']:.1f} CPU s), idle services ({row['idle_cpu_s_per_min']:.1f} CPU s "
            f"per minute) and stop ({row['shutdown_s']:.1f} s) | {row['floor_over_peer']:.3f}x | |"
            for row in f.get("ray_floor", [])]


def _answer(result: dict) -> list[str]:
    """What the main job's page leads with, and how long the main job took."""
    f = result["figures"]
    return ["```", *f["answer"], "```", "",
            f"The main job took {f['main_job_s'] // 60:.0f} min {f['main_job_s'] % 60:.0f} s ({f['trials']} trials, "
            f"{f['epochs']} epochs, its report included), {f['main_job_over_bound']:.2f}x the time its epochs' "
            f"computation takes on these cores{_speed(f)}. On slower or busier cores (a shared machine's speed "
            f"moves from one hour to the next) it takes longer in proportion."]


def _speed(f: dict) -> str:
    """The cores' speed the time was measured at, where the run recorded it."""
    return f", its trials training at a median {f['clips_per_s']:.0f} clips/s each" if "clips_per_s" in f else ""


def _turnover(result: dict) -> list[str]:
    f = result["figures"]
    return ["| trial turnover (a trial's end to its successor's first epoch), median | measured | target |", "|---|---|---|",
            f"| in a reused worker (the default) | {f['reused_worker']['median_s']:.2f} s | ≤ {f['target_s']:.1f} s |",
            f"| in a new worker process (`--no-reuse-actors`) | {f['new_worker']['median_s']:.2f} s | |"]


def _model(result: dict) -> list[str]:
    f = result["figures"]
    shape = f["shape"]
    return ["| training step (forward, backward, SGD) | measured |", "|---|---|",
            f"| shape | batch {shape['batch']}, {shape['frames']} frames, width x{shape['width']:g}, "
            f"{shape['threads']} thread(s) |",
            f"| {f['baseline']} implementation / ours | {f['baseline_ms']:.1f} / {f['ours_ms']:.1f} ms "
            f"({f['speed_up']:.2f}x) |",
            f"| the convolutions alone at the GEMM rate ({f['gemm_gflops']:.0f} GFLOP/s, measured between the steps) "
            f"| {f['bound_ms']:.1f} ms |",
            f"| ours, as a share of that bound | **{100 * f['share_of_bound']:.0f}%**"
            + (f" (target ≥ {100 * f['share_target']:.0f}%) |" if f["share_target"] else " |"),
            f"| its convolutions and graph products, share of its step (torch.profiler) | "
            f"{100 * f['contractions_share_of_step']:.0f}% |",
            f"| the share of the bound with every other operator free | {100 * f['ceiling_share_of_bound']:.0f}% |"]


def _model_layers(result: dict) -> list[str]:
    f = result["figures"]
    return ["| temporal convolution (forward + both gradients) | oneDNN, as the network runs it | the same products as "
            "matmuls (MKL) | square GEMM | convolution / square GEMM |", "|---|---|---|---|---|",
            *(f"| {r['channels']} channels, {r['frames']} frames, stride {r['stride']} | {r['convolution']:.0f} GFLOP/s "
              f"| {r['matmuls']:.0f} GFLOP/s | {r['square_gemm']:.0f} GFLOP/s "
              f"| {100 * r['convolution'] / r['square_gemm']:.0f}% |" for r in f["temporal"])]


def _intervals(result: dict) -> list[str]:
    f = result["figures"]
    return [f"| 95% interval, seed noise {100 * f['sd']:.0f} points, {f['comparisons']} simulated comparisons | seeds a "
            "side | equal configs called different (target ≤ 5%) | a 3-noise-sd difference found |", "|---|---|---|---|",
            *(f"| {r['interval']} | {r['seeds']} | {100 * r['equal_called_different']:.1f}% | "
              f"{100 * r['three_sd_found']:.1f}% |" for r in f["rows"])]


def _outage(result: dict) -> list[str]:
    f = result["figures"]
    rows = [f"| {check} | {'held' if held else '**failed**'} |" for check, held in f["checks"].items()]
    return [f"| an outage of {f['outage_s']:.0f} s ({f['epochs_recorded_during_outage']} epochs recorded during it, "
            f"{f['trials']} trials) | |", "|---|---|", *rows]


def _faults(result: dict) -> list[str]:
    """How many kill points held; each failed one named with what failed."""
    f = result["figures"]
    failed = [point for point in f["points"] if point["failures"]]
    return [f"Invariants held at **{f['held']} of {f['kills']}** kill points (seed {f['seed']}, {f['data']} data).",
            *(f"- {point['kill']}: **failed**: {'; '.join(point['failures'])}" for point in failed)]


def _verdicts(result: dict) -> list[str]:
    """One line per claim and truth, its rates at each trial count side by side; a rate more than two standard
    errors on the wrong side of its target is named."""
    f = result["figures"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in f["rows"]:
        groups.setdefault((row["verdict"], row["truth"]), []).append(row)
    lines = [f"| the page says | truth | rate over {f['draws']} simulated studies (trials per subset) | target | "
             "met (within two standard errors) |", "|---|---|---|---|---|"]
    for (claim, truth), rows in groups.items():
        rates = " · ".join("—" if r["rate"] is None else f"{100 * r['rate']:.1f}%" for r in rows)
        trials = " · ".join(str(r["trials"]) for r in rows)
        cases = "" if len(rows) > 1 or rows[0]["se"] is None else \
            f"; {rows[0]['cases']} cases, se {100 * rows[0]['se']:.1f}"
        side = "≤" if rows[0]["kind"] == "false positives" else "≥"
        missed = [str(r["trials"]) for r in rows if r["cases"] and not r["ok"]]
        lines.append(f"| {claim} | {truth} | {rates} ({trials} trials{cases}) | {rows[0]['kind']} {side} "
                     f"{100 * rows[0]['target']:.0f}% | {'not at ' + ', '.join(missed) + ' trials' if missed else 'yes'} |")
    return [*lines, "", "—: the page does not make that claim at that size (no case)."]


def _lr_response(result: dict) -> list[str]:
    """Val top-1 per learning rate, at the judging epoch and the last, each subset side by side."""
    f = result["figures"]
    judged, last = str(f["judged_at"]), str(f["epochs"])
    head = " | ".join(f"{subset}, epoch {epoch}" for epoch in (judged, last) for subset in f["subsets"])
    lines = [f"| lr | {head} |", "|---|" + "---|" * (2 * len(f["subsets"]))]
    for row in f["rows"]:
        cells = " | ".join(f"{100 * row[subset][epoch]:.1f}%" for epoch in (judged, last) for subset in f["subsets"])
        lines.append(f"| {row['lr']:.2g} | {cells} |")
    return lines


RENDERERS: dict[str, Callable[[dict], list[str]]] = {"bench_overhead": _overhead, "bench_overhead:answer": _answer,
                                                     "bench_outage": _outage, "bench_trial_overhead": _turnover,
                                                     "bench_model_paper": _model, "bench_model_cpu_profile": _model,
                                                     "bench_model_layers": _model_layers,
                                                     "bench_intervals": _intervals, "bench_verdicts": _verdicts,
                                                     "bench_lr_response": _lr_response, "bench_faults": _faults}


def render(view: str) -> str:
    name = view.split(":")[0]
    result = results.read(name)
    if result is None:
        return f"No result yet: bench/results/{name}.json is missing (bench/README.md names the command that writes it).\n"
    return "\n".join([*RENDERERS[view](result), "", _machine_line(result)]) + "\n"


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
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
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
