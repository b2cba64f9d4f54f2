"""Per-trial start-up cost on the CPU demo: from Tune starting a trial to its first epoch's training, with and
without actor reuse, one local Ray, both in this process.

    python -m bench.bench_trial_overhead [--trials 6]

For every trial: (first epoch recorded) - (trial started, as the driver's callback saw it: Tune calls it once
the trial's actor exists, so the actor's own process start is not in this figure) - (that epoch's own time).
The target: at most 3 s after the first trial on a node.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import tempfile
from pathlib import Path

import ray

from study.driver import run_study
from study.run import parser as run_parser
from study.run import request_from
from study.study_dir import StudyLocation
from training.results import EPOCHS, TRIALS, read_frame


def overheads(root: Path) -> list[float]:
    epochs = read_frame(root, EPOCHS)
    trials = read_frame(root, TRIALS).set_index("trial_id")
    first = epochs[epochs["epoch"] == 1].set_index("trial_id")
    gaps = (first["recorded_at"] - trials.loc[first.index, "started_at"]).dt.total_seconds() - first["epoch_time_s"]
    return gaps.loc[trials.sort_values("started_at").index.intersection(gaps.index)].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    print(f"python {platform.python_version()}, ray {ray.__version__}; smoke space, kinetics-motion, {args.trials} "
          "trials one at a time, synthetic data, CPU profile")
    for reuse in (False, True):
        request = request_from(run_parser().parse_args(["--space", "smoke", "--subset", "kinetics-motion",
                                                        "--num-samples", str(args.trials), "--no-early-stopping"]))
        location = StudyLocation(storage, f"reuse-{reuse}")
        run_study(location, dataclasses.replace(request, reuse_actors=reuse), echo=lambda line: None)
        gaps = overheads(location.root)
        print(f"  reuse_actors={reuse!s:5s}: first trial {gaps[0]:.2f} s, later trials median "
              f"{statistics.median(gaps[1:]):.2f} s (each: {', '.join(f'{g:.2f}' for g in gaps)})")
    ray.shutdown()


if __name__ == "__main__":
    main()
