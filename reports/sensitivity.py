"""Sensitivity plots across both subsets, each at matched budgets.

No figure mixes a score from an early ASHA rung with a final one as one quantity: a series is one budget (the val
top-1 at that epoch of every trial that reached it, or the last epoch of the completed trials), labelled as such.
Diverged trials are drawn at the bottom, marked. Every function returns the points it drew, so what a figure shows
can be checked against the tables it came from.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from common.plotting import save_figure
from reports.findings import SubsetFindings, name, trial_count
from reports.inference import gupta_constant
from reports.scaling import PAPER_BATCH, Exponent
from reports.scores import INDEPENDENT, at_budget, diverged, expected_max, expected_max_band, search_trials

MARKERS = {"sgd": "o", "adam": "s", "adamw": "^"}
SCHEDULER_ORDER = ("step", "cosine", "plateau", "none")
PAPER_LR = 0.1


class Plot(NamedTuple):
    path: Path
    points: pd.DataFrame  # subset, series, x, y (and what else identifies a point): what the figure shows


def _panels(subsets, title: str, sharey: bool = True):
    fig, axes = plt.subplots(1, len(subsets), figsize=(5.5 * len(subsets), 4.2), sharey=sharey, squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _budget_label(budget: int, final: int) -> str:
    return f"epoch {budget} (completed trials)" if budget >= final else f"epoch {budget} (ASHA rung, every trial there)"


def _headline_label(f: SubsetFindings | None) -> str:
    return _budget_label(f.budget, f.final) if f is not None else ""


def lr_sensitivity(trials: pd.DataFrame, epochs: pd.DataFrame, found: dict[str, SubsetFindings], levels: list[int],
                   out: Path) -> Plot:
    """Val top-1 vs learning rate: a colour per budget, a marker per optimizer, diverged trials at the bottom."""
    subsets = list(found) or ["kinetics-motion"]
    fig, axes = _panels(subsets, "Validation top-1 vs learning rate, at matched budgets")
    colours = plt.cm.viridis(np.linspace(0.15, 0.85, max(len(levels), 1)))
    points = []
    for ax, subset in zip(axes, subsets):
        search = search_trials(trials, subset)
        final = levels[-1] if levels else 0
        for colour, budget in zip(colours, levels):
            rows = at_budget(search, epochs, budget, levels)
            rows = rows[~rows["diverged"]]
            for optimizer, group in rows.groupby("optimizer"):
                ax.scatter(group["lr"], 100 * group["score"], color=colour, marker=MARKERS.get(optimizer, "o"), s=36,
                           label=f"{_budget_label(budget, final)}, {optimizer}")
                points += [(subset, f"epoch {budget}", lr, s, optimizer) for lr, s in zip(group["lr"], group["score"])]
        bad = diverged(search)
        if len(bad):
            ax.scatter(bad["lr"], np.zeros(len(bad)), marker="x", color="crimson", s=50, label="diverged (loss NaN)")
            points += [(subset, "diverged", lr, 0.0, o) for lr, o in zip(bad["lr"], bad["optimizer"])]
        f = found.get(subset)
        if f is not None and f.best is not None and f.noise.source == "seeds" and f.noise.dof >= 1:
            top, candidates = 100 * f.best["score"], int((~f.scored["diverged"]).sum())
            reach = gupta_constant(candidates, dof=f.noise.dof) * math.sqrt(2) * 100 * f.noise.sd
            ax.axhspan(top - reach, top, color="grey", alpha=0.15,
                       label=f"could be the best at epoch {f.budget} (95% set, measured seed noise)")
        ax.set(xscale="log", xlabel="learning rate", ylabel="val top-1 (%)", title=subset)
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    save_figure(fig, out / "lr_sensitivity.png")
    return Plot(out / "lr_sensitivity.png", pd.DataFrame(points, columns=["subset", "series", "x", "y", "optimizer"]))


def importance_by_budget(found: dict[str, SubsetFindings], levels: list[int], out: Path) -> Plot:
    """Each parameter's share of the score's variance (omega squared) at each budget: filled where the permutation
    test says it matters at the headline budget (Holm over parameters and subsets), hollow elsewhere: the deeper
    budgets hold only ASHA's survivors and are descriptive."""
    subsets = list(found) or ["kinetics-motion"]
    fig, axes = _panels(subsets, "Share of variance each parameter explains, by budget (filled: it matters at the "
                                 "headline budget, Holm-corrected)")
    points = []
    for ax, subset in zip(axes, subsets):
        f = found.get(subset)
        parameters = sorted({p for per in f.tests.values() for p in per}) if f is not None else []
        if not parameters:
            ax.text(0.5, 0.5, "no parameter tested:\ntoo few trials at every budget", ha="center", va="center",
                    transform=ax.transAxes)
        for parameter in parameters:
            budgets = [b for b in sorted(f.tests) if parameter in f.tests[b]]
            values = [f.tests[b][parameter].omega2 for b in budgets]
            matters = [(b, parameter) in f.verdicts and f.verdicts[(b, parameter)].holds for b in budgets]
            line, = ax.plot(budgets, values, label=name(parameter))
            ax.scatter(budgets, values, s=50, color=line.get_color(), zorder=3,
                       facecolors=[line.get_color() if m else "white" for m in matters])
            points += [(subset, parameter, b, v, m) for b, v, m in zip(budgets, values, matters)]
        if f is not None:
            ax.axvline(f.budget, color="grey", linestyle=":", linewidth=1, label=f"headline budget (epoch {f.budget})")
        ax.set(xlabel="budget (epochs)", ylabel="share of variance explained (omega squared)", title=subset, ylim=(0, 1))
        ax.set_xticks(levels)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save_figure(fig, out / "importance.png")
    return Plot(out / "importance.png", pd.DataFrame(points, columns=["subset", "series", "x", "y", "matters"]))


