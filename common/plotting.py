"""Figures written as files: matplotlib without a display, each PNG replaced atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.files import atomic_path  # noqa: E402


def save_figure(fig, target: Path, tight: bool = True) -> None:
    """``tight``: crop the image to what is drawn (a second drawing pass); a figure laid out by hand skips it."""
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
