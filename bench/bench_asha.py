"""ASHA against no early stopping: the same search space, the same number of Optuna-proposed trials, the same
seeds, on the cached synthetic set with the CPU profile; one local Ray, all studies in this process.

    python -m bench.bench_asha [--space sgd_lr] [--subset kinetics-motion] [--trials 8] [--seeds 0 ...]
                               [--out bench/results] [--set FIELD=VALUE ...] [--storage DIR [--report-only]]

For each study seed (the TPE sampler's seed and every trial's training seed, as study.run's --seed) prints each
study's best val top-1 and the epochs it consumed, their difference and ratio, then the median over the seeds,
and writes a plot of best-so-far val top-1 against epochs consumed (``--out``/bench_asha.png). The target:
ASHA within 1 point of the no-stopping best with at most 35% of its epochs. With at most 10 trials
TPE is still in its seeded random start-up phase, so both studies of a seed train exactly the same configs and
only the stopping differs; beyond that each TPE learns from its own study's results, and which configs it then
proposes is what several seeds average over. ``--set`` fixes config fields of all studies (``--set epochs=12``):
ASHA's floor is set by its rungs within the epoch budget, about a third of the epochs at 6 epochs with rungs 1, 3.
Per seed it also prints how well val top-1 at each of ASHA's rungs ranks the no-stopping study's trials by
their best (Spearman): a rung whose ranking is near 0 stops trials at random; and how many of the ASHA study's
trials went on past each rung (values tied at a rung's cutoff all go on), and how many seeds meet each of the target's
bounds. ``--report-only`` prints all this again from the studies already in ``--storage``, without training.
The figures go, with the machine, to ``--out``/bench_asha.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import ray  # noqa: E402

from bench import results  # noqa: E402
from study.driver import run_study  # noqa: E402
from study.run import parser as run_parser  # noqa: E402
from study.run import request_from  # noqa: E402
from study.spaces import load_space  # noqa: E402
from study.study_dir import StudyLocation  # noqa: E402
from training.results import EPOCHS, TRIALS, read_frame  # noqa: E402

STUDIES = (("no early stopping", ["--no-early-stopping"]), ("ASHA", []))
TARGET_POINTS, TARGET_SHARE = -1.0, 0.35  # within 1 point of val top-1, at most 35% of the epochs


def best_so_far(epochs: pd.DataFrame):
    """(epochs consumed, best val top-1 so far) in the order the epochs finished."""
    epochs = epochs.sort_values("recorded_at")
    return list(range(1, len(epochs) + 1)), epochs["val_top1"].cummax().tolist()


def best_on_shared_configs(full, asha) -> tuple[int, float, float]:
    """(count, best without stopping, best with ASHA) over the configs both studies proposed: whether ASHA
    stopped a config that would have won, apart from what TPE went on to propose in each study."""
    common = set(full["sampled"]) & set(asha["sampled"])
    best = [table[table["sampled"].isin(common)]["best_val_top1"].max() for table in (full, asha)]
    return len(common), best[0], best[1]


def rung_epochs(space: str, epochs: int) -> list[int]:
    """The epochs at which ASHA compares trials: grace period x reduction factor^k, below the last epoch."""
    asha = load_space(space)
    rungs, epoch = [], asha.grace_period
    while epoch < epochs:
        rungs.append(epoch)
        epoch *= asha.reduction_factor
    return rungs


def rung_rank_correlations(epochs: pd.DataFrame, rungs: list[int]) -> dict[int, tuple[float, float, float]]:
    """Per rung epoch, over a study's trials: the Spearman correlation of val top-1 there with the trial's best,
    and the lowest and highest val top-1 there (all near chance means the rung cannot tell trials apart)."""
    curves = epochs.pivot_table(index="trial_id", columns="epoch", values="val_top1")
    best = curves.max(axis=1)
    return {epoch: (curves[epoch].corr(best, method="spearman"), curves[epoch].min(), curves[epoch].max())
            for epoch in rungs if epoch in curves}


def rung_passage(epochs: pd.DataFrame, rungs: list[int]) -> dict[int, tuple[int, int, int, float]]:
    """Per rung epoch, over the ASHA study's trials: how many reached it, how many went on past it, and how many
    scored the rung's most common val top-1 (and that value). Ray stops a trial only below the rung's cutoff, so
    values tied at the cutoff all go on."""
    last = epochs.groupby("trial_id")["epoch"].max()
    passage = {}
    for epoch in rungs:
        at_rung = epochs[epochs["epoch"] == epoch]["val_top1"].round(6)
        if len(at_rung):
            mode = at_rung.mode().iloc[0]
            passage[epoch] = (len(at_rung), int((last > epoch).sum()), int((at_rung == mode).sum()), mode)
    return passage


def run_pair(storage: Path, args, seed: int) -> dict:
    """Both studies of one seed (trained, or read back with --report-only): per study its best-so-far curve,
    best val top-1, epochs, trials and epochs tables; the no-stopping study's rung correlations and the ASHA
    study's passage through the rungs."""
    pair = {}
    for label, extra in STUDIES:
        location = StudyLocation(storage, f"{label.replace(' ', '-')}-seed{seed}")
        if not args.report_only:
            request = request_from(run_parser().parse_args(
                ["--space", args.space, "--subset", args.subset, "--num-samples", str(args.trials), "--seed",
                 str(seed), *extra, *(f"--set={item}" for item in args.set)]))
            run_study(location, request, echo=lambda line: None)
        trials = read_frame(location.root, TRIALS)
        epochs = read_frame(location.root, EPOCHS)
        pair[label] = {"curve": best_so_far(epochs), "best": trials["best_val_top1"].max(),
                       "epochs": int(trials["epochs_run"].sum()), "trials": trials, "epoch_rows": epochs}
    full, asha = pair["no early stopping"], pair["ASHA"]
    rungs = rung_epochs(args.space, int(full["trials"]["epochs_planned"].max()))
    full["rungs"] = rung_rank_correlations(full["epoch_rows"], rungs)
    asha["rungs"] = rung_passage(asha["epoch_rows"], rungs)
    return pair