def lr_batch(found: dict[str, SubsetFindings], out: Path) -> Plot:
    """Learning rate x batch size coloured by the score at the headline budget, with the linear scaling line through
    the paper's 0.1 at 256 and, where estimated, the fitted lr* = c * batch^alpha."""
    subsets = list(found) or ["kinetics-motion"]
    fig, axes = _panels(subsets, "Learning rate x batch size (colour: val top-1 %, one scale for every panel)")
    points, scatter = [], None
    tops = [f.scored["score"].max() for f in found.values() if len(f.scored)]
    top = max(1.0, 100 * max(tops)) if tops else 1.0
    for ax, subset in zip(axes, subsets):
        f = found.get(subset)
        rows = f.scored if f is not None else pd.DataFrame(columns=["batch_size", "lr", "score"])
        scatter = ax.scatter(rows["batch_size"], rows["lr"], c=100 * rows["score"], cmap="viridis", vmin=0, vmax=top,
                             s=50, edgecolors="k")
        points += [(subset, "trials", b, lr) for b, lr in zip(rows["batch_size"], rows["lr"])]
        batches = np.array([8, 512])
        ax.plot(batches, PAPER_LR * batches / PAPER_BATCH, "r--", linewidth=1, label="linear scaling (0.1 at 256)")
        if f is not None and isinstance(f.exponent, Exponent):
            e = f.exponent
            ax.plot(batches, e.best_lr(batches), "k-", linewidth=1.2,
                    label=f"fitted lr* ~ batch^{e.alpha:.2f} [{e.low:.2f}, {e.high:.2f}]")
            points += [(subset, "fitted", b, lr) for b, lr in zip(batches, e.best_lr(batches))]
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="learning rate",
               title=f"{subset} ({_headline_label(f)})")
        ax.set_xticks([16, 32, 64, 128, 256], labels=["16", "32", "64", "128", "256"])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    if scatter is not None:
        fig.colorbar(scatter, ax=list(axes), label="val top-1 (%)")
    save_figure(fig, out / "lr_batch.png")
    return Plot(out / "lr_batch.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def scheduler_comparison(found: dict[str, SubsetFindings], out: Path) -> Plot:
    """The scores at each subset's headline budget, per learning-rate scheduler (box and every trial)."""
    subsets = list(found) or ["kinetics-motion"]
    fig, axes = _panels(subsets, "Validation top-1 per learning-rate scheduler")
    points = []
    for ax, subset in zip(axes, subsets):
        f = found.get(subset)
        rows = f.scored if f is not None else pd.DataFrame(columns=["scheduler", "score"])
        kinds = [k for k in SCHEDULER_ORDER if k in set(rows["scheduler"])]
        data = [100 * rows.loc[rows["scheduler"] == k, "score"].to_numpy() for k in kinds]
        if kinds:
            ax.boxplot(data, tick_labels=kinds)
            for i, (kind, values) in enumerate(zip(kinds, data), start=1):
                ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=14,
                           color="tab:blue", alpha=0.7)
                points += [(subset, kind, i, v / 100) for v in values]
        ax.set(xlabel="scheduler", ylabel="val top-1 (%)", title=f"{subset} ({_headline_label(f)})")
        ax.grid(alpha=0.3, axis="y")
    save_figure(fig, out / "scheduler_comparison.png")
    return Plot(out / "scheduler_comparison.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


LEGEND_MAX = 12  # trials a panel names in its legend; past that the colour alone says the learning rate (a colour bar)


def learning_curves(epochs: pd.DataFrame, trials: pd.DataFrame, subsets, out: Path) -> Plot:
    """val top-1 vs epoch of every trial, coloured by its learning rate (the legend names each trial and its lr, or a
    colour bar does past LEGEND_MAX trials), with an x where ASHA stopped it and a + where it diverged."""
    fig, axes = _panels(subsets, "Learning curves of all trials (x: stopped by ASHA, +: diverged)")
    by_trial = trials.set_index(["subset", "trial_id"]) if len(trials) else pd.DataFrame()
    lrs = trials["lr"].dropna() if "lr" in trials else pd.Series(dtype=float)
    scale = plt.Normalize(math.log10(lrs.min()), math.log10(lrs.max()) + 1e-9) if len(lrs) and lrs.min() > 0 else None
    points = []
    for ax, subset in zip(axes, subsets):
        rows = epochs[epochs["subset"] == subset] if len(epochs) else epochs
        curves = list(rows.groupby("trial_id")) if len(rows) else []
        for trial_id, curve in sorted(curves, key=lambda kv: _lr_of(by_trial, subset, kv[0])):
            curve = curve.sort_values("epoch")
            lr = _lr_of(by_trial, subset, trial_id)
            colour = plt.cm.viridis(scale(math.log10(lr))) if scale is not None and lr > 0 else None
            label = f"{_experiment_of(by_trial, subset, trial_id)}: lr {lr:.2g}" if lr > 0 else str(trial_id)
            line, = ax.plot(curve["epoch"], 100 * curve["val_top1"], linewidth=1.2, alpha=0.85, color=colour,
                            label=label)
            points += [(subset, trial_id, e, v) for e, v in zip(curve["epoch"], curve["val_top1"])]
            reason = by_trial.loc[(subset, trial_id), "stop_reason"] if (subset, trial_id) in by_trial.index else None
            if reason in ("stopped_by_asha", "diverged"):
                last = curve.iloc[-1]
                y = 0 if math.isnan(last["val_top1"]) else 100 * last["val_top1"]
                ax.scatter([last["epoch"]], [y], marker="x" if reason == "stopped_by_asha" else "+", s=50,
                           color=line.get_color())
        ax.set(xlabel="epoch", ylabel="val top-1 (%)", title=subset)
        ax.grid(alpha=0.3)
        if 0 < len(curves) <= LEGEND_MAX:
            ax.legend(fontsize=7, title="experiment: learning rate", title_fontsize=7)
        elif curves and scale is not None:
            bar = fig.colorbar(plt.cm.ScalarMappable(norm=scale, cmap="viridis"), ax=ax)
            bar.set_label("log10 learning rate")
    save_figure(fig, out / "learning_curves.png")
    return Plot(out / "learning_curves.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def _lr_of(by_trial: pd.DataFrame, subset: str, trial_id: str) -> float:
    key = (subset, trial_id)
    value = by_trial.loc[key, "lr"] if key in by_trial.index and "lr" in by_trial else math.nan
    return float(value) if pd.notna(value) else 0.0


def _experiment_of(by_trial: pd.DataFrame, subset: str, trial_id: str) -> str:
    key = (subset, trial_id)
    value = by_trial.loc[key, "experiment_id"] if key in by_trial.index else None
    return str(int(value)) if pd.notna(value) else str(trial_id)


def expected_max_plot(trials: pd.DataFrame, epochs: pd.DataFrame, subsets, levels: list[int], space: str,
                      out: Path) -> Plot:
    """Dodge et al. (2019): expected best val top-1 vs number of trials, from the independent random draws of the
    space only (random trials, or a TPE study's random start-up; a Sobol design's points are not independent), with
    diverged draws counted at chance, at every budget all of them reached (with ASHA: its first rung), with a 90%
    bootstrap band."""
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    points, drawn = [], []
    for subset in subsets:
        search = search_trials(trials, subset)
        draws = search[search["sampled_by"].isin(INDEPENDENT) & (search["stop_reason"] != "errored")]
        if draws.empty:
            continue
        for budget in levels:
            rows = at_budget(draws, epochs, budget, levels)
            if len(rows) < len(draws) or len(rows) < 2:
                continue  # not every draw reached this budget: the rest would not be a sample of the space
            scores = rows["score"].to_numpy(float)
            curve, (low, high) = expected_max(scores), expected_max_band(scores)
            n = np.arange(1, len(curve) + 1)
            line, = ax.plot(n, 100 * curve, marker="o", markersize=3,
                            label=f"{subset}, epoch {budget} ({len(curve)} random draws)")
            ax.fill_between(n, 100 * low, 100 * high, color=line.get_color(), alpha=0.15)
            points += [(subset, f"epoch {budget}", k, v, lo, hi) for k, v, lo, hi in zip(n, curve, low, high)]
            drawn.append(budget)
    ax.set(xlabel="number of trials", ylabel="expected best val top-1 (%)",
           title=f"Expected best accuracy vs tuning budget ({space}; band: 90% bootstrap)")
    ax.grid(alpha=0.3)
    if points:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no independent random draws of the space reached a common budget\n(a Sobol design or TPE "
                "without random start-up:\ntheir trials are not independent draws)", ha="center", va="center",
                transform=ax.transAxes, fontsize=8)
    save_figure(fig, out / "expected_max.png")
    return Plot(out / "expected_max.png", pd.DataFrame(points, columns=["subset", "series", "x", "y", "low", "high"]))


def data_budget(found: dict[str, SubsetFindings], out: Path) -> Plot:
    """Val top-1 at the headline budget against the training clips per class, per sampling strategy, each point
    with the noise band (1.96 noise standard deviations either side)."""
    subsets = list(found) or ["kinetics-motion"]
    fig, axes = _panels(subsets, "Accuracy vs training-set size (bars: the noise floor, 95%)")
    points = []
    for ax, subset in zip(axes, subsets):
        f = found.get(subset)
        rows = f.scored if f is not None else pd.DataFrame(columns=["train_clips", "num_classes", "score", "sampling"])
        for strategy, group in rows.groupby(rows["sampling"].fillna("stratified")) if len(rows) else []:
            per_class = group["train_clips"] / group["num_classes"]
            ax.errorbar(per_class, 100 * group["score"], yerr=100 * 1.96 * f.noise.sd, fmt="o", capsize=3,
                        label=f"{strategy} sampling")
            points += [(subset, strategy, x, y) for x, y in zip(per_class, group["score"])]
        ax.set(xscale="log", xlabel="training clips per class", ylabel="val top-1 (%)",
               title=f"{subset} ({_headline_label(f)})")
        ax.grid(alpha=0.3, which="both")
        if len(rows):
            ax.legend(fontsize=7)
    save_figure(fig, out / "data_budget.png")
    return Plot(out / "data_budget.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))


def pretraining(epochs: pd.DataFrame, trials: pd.DataFrame, subsets, out: Path) -> Plot:
    """Learning curves from scratch against fine-tuned from a checkpoint: every search trial thin, each group's mean
    val top-1 per epoch thick (over the trials that reached that epoch)."""
    fig, axes = _panels(subsets, "Learning curves: from scratch vs pre-trained (thick: mean per epoch)")
    points = []
    for ax, subset in zip(axes, subsets):
        search = search_trials(trials, subset)
        origin = search.set_index("trial_id")["pretrained"].notna().map({True: "pre-trained", False: "from scratch"})
        rows = epochs[(epochs["subset"] == subset) & epochs["trial_id"].isin(origin.index)]
        for (label, colour) in (("from scratch", "tab:grey"), ("pre-trained", "tab:red")):
            group = rows[rows["trial_id"].map(origin) == label]
            for _, curve in group.groupby("trial_id"):
                ax.plot(curve["epoch"], 100 * curve["val_top1"], color=colour, alpha=0.3, linewidth=0.8)
            mean = group.groupby("epoch")["val_top1"].mean()
            if len(mean):
                ax.plot(mean.index, 100 * mean.to_numpy(), color=colour, linewidth=2.5,
                        label=f"{label} ({trial_count(group['trial_id'].nunique())})")
                points += [(subset, label, e, v) for e, v in mean.items()]
        ax.set(xlabel="epoch", ylabel="val top-1 (%)", title=subset)
        ax.grid(alpha=0.3)
        if points:
            ax.legend(fontsize=7)
    save_figure(fig, out / "pretraining.png")
    return Plot(out / "pretraining.png", pd.DataFrame(points, columns=["subset", "series", "x", "y"]))
