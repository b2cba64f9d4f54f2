"""The figures of one experiment folder: its learning curves (accuracy, loss; where and why it stopped marked) and
sample validation skeletons titled with the true and predicted class. Written by every run; the report redraws
the curves of trials that ended early with the stop marked.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.ticker import MaxNLocator

from common.plotting import save_figure


def plot_curves(epochs: pd.DataFrame, out_dir: Path, title: str, stop_epoch: int | None = None,
                stop_label: str | None = None) -> list[Path]:
    """accuracy.png and loss.png from a per-epoch table (columns epoch, train_/val_ metrics)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    panels = (("accuracy.png", "top-1 / top-5 accuracy", ("train_top1", "val_top1", "val_top5"), True),
              ("loss.png", "cross-entropy loss", ("train_loss", "val_loss"), False))
    for name, ylabel, columns, as_percent in panels:
        fig, ax = plt.subplots(figsize=(6, 4))
        for column in columns:
            if column in epochs:  # the epochs it was measured after: validation may skip some (eval_interval)
                scored = epochs[epochs[column].notna()]
                ax.plot(scored["epoch"], scored[column] * (100 if as_percent else 1), marker="o", markersize=3,
                        label=column.replace("_", " "))
        if stop_epoch is not None:  # the label inside the axes, left of the line, above the curves: the layout is fixed
            ax.axvline(stop_epoch, color="crimson", linestyle="--", linewidth=1)
            low, high = ax.get_ylim()
            ax.set_ylim(low, high + 0.08 * (high - low))
            ax.text(stop_epoch, ax.get_ylim()[1], f"{stop_label or 'stopped'} ", color="crimson", va="top", ha="right",
                    fontsize=8)
        ax.set(xlabel="epoch", ylabel=ylabel + (" (%)" if as_percent else ""))
        ax.set_title(title, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.92)
        save_figure(fig, out_dir / name, tight=False)  # drawn for every trial: one drawing pass, not two
        written.append(out_dir / name)
    return written


def plot_skeleton(clip: np.ndarray, target: Path, title: str, bones, snapshots: int = 6) -> None:
    """``clip`` (C, T, V, M) in the converted coordinates (x, y centred; score 0 = joint absent); ``bones``: the
    layout's (joint, joint) pairs. Drawn for every trial, so drawn cheaply: the frames share limits set once (no
    autoscaling per artist) and the layout is fixed (no second pass to crop it)."""
    frames = np.flatnonzero((clip[2] > 0).any(axis=(1, 2)))
    if len(frames) == 0:
        frames = np.arange(clip.shape[1])
    picks = frames[np.linspace(0, len(frames) - 1, snapshots).round().astype(int)]
    shown = clip[:, picks]
    visible = shown[2] > 0
    xs, ys = (shown[0][visible], shown[1][visible]) if visible.any() else (np.array([-1.0, 1.0]), np.array([-1.0, 1.0]))
    pad = 0.05 * max(np.ptp(xs), np.ptp(ys), 1e-6)
    fig, axes = plt.subplots(1, snapshots, figsize=(2 * snapshots, 2.6))
    for ax, t in zip(np.atleast_1d(axes), picks):
        for m, colour in zip(range(clip.shape[3]), ("tab:blue", "tab:orange")):
            x, y, score = clip[0, t, :, m], clip[1, t, :, m], clip[2, t, :, m]
            seen = score > 0
            # one collection of a person's bones, not a line each: the same picture in about half the time
            ax.add_collection(LineCollection([((x[i], y[i]), (x[j], y[j])) for i, j in bones if seen[i] and seen[j]],
                                             colors=colour, linewidths=1.5), autolim=False)
            ax.plot(x[seen], y[seen], "o", markersize=2.5, color=colour)
        ax.set_title(f"frame {t}", fontsize=8)
        # image coordinates: y grows downwards
        ax.set(xlim=(xs.min() - pad, xs.max() + pad), ylim=(ys.max() + pad, ys.min() - pad), xticks=[], yticks=[],
               aspect="equal")
    fig.suptitle(title, fontsize=9, y=0.97)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.8, wspace=0.15)
    save_figure(fig, target, tight=False)
