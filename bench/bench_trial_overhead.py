"""Trial turnover on the CPU demo: from the end of a trial to its successor's first epoch, in the same worker, with
and without actor reuse, one local Ray, both in this process.

    python -m bench.bench_trial_overhead [--trials 8]

The smoke space on kinetics-motion, one trial at a time on 1 CPU, every trial to its last epoch, no sample skeletons
drawn (they are drawn after the first epoch, not before it). For every trial after the first: (its first epoch's
start: recorded by the driver, less the epoch's own time) - (the end of the trial before it: its last record). With
reuse that is Tune handing the worker the next trial; without, a new worker process starting (imports, data opened).
Target: a median of at most 0.5 s with reuse, the default. Writes bench/results/bench_trial_overhead.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path

import pandas as pd
import ray

from bench import results
from study.driver import run_study
from study.run import parser as run_parser
from study.run import request_from
from study.study_dir import StudyLocation
from training.results import EPOCHS, TRIALS, read_frame

TARGET_S = 0.5


def turnovers(root: Path) -> list[float]:
    """Seconds from each trial's end to the next trial's first epoch start, trials in the order they started."""
    epochs = read_frame(root, EPOCHS)
    trials = read_frame(root, TRIALS).sort_values("started_at")
    first = epochs[epochs["epoch"] == 1].set_index("trial_id")
    starts = pd.to_datetime(first["recorded_at"]) - pd.to_timedelta(first["epoch_time_s"], unit="s")
    ends = pd.to_datetime(trials["updated_at"]).tolist()
    return [(starts[trial_id] - ended).total_seconds() for trial_id, ended in zip(trials["trial_id"].iloc[1:], ends)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    results.add_out_argument(parser, "bench_trial_overhead")
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="bench-turnover-"))
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    print(f"smoke space, kinetics-motion, {args.trials} trials one at a time, synthetic data, CPU profile")
    figures = {"trials": args.trials, "target_s": TARGET_S}
    for reuse in (True, False):
        request = request_from(run_parser().parse_args(
            ["--space", "smoke", "--subset", "kinetics-motion", "--num-samples", str(args.trials),
             "--no-early-stopping", "--max-concurrent", "1", "--set", "sample_images=0"]))
        location = StudyLocation(storage, f"reuse-{reuse}")
        run_study(location, dataclasses.replace(request, reuse_actors=reuse), echo=lambda line: None)
        gaps = turnovers(location.root)
        key = "reused_worker" if reuse else "new_worker"
        figures[key] = {"median_s": round(statistics.median(gaps), 3), "each_s": [round(g, 3) for g in gaps]}
        print(f"  {key.replace('_', ' ')}: turnover median {statistics.median(gaps):.2f} s "
              f"(each: {', '.join(f'{g:.2f}' for g in gaps)})" + (f"; target <= {TARGET_S} s" if reuse else ""))
    ray.shutdown()
    print(f"written to {results.write('bench_trial_overhead', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
