"""How often a 95% interval for "config A beats config B" is wrong with a few seeds: Welch's t interval (what the
report uses) against a percentile bootstrap, by simulation.

Two configs of equal true accuracy with seed noise SD (the synthetic set's): the share of 500 comparisons whose
interval excludes zero should be about 5%. A true difference of 3 SD: the share that finds it (power).

    python -m bench.bench_intervals [--seeds 3 4] [--sd 0.08] [--comparisons 500]

Writes the rates to bench/results/bench_intervals.json (docs/report.md renders them, ``python -m bench.report``).
"""

from __future__ import annotations

import argparse

import numpy as np

from bench import results
from reports.comparisons import welch_interval


def bootstrap_interval(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, draws: int = 2000) -> tuple:
    diffs = rng.choice(a, (draws, len(a))).mean(1) - rng.choice(b, (draws, len(b))).mean(1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return a.mean() - b.mean(), low, high


def rates(interval, seeds: int, sd: float, comparisons: int, seed: int = 0) -> tuple[float, float]:
    """(share of equal-accuracy comparisons called different, share of 3-SD differences found)."""
    rng = np.random.default_rng(seed)
    false = sum(_excludes_zero(interval(rng.normal(0.5, sd, seeds), rng.normal(0.5, sd, seeds), rng))
                for _ in range(comparisons))
    found = sum(interval(rng.normal(0.5 + 3 * sd, sd, seeds), rng.normal(0.5, sd, seeds), rng)[1] > 0
                for _ in range(comparisons))
    return false / comparisons, found / comparisons


def _excludes_zero(result) -> bool:
    _, low, high = result
    return low > 0 or high < 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--sd", type=float, default=0.08)
    parser.add_argument("--comparisons", type=int, default=500)
    results.add_out_argument(parser, "bench_intervals")
    args = parser.parse_args()
    methods = {"Welch t": lambda a, b, rng: welch_interval(a, b),
               "percentile bootstrap": lambda a, b, rng: bootstrap_interval(a, b, rng)}
    print(f"95% intervals, seed noise sd {args.sd}, {args.comparisons} simulated comparisons each")
    rows = []
    for seeds in args.seeds:
        for label, interval in methods.items():
            false, power = rates(interval, seeds, args.sd, args.comparisons)
            rows.append({"seeds": seeds, "interval": label, "equal_called_different": round(false, 4),
                         "three_sd_found": round(power, 4)})
            print(f"  {seeds} seeds, {label}: equal configs called different {100 * false:.1f}%; "
                  f"a 3-sd difference found {100 * power:.1f}%")
    command = (f"python -m bench.bench_intervals --seeds {' '.join(map(str, args.seeds))} --sd {args.sd:g} "
               f"--comparisons {args.comparisons}")
    figures = {"sd": args.sd, "comparisons": args.comparisons, "rows": rows}
    print(f"written to {results.write('bench_intervals', figures, command, args.out)}")


if __name__ == "__main__":
    main()
