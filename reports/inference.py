"""The statistical core of the report: every verdict a sentence, table or plot states is one of these tests or
intervals, each built to keep a stated error rate, and each rate is measured by simulating studies whose truth is
known (``python -m bench.bench_verdicts``; tests/test_verdicts.py runs a smaller draw).

The verdicts and their families. Within a family, Holm's method holds the chance of any false claim (the
family-wise error rate) at ALPHA, whatever the dependence between the tests:

- **learning**: "subset S learns at budget B": the best trial's correct count on the validation clips against
  chance, a one-sided binomial test, Bonferroni-corrected for the number of trials looked at (the best of N runs is
  above chance more often than one run). One test per subset and budget.
- **trials**: "this trial learned": each trial's own binomial test at its budget, Holm over the trials compared.
- **parameters**: "P matters at budget B on subset S": a permutation test of how much of the scores' spread P's
  values explain (the between-group sum of squares over P's values, or quantile bins of a number), exact whatever
  the scores' shape (a chance floor, a few learners); for a number, also whether trials adjacent along it score
  alike (a window of learning rates splits across bins, but not across neighbours), the smaller p-value doubled.
  One test per parameter and subset, at the headline budget: deeper budgets hold only the trials ASHA kept, and
  their p-values are shown as exploratory, never as a claim.
- **subsets**: "P's effect differs between the subsets at budget B": the subset x P interaction, a permutation test
  of the residuals of the additive model (Freedman and Lane, 1983). One test per parameter.

Alongside a test, its effect in accuracy points (the mean score of each of P's values with a 95% t interval) and,
when the test finds nothing, what it could have found: the difference between P's best and worst value that the
test would detect with 80% probability at its corrected level, found by simulating the test (reports/power.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

ALPHA = 0.05  # family-wise error rate of each family of claims
POWER = 0.80  # the power at which the detectable difference is stated
PERMUTATIONS = 4000  # p-values resolve to 1/4001, below Holm's smallest level for 80 tests
MAX_BINS = 5

def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values: reject the claims whose adjusted p is below ALPHA and the family-wise error rate is at
    most ALPHA. NaN (a test that could not be made) stays NaN and does not count as a test."""
    p = np.asarray(pvalues, float)
    valid = np.flatnonzero(~np.isnan(p))
    adjusted = np.full(len(p), np.nan)
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()

# ----------------------------------------------------------------------------------------------- above chance
def correct_count(score: float, clips: int) -> int:
    return int(round(score * clips))

def above_chance_p(score: float, clips: int, chance: float) -> float:
    """One-sided binomial p-value of ``score`` (a top-1 on ``clips`` validation clips) against a network that has
    learned nothing. Such a network's predictions do not depend on the clip, so on a class-balanced validation
    split its correct count is at most as spread as Binomial(clips, chance) (exactly that for uniform guessing,
    a constant for a network that always names one class): the test is exact or conservative."""
    if not (clips and chance) or math.isnan(score):
        return math.nan
    return float(stats.binom.sf(correct_count(score, clips) - 1, clips, chance))

def best_above_chance_p(scores: np.ndarray, clips: int, chance: float) -> float:
    """Whether any of the N trials learned: the best trial's binomial p times N (Bonferroni over the trials looked at,
    valid however the trials' predictions depend on each other)."""
    scores = np.asarray(scores, float)
    if not len(scores):
        return math.nan
    return min(1.0, len(scores) * above_chance_p(float(np.nanmax(scores)), clips, chance))

# ------------------------------------------------------------------------------------------- parameter groups
def bin_count(trials: int) -> int:
    """Quantile bins of a numeric parameter: about three trials a bin, at least 2 and at most MAX_BINS. Three bins
    from 8 trials on, so a working window (chance on both sides, learning in between) shows as a difference
    between bins instead of averaging out in two halves."""
    return int(np.clip(round(trials / 3), 2, MAX_BINS))

