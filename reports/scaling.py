"""How the best learning rate moves with the batch size: lr* proportional to batch^alpha.

A trial far from its batch size's best learning rate does not score a little worse in a quadratic way: it sits at
chance (too small a learning rate learns nothing in the budget, too large a one diverges or thrashes). So each
batch size's best learning rate comes from a curve with a floor at chance, fitted to that batch size's trials:
score = chance + height * exp(-(log lr - log lr*)^2 / (2 width^2)), started from several centres so it does not
settle in a local optimum. Diverged trials count at chance. Then alpha is the slope of log lr* on log batch, with
the t interval of that regression (as many degrees of freedom as batch sizes less two). Where the real window is
not this bell (a slow rise, a cliff where training diverges), a window that keeps its shape and moves with the
batch size moves the bell's centre by the same amount, so the slope is still alpha; and the interval is sized by
how the centres actually scatter about the line, misfit included, not by a noise model. Its coverage is measured in
bench_verdicts on windows that are not this bell. The linear scaling rule (Goyal et al.) is alpha = 1, the
square-root rule alpha = 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

PAPER_BATCH = 256
LEVEL = 0.90
MIN_TRIALS, MIN_BATCH_SIZES = 12, 3
MIN_HEIGHT = 0.02  # a batch size whose best curve rises less than this above chance shows no window to place


@dataclass(frozen=True)
class Exponent:
    alpha: float
    low: float
    high: float
    lr_at_paper_batch: float  # lr* at batch 256 on the fitted line
    trials: int
    sizes: int  # batch sizes whose window was placed
    without_window: tuple[int, ...] = ()  # batch sizes left out: no window above chance

    def rules(self) -> dict[str, bool]:
        """Whether each rule's exponent is inside the interval as the report shows it (two decimals), so the words
        never contradict the numbers beside them."""
        low, high = round(self.low, 2), round(self.high, 2)
        return {"linear (alpha = 1)": low <= 1 <= high, "square root (alpha = 0.5)": low <= 0.5 <= high}

    def best_lr(self, batch: np.ndarray) -> np.ndarray:
        return self.lr_at_paper_batch * (np.asarray(batch, float) / PAPER_BATCH) ** self.alpha


def best_log_lr(log_lr: np.ndarray, y: np.ndarray, floor: float) -> float | None:
    """The centre of the bell on a chance floor that fits these trials best, or None without a window."""
    best = None
    for centre in np.linspace(log_lr.min(), log_lr.max(), 7):
        fit = optimize.least_squares(
            lambda p: floor + p[0] * np.exp(-((log_lr - p[1]) ** 2) / (2 * p[2] ** 2)) - y,
            [max(y.max() - floor, 1e-3), centre, 0.5],
            bounds=([0.0, log_lr.min() - 2, 0.05], [1.0, log_lr.max() + 2, 5.0]))
        cost = float((fit.fun ** 2).sum())
        if best is None or cost < best[0]:
            best = (cost, fit.x)
    return float(best[1][1]) if best[1][0] >= MIN_HEIGHT else None


def batch_exponent(frame: pd.DataFrame, chance: float, score: str = "score") -> Exponent | str:
    """The fitted exponent, or why it cannot be fitted (too few trials or batch sizes with a window)."""
    rows = frame.dropna(subset=["lr", "batch_size", score])
    if rows["batch_size"].nunique() < MIN_BATCH_SIZES or len(rows) < MIN_TRIALS:
        return (f"{len(rows)} scored trials over {rows['batch_size'].nunique()} batch sizes: the exponent needs at least "
                f"{MIN_TRIALS} trials over {MIN_BATCH_SIZES} batch sizes")
    sizes, centres, empty = [], [], []
    for batch, group in rows.groupby("batch_size"):
        centre = best_log_lr(np.log10(group["lr"].to_numpy(float)), group[score].to_numpy(float), chance)
        if centre is None:
            empty.append(int(batch))
        else:
            sizes.append(math.log10(batch / PAPER_BATCH))
            centres.append(centre)
    if len(sizes) < MIN_BATCH_SIZES:
        return (f"only {len(sizes)} batch size(s) show a window of learning rates above chance (none at "
                f"{', '.join(map(str, empty))}); the exponent needs {MIN_BATCH_SIZES}")
    fit = stats.linregress(sizes, centres)
    half = float(stats.t.ppf((1 + LEVEL) / 2, len(sizes) - 2) * fit.stderr) if len(sizes) > 2 else math.inf
    return Exponent(float(fit.slope), float(fit.slope - half), float(fit.slope + half), float(10 ** fit.intercept),
                    len(rows), len(sizes), tuple(empty))
