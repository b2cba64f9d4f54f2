"""Why the CPU profile turns random move off: the CPU-sized network on the synthetic set, trained with the profile
as it is and with the paper's random move on, same seed and learning rate, val top-1 per epoch side by side.

    python -m bench.bench_cpu_profile [--subset kinetics-motion] [--lr 0.0133] [--epochs 8]

Writes the curves with the machine to bench/results/bench_cpu_profile.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

from bench import results
from kinetics.source import open_data
from training.config import CPU_PROFILE, from_dict
from training.trainer import Trainer


def curve(settings: dict) -> list[dict]:
    config = from_dict(settings, source="bench")
    trainer = Trainer(config, open_data(config.data))
    while not trainer.finished:
        trainer.run_epoch()
    return trainer.history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", default="kinetics-motion")
    parser.add_argument("--lr", type=float, default=0.0133)  # the main job's best learning rate
    parser.add_argument("--epochs", type=int, default=CPU_PROFILE["epochs"])
    results.add_out_argument(parser, "bench_cpu_profile")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = {**CPU_PROFILE, "subset": args.subset, "lr": args.lr, "epochs": args.epochs, "sample_images": 0,
            "milestones": [m for m in CPU_PROFILE["milestones"] if m <= args.epochs]}
    runs = {"profile (no random move)": curve(base), "with random move": curve({**base, "random_move": True})}
    print(f"{args.subset}, synthetic, CPU profile, lr {args.lr}, seed 0, 1 thread, torch {torch.__version__}, "
          f"{platform.machine()}")
    print("epoch  " + "  ".join(f"{label:>26}" for label in runs))
    for epoch in range(args.epochs):
        print(f"{epoch + 1:5d}  " + "  ".join(f"{100 * history[epoch]['val_top1']:25.1f}%" for history in runs.values()))
    medians = {label: statistics.median(m["epoch_time_s"] for m in history) for label, history in runs.items()}
    print("median epoch time: " + ", ".join(f"{label} {s:.1f} s" for label, s in medians.items()))
    figures = {"subset": args.subset, "lr": args.lr, "epochs": args.epochs, "seed": 0, "data": "synthetic",
               "val_top1": {label: [round(m["val_top1"], 4) for m in history] for label, history in runs.items()},
               "median_epoch_s": {label: round(s, 2) for label, s in medians.items()}}
    print(f"written to {results.write('bench_cpu_profile', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