@dataclass(frozen=True)
class Groups:
    codes: np.ndarray  # group index per trial
    labels: list[str]  # per group: the value, or the range of a bin ("3.4e-04 to 2.1e-03")
    order: list[float]  # per group: where it sits on the parameter's axis (for plots), NaN for a choice
    binned: bool = False  # quantile bins of a number (else a choice's values)

    @property
    def count(self) -> int:
        return len(self.labels)

def _fmt(value: float) -> str:
    return f"{value:.2g}"

def groups_of(values: pd.Series) -> Groups:
    """A choice's values, or quantile bins of a number (log scale when it spans decades); a parameter a trial does
    not have (a conditional one) is a group of its own ("n/a")."""
    values = values.reset_index(drop=True)
    present = values.notna().to_numpy()
    codes = np.zeros(len(values), dtype=int)
    labels: list[str] = []
    order: list[float] = []
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values[present].nunique() > bin_count(int(present.sum())):
        raw = values[present].astype(float).to_numpy()
        log = bool((raw > 0).all() and raw.max() / raw.min() > 20)
        x = np.log10(raw) if log else raw
        edges = np.unique(np.quantile(x, np.linspace(0, 1, bin_count(int(present.sum())) + 1))[1:-1])
        used, inner = np.unique(np.searchsorted(edges, x, side="right"), return_inverse=True)  # ties can empty a bin
        codes[present] = inner
        for g in range(len(used)):
            members = raw[inner == g]
            labels.append(f"{_fmt(members.min())} to {_fmt(members.max())}")
            order.append(float(np.median(members)))
    else:
        factorized, uniques = pd.factorize(values[present].astype(str), sort=True)
        codes[present] = factorized
        labels = [str(u) for u in uniques]
        order = [math.nan] * len(labels)
    if (~present).any():
        codes[~present] = len(labels)
        labels.append("n/a")
        order.append(math.nan)
    return Groups(codes, labels, order, binned=numeric and not all(math.isnan(o) for o in order))

