"""What a test can find, by simulating it: the power analysis behind the report's "cannot tell yet: N trials would
tell" and "no effect detected; D points would have been found". Each plants a response in studies drawn at the
study's own design (its parameter values, or as many as a space-filling design places), runs the test the report runs
(reports.inference.parameter_test) and counts how often it finds the parameter: the rates are those of the test
itself, not of a textbook stand-in for it (bench.bench_verdicts measures them against a known truth)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports import inference

MAX_TRIALS_ASKED = 96  # past this the next step says the design cannot answer, instead of a count nobody runs
POWER_DRAWS = 60  # simulated studies per trial count in the power analysis: 80% power read to within about 5 points
POWER_PERMUTATIONS = 1000  # per simulated test: p resolves to 0.001, below any level a page of claims holds it to


def _spread_values(template: pd.Series, count: int) -> pd.Series:
    """``count`` values of a parameter laid out as a space-filling design would: evenly over the range of the values
    tried (log-evenly when they span decades), or the choices tried in turn."""
    present = template.dropna()
    if inference.groups_of(template).binned:  # a number, as the test itself takes it
        low, high = float(present.min()), float(present.max())
        if low > 0 and high / low > 20:
            return pd.Series(np.geomspace(low, high, count))
        return pd.Series(np.linspace(low, high, count))
    choices = sorted(present.astype(str).unique())
    return pd.Series([choices[i % len(choices)] for i in range(count)])


def response(frame: pd.DataFrame, parameter: str):
    """The measured response as a function of the parameter, for the power analysis to plant: a number's scores
    interpolated along it (in log scale when it spans decades), a choice's mean score per value."""
    values, scores = frame[parameter].reset_index(drop=True), frame["score"].to_numpy(float)
    if inference.groups_of(values).binned:
        x = pd.to_numeric(values).to_numpy(float)
        log = bool((x > 0).all() and x.max() / x.min() > 20)
        order = np.argsort(x)
        axis = np.log10(x[order]) if log else x[order]
        return lambda new: np.interp(np.log10(new) if log else new, axis, scores[order])
    means = pd.Series(scores).groupby(values.astype(str).to_numpy()).mean()
    return lambda new: means.reindex(pd.Series(new).astype(str)).to_numpy(float)


def power_at(frame: pd.DataFrame, parameter: str, count: int, noise_sd: float, level: float, draws: int = POWER_DRAWS,
             seed: int = 0) -> float:
    """The share of simulated studies of ``count`` trials (placed as a space-filling design places them, scored by
    the measured response plus noise of ``noise_sd``) in which the test that is run finds the parameter at
    ``level``: the power analysis of the test itself, not of a textbook stand-in."""
    values = _spread_values(frame[parameter], count)
    truth = response(frame, parameter)(values.to_numpy())
    return _found_share(values, lambda rng: np.clip(truth + rng.normal(0.0, noise_sd, count), 0.0, 1.0), level, draws,
                        seed)


def _found_share(values: pd.Series, draw_scores, level: float, draws: int, seed: int = 0) -> float:
    """The share of ``draws`` simulated studies, scored by ``draw_scores(rng)``, in which the parameter test on these
    ``values`` gives p <= ``level``."""
    groups = inference.groups_of(values)
    if groups.count < 2:
        return 0.0
    axis = inference.axis_of(values.reset_index(drop=True), groups)
    rng = np.random.default_rng(seed)
    return sum(inference.parameter_p(groups, axis, draw_scores(rng), draw, POWER_PERMUTATIONS) <= level
               for draw in range(draws)) / draws


def detectable(frame: pd.DataFrame, parameter: str, noise_sd: float, level: float, draws: int = POWER_DRAWS) -> float | None:
    """The difference between the parameter's best and worst value (its extreme groups: values, or bins of a number;
    the other groups midway) that the test that is run finds with 80% probability at ``level`` on these trials'
    values, with noise ``noise_sd`` (the spread within groups), to half a point. None when even a difference of the
    whole accuracy scale is not found that often. Each simulated study's own smallest difference found is bisected
    one study at a time (its shuffles drawn and gathered once for all the differences tried: the test's statistics
    are quadratics in the difference); the share of studies whose difference is at most D is the power at D, and the
    answer the smallest D where that share reaches 80%."""
    values = frame[parameter].reset_index(drop=True)
    groups = inference.groups_of(values)
    if groups.count < 2 or not noise_sd > 0:
        return None
    ranks = np.argsort(np.argsort(groups.order if groups.binned else range(groups.count)))
    low, high = ranks[groups.codes] == 0, ranks[groups.codes] == groups.count - 1
    shift = (high.astype(float) - low) / 2
    axis = inference.axis_of(values, groups)
    rng = np.random.default_rng(0)
    noises = [rng.normal(0.0, noise_sd, len(values)) for _ in range(draws)]

    def smallest_found(draw: int) -> float:
        p = inference.parameter_p_along(groups, axis, 0.5 + noises[draw], shift, draw, POWER_PERMUTATIONS)

        def found(delta: float) -> bool:
            return p(delta) <= level

        if not found(1.0):
            return math.inf
        below, above = 0.0, 1.0
        while above - below > 0.005:  # half a point
            middle = (below + above) / 2
            below, above = (below, middle) if found(middle) else (middle, above)
        return above

    smallest = np.array([smallest_found(draw) for draw in range(draws)])
    for difference in np.sort(smallest):
        if np.mean(smallest <= difference) >= inference.POWER:
            return None if math.isinf(difference) else float(difference)
    return None


def trials_needed(parameter: str, frame: pd.DataFrame, noise_sd: float, level: float) -> int | None:
    """The fewest trials per subset from which the test can reach ``level`` and finds the response measured on
    ``frame``'s trials with 80% probability (``power_at``), searched by doubling then bisection (more trials never
    hurt the design); None when MAX_TRIALS_ASKED do not, or when the parameter took one value."""
    if frame[parameter].nunique() < 2:
        return None

    def enough(count: int) -> bool:
        values = pd.DataFrame({parameter: _spread_values(frame[parameter], count)})
        return (inference.reachable_p(values, parameter) <= level
                and power_at(frame, parameter, count, noise_sd, level) >= inference.POWER)

    low, high = len(frame), len(frame) + 1  # low: not enough (the study's own count); high: the candidate
    while not enough(high):
        if high >= MAX_TRIALS_ASKED:
            return None
        low, high = high, min(2 * high, MAX_TRIALS_ASKED)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high
