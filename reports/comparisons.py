"""Does the search's best config beat the others? Answered from the seed repeats alone.

The search chose its best config because its one search-phase run scored highest of many, so that score is biased
upward (the winner's curse), and any comparison that pools it inherits the bias. Here A is the config the search
ranked first and B each other repeated config, and only their repeat runs (new seeds, run to the last epoch,
chosen by nothing) are compared. The search-phase scores are shown beside them, apart.

The interval is Welch's t interval for a difference of two means with unequal variances. With 3 or 4 seeds a
percentile bootstrap is too narrow (it treats the few observed values as the whole population); Welch's keeps its
95% coverage, as tests/test_reports_analysis.py checks by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from reports.scores import SCORE, completed
from reports.table import Column, Table

LEVEL = 0.95


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its ``level`` confidence interval (Welch-Satterthwaite degrees of freedom)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return diff, diff - half, diff + half


@dataclass(frozen=True)
class Comparison:
    subset: str
    best: pd.Series  # the search trial the search ranked first (A)
    other: pd.Series  # another repeated config's search trial (B)
    runs_best: np.ndarray  # their repeat runs' scores
    runs_other: np.ndarray
    diff: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "A beats B"
        return "B beats A" if self.high < 0 else "not distinguishable from seed noise"

    def describe(self) -> str:
        return (f"{self.subset}: A (experiment {int(self.best['experiment_id'])}) - B (experiment "
                f"{int(self.other['experiment_id'])}) = {100 * self.diff:+.1f} points [{100 * self.low:+.1f}, "
                f"{100 * self.high:+.1f}] over {len(self.runs_best)} and {len(self.runs_other)} repeat seeds: "
                f"{self.verdict} (search-phase scores, apart: {100 * self.best[SCORE]:.1f}% and "
                f"{100 * self.other[SCORE]:.1f}%)")


def compare_repeats(trials: pd.DataFrame) -> list[Comparison]:
    """Per subset, the search's best repeated config against each other repeated config, repeat runs only."""
    repeats = completed(trials[trials["repeat_of"].notna()])
    search = trials.set_index("trial_id")
    found = []
    for subset, rows in repeats.groupby("subset"):
        runs = {origin: g["score"].to_numpy() for origin, g in rows.groupby("repeat_of") if len(g) >= 2}
        ranked = sorted(runs, key=lambda origin: -search.loc[origin, SCORE])
        for other in ranked[1:]:
            diff, low, high = welch_interval(runs[ranked[0]], runs[other])
            found.append(Comparison(subset, search.loc[ranked[0]], search.loc[other], runs[ranked[0]], runs[other],
                                    diff, low, high))
    return found


def seed_comparisons(trials: pd.DataFrame) -> Table:
    table = Table("Does the search's best config beat the others? (repeat seeds only)", [
        Column("Subset"), Column("A: the search's best (experiment)", "int"), Column("B (experiment)", "int"),
        Column("A repeats", "int"), Column("B repeats", "int"), Column("mean A", "percent"), Column("mean B", "percent"),
        Column("A - B", "points"), Column("95% CI low", "points"), Column("95% CI high", "points"), Column("verdict"),
        Column("A search-phase score", "percent"), Column("B search-phase score", "percent")],
        note="A is the config the search ranked first. Only the repeat runs (new seeds, to the last epoch) are compared: "
             "the search-phase score of A was selected for being the highest, so it is shown apart, not pooled. "
             "Scores are the last epoch's val top-1; the interval is Welch's t.", key="seed_comparisons")
    for c in compare_repeats(trials):
        table.add(c.subset, c.best["experiment_id"], c.other["experiment_id"], len(c.runs_best), len(c.runs_other),
                  c.runs_best.mean(), c.runs_other.mean(), c.diff, c.low, c.high, c.verdict, c.best[SCORE],
                  c.other[SCORE])
    return table
