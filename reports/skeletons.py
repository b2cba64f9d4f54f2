"""Sample skeletons drawn as stick figures over time, titled with the true and predicted class."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from model.graph import OPENPOSE_18  # noqa: E402
from reports.curves import _save  # noqa: E402


def plot_skeleton(clip: np.ndarray, target: Path, title: str, snapshots: int = 6) -> None:
    """``clip`` (C, T, V, M) in the converted coordinates (x, y centred; score 0 = joint absent)."""
    frames = np.flatnonzero((clip[2] > 0).any(axis=(1, 2)))
    if len(frames) == 0:
        frames = np.arange(clip.shape[1])
    picks = frames[np.linspace(0, len(frames) - 1, snapshots).round().astype(int)]
    fig, axes = plt.subplots(1, snapshots, figsize=(2 * snapshots, 2.6), sharex=True, sharey=True)
    for ax, t in zip(np.atleast_1d(axes), picks):
        for m, colour in zip(range(clip.shape[3]), ("tab:blue", "tab:orange")):
            x, y, score = clip[0, t, :, m], clip[1, t, :, m], clip[2, t, :, m]
            for i, j in OPENPOSE_18.bones:
                if score[i] > 0 and score[j] > 0:
                    ax.plot([x[i], x[j]], [y[i], y[j]], color=colour, linewidth=1.5)
            seen = score > 0
            ax.scatter(x[seen], y[seen], s=6, color=colour)
        ax.set_title(f"frame {t}", fontsize=8)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].invert_yaxis()  # image coordinates: y grows downwards (axes are shared)
    fig.suptitle(title, fontsize=9)
    _save(fig, target)
