"""How the best learning rate moves with the batch size: lr* proportional to batch^alpha.

The score is modelled as a ridge in (log lr, log batch): score = top - curvature * (log lr - alpha * log(batch /
256) - log lr*_256)^2, fitted by least squares over the trials at one budget, so every trial informs alpha (not
only the best per batch size, which would need many trials per size). The linear scaling rule (Goyal et al.) is
alpha = 1, the square-root rule alpha = 0.5; the 90% interval comes from refitting on resampled trials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

PAPER_BATCH = 256
LEVEL = 0.90
DRAWS = 400


@dataclass(frozen=True)
class Exponent:
    alpha: float
    low: float
    high: float
    lr_at_paper_batch: float  # lr* at batch 256 of the fitted ridge
    trials: int

    def rules(self) -> dict[str, bool]:
        """Whether each rule's exponent is inside the interval."""
        return {"linear (alpha = 1)": self.low <= 1 <= self.high,
                "square root (alpha = 0.5)": self.low <= 0.5 <= self.high}

    def best_lr(self, batch: np.ndarray) -> np.ndarray:
        return self.lr_at_paper_batch * (np.asarray(batch, float) / PAPER_BATCH) ** self.alpha


def _ridge(x, top, curvature, alpha, centre):
    log_lr, log_batch = x
    return top - curvature * (log_lr - alpha * log_batch - centre) ** 2


def _fit(log_lr: np.ndarray, log_batch: np.ndarray, y: np.ndarray) -> np.ndarray:
    start = [y.max(), 0.05, 0.5, log_lr[np.argmax(y)]]
    params, _ = curve_fit(_ridge, (log_lr, log_batch), y, p0=start, maxfev=5000)
    return params


def batch_exponent(frame: pd.DataFrame, score: str = "score", seed: int = 0) -> Exponent | str:
    """The fitted exponent, or why it cannot be fitted (too few trials or batch sizes, no ridge)."""
    rows = frame.dropna(subset=["lr", "batch_size", score])
    if rows["batch_size"].nunique() < 3 or len(rows) < 8:
        return (f"{len(rows)} scored trials over {rows['batch_size'].nunique()} batch sizes: the exponent needs at "
                "least 8 trials over 3 batch sizes")
    log_lr, log_batch = np.log10(rows["lr"].to_numpy(float)), np.log10(rows["batch_size"].to_numpy(float) / PAPER_BATCH)
    y = rows[score].to_numpy(float)
    try:
        top, curvature, alpha, centre = _fit(log_lr, log_batch, y)
    except (RuntimeError, ValueError) as exc:
        return f"the ridge model did not fit ({exc})"
    if curvature <= 0:
        return "the scores show no optimum in the learning rate, so there is no best lr to follow the batch size"
    rng = np.random.default_rng(seed)
    alphas = []
    for sample in rng.integers(0, len(y), (DRAWS, len(y))):
        try:
            alphas.append(_fit(log_lr[sample], log_batch[sample], y[sample])[2])
        except (RuntimeError, ValueError):
            continue
    low, high = np.quantile(alphas, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Exponent(float(alpha), float(low), float(high), float(10 ** centre), len(y))
