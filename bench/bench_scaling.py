"""Study wall time against the number of trials and the number of concurrent trials, on this machine.

    python -m bench.bench_scaling [--trials 8 16 32] [--concurrency 1 2]

The smoke space on kinetics-motion (synthetic data, CPU profile, every trial to its last epoch so each costs
the same), one local Ray, studies run back to back in this process. Prints wall time, seconds per trial and
the ratio of seconds per trial to the smallest study's: it must stay near 1 (cost linear in the trials). Writes the
rows with the machine to bench/results/bench_scaling.json.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import ray

from bench import results
from study.driver import run_study
from study.run import parser as run_parser
from study.run import request_from
from study.study_dir import StudyLocation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    results.add_out_argument(parser, "bench_scaling")
    args = parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    print(f"python {platform.python_version()}, ray {ray.__version__}, {platform.machine()}, "
          f"{int(ray.cluster_resources()['CPU'])} CPUs; smoke space, kinetics-motion, no early stopping")
    print("  trials  concurrent  wall s  s/trial  vs smallest")
    rows = []
    for concurrent in args.concurrency:
        baseline = None
        for count in args.trials:
            request = request_from(run_parser().parse_args(
                ["--space", "smoke", "--subset", "kinetics-motion", "--num-samples", str(count),
                 "--max-concurrent", str(concurrent), "--no-early-stopping"]))
            start = time.perf_counter()
            run_study(StudyLocation(storage, f"t{count}-c{concurrent}"), request,
                      echo=lambda line: None)
            wall = time.perf_counter() - start
            per_trial = wall / count
            baseline = baseline or per_trial
            print(f"  {count:6d}  {concurrent:10d}  {wall:6.0f}  {per_trial:7.1f}  {per_trial / baseline:11.2f}",
                  flush=True)
            rows.append({"trials": count, "concurrent": concurrent, "wall_s": round(wall, 1),
                         "s_per_trial": round(per_trial, 2), "vs_smallest": round(per_trial / baseline, 3)})
    ray.shutdown()
    figures = {"space": "smoke", "subset": "kinetics-motion", "early_stopping": False, "rows": rows}
    print(f"written to {results.write('bench_scaling', figures, results.command(), args.out)}")


if __name__ == "__main__":
    main()
