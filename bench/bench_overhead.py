"""What Ray Tune costs on the main job, against the simplest peer a user could write, and against the compute bound.

    python -m bench.bench_overhead [--space sgd_lr] [--pairs 2] [--floor-idle-s 60] [--out bench/results]

1. The main job as a user runs it: ``python -m study.run --space SPACE`` in its own process (a local Ray, the trials
   in reused workers), timed from the command's start to its end, after its report; the report is then built again
   alone (``python -m reports.build``) to tell its share, and the answer the page leads with is kept.
2. The peer: the same trials (the same configs, each for the epochs it ran in the study, ASHA's decisions replayed),
   proposed by plain Optuna (each trial's learning rate enqueued and asked, the rest of its config as it ran) and
   trained by the project's trainer in process, in as many worker processes as the study ran trials at once, each
   taking the next trial when it is free, torch on one thread per process as in the study. Timed from starting the
   workers to the end of the last trial. Both sides are deterministic, so they do the same arithmetic.

Each side runs ``--pairs`` times, alternating (study, peer, peer, study, ...), and the medians are compared; the peer
replays the first study's trials. Prints the answer the main job's page leads with, the study's wall time (without
its report) over the peer's, and the main job's wall time (report included) over its compute bound: the sum of its
epochs' own times over the cores.
Targets: 1.05 and 1.15.

A shared machine's speed drifts between runs minutes apart by more than the overhead measured, so each run also
counts the CPU seconds of every process it started, by kind (bench/cpu_accounting.py): the trainers, the driver,
Ray's own services, and the idle cores. The trainers do the same arithmetic on both sides, so the wall time per
trainer CPU second, study over peer, is the ratio with the drift taken out; it is printed beside the plain one.
Then, right after, the floor under that ratio (bench/ray_floor.py): an idle local Ray as study.run starts it, and
one without its dashboard, each for ``--floor-idle-s`` seconds: what Ray's start, its idle services and its stop
alone take from busy cores, as the least a study on it can cost over the peer just measured.
Writes the figures and the answer with the machine to bench/results/bench_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ray_floor, results
from bench.cpu_accounting import CpuAccount
from reports.answer import answer_lines
from reports.summary import FILENAME as SUMMARY
from training.results import EPOCHS, TRIALS, read_frame

ROOT = Path(__file__).resolve().parents[1]
RAY_TARGET, BOUND_TARGET = 1.05, 1.15


def _timed(command: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - began


def trial_jobs(root: Path) -> list[tuple[dict, int, tuple[int, ...]]]:
    """Each trial of the study, in the order it started: its config (from its experiment folder), the epochs it ran,
    and ASHA's rungs before its last epoch (where a trial validates, and draws its sample predictions, as it may end
    there)."""
    rungs = tuple(json.loads((root / "study.json").read_text())["budgets"][:-1])
    trials = read_frame(root, TRIALS).sort_values("started_at")
    jobs = []
    for folder, epochs in zip(trials["folder"], trials["epochs_run"]):
        run = json.loads((root / "experiments" / folder / "log" / "config.json").read_text())
        jobs.append((run["config"], int(epochs), rungs))
    return jobs


def _peer_worker(queue, out: str, threads: int) -> None:
    """One peer process: plain Optuna proposes (the study's config enqueued), the trainer trains in this process."""
    import optuna
    import torch

    from kinetics.source import open_data
    from training.config import from_dict
    from training.experiment import Experiment
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    datasets: dict = {}
    while (job := queue.get()) is not None:
        index, config, epochs, rungs = job
        study.enqueue_trial({"lr": config["lr"]})
        trial = study.ask()
        config = from_dict({**config, "lr": trial.suggest_float("lr", config["lr"], config["lr"])}, source="peer")
        dataset = datasets.setdefault(config.data, open_data(config.data))
        experiment = Experiment(config, dataset, Path(out), index=index, watched=False, may_end_after=rungs,
                                validated_after=rungs, echo=lambda _: None)
        for _ in range(epochs):
            metrics = experiment.step()
            if not math.isnan(metrics["val_top1"]):  # an epoch validated (eval_interval), as the study reports
                trial.report(metrics["val_top1"], metrics["epoch"])
        study.tell(trial, metrics["val_top1"])


def run_peer(jobs: list[tuple[dict, int, tuple[int, ...]]], workers: int, threads: int, out: Path) -> dict:
    """The peer's wall time and its CPU seconds by kind of process."""
    context = multiprocessing.get_context("spawn")  # a new interpreter per worker, as a user's script would start
    queue = context.Queue()
    for index, job in enumerate(jobs):
        queue.put((index, *job))
    for _ in range(workers):
        queue.put(None)
    with CpuAccount(driver="bench.bench_overhead") as account:
        began = time.perf_counter()
        processes = [context.Process(target=_peer_worker, args=(queue, str(out), threads)) for _ in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
            if process.exitcode:
                raise RuntimeError(f"a peer worker exited with {process.exitcode}")
        wall = time.perf_counter() - began
    return {"wall_s": wall, "cpu_s": account.totals(os.cpu_count() or 1)}


def concurrency(root: Path) -> int:
    """The most trials the study ran at once (from the trials' start and end times)."""
    trials = read_frame(root, TRIALS)
    events = sorted([(t, 1) for t in trials["started_at"]] + [(t, -1) for t in trials["updated_at"]],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def run_main_job(space: str, work: Path) -> dict:
    """The main job as a user runs it (its command line, in ``work``: its study goes to ./studies under its default
    name), then its report alone; its figures and the answer its page leads with."""
    before = set((work / "studies").glob("*"))
    with CpuAccount(driver="study.run") as account:
        main_s = _timed([sys.executable, "-m", "study.run", "--space", space], work)
    (root,) = set((work / "studies").glob("*")) - before
    answer = answer_lines(json.loads((root / "report" / SUMMARY).read_text()))
    report_s = _timed([sys.executable, "-m", "reports.build", str(root)], work)
    epochs = read_frame(root, EPOCHS)
    return {"root": root, "main_s": main_s, "report_s": report_s, "study_s": main_s - report_s, "answer": answer,
            "cpu_s": account.totals(os.cpu_count() or 1),
            "epochs": len(epochs), "bound_s": float(epochs["epoch_time_s"].sum()) / (os.cpu_count() or 1),
            "clips_per_s": float(epochs["clips_per_s"].median())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="sgd_lr", help="the space of the study (default sgd_lr, the main job)")
    parser.add_argument("--pairs", type=int, default=2,
                        help="study and peer runs each (default 2), in the order study, peer, peer, study, ... so that "
                             "a drift of the machine's speed hits both alike; the medians are compared")
    parser.add_argument("--floor-idle-s", type=float, default=60.0,
                        help="how long each idle Ray of the floor runs (default 60; 0 skips the floor)")
    results.add_out_argument(parser, "bench_overhead")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    studies, peers = [], []
    with tempfile.TemporaryDirectory(prefix="stgcn-overhead-") as work:
        work = Path(work)
        for pair in range(args.pairs):
            for side in (("study", "peer") if pair % 2 == 0 else ("peer", "study")):
                if side == "study":
                    studies.append(run_main_job(args.space, work))
                    print(f"study {pair + 1}: {studies[-1]['main_s']:.1f} s", flush=True)
                else:  # the first pair starts with the study: there is one to replay
                    first = studies[0]["root"]
                    workers = concurrency(first)
                    peers.append(run_peer(trial_jobs(first), workers, max(1, cores // workers), work / f"peer-{pair}"))
                    print(f"peer {pair + 1}: {peers[-1]['wall_s']:.1f} s", flush=True)
        trials, workers = len(read_frame(studies[0]["root"], TRIALS)), concurrency(studies[0]["root"])

    def median(key: str) -> float:
        return statistics.median(run[key] for run in studies)

    study_s, main_s, bound_s = median("study_s"), median("main_s"), median("bound_s")
    peer_s = statistics.median(p["wall_s"] for p in peers)
    answer = studies[0]["answer"]
    accounted = all(run["cpu_s"] for run in [*studies, *peers])
    drift_free = statistics.median(s["study_s"] / s["cpu_s"]["trainer"] for s in studies) / statistics.median(
        p["wall_s"] / p["cpu_s"]["trainer"] for p in peers) if accounted else None
    figures = {"space": args.space, "trials": trials, "epochs": studies[0]["epochs"], "trials_at_once": workers,
               "pairs": args.pairs, "study_s": round(study_s, 1), "report_s": round(median("report_s"), 1),
               "main_job_s": round(main_s, 1), "peer_s": round(peer_s, 1), "compute_bound_s": round(bound_s, 1),
               "clips_per_s": round(median("clips_per_s"), 1),
               "each": {"main_job_s": [round(r["main_s"], 1) for r in studies],
                        "peer_s": [round(p["wall_s"], 1) for p in peers]},
               "cpu_s": {"study": [r["cpu_s"] for r in studies], "peer": [p["cpu_s"] for p in peers]},
               "ray_over_peer": round(study_s / peer_s, 3), "main_job_over_bound": round(main_s / bound_s, 3),
               "ray_over_peer_drift_free": round(drift_free, 3) if drift_free else None,
               "targets": {"ray_over_peer": RAY_TARGET, "main_job_over_bound": BOUND_TARGET}, "answer": answer,
               "same_answer_every_run": all(run["answer"] == answer for run in studies)}
    if args.floor_idle_s > 0:
        figures["ray_floor"] = ray_floor.measure(args.floor_idle_s, peer_s, cores)
    path = results.write("bench_overhead", figures, results.command(), args.out)
    print("\n".join(answer))
    print(f"{args.space}: {trials} trials, {figures['epochs']} epochs, {workers} at once on {cores} cores; medians of "
          f"{args.pairs} runs each (the same answer every run: {figures['same_answer_every_run']})")
    print(f"study.run (no report) {study_s:.1f} s vs the peer (plain Optuna, trainer in process) {peer_s:.1f} s: "
          f"{figures['ray_over_peer']:.2f}x (target <= {RAY_TARGET})")
    if accounted:
        for side, runs in (("study", studies), ("peer", peers)):
            print(f"  CPU seconds, {side}: " + "; ".join(
                ", ".join(f"{k} {v:.0f}" for k, v in run["cpu_s"].items()) for run in runs))
        print(f"  wall time per trainer CPU second, study over peer (the machine's drift taken out): {drift_free:.2f}x")
    for row in figures.get("ray_floor", []):
        print(ray_floor.describe(row))
    print(f"main job (with its report, {figures['report_s']:.1f} s) {main_s:.1f} s vs its compute bound {bound_s:.1f} s "
          f"(sum of epoch times / {cores} cores): {figures['main_job_over_bound']:.2f}x (target <= {BOUND_TARGET}); "
          f"its trials trained at a median {figures['clips_per_s']:.0f} clips/s")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
