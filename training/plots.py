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
            if column in epochs:
                values = epochs[column] * (100 if as_percent else 1)
                ax.plot(epochs["epoch"], values, marker="o", markersize=3, label=column.replace("_", " "))
        if stop_epoch is not None:
            ax.axvline(stop_epoch, color="crimson", linestyle="--", linewidth=1)
            ax.text(stop_epoch, ax.get_ylim()[1], f" {stop_label or 'stopped'}", color="crimson", va="top",
                    fontsize=8)
        ax.set(xlabel="epoch", ylabel=ylabel + (" (%)" if as_percent else ""), title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        save_figure(fig, out_dir / name)
        written.append(out_dir / name)
    return written


def plot_skeleton(clip: np.ndarray, target: Path, title: str, bones, snapshots: int = 6) -> None:
    """``clip`` (C, T, V, M) in the converted coordinates (x, y centred; score 0 = joint absent); ``bones``: the
    layout's (joint, joint) pairs."""
    frames = np.flatnonzero((clip[2] > 0).any(axis=(1, 2)))
    if len(frames) == 0:
        frames = np.arange(clip.shape[1])
    picks = frames[np.linspace(0, len(frames) - 1, snapshots).round().astype(int)]
    fig, axes = plt.subplots(1, snapshots, figsize=(2 * snapshots, 2.6), sharex=True, sharey=True)
    for ax, t in zip(np.atleast_1d(axes), picks):
        for m, colour in zip(range(clip.shape[3]), ("tab:blue", "tab:orange")):
            x, y, score = clip[0, t, :, m], clip[1, t, :, m], clip[2, t, :, m]
            seen = score > 0
            # one collection of a person's bones, not a line each: the same picture in about half the time
            ax.add_collection(LineCollection([((x[i], y[i]), (x[j], y[j])) for i, j in bones if seen[i] and seen[j]],
                                             colors=colour, linewidths=1.5))
            ax.scatter(x[seen], y[seen], s=6, color=colour)
        ax.set_title(f"frame {t}", fontsize=8)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].invert_yaxis()  # image coordinates: y grows downwards (axes are shared)
    fig.suptitle(title, fontsize=9, y=1.0)  # above the frames' own titles (the saved image grows to fit it)
    save_figure(fig, target)
