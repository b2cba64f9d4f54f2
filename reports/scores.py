"""Which number a trial is judged by, at which budget, against which noise.

- The study's score is a trial's **last** epoch's validation top-1, over **completed** trials. The best epoch's
  top-1 is the maximum over epochs of the very split that is reported, so it is optimistic, more so for longer
  runs; tables show it beside the score, never instead of it.
- A trial ASHA stopped has a score from a smaller budget: a lower bound. Trials are compared at matched budgets: at
  each ASHA rung, over every trial that reached it (its val top-1 at that epoch), and at the final budget over the
  completed trials. A trial whose loss went NaN is a failure of its config, scored at chance at the first budget at
  or after the epoch it diverged (the rung where ASHA would have judged it), and at no later one.
- The headline budget, the one the sentences lead with, is fixed before any score is looked at: the one the space
  declares (``report_budget``), else the first budget, which every trial reaches. Only there are the trials a
  sample of the space: at a deeper rung ASHA has kept the trials that scored well, so a parameter that decides
  between chance and 60% over its range barely varies among them.
- The noise floor is the spread of the score across training seeds, measured by the seed repeats (the search's own
  run of a repeated config is left out: it was chosen for being high), at each budget on its own: the repeats run
  every epoch, and runs drift apart as they learn, so the noise at an early rung is not the noise at the end.
  Without repeats only the evaluation noise is known (the binomial spread of an accuracy on the validation clips),
  a lower bound of the real noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

SCORE = "last_val_top1"


def search_trials(trials: pd.DataFrame, subset: str | None = None) -> pd.DataFrame:
    """The trials the search proposed (not the seed repeats), of one subset or all."""
    rows = trials[trials["repeat_of"].isna()]
    return rows if subset is None else rows[rows["subset"] == subset]


def completed(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that ran every planned epoch, with their score in ``score``."""
    done = trials[(trials["stop_reason"] == "completed") & trials[SCORE].notna()]
    return done.assign(score=done[SCORE])


def budgets(trials: pd.DataFrame, epochs: pd.DataFrame, manifest: dict) -> list[int]:
    """The budgets (epochs) at which trials can be compared: ASHA's rungs and the final epoch. Read from the study's
    manifest; for a study that did not record them, the epochs at which ASHA stopped trials, and the last."""
    if manifest.get("budgets"):
        return [int(b) for b in manifest["budgets"]]
    stopped = trials.loc[trials["stop_reason"] == "stopped_by_asha", "epochs_run"].dropna().astype(int)
    planned = trials["epochs_planned"].dropna()
    final = [int(planned.max())] if len(planned) else ([int(epochs["epoch"].max())] if len(epochs) else [])
    return sorted(set(stopped) | set(final))


def at_budget(trials: pd.DataFrame, epochs: pd.DataFrame, budget: int, levels: list[int]) -> pd.DataFrame:
    """The trials compared at ``budget`` (one of ``levels``, the study's budgets), each with ``score`` and
    ``diverged``: at the final budget the completed trials and their last epoch; at a rung every trial that reached
    that epoch, scored by its val top-1 there; and, at chance, the trials that diverged since the budget before. In
    the trials' own order (subset, index), whatever order they ended in: the permutation tests draw from the rows in
    order, so the same trials give the same p-values in every run."""
    final = levels[-1] if levels else budget
    if budget >= final:
        scored = completed(trials)
    else:
        reached = epochs[(epochs["epoch"] == budget) & epochs["val_top1"].notna()][["subset", "trial_id", "val_top1"]]
        scored = trials.merge(reached, on=["subset", "trial_id"]).rename(columns={"val_top1": "score"})
    earlier = max((b for b in levels if b < budget), default=0)
    blown = diverged(trials)
    blown = blown[(blown["epochs_run"] > earlier) & (blown["epochs_run"] <= budget)]
    scored = scored[~scored["trial_id"].isin(blown["trial_id"])]
    blown = blown.assign(score=1.0 / blown["num_classes"].astype(float))
    out = pd.concat([scored.assign(diverged=False), blown.assign(diverged=True)], ignore_index=True) if len(blown) else \
        scored.assign(diverged=False)
    return out.sort_values([key for key in ("subset", "index", "trial_id") if key in out]).reset_index(drop=True)


