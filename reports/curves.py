"""Learning curves of one experiment (accuracy, loss), with where and why it stopped marked.

Used by the trainer for each experiment folder and by the report generator; needs only pandas/matplotlib.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from study.files import atomic_path  # noqa: E402


def _save(fig, target: Path) -> None:
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


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
        _save(fig, out_dir / name)
        written.append(out_dir / name)
    return written
