"""Sensitivity plots across both subsets, drawn from the trials and epochs tables.

Every plot puts the subsets side by side on shared axes, draws ASHA-stopped trials hollow and completed ones
filled, and shades the seed-noise band around the best score when the study measured one.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.curves import _save  # noqa: E402

MARKERS = {"completed": "o", "stopped_by_asha": "o", "diverged": "x", "errored": "x", "running": "s"}
COLORS = {"sgd": "tab:blue", "adam": "tab:orange", "adamw": "tab:green"}
SCHEDULER_ORDER = ("step", "cosine", "plateau", "none")
PAPER_BATCH, PAPER_LR = 256, 0.1


def _panels(subsets: tuple[str, ...], title: str, sharey: bool = True):
    fig, axes = plt.subplots(1, len(subsets), figsize=(5.5 * len(subsets), 4.2), sharey=sharey, squeeze=False)
    fig.suptitle(title)
    return fig, axes[0]


def _noise_band(ax, best: float | None, noise: float | None) -> None:
    if best is not None and noise:
        ax.axhspan(100 * (best - noise), 100 * best, color="grey", alpha=0.15, label="seed noise below best")


def _scatter(ax, rows: pd.DataFrame, x: str, color: str, label: str) -> None:
    for reason, group in rows.groupby("stop_reason"):
        marker = MARKERS.get(reason, "o")
        colors = {"color": color} if marker == "x" else {  # an 'x' has no face to leave hollow
            "facecolors": "none" if reason == "stopped_by_asha" else color, "edgecolors": color}
        ax.scatter(group[x], 100 * group["best_val_top1"].fillna(0), marker=marker, s=36, **colors,
                   label=f"{label} ({reason.replace('_', ' ')})")


def lr_sensitivity(trials: pd.DataFrame, subsets, out: Path, noise: dict) -> Path:
    """val top-1 vs learning rate (log x) per optimizer."""
    fig, axes = _panels(subsets, "Validation top-1 vs learning rate (hollow: stopped by ASHA)")
    for ax, subset in zip(axes, subsets):
        rows = trials[trials["subset"] == subset]
        for optimizer, group in rows.groupby("optimizer"):
            _scatter(ax, group, "lr", COLORS.get(optimizer, "tab:grey"), optimizer)
        _noise_band(ax, rows["best_val_top1"].max() if len(rows) else None, noise.get(subset))
        ax.set(xscale="log", xlabel="learning rate", ylabel="best val top-1 (%)", title=subset)
        ax.grid(alpha=0.3, which="both")
        if len(rows):
            ax.legend(fontsize=7)
    _save(fig, out / "lr_sensitivity.png")
    return out / "lr_sensitivity.png"


def lr_batch(trials: pd.DataFrame, subsets, out: Path) -> Path:
    """lr x batch size coloured by top-1, with the linear-scaling line lr = 0.1 * batch / 256."""
    fig, axes = _panels(subsets, "Learning rate x batch size (colour: best val top-1 %)")
    top = 100 * trials["best_val_top1"].max() if trials["best_val_top1"].notna().any() else 1.0
    for ax, subset in zip(axes, subsets):
        rows = trials[trials["subset"] == subset]
        points = ax.scatter(rows["batch_size"], rows["lr"], c=100 * rows["best_val_top1"].fillna(0), cmap="viridis",
                            vmin=0, vmax=top, s=50, edgecolors="k")
        batches = np.array([8, 512])
        ax.plot(batches, PAPER_LR * batches / PAPER_BATCH, "r--", linewidth=1, label="linear scaling (0.1 at 256)")
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="learning rate", title=subset)
        ax.set_xticks([16, 32, 64, 128, 256], labels=["16", "32", "64", "128", "256"])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.colorbar(points, ax=list(axes), label="best val top-1 (%)")
    _save(fig, out / "lr_batch.png")
    return out / "lr_batch.png"


def scheduler_comparison(trials: pd.DataFrame, subsets, out: Path, noise: dict) -> Path:
    """Distribution of best val top-1 per scheduler (box plus every trial as a dot)."""
    fig, axes = _panels(subsets, "Validation top-1 per learning-rate scheduler")
    for ax, subset in zip(axes, subsets):
        rows = trials[(trials["subset"] == subset) & trials["best_val_top1"].notna()]
        kinds = [k for k in SCHEDULER_ORDER if k in set(rows["scheduler"])]
        data = [100 * rows.loc[rows["scheduler"] == k, "best_val_top1"].to_numpy() for k in kinds]
        if kinds:
            ax.boxplot(data, tick_labels=kinds)
            for i, values in enumerate(data, start=1):
                ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=14,
                           color="tab:blue", alpha=0.7)
        _noise_band(ax, rows["best_val_top1"].max() if len(rows) else None, noise.get(subset))
        ax.set(xlabel="scheduler", ylabel="best val top-1 (%)", title=subset)
        ax.grid(alpha=0.3, axis="y")
    _save(fig, out / "scheduler_comparison.png")
    return out / "scheduler_comparison.png"


def learning_curves(epochs: pd.DataFrame, trials: pd.DataFrame, subsets, out: Path) -> Path:
    """val top-1 vs epoch of every trial, with an x where ASHA stopped it."""
    fig, axes = _panels(subsets, "Learning curves of all trials (x: stopped by ASHA, +: diverged)")
    reasons = trials.set_index(["subset", "trial_id"])["stop_reason"].to_dict() if len(trials) else {}
    for ax, subset in zip(axes, subsets):
        rows = epochs[epochs["subset"] == subset] if len(epochs) else epochs
        for trial_id, curve in rows.groupby("trial_id") if len(rows) else []:
            curve = curve.sort_values("epoch")
            line, = ax.plot(curve["epoch"], 100 * curve["val_top1"], linewidth=1, alpha=0.8)
            reason = reasons.get((subset, trial_id))
            if reason in ("stopped_by_asha", "diverged"):
                last = curve.iloc[-1]
                y = 0 if math.isnan(last["val_top1"]) else 100 * last["val_top1"]
                ax.scatter([last["epoch"]], [y], marker="x" if reason == "stopped_by_asha" else "+", s=50,
                           color=line.get_color())
        ax.set(xlabel="epoch", ylabel="val top-1 (%)", title=subset)
        ax.grid(alpha=0.3)
    _save(fig, out / "learning_curves.png")
    return out / "learning_curves.png"


def importance_plot(importances: dict[str, dict[str, dict[str, float]]], subsets, out: Path) -> Path:
    """Hyperparameter importance per subset and evaluator, on one shared set of parameter names."""
    fig, axes = _panels(subsets, "Hyperparameter importance (Optuna)", sharey=True)
    names = sorted({p for per in importances.values() for values in per.values() for p in values})
    for ax, subset in zip(axes, subsets):
        per = importances.get(subset, {})
        width = 0.8 / max(1, len(per))
        for k, (evaluator, values) in enumerate(per.items()):
            ax.barh(np.arange(len(names)) + k * width, [values.get(n, 0.0) for n in names], height=width,
                    label=evaluator)
        ax.set_yticks(np.arange(len(names)) + 0.4 - width / 2 if names else [], labels=names)
        ax.set(xlabel="importance", title=subset, xlim=(0, 1))
        if per:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not enough finished trials", ha="center", transform=ax.transAxes)
        ax.grid(alpha=0.3, axis="x")
    _save(fig, out / "importance.png")
    return out / "importance.png"


def expected_max_plot(curves: dict[str, np.ndarray], subsets, out: Path, space: str) -> Path:
    """Dodge et al. (2019): expected best val top-1 as a function of the number of trials."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for subset in subsets:
        curve = curves.get(subset)
        if curve is not None and len(curve):
            ax.plot(np.arange(1, len(curve) + 1), 100 * curve, marker="o", markersize=3, label=subset)
    ax.set(xlabel="number of trials", ylabel="expected best val top-1 (%)",
           title=f"Expected best accuracy vs tuning budget ({space})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out / "expected_max.png")
    return out / "expected_max.png"