def diverged(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[trials["stop_reason"] == "diverged"]


def headline_budget(levels: list[int], declared: int | None) -> tuple[int, str]:
    """The budget the findings lead with and why; never chosen from the scores."""
    if declared is not None and declared in levels:
        return declared, "the budget the search space declares (report_budget)"
    first = levels[0] if levels else 0
    why = "the first budget, which every trial reaches (deeper ones hold only the trials ASHA kept)" \
        if len(levels) > 1 else "the last epoch, which every trial ran"
    return first, why


@dataclass(frozen=True)
class NoiseFloor:
    sd: float  # standard deviation of the score across seeds (or of the evaluation alone)
    source: str  # "seeds" or "evaluation"
    runs: int  # repeat runs it was measured from (0 for the evaluation noise)
    configs: int
    epoch: int | None = None  # the budget it was measured at, when not the last epoch

    def describe(self) -> str:
        if self.source == "seeds":
            at = f" at epoch {self.epoch}" if self.epoch is not None else ""
            return (f"{100 * self.sd:.1f} points (standard deviation of the score across training seeds{at}, "
                    f"{self.runs} repeat runs of {self.configs} configs)")
        return (f"at least {100 * self.sd:.1f} points (only the validation set's sampling noise; seed noise not "
                "measured: add seed repeats to the study with --resume --repeats K --seeds N)")

    @property
    def dof(self) -> int:
        """Degrees of freedom of the pooled estimate: repeat runs less one mean per config."""
        return self.runs - self.configs


def seed_noise(trials: pd.DataFrame, subset: str, epochs: pd.DataFrame | None = None,
               epoch: int | None = None) -> NoiseFloor | None:
    """The noise floor from the seed repeats of ``subset``: the pooled standard deviation of the score over the
    repeat runs of each repeated config, the search's own (selected) run left out. With ``epochs`` and ``epoch``,
    of the repeat runs' val top-1 at that epoch (an ASHA rung) instead of their last."""
    repeats = trials[(trials["subset"] == subset) & trials["repeat_of"].notna()]
    if repeats.empty:
        return None
    repeats = completed(repeats)
    if epoch is not None:
        there = epochs[(epochs["epoch"] == epoch) & epochs["val_top1"].notna()][["trial_id", "val_top1"]]
        repeats = repeats.drop(columns="score").merge(there, on="trial_id").rename(columns={"val_top1": "score"})
    groups = [g["score"].to_numpy() for _, g in repeats.groupby("repeat_of") if len(g) >= 2]
    if not groups:
        return None
    pooled = math.sqrt(np.mean([np.var(g, ddof=1) for g in groups]))
    return NoiseFloor(pooled, "seeds", sum(len(g) for g in groups), len(groups), epoch)


def evaluation_noise(score: float, val_clips: int) -> NoiseFloor:
    """The binomial standard deviation of an accuracy ``score`` measured on ``val_clips`` clips."""
    return NoiseFloor(math.sqrt(max(score * (1 - score), 1e-12) / max(val_clips, 1)), "evaluation", 0, 0)


def noise_floor(trials: pd.DataFrame, subset: str, epochs: pd.DataFrame | None = None,
                epoch: int | None = None, scored: pd.DataFrame | None = None) -> NoiseFloor:
    """The seed noise when measured (at ``epoch`` when given, see ``seed_noise``), else the evaluation noise at the
    best score: of ``scored`` (the trials compared at that budget, with ``score``) or of the study's score."""
    measured = seed_noise(trials, subset, epochs, epoch)
    if measured is not None:
        return measured
    rows = search_trials(trials, subset)
    scores = scored["score"] if scored is not None and len(scored) else rows[SCORE]
    best = scores.max() if scores.notna().any() else 0.5
    clips = int(rows["val_clips"].max()) if rows["val_clips"].notna().any() else 1
    return evaluation_noise(float(best), clips)


def chance(trials: pd.DataFrame, subset: str) -> float | None:
    classes = trials.loc[trials["subset"] == subset, "num_classes"].dropna()
    return 1.0 / float(classes.iloc[0]) if len(classes) else None


def expected_max(scores: np.ndarray) -> np.ndarray:
    """Dodge et al. (2019), "Show your work": the expected maximum of n draws (with replacement) from the
    observed scores, for n = 1..N. E[max_n] = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n), v sorted ascending. The
    scores must be independent draws from the space (random trials, not TPE's or a Sobol design's), failures
    included at chance."""
    v = np.sort(np.asarray(scores, dtype=float)[~np.isnan(scores)])
    count = len(v)
    if count == 0:
        return np.array([])
    i = np.arange(1, count + 1)
    weights = np.array([(i / count) ** n - ((i - 1) / count) ** n for n in range(1, count + 1)])
    return weights @ v


def expected_max_band(scores: np.ndarray, level: float = 0.90, draws: int = 500, seed: int = 0) -> tuple[np.ndarray,
                                                                                                          np.ndarray]:
    """A bootstrap band of the expected-max curve: the draws resampled, the curve recomputed."""
    v = np.asarray(scores, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return np.full(len(v), np.nan), np.full(len(v), np.nan)
    rng = np.random.default_rng(seed)
    curves = np.array([expected_max(rng.choice(v, len(v))) for _ in range(draws)])
    return np.quantile(curves, (1 - level) / 2, axis=0), np.quantile(curves, (1 + level) / 2, axis=0)


# sampled_by values that are independent draws from the space itself. A Sobol (qmc) design is not: its points are
# spread on purpose, each placed given the others.
INDEPENDENT = ("random", "random start-up")
