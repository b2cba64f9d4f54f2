"""How the best learning rate moves with the batch size: lr* proportional to batch^alpha.

A trial far from its batch size's best learning rate does not score a little worse in a quadratic way: it sits at
chance (too small a learning rate learns nothing in the budget, too large a one diverges or thrashes). So the
model has a floor at chance: score = chance + height * exp(-(log lr - log lr*(batch))^2 / (2 width^2)), with
log lr*(batch) = log lr*_256 + alpha * log(batch / 256) shared by all batch sizes; every trial informs alpha, and
trials at chance inform it too (they say where the window is not). Diverged trials count at chance. Even where the
real window is not this bell (a slow rise, a cliff where training diverges), a window that keeps its shape and
moves with the batch size moves the bell's centre by the same amount, so alpha is still what is estimated.

The 90% interval is the profile-likelihood interval of alpha: the exponents whose best fit is not significantly
worse than the best fit overall (F test, 1 and n - 4 degrees of freedom). Its coverage is measured in
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
ALPHA_GRID = np.round(np.arange(-1.0, 2.5001, 0.05), 3)  # the exponents profiled; the interval's ends interpolate
MIN_TRIALS, MIN_BATCH_SIZES = 12, 3


@dataclass(frozen=True)
class Exponent:
    alpha: float
    low: float
    high: float
    lr_at_paper_batch: float  # lr* at batch 256 of the fitted window
    trials: int
    bounded: bool = True  # False: the interval reaches the end of the profiled exponents

    def rules(self) -> dict[str, bool]:
        """Whether each rule's exponent is inside the interval."""
        return {"linear (alpha = 1)": self.low <= 1 <= self.high,
                "square root (alpha = 0.5)": self.low <= 0.5 <= self.high}

    def best_lr(self, batch: np.ndarray) -> np.ndarray:
        return self.lr_at_paper_batch * (np.asarray(batch, float) / PAPER_BATCH) ** self.alpha


def _window(params: np.ndarray, alpha: float, log_lr: np.ndarray, log_batch: np.ndarray, floor: float) -> np.ndarray:
    height, centre, width = params
    return floor + height * np.exp(-((log_lr - centre - alpha * log_batch) ** 2) / (2 * width ** 2))


def _fit_at(alpha: float, log_lr, log_batch, y, floor, starts) -> tuple[float, np.ndarray]:
    """The best fit of height, centre and width with ``alpha`` fixed: (residual sum of squares, parameters)."""
    best = (math.inf, np.array(starts[0]))
    span = (log_lr.min() - 2, log_lr.max() + 2)
    for start in starts:
        fit = optimize.least_squares(
            lambda p: _window(p, alpha, log_lr, log_batch, floor) - y, start,
            bounds=([0.0, span[0] - 3, 0.05], [1.0, span[1] + 3, 5.0]))
        rss = float((fit.fun ** 2).sum())
        if rss < best[0]:
            best = (rss, fit.x)
    return best


def batch_exponent(frame: pd.DataFrame, chance: float, score: str = "score") -> Exponent | str:
    """The fitted exponent, or why it cannot be fitted (too few trials or batch sizes, no window above chance)."""
    rows = frame.dropna(subset=["lr", "batch_size", score])
    if rows["batch_size"].nunique() < MIN_BATCH_SIZES or len(rows) < MIN_TRIALS:
        return (f"{len(rows)} scored trials over {rows['batch_size'].nunique()} batch sizes: the exponent needs at least "
                f"{MIN_TRIALS} trials over {MIN_BATCH_SIZES} batch sizes")
    log_lr = np.log10(rows["lr"].to_numpy(float))
    log_batch = np.log10(rows["batch_size"].to_numpy(float) / PAPER_BATCH)
    y = rows[score].to_numpy(float)
    if y.max() <= chance:
        return "no trial scored above chance, so there is no window of learning rates to follow the batch size"
    top = int(np.argmax(y))
    fresh = lambda alpha: [[y.max() - chance, log_lr[top] - alpha * log_batch[top], w] for w in (0.3, 0.8)]  # noqa: E731
    profile, previous = [], None
    for alpha in ALPHA_GRID:  # each exponent starts from the bell at the best trial and from its neighbour's optimum
        profile.append(_fit_at(alpha, log_lr, log_batch, y, chance, fresh(alpha) + ([previous] if previous is not None
                                                                                     else [])))
        previous = profile[-1][1]
    rss = np.array([p[0] for p in profile])
    best = int(np.argmin(rss))
    dof = len(y) - 4
    sigma2 = rss[best] / dof
    height, centre, _ = profile[best][1]
    if not sigma2 > 0 or height < 1e-3:
        return "the scores show no window above chance, so there is no best lr to follow the batch size"
    excess = (rss - rss[best]) / sigma2 - stats.f.ppf(LEVEL, 1, dof)  # <= 0 inside the interval
    low, high = _crossing(excess, best, -1), _crossing(excess, best, +1)
    return Exponent(float(ALPHA_GRID[best]), low, high, float(10 ** centre), len(y),
                    bounded=not (math.isinf(low) or math.isinf(high)))


def _crossing(excess: np.ndarray, start: int, step: int) -> float:
    """Where the profile leaves the interval, walking from the best exponent by ``step``, interpolated between
    grid points; infinite when it never leaves within the grid."""
    i = start
    while 0 <= i + step < len(excess):
        if excess[i + step] > 0:
            a, b = excess[i], excess[i + step]
            return float(ALPHA_GRID[i] + (ALPHA_GRID[i + step] - ALPHA_GRID[i]) * (-a) / (b - a))
        i += step
    return -math.inf if step < 0 else math.inf
