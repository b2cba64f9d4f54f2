"""ASHA against no early stopping: the same search space, the same number of Optuna-proposed trials, the same
seeds, on the cached synthetic set with the CPU profile; one local Ray, both studies in this process.

    python -m bench.bench_asha [--space sgd_lr] [--subset kinetics-motion] [--trials 8] [--out bench/asha]
                               [--set FIELD=VALUE ...]

Prints each study's best val top-1 and the epochs it consumed, their ratio, and writes a plot of best-so-far
val top-1 against epochs consumed (``--out``/asha_vs_no_stopping.png). Issue 6 asks ASHA to come within 1 point
of the no-stopping best with at most 35% of its epochs. With at most 10 trials TPE is still in its seeded random
start-up phase, so both studies train exactly the same configs and only the stopping differs; beyond that each
TPE learns from its own study's results. ``--set`` fixes config fields of both studies (``--set epochs=12``):
ASHA's floor is set by its rungs within the epoch budget, about a third of the epochs at 6 epochs with rungs 1, 3.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import ray  # noqa: E402

from study.results import EPOCHS, read_table  # noqa: E402
from study.run import parser as run_parser  # noqa: E402
from study.run import request_from  # noqa: E402
from study.runner import StudyLocation, run_study  # noqa: E402


def best_so_far(root: Path):
    """(epochs consumed, best val top-1 so far) in the order the epochs finished."""
    epochs = read_table(root, EPOCHS).to_pandas().sort_values("recorded_at")
    return list(range(1, len(epochs) + 1)), epochs["val_top1"].cummax().tolist()


def best_on_shared_configs(full, asha) -> tuple[int, float, float]:
    """(count, best without stopping, best with ASHA) over the configs both studies proposed: whether ASHA
    stopped a config that would have won, apart from what TPE went on to propose in each study."""
    common = set(full["sampled"]) & set(asha["sampled"])
    best = [table[table["sampled"].isin(common)]["best_val_top1"].max() for table in (full, asha)]
    return len(common), best[0], best[1]


def main() -> None:
    args_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args_parser.add_argument("--space", default="sgd_lr")
    args_parser.add_argument("--subset", default="kinetics-motion")
    args_parser.add_argument("--trials", type=int, default=8)
    args_parser.add_argument("--out", type=Path, default=Path("bench/asha"))
    args_parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                             help="fix a config field in both studies, as study.run's --set")
    args = args_parser.parse_args()
    storage = Path(tempfile.mkdtemp(prefix="bench-asha-"))
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    curves, summary, tables = {}, {}, {}
    for label, extra in (("no early stopping", ["--no-early-stopping"]), ("ASHA", [])):
        request = request_from(run_parser().parse_args(
            ["--space", args.space, "--subset", args.subset, "--num-samples", str(args.trials), *extra,
             *(f"--set={item}" for item in args.set)]))
        location = StudyLocation(storage, label.replace(" ", "-"))
        trials = run_study(location, request, echo=lambda line: None)
        curves[label] = best_so_far(location.root)
        summary[label] = (trials["best_val_top1"].max(), int(trials["epochs_run"].sum()), len(trials))
        tables[label] = trials
    print(f"python {platform.python_version()}, ray {ray.__version__}, {platform.machine()}; space {args.space}, "
          f"{args.subset}, {args.trials} trials, synthetic data, CPU profile {' '.join(args.set)}")
    for label, (top, epochs, count) in summary.items():
        print(f"  {label:18s} best val top-1 {100 * top:5.1f}%  epochs {epochs:4d}  ({count} trials)")
    (full_top, full_epochs, _), (asha_top, asha_epochs, _) = summary["no early stopping"], summary["ASHA"]
    print(f"  ASHA: {100 * (asha_top - full_top):+.1f} points, {100 * asha_epochs / full_epochs:.0f}% of the epochs")
    shared = best_on_shared_configs(tables["no early stopping"], tables["ASHA"])
    print(f"  on the {shared[0]} configs both studies trained: best {100 * shared[1]:.1f}% without stopping, "
          f"{100 * shared[2]:.1f}% with ASHA")
    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (x, y) in curves.items():
        ax.step(x, [100 * v for v in y], where="post", label=label)
    ax.set(xlabel="epochs consumed", ylabel="best val top-1 so far (%)",
           title=f"ASHA vs no early stopping ({args.space}, {args.subset})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(args.out / "asha_vs_no_stopping.png", dpi=110, bbox_inches="tight")
    print(f"  plot: {args.out / 'asha_vs_no_stopping.png'}")
    ray.shutdown()


if __name__ == "__main__":
    main()
