"""What the learning rate does on the synthetic default, without early stopping: the response the main job judges.

    python -m bench.bench_lr_response [--trials 12] [--epochs 8] [--storage DIR]

The main job's space (sgd_lr: the same Sobol design over the same range, the CPU profile, seed 0), every trial to
its last epoch with the CPU profile's schedule (the step one epoch before the end), no ASHA, on both subsets. Prints
val top-1 per learning rate at the main job's judging epoch (its ASHA rung, 5) and at the last, per subset, and
writes them with the machine to bench/results/bench_lr_response.json; docs/report.md renders the table from it.
The generator of the synthetic set is not tuned to any verdict: this is the response the main job's design
(trials, judging epoch) was chosen against. With ``--storage``, a study an earlier run left there unfinished is
resumed (its finished epochs are kept) instead of started again.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import ray

from bench import results
from study.driver import run_study
from study.run import parser as run_parser
from study.run import request_from
from study.spaces import load_space
from study.study_dir import StudyLocation
from training.results import EPOCHS, MANIFEST, read_frame

SPACE = "sgd_lr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="learning rates per subset (default 12, the main job's)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8); the step is one before")
    parser.add_argument("--storage", type=Path, help="where the study goes (default: a new temporary folder); one "
                        "left there unfinished is resumed")
    results.add_out_argument(parser, "bench_lr_response")
    args = parser.parse_args()
    space = load_space(SPACE)
    judged = space.grace_period
    storage = args.storage or Path(tempfile.mkdtemp(prefix="bench-lr-response-"))
    location = StudyLocation(storage, "lr-response")
    print(f"study in {location.root}", flush=True)
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    if (location.root / MANIFEST).is_file():
        run_study(location, None, resume=True, echo=lambda line: None)
    else:
        request = request_from(run_parser().parse_args(
            ["--space", SPACE, "--num-samples", str(args.trials), "--no-early-stopping", "--set",
             f"epochs={args.epochs}", "--set", f"milestones=[{args.epochs - 1}]", "--set", "sample_images=0"]))
        run_study(location, request, echo=lambda line: None)
    ray.shutdown()
    epochs = read_frame(location.root, EPOCHS)
    subsets = [subset for subset in space.subsets if subset in set(epochs["subset"])]  # the space's order
    rows = []
    for lr, by_lr in epochs.groupby("lr"):
        row = {"lr": float(lr)}
        for subset in subsets:
            curve = by_lr[by_lr["subset"] == subset].set_index("epoch")["val_top1"]
            row[subset] = {str(judged): round(float(curve.get(judged, float("nan"))), 4),
                           str(args.epochs): round(float(curve.get(args.epochs, float("nan"))), 4)}
        rows.append(row)
    print(f"{SPACE}, {args.trials} trials per subset, {args.epochs} epochs, no early stopping, synthetic data, CPU "
          f"profile, seed 0: val top-1 at epoch {judged} / {args.epochs}")
    for row in rows:
        print(f"  lr {row['lr']:.2g}: " + "; ".join(
            f"{subset} {100 * row[subset][str(judged)]:.1f} / {100 * row[subset][str(args.epochs)]:.1f}%"
            for subset in subsets))
    figures = {"space": SPACE, "trials": args.trials, "epochs": args.epochs, "judged_at": judged, "seed": 0,
               "data": "synthetic", "subsets": subsets, "rows": rows}
    command = results.command(places=("--out", "--storage"))  # where the study and the file go: not the figures
    print(f"written to {results.write('bench_lr_response', figures, command, args.out)}")


if __name__ == "__main__":
    main()