def group_indicators(codes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(trials x groups) one-hot matrix, and each group's size (1 for an empty one, whose sum is 0): scores times the
    matrix are the groups' sums."""
    onehot = np.zeros((len(codes), count))
    onehot[np.arange(len(codes)), codes] = 1.0
    sizes = onehot.sum(axis=0)
    return onehot, np.where(sizes > 0, sizes, 1)


def between_sum_of_squares(codes: np.ndarray, y: np.ndarray, count: int) -> np.ndarray:
    """SS_between for each row of ``y`` (permutations x trials): sum over groups of n_g * mean_g^2, less the
    grand term, which is the same for every permutation and left out."""
    onehot, sizes = group_indicators(codes, count)
    return ((np.atleast_2d(y) @ onehot) ** 2 / sizes).sum(axis=1)

_SHUFFLES: dict[tuple[int, int, int], np.ndarray] = {}
_SHUFFLES_BYTES, _KEPT_SHUFFLE_BYTES = 64 * 2 ** 20, 2 ** 20
_LAST_LARGE: dict[tuple[int, int, int], np.ndarray] = {}  # the latest two orders over 1 MB


def shuffles(n: int, permutations: int, seed: int) -> np.ndarray:
    """Row i: the i-th shuffle of n trials that a test seeded with ``seed`` draws. Numpy's ``permuted`` draws its
    swaps from the seed and n alone, never from the values, so ``y[shuffles(len(y), P, seed)]`` is exactly
    ``default_rng(seed).permuted`` of P copies of y. Orders of up to 1 MB are drawn once and kept (64 MB in all),
    because the report, its power analysis and the simulations run the same small tests on new scores again and
    again; of larger ones only the latest two are kept (the power analysis tests one simulated study at several
    effect sizes with the same seed, then moves on to the next seed; a number's test shuffles all trials for the
    spread between groups and those with a value for the order along it)."""
    key = (n, permutations, seed)
    if key in _SHUFFLES:
        return _SHUFFLES[key]
    if key in _LAST_LARGE:
        return _LAST_LARGE[key]
    orders = np.random.default_rng(seed).permuted(np.broadcast_to(np.arange(n, dtype=np.int32), (permutations, n)),
                                                  axis=1)
    orders.flags.writeable = False
    if orders.nbytes <= _KEPT_SHUFFLE_BYTES:
        while sum(kept.nbytes for kept in _SHUFFLES.values()) + orders.nbytes > _SHUFFLES_BYTES:
            _SHUFFLES.pop(next(iter(_SHUFFLES)))  # the oldest
        _SHUFFLES[key] = orders
    else:
        while len(_LAST_LARGE) >= 2:
            _LAST_LARGE.pop(next(iter(_LAST_LARGE)))  # the older
        _LAST_LARGE[key] = orders
    return orders


def shuffled(y: np.ndarray, permutations: int, seed: int) -> np.ndarray:
    """``permutations`` shuffles of the scores ``y``, exactly as ``default_rng(seed).permuted`` draws them."""
    return y[shuffles(len(y), permutations, seed)]


def permutation_p(codes: np.ndarray, y: np.ndarray, count: int, seed: int = 0, permutations: int = PERMUTATIONS) -> float:
    """P(a shuffled assignment of scores to P's values explains at least as much) with the observed assignment
    counted among the shuffles, so the p-value is exact: under the null it is uniform (or conservative)."""
    return permutation_p_along(codes, y, None, count, seed, permutations)(0.0)


def permutation_p_along(codes: np.ndarray, base: np.ndarray, direction: np.ndarray | None, count: int, seed: int = 0,
                        permutations: int = PERMUTATIONS) -> Callable[[float], float]:
    """``permutation_p`` of the scores base + δ·direction, as a function of δ. The groups' sums are linear in δ, so the
    shuffled scores are gathered once for every δ tried (the power analysis tries several on one simulated study);
    with no direction it is ``permutation_p`` of ``base`` itself, to the last bit."""
    onehot, sizes = group_indicators(codes, count)
    orders = shuffles(len(base), permutations, seed)
    observed_base, null_base = (np.atleast_2d(base) @ onehot)[0], base[orders] @ onehot
    observed_step, null_step = ((np.atleast_2d(direction) @ onehot)[0], direction[orders] @ onehot) \
        if direction is not None else (0.0, 0.0)

    def p(delta: float) -> float:
        observed = float(((observed_base + delta * observed_step) ** 2 / sizes).sum())
        null = ((null_base + delta * null_step) ** 2 / sizes).sum(axis=1)
        return float((1 + (null >= observed - 1e-12 * max(1.0, abs(observed))).sum()) / (permutations + 1))
    return p

def sign_flip_p(codes: np.ndarray, differences: np.ndarray, count: int, seed: int = 0) -> float:
    """Whether paired differences (a config's score on one subset less its score on the other) depend on the
    group: their between-group sum of squares against the same with each centred difference's sign flipped at
    random. Flipping keeps each config's own spread, so configs at chance (no seed noise) and configs that learn
    (seed noise on both subsets) do not pass for an effect, which shuffling them among the groups would let them."""
    centred = differences - differences.mean()
    rng = np.random.default_rng(seed)
    flipped = centred * rng.choice([-1.0, 1.0], size=(PERMUTATIONS, len(centred)))
    observed = between_sum_of_squares(codes, centred, count)[0]
    null = between_sum_of_squares(codes, flipped, count)
    return float((1 + (null >= observed * (1 - 1e-9)).sum()) / (PERMUTATIONS + 1))

def ordering_p(x: np.ndarray, y: np.ndarray, seed: int = 0, permutations: int = PERMUTATIONS) -> float:
    """Whether neighbours along a numeric parameter score alike: the sum of squared differences between the scores
    of trials adjacent in the parameter's order (von Neumann's statistic), small when the score follows the
    parameter in any smooth way, a window included, against the same sum over shuffled scores."""
    return ordering_p_along(x, y, None, seed, permutations)(0.0)


def ordering_p_along(x: np.ndarray, base: np.ndarray, direction: np.ndarray | None, seed: int = 0,
                     permutations: int = PERMUTATIONS) -> Callable[[float], float]:
    """``ordering_p`` of the scores base + δ·direction, as a function of δ: each sum of squared differences is a
    quadratic in δ whose coefficients come from the shuffles gathered once; with no direction it is ``ordering_p``
    of ``base`` itself, to the last bit."""
    order = np.argsort(x, kind="stable")
    orders = shuffles(len(base), permutations, seed)
    observed_base, null_base = np.diff(base[order]), np.diff(base[orders], axis=1)
    constant = (float((observed_base * observed_base).sum()), (null_base * null_base).sum(axis=1))
    if direction is None:
        linear = quadratic = (0.0, 0.0)
    else:
        observed_step, null_step = np.diff(direction[order]), np.diff(direction[orders], axis=1)
        linear = (2 * float((observed_base * observed_step).sum()), 2 * (null_base * null_step).sum(axis=1))
        quadratic = (float((observed_step * observed_step).sum()), (null_step * null_step).sum(axis=1))

    def p(delta: float) -> float:
        observed, null = ((delta * delta) * a + delta * b + c for a, b, c in zip(quadratic, linear, constant))
        return float((1 + (null <= observed * (1 + 1e-12)).sum()) / (permutations + 1))
    return p

def omega_squared(codes: np.ndarray, y: np.ndarray) -> float:
    """(SS_between - (k - 1) MS_within) / (SS_total + MS_within): the share of the score's variance the groups
    explain, corrected for the k groups (0 when negative). Descriptive: the test is ``permutation_p``."""
    n, k = len(y), len(np.unique(codes))
    if k < 2 or n <= k:
        return 0.0
    total = ((y - y.mean()) ** 2).sum()
    counts = np.bincount(codes)
    means = np.bincount(codes, weights=y) / np.maximum(counts, 1)
    between = (counts * (means - y.mean()) ** 2).sum()
    within = (total - between) / (n - k)
    return max(0.0, float((between - (k - 1) * within) / (total + within))) if total > 0 else 0.0

@dataclass(frozen=True)
class Level:
    label: str
    order: float
    trials: int
    mean: float
    low: float  # 95% t interval of the mean; NaN with one trial
    high: float

def level_means(groups: Groups, y: np.ndarray, level: float = 0.95) -> list[Level]:
    """The mean score at each of P's values with a t interval from that value's own trials (no pooling: a value at
    chance has almost no spread, a value where trials learn has the seed noise), cut to [0, 1]."""
    out = []
    for g, label in enumerate(groups.labels):
        values = y[groups.codes == g]
        if not len(values):
            continue
        mean = float(values.mean())
        if len(values) > 1:
            half = float(stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
        else:
            half = math.nan
        # an accuracy lies in [0, 1]: so does every interval of one (the t interval's tails past it hold nothing)
        out.append(Level(label, groups.order[g], len(values), mean, max(mean - half, 0.0), min(mean + half, 1.0)))
    return out

@dataclass(frozen=True)
class ParameterTest:
    parameter: str
    trials: int
    groups: Groups
    levels: list[Level]
    omega2: float
    p: float  # permutation p-value, uncorrected
    within_sd: float  # pooled spread of scores within P's values

    @property
    def effect(self) -> float:
        """Best minus worst mean score over P's values (groups of at least one trial)."""
        means = [lv.mean for lv in self.levels]
        return max(means) - min(means) if means else math.nan

def parameter_test(frame: pd.DataFrame, parameter: str, score: str = "score", seed: int = 0) -> ParameterTest | None:
    """The test of one parameter over the trials of ``frame`` (one row each), or None when it does not vary."""
    if parameter not in frame or frame[parameter].nunique(dropna=False) < 2:
        return None
    groups = groups_of(frame[parameter])
    y = frame[score].to_numpy(float)
    if groups.count < 2:
        return None
    p = parameter_p(groups, axis_of(frame[parameter], groups), y, seed)
    means = np.bincount(groups.codes, weights=y, minlength=groups.count) / np.maximum(
        np.bincount(groups.codes, minlength=groups.count), 1)
    residual = y - means[groups.codes]
    dof = len(y) - groups.count
    within = math.sqrt((residual ** 2).sum() / dof) if dof > 0 else math.nan
    return ParameterTest(parameter, len(y), groups, level_means(groups, y), omega_squared(groups.codes, y), p, within)


def axis_of(values: pd.Series, groups: Groups) -> np.ndarray | None:
    """A number's values as floats (NaN where a trial does not have it), the axis its order test runs along; None for
    a choice."""
    return pd.to_numeric(values, errors="coerce").to_numpy(float) if groups.binned else None


def parameter_p(groups: Groups, x: np.ndarray | None, y: np.ndarray, seed: int = 0,
                permutations: int = PERMUTATIONS) -> float:
    """The parameter test's p-value: the spread between the groups, and for a number (``x``) also the order along it,
    Bonferroni over the two statistics. ``permutations``: fewer resolve p more coarsely (1 / (permutations + 1)),
    which the power analysis's simulated tests can afford."""
    return parameter_p_along(groups, x, y, None, seed, permutations)(0.0)


def parameter_p_along(groups: Groups, x: np.ndarray | None, base: np.ndarray, direction: np.ndarray | None,
                      seed: int = 0, permutations: int = PERMUTATIONS) -> Callable[[float], float]:
    """``parameter_p`` of the scores base + δ·direction, as a function of δ (see permutation_p_along)."""
    spread = permutation_p_along(groups.codes, base, direction, groups.count, seed, permutations)
    if x is None or (~np.isnan(x)).sum() < 4:
        return spread
    present = ~np.isnan(x)
    along = ordering_p_along(x[present], base[present], None if direction is None else direction[present], seed,
                             permutations)
    return lambda delta: min(1.0, 2 * min(spread(delta), along(delta)))


def reachable_p(frame: pd.DataFrame, parameter: str) -> float:
    """The smallest p-value ``parameter_test`` can give on these trials' values of ``parameter``: the test
    run on the most extreme outcome (scores in the parameter's order for a number, fully separated values for a
    choice). A floor stated for any other test would promise what the test run cannot reach."""
    values = frame[parameter].reset_index(drop=True)
    groups = groups_of(values)
    if groups.binned:
        ideal = pd.to_numeric(values, errors="coerce").rank(method="first").fillna(0).to_numpy(float)
    else:
        ideal = groups.codes.astype(float)
    test = parameter_test(pd.DataFrame({parameter: values, "score": ideal}), parameter)
    return test.p if test is not None else math.nan

# ------------------------------------------------------------------------------------- between the two subsets
def interaction_p(codes: np.ndarray, second: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Freedman-Lane permutation test of the subset x P interaction: the residuals of the additive model (subset +
    P) are shuffled and added back to its fit, and the interaction's F ratio (its sum of squares over the full
    model's residual one) recomputed. ``second``: 1 for the second subset's trials. NaN when the cells (subset x
    value) leave no residual to compare with. Its error rate is measured in bench_verdicts (the method is exact
    only asymptotically)."""
    groups = int(codes.max()) + 1
    cells = codes * 2 + second
    full = np.zeros((len(y), 2 * groups))
    full[np.arange(len(y)), cells] = 1.0
    full = full[:, full.sum(axis=0) > 0]
    additive = np.column_stack([np.ones(len(y)), second] + [(codes == g).astype(float) for g in range(1, groups)])
    additive = additive[:, _independent_columns(additive)]

    def explained(matrix: np.ndarray, ys: np.ndarray) -> np.ndarray:
        pinv = np.linalg.pinv(matrix.T @ matrix)
        s = ys @ matrix
        return np.einsum("ij,jk,ik->i", s, pinv, s)

    fit = additive @ np.linalg.lstsq(additive, y, rcond=None)[0]
    residual = y - fit
    if full.shape[1] <= additive.shape[1] or len(y) - full.shape[1] < 2 or np.allclose(residual, 0):
        return math.nan

    def ratio(ys: np.ndarray) -> np.ndarray:
        in_full = explained(full, ys)
        return (in_full - explained(additive, ys)) / np.maximum((ys ** 2).sum(axis=1) - in_full, 1e-300)

    observed, null = ratio(y[None])[0], ratio(fit + shuffled(residual, PERMUTATIONS, seed))
    return float((1 + (null >= observed * (1 - 1e-9)).sum()) / (PERMUTATIONS + 1))

def _independent_columns(matrix: np.ndarray) -> list[int]:
    """Columns of ``matrix`` kept left to right while each adds to the rank."""
    kept: list[int] = []
    for j in range(matrix.shape[1]):
        if np.linalg.matrix_rank(matrix[:, [*kept, j]]) > len(kept):
            kept.append(j)
    return kept

# --------------------------------------------------------------------------------------- the best configurations
@functools.lru_cache(maxsize=256)
def gupta_constant(configs: int, alpha: float = ALPHA, dof: float = math.inf) -> float:
    """Gupta's (1965) constant d: the set of configs scoring within d * sd * sqrt(2) of the best holds the truly
    best config with probability 1 - alpha, single runs with seed noise sd (estimated with ``dof`` degrees of
    freedom, or known). Least favourable case: all configs equally good. The probability is the integral over the
    best config's noise z (and the estimate's scale s) of Phi(z + d sqrt(2) s)^(configs - 1), on fixed grids."""
    if configs < 2:
        return 0.0
    z = np.linspace(-9, 9, 721)
    weight = stats.norm.pdf(z) * (z[1] - z[0])
    if math.isinf(dof):
        scales = np.ones(1)
    else:  # Gauss-Legendre nodes in the probability scale of s = sd_estimate / sd ~ chi(dof) / sqrt(dof)
        nodes, node_weights = np.polynomial.legendre.leggauss(64)
        scales = stats.chi(dof, scale=1 / math.sqrt(dof)).ppf((nodes + 1) / 2)
    shares = np.full(len(scales), 1 / len(scales)) if math.isinf(dof) else node_weights / 2

    def coverage(d: float) -> float:
        inner = stats.norm.cdf(z[None, :] + d * math.sqrt(2) * scales[:, None]) ** (configs - 1) @ weight
        return float(shares @ inner)

    return float(optimize.brentq(lambda d: coverage(d) - (1 - alpha), 0.0, 50.0, xtol=1e-5))

def best_set(scores: np.ndarray, sd: float, dof: float = math.inf, alpha: float = ALPHA) -> np.ndarray:
    """Which configs could be the best (each scored once, seed noise ``sd``): a mask holding the truly best with
    probability 1 - alpha."""
    scores = np.asarray(scores, float)
    d = gupta_constant(len(scores), alpha, dof)
    return scores >= scores.max() - d * math.sqrt(2) * sd

# ------------------------------------------------------------------------------------------------ regressions
def slope_interval(x: np.ndarray, y: np.ndarray, level: float = 0.90) -> tuple[float, float, float]:
    """Least-squares slope of y on x with its t interval (n - 2 degrees of freedom)."""
    fit = stats.linregress(x, y)
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 2) * fit.stderr)
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)