def report_pair(seed: int, pair: dict) -> tuple[float, float]:
    """Prints one seed's figures; returns (ASHA's difference in points, its share of the epochs)."""
    full, asha = pair["no early stopping"], pair["ASHA"]
    gap, share = 100 * (asha["best"] - full["best"]), asha["epochs"] / full["epochs"]
    shared = best_on_shared_configs(full["trials"], asha["trials"])
    print(f"  seed {seed}: no stopping {100 * full['best']:5.1f}% in {full['epochs']:4d} epochs; ASHA "
          f"{100 * asha['best']:5.1f}% in {asha['epochs']:4d} epochs: {gap:+.1f} points, {100 * share:.0f}% of the "
          f"epochs; on the {shared[0]} configs both trained: {100 * shared[1]:.1f}% vs {100 * shared[2]:.1f}%")
    print("          how val top-1 at ASHA's rungs ranks the no-stopping trials by their best (Spearman): " +
          ", ".join(f"epoch {epoch} {rho:.2f} (val top-1 {100 * low:.1f}-{100 * high:.1f}%)"
                    for epoch, (rho, low, high) in full["rungs"].items()))
    print("          ASHA study, trials that went on past each rung: " +
          ", ".join(f"epoch {epoch} {went_on} of {reached} ({tied} at the most common val top-1, {100 * mode:.1f}%)"
                    for epoch, (reached, went_on, tied, mode) in asha["rungs"].items()))
    return gap, share


def plot(pairs: dict[int, dict], path: Path, title: str) -> None:
    """One panel per seed, so that each pair of curves reads on its own however many seeds there are."""
    fig, axes = plt.subplots(1, len(pairs), figsize=(2.6 * len(pairs) + 1, 3.4), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (seed, pair) in zip(axes[0], pairs.items()):
        for (label, _), color in zip(STUDIES, ("tab:blue", "tab:orange")):
            x, y = pair[label]["curve"]
            ax.step(x, [100 * v for v in y], where="post", color=color, label=label)
        ax.set(xlabel="epochs consumed", title=f"seed {seed}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("best val top-1 so far (%)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    args_parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args_parser.add_argument("--space", default="sgd_lr")
    args_parser.add_argument("--subset", default="kinetics-motion")
    args_parser.add_argument("--trials", type=int, default=8)
    args_parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                             help="study seeds, each a pair of studies (default: 0)")
    args_parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                             help="fix a config field in all studies, as study.run's --set")
    args_parser.add_argument("--storage", type=Path, help="where the studies go (default: a new temporary folder)")
    args_parser.add_argument("--report-only", action="store_true",
                             help="print the figures of the studies already in --storage; train nothing")
    results.add_out_argument(args_parser, "bench_asha")
    args = args_parser.parse_args()
    if args.report_only and not args.storage:
        args_parser.error("--report-only reads the studies in --storage: name it")
    storage = args.storage or Path(tempfile.mkdtemp(prefix="bench-asha-"))
    print(f"studies in {storage}")
    if not args.report_only:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    pairs = {seed: run_pair(storage, args, seed) for seed in args.seeds}
    epochs = int(next(iter(pairs.values()))["no early stopping"]["trials"]["epochs_planned"].max())
    print(f"python {platform.python_version()}, ray {ray.__version__}, {platform.machine()}; space {args.space}, "
          f"{args.subset}, {args.trials} trials per study, synthetic data, CPU profile, {epochs} epochs"
          + "".join(f", {item}" for item in args.set))
    figures = [report_pair(seed, pair) for seed, pair in pairs.items()]
    gaps, shares = zip(*figures)
    print(f"  median over {len(figures)} seed(s): ASHA {statistics.median(gaps):+.1f} points, "
          f"{100 * statistics.median(shares):.0f}% of the epochs (worst difference {min(gaps):+.1f} points, "
          f"largest share {100 * max(shares):.0f}%)")
    close, cheap = [gap >= TARGET_POINTS for gap in gaps], [share <= TARGET_SHARE for share in shares]
    print(f"  seeds within {-TARGET_POINTS:.0f} point: {sum(close)} of {len(gaps)}; within {100 * TARGET_SHARE:.0f}% of "
          f"the epochs: {sum(cheap)}; both: {sum(a and b for a, b in zip(close, cheap))}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench_asha.png"
    plot(pairs, path, f"ASHA vs no early stopping ({args.space}, {args.subset})")
    print(f"  plot: {path}")
    per_seed = [{"seed": seed, "no_stopping_best": round(pair["no early stopping"]["best"], 4),
                 "no_stopping_epochs": pair["no early stopping"]["epochs"], "asha_best": round(pair["ASHA"]["best"], 4),
                 "asha_epochs": pair["ASHA"]["epochs"], "points": round(gap, 2), "share_of_epochs": round(share, 3)}
                for (seed, pair), gap, share in zip(pairs.items(), gaps, shares)]
    figures = {"space": args.space, "subset": args.subset, "trials": args.trials, "epochs": epochs, "set": args.set,
               "seeds": per_seed, "median_points": round(statistics.median(gaps), 2),
               "median_share_of_epochs": round(statistics.median(shares), 3),
               "targets": {"points": TARGET_POINTS, "share_of_epochs": TARGET_SHARE}, "plot": path.name}
    print(f"written to {results.write('bench_asha', figures, results.command(), args.out)}")
    if ray.is_initialized():
        ray.shutdown()


if __name__ == "__main__":
    main()
