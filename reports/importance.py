"""How much of the spread of scores each searched parameter explains, with how sure we can be.

A parameter's importance is the share of the variance of the score its value explains on its own (its main
effect), estimated without the upward bias of a plain R^2: omega squared over groups of trials, where a choice
parameter's groups are its values and a numeric one's are quantile bins (on a log scale when it spans decades). It
is not normalised across parameters, so where nothing matters every importance is near zero instead of summing to
one. Each comes with a 90% bootstrap interval (trials resampled) and a permutation p-value (scores shuffled): a
parameter "matters" when shuffling the scores rarely explains as much, after a Bonferroni correction over the
parameters searched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVEL = 0.90  # the intervals' coverage
ALPHA = 0.05  # family-wise: divided by the number of parameters
DRAWS = 1000


@dataclass(frozen=True)
class Importance:
    value: float  # share of the score's variance explained (omega squared, 0 when negative)
    low: float
    high: float
    p: float  # permutation p-value
    trials: int
    draws: np.ndarray  # the bootstrap distribution, for differences between subsets

    def matters(self, parameters: int) -> bool:
        return self.p < ALPHA / max(parameters, 1)


def groups_of(values: pd.Series) -> np.ndarray:
    """Group index per trial: a choice's values, or quantile bins of a number (log scale across decades); a
    parameter a trial does not have (a conditional one) is a group of its own."""
    present = values.notna()
    codes = np.zeros(len(values), dtype=int)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values[present].nunique() > 5:
        x = values[present].astype(float).to_numpy()
        if (x > 0).all() and x.max() / x.min() > 20:
            x = np.log10(x)
        bins = int(np.clip(present.sum() // 4, 2, 5))
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1))[1:-1])
        codes[present.to_numpy()] = np.searchsorted(edges, x, side="right")
    else:
        codes[present.to_numpy()] = pd.factorize(values[present].astype(str))[0]
    codes[~present.to_numpy()] = codes.max() + 1 if present.any() else 0
    return codes


def omega_squared(codes: np.ndarray, y: np.ndarray) -> float:
    """(SS_between - (k - 1) MS_within) / (SS_total + MS_within): explained variance, corrected for the k groups."""
    n, k = len(y), len(np.unique(codes))
    if k < 2 or n <= k:
        return 0.0
    total = ((y - y.mean()) ** 2).sum()
    counts = np.bincount(codes)
    means = np.bincount(codes, weights=y) / np.maximum(counts, 1)
    between = (counts * (means - y.mean()) ** 2).sum()
    within = (total - between) / (n - k)
    return float((between - (k - 1) * within) / (total + within)) if total > 0 else 0.0


def importance(frame: pd.DataFrame, parameter: str, score: str = "score", seed: int = 0) -> Importance:
    """The importance of ``parameter`` for ``score`` over the rows of ``frame`` (one row per trial)."""
    codes, y = groups_of(frame[parameter]), frame[score].to_numpy(float)
    rng = np.random.default_rng(seed)
    draws = np.array([omega_squared(codes[i], y[i]) for i in rng.integers(0, len(y), (DRAWS, len(y)))])
    observed = omega_squared(codes, y)
    shuffled = np.array([omega_squared(codes, rng.permutation(y)) for _ in range(DRAWS)])
    low, high = np.quantile(np.clip(draws, 0, None), [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Importance(max(observed, 0.0), float(low), float(high), float((1 + (shuffled >= observed).sum()) / (1 + DRAWS)),
                      len(y), np.clip(draws, 0, None))


def importances(frame: pd.DataFrame, parameters: list[str], score: str = "score") -> dict[str, Importance]:
    """Every searched parameter that varies over these trials."""
    return {p: importance(frame, p, score) for p in parameters if p in frame and frame[p].nunique(dropna=False) > 1}


def difference(a: Importance, b: Importance) -> tuple[float, float, float]:
    """a - b with its 90% interval, the two subsets' trials resampled independently."""
    diffs = a.draws - b.draws
    low, high = np.quantile(diffs, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return a.value - b.value, float(low), float(high)
