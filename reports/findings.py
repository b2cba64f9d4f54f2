"""What the data says, in sentences generated from it, each resting on a verdict of reports/inference.py with its
stated error rate. Per subset, at a headline budget fixed before looking at any score (named in every sentence):
whether the subset learns at all, which trials learned, stayed at chance or diverged (the working range of the
learning rate), whether each searched parameter matters with its effect in accuracy points or, when nothing is
found, the difference that could have been found; the best config without the winner's curse; across the subsets,
whether a parameter's effect differs. Where the study cannot answer (too few trials, no seed repeats), the
sentence says so and what to run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports import inference, power
from reports.answer import count, name
from reports.comparisons import welch_interval
from reports.inference import ALPHA, ParameterTest, holm
from reports.scaling import Exponent, batch_exponent
from reports.scores import (
    NoiseFloor,
    at_budget,
    completed,
    diverged,
    headline_budget,
    noise_floor,
    search_trials,
)

MIN_TESTED = 4  # fewer trials at a budget than this and no parameter is tested there
UNINFORMATIVE = 0.8  # a could-be-best set holding this share of the trials or more names no best config
MIN_SLOPE_TRIALS = 8  # the data-budget slope needs this many trials over at least three training-set sizes


def trial_count(number: int) -> str:
    """'1 trial', '3 trials': a deep ASHA rung often holds one."""
    return count(number, "trial")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _p(value: float) -> str:
    """'p = 0.012', 'p < 0.001'."""
    return "p n/a" if math.isnan(value) else (f"p = {value:.3f}" if value >= 0.001 else "p < 0.001")


def _lr_range(values: pd.Series) -> str:
    low, high = values.min(), values.max()
    return f"lr {low:.2g}" if low == high else f"lr {low:.2g} to {high:.2g}"


def searched_frame(trials: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """The trials with a column per searched parameter: the config value the trial trained with, or for a switch
    that is not a config field (linear_scaling) the sampled value."""
    out = trials.copy()
    for parameter in parameters:
        if parameter not in out:
            out[parameter] = [json.loads(s).get(parameter) for s in out["sampled"]]
    return out


@dataclass
class Verdict:
    """One claim the report may make, with its raw and family-adjusted p-value."""
    family: str
    p: float
    adjusted: float = math.nan

    @property
    def holds(self) -> bool:
        return self.adjusted < ALPHA


@dataclass
class SubsetFindings:
    subset: str
    budget: int  # the headline budget
    why: str  # how the headline budget was chosen
    final: int
    chance: float | None
    clips: int  # validation clips each score is measured on
    scored_at: dict[int, pd.DataFrame] = field(default_factory=dict)  # budget -> trials compared there, with score
    noise_at: dict[int, NoiseFloor] = field(default_factory=dict)
    learning: dict[int, Verdict] = field(default_factory=dict)  # budget -> "this subset learns"
    tests: dict[int, dict[str, ParameterTest]] = field(default_factory=dict)  # budget -> parameter -> test
    verdicts: dict[tuple[int, str], Verdict] = field(default_factory=dict)  # (budget, parameter) -> "P matters"
    words: pd.DataFrame = field(default_factory=pd.DataFrame)  # the headline budget's trials, each with its word
    exponent: Exponent | str | None = None
    family_sizes: dict[str, int] = field(default_factory=dict)
    # (budget, parameter) -> best-minus-worst difference its test finds with 80% probability, for a claim that did
    # not hold and whose test could reach its level (reports.power.detectable); None where no difference would be
    detectable: dict[tuple[int, str], float | None] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)

    @property
    def scored(self) -> pd.DataFrame:
        return self.scored_at.get(self.budget, pd.DataFrame())

    @property
    def noise(self) -> NoiseFloor:
        return self.noise_at[self.budget]

    @property
    def best(self) -> pd.Series | None:
        rows = self.scored
        return rows.loc[rows["score"].idxmax()] if len(rows) else None

    def learns(self, budget: int | None = None) -> bool:
        verdict = self.learning.get(self.budget if budget is None else budget)
        return verdict is not None and verdict.holds

    def mattering(self, budget: int | None = None) -> dict[str, ParameterTest]:
        b = self.budget if budget is None else budget
        return {p: t for p, t in self.tests.get(b, {}).items() if (b, p) in self.verdicts and self.verdicts[(b, p)].holds}

    def where(self, budget: int | None = None) -> str:
        b = self.budget if budget is None else budget
        return f"epoch {b}" + (" (the last epoch, completed trials)" if b >= self.final else " (an ASHA rung)")


def trial_words(found: dict[str, SubsetFindings]) -> None:
    """Each trial at the headline budget: 'diverged' (its loss went NaN), 'learned' (above chance: its binomial
    test, Holm over every trial of every subset on the page) or 'at chance' (trained without diverging but not
    shown above chance). Three words for three things: not diverging is not learning."""
    tests = []
    for f in found.values():
        rows = f.scored
        tests.append([math.nan if d or not f.chance else inference.above_chance_p(s, f.clips, f.chance)
                      for s, d in zip(rows.get("score", []), rows.get("diverged", []))])
    adjusted = iter(holm([p for per in tests for p in per]))
    for f, p in zip(found.values(), tests):
        rows = f.scored
        mine = [next(adjusted) for _ in p]
        words = ["diverged" if d else ("learned" if a < ALPHA else "at chance")
                 for d, a in zip(rows.get("diverged", []), mine)]
        f.words = rows.assign(word=words, chance_p=p, chance_p_adjusted=mine)
        f.family_sizes["trials"] = sum(len(t) for t in tests)


def analyse(trials: pd.DataFrame, epochs: pd.DataFrame, subsets: list[str], parameters: list[str],
            levels: list[int], declared: int | None = None) -> dict[str, SubsetFindings]:
    """Every subset's verdicts at every budget, the families adjusted together (so a claim about one subset and
    one budget is corrected for all the claims of its kind on the page), and the sentences."""
    found: dict[str, SubsetFindings] = {}
    for subset in subsets:
        search = searched_frame(search_trials(trials, subset), parameters)
        if search.empty:
            continue
        final = levels[-1] if levels else int(search["epochs_planned"].max())
        budgets = levels or [final]
        classes = search["num_classes"].dropna()
        clips = search["val_clips"].dropna()
        f = SubsetFindings(subset, final, "", final, 1.0 / float(classes.iloc[0]) if len(classes) else None,
                           int(clips.max()) if len(clips) else 0)
        f.scored_at = {b: at_budget(search, epochs, b, budgets) for b in budgets}
        f.noise_at = {b: noise_floor(trials, subset, epochs, b if b < final else None, rows)
                      for b, rows in f.scored_at.items()}
        found[subset] = f
    if not found:
        return found
    budgets = sorted({b for f in found.values() for b in f.scored_at})
    budget, why = headline_budget(budgets, declared)
    for f in found.values():
        f.budget, f.why = budget, why
        for b, rows in f.scored_at.items():
            if len(rows) and f.chance:
                f.learning[b] = Verdict("learning", inference.best_above_chance_p(rows["score"], f.clips, f.chance))
            if len(rows) >= MIN_TESTED:
                tested = {p: inference.parameter_test(rows, p) for p in parameters}
                f.tests[b] = {p: t for p, t in tested.items() if t is not None}
                if b == budget:  # claims at the headline only; deeper budgets hold the trials ASHA kept
                    f.verdicts.update({(b, p): Verdict("parameters", t.p) for p, t in f.tests[b].items()})
    _adjust([v for f in found.values() for v in f.learning.values()])
    _adjust([v for f in found.values() for v in f.verdicts.values()])
    sizes = {"learning": sum(len(f.learning) for f in found.values()),
             "parameters": sum(len(f.verdicts) for f in found.values())}
    for f in found.values():
        f.family_sizes = dict(sizes)
        level = ALPHA / max(sizes["parameters"], 1)
        for (b, parameter), verdict in f.verdicts.items():
            if not verdict.holds and inference.reachable_p(f.scored_at[b], parameter) <= level:
                f.detectable[(b, parameter)] = power.detectable(f.scored_at[b], parameter,
                                                                f.tests[b][parameter].within_sd, level)
    trial_words(found)
    for f in found.values():
        if "batch_size" in parameters and "lr" in parameters and len(f.scored) and f.chance:
            f.exponent = batch_exponent(f.scored, f.chance)
        search = searched_frame(search_trials(trials, f.subset), parameters)
        f.sentences = subset_sentences(f, trials, search, parameters)
    return found


def _adjust(verdicts: list[Verdict]) -> None:
    for verdict, adjusted in zip(verdicts, holm([v.p for v in verdicts])):
        verdict.adjusted = adjusted


def subset_sentences(f: SubsetFindings, trials: pd.DataFrame, search: pd.DataFrame, parameters: list[str]) -> list[str]:
    rows, lines = f.scored, []
    if rows.empty:
        return [f"{f.subset}: no trial has a score at epoch {f.budget} yet."]
    chance_text = f" (chance {_pct(f.chance)})" if f.chance else ""
    lines.append(f"{f.subset} at {f.where()}, {f.why}: {trial_count(len(rows))}, val top-1 from "
                 f"{_pct(rows['score'].min())} to {_pct(rows['score'].max())}{chance_text}.")
    lines.append(learning_sentence(f, f.budget))
    if f.learns() and f.chance:
        lines.append(working_range_sentence(f, f.words, "lr" in parameters))
    lines.extend(parameter_sentences(f, f.budget))
    lines.append(best_sentence(f, trials))
    others = [budget_summary(f, b) for b in sorted(f.scored_at) if b != f.budget and len(f.scored_at[b])]
    if others:
        lines.append(f"At the other budgets: {'; '.join(others)}.")
    lines.extend(divergence_sentences(search, parameters, f))
    if {"fraction_per_class", "cap_per_class", "sampling"} & set(parameters):
        lines.append(data_budget_sentence(f))
    if "pretrained" in parameters:
        lines.append(pretraining_sentence(f))
    if isinstance(f.exponent, Exponent):
        lines.append(exponent_sentence(f))
    elif isinstance(f.exponent, str):
        lines.append(f"Batch-size exponent not estimated at epoch {f.budget}: {f.exponent}.")
    best = f.best
    if best is not None and not best["diverged"] and f.budget >= f.final and "best_val_top1" in rows:
        gap = best["best_val_top1"] - best["score"]
        lines.append(f"The best trial's best epoch scored {_pct(best['best_val_top1'])}, {100 * gap:.1f} points above "
                     "its last epoch: a maximum over epochs of the reported split, optimistic; the study's score is the "
                     "last epoch.")
    return lines


def learning_sentence(f: SubsetFindings, budget: int) -> str:
    rows, verdict = f.scored_at[budget], f.learning.get(budget)
    if verdict is None:
        return f"Whether {f.subset} learns at epoch {budget} is not tested: the number of classes is not recorded."
    top = int(round(rows["score"].max() * f.clips))
    test = (f"the best trial's {top} of {f.clips} validation clips right against chance, binomial {_p(verdict.p)} "
            f"after Bonferroni over the {trial_count(len(rows))} looked at, {_p(verdict.adjusted)} after Holm over the "
            f"{f.family_sizes['learning']} subset-and-budget claims of this kind")
    if verdict.holds:
        return f"It learns at epoch {budget}: {test}."
    return (f"No trial is shown above chance at epoch {budget} ({test}): nothing here can be attributed to a "
            "hyperparameter. Train longer (a later ASHA rung) or use more validation clips.")


def working_range_sentence(f: SubsetFindings, words: pd.DataFrame, by_lr: bool) -> str:
    """Which trials learned, stayed at chance or diverged; along the learning rate, the window where they learned."""
    counts = words["word"].value_counts()
    head = (f"At epoch {f.budget}, {counts.get('learned', 0)} of {len(words)} trials learned (each above chance, Holm "
            f"over the {f.family_sizes['trials']} trials of the page), {counts.get('at chance', 0)} stayed at chance "
            f"without diverging and {counts.get('diverged', 0)} diverged (loss NaN)")
    if not by_lr or words["lr"].isna().any():
        return head + "."
    ordered = words.sort_values("lr")
    learned = ordered[ordered["word"] == "learned"]
    inside = ordered[(ordered["lr"] >= learned["lr"].min()) & (ordered["lr"] <= learned["lr"].max())]
    below = ordered[ordered["lr"] < learned["lr"].min()]
    above = ordered[ordered["lr"] > learned["lr"].max()]

    def side(part: pd.DataFrame, where: str) -> str:
        if part.empty:
            return f"no trial {where} it"
        kinds = ", ".join(f"{n} {w}" for w, n in part["word"].value_counts().items())
        return f"{where} it ({_lr_range(part['lr'])}) {kinds}"

    if (inside["word"] == "learned").all():
        return (f"{head}. The learning rates that learned form one range, {_lr_range(learned['lr'])}; "
                f"{side(below, 'below')}; {side(above, 'above')}.")
    return (f"{head}: learned at lr {', '.join(f'{v:.2g}' for v in learned['lr'])}; the trials between them did not all "
            "learn, so no single working range is stated.")


def parameter_sentences(f: SubsetFindings, budget: int) -> list[str]:
    tests = f.tests.get(budget, {})
    rows = f.scored_at[budget]
    if not tests:
        if len(rows) < MIN_TESTED:
            return [f"{trial_count(len(rows))} at epoch {budget} are too few to test whether a parameter matters (at least "
                    f"{MIN_TESTED}; the next step says how many would reach the corrected level)."]
        return []
    family = f.family_sizes["parameters"]
    lines = []
    for parameter, test in sorted(tests.items(), key=lambda kv: kv[1].p):
        verdict = f.verdicts[(budget, parameter)]
        levels = "; ".join(f"{lv.label}: {_pct(lv.mean)}" + (f" [{_pct(lv.low)}, {_pct(lv.high)}]"
                                                                if not math.isnan(lv.low) else "") + f" ({lv.trials})"
                           for lv in test.levels)
        stats_text = (f"permutation {_p(test.p)}, {_p(verdict.adjusted)} after Holm over "
                      f"{count(family, 'test')} of parameters x subsets at this budget")
        if verdict.holds:
            lines.append(f"{name(parameter).capitalize()} matters at epoch {budget} ({stats_text}): mean val top-1 by "
                         f"value, 95% intervals, trials: {levels}; best minus worst {100 * test.effect:.1f} points.")
            continue
        reach = inference.reachable_p(rows, parameter)
        if reach > ALPHA / family:
            lines.append(f"{name(parameter).capitalize()}: not testable at epoch {budget} with {test.trials} trials in "
                         f"{test.groups.count} groups: even the most extreme outcome has p >= {reach:.3f}, above the "
                         f"corrected level {ALPHA / family:.4f} (the next step says how many trials would reach it).")
            continue
        detectable = f.detectable.get((budget, parameter))
        could = (f"with {test.trials} trials and {100 * test.within_sd:.1f} points of spread within its values, a "
                 f"difference of {100 * detectable:.1f} points between its best and worst value would have been found "
                 "with 80% probability" if detectable is not None else "no difference up to the whole accuracy scale "
                 "would be found with 80% probability with these trials")
        lines.append(f"{name(parameter).capitalize()}: no effect detected at epoch {budget} ({stats_text}); {could}.")
    return lines


def budget_summary(f: SubsetFindings, budget: int) -> str:
    rows = f.scored_at[budget]
    learning = f.learning.get(budget)
    low, high = _pct(rows["score"].min()), _pct(rows["score"].max())
    said = f"epoch {budget} ({trial_count(len(rows))}, {low if low == high else f'{low} to {high}'})"
    if learning is not None:
        said += ": learns" if learning.holds else ": not shown above chance"
    return said


def repeat_scores(trials: pd.DataFrame, trial_id: str) -> np.ndarray:
    """The last-epoch scores of a config's seed repeats (new seeds, chosen by nothing)."""
    rows = completed(trials[trials["repeat_of"] == trial_id])
    return rows["score"].to_numpy(float)


def best_sentence(f: SubsetFindings, trials: pd.DataFrame) -> str:
    """The best config at the headline budget, without the winner's curse: its repeats' mean when it has repeats;
    otherwise its one score, said to be the highest of N single runs (biased upward)."""
    best = f.best
    config = _config_text(best)
    repeats = repeat_scores(trials, best["trial_id"])
    if len(repeats) >= 2:
        mean, low, high = _mean_interval(repeats)
        line = (f"Best at epoch {f.budget}: {config}, chosen by its search run ({_pct(best['score'])}, the highest of "
                f"{len(f.scored)}, so biased upward); its {len(repeats)} seed repeats score {_pct(mean)} "
                f"[{_pct(low)}, {_pct(high)}] (95% t interval, last epoch).")
    else:
        line = f"Best at epoch {f.budget}: {_pct(best['score'])} at {config}: a single run"
        line += f", the highest of {len(f.scored)}, so expect a re-run to score lower" if len(f.scored) > 1 else ""
        learned = f.words[f.words["trial_id"] == best["trial_id"]]["word"] if len(f.words) else pd.Series(dtype=str)
        line += " (--resume --repeats 1 --seeds 3 re-runs it with new seeds)." if (learned == "learned").any() else \
            "; it is not shown above chance, so there is nothing to repeat."
    if f.noise.source == "seeds" and f.noise.dof >= 1 and "lr" in f.scored:
        candidates = f.scored[~f.scored["diverged"]]
        mask = inference.best_set(candidates["score"].to_numpy(float), f.noise.sd, f.noise.dof)
        chosen = candidates[mask]
        line += (f" Could be the best (a set holding the truly best config with 95% probability, Gupta's rule with the "
                 f"measured seed noise of {100 * f.noise.sd:.1f} points): {len(chosen)} of {len(candidates)} trials, "
                 f"{_lr_range(chosen['lr'])}.")
        if len(chosen) >= UNINFORMATIVE * len(candidates):
            line += (" That set rules out almost nothing: the seed noise is as large as the differences between these "
                     "configs, so this study cannot name a best one.")
    return line


def _mean_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats
    mean = float(values.mean())
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def _config_text(row: pd.Series) -> str:
    parts = [f"{row['optimizer']} lr {row['lr']:.3g}"] if isinstance(row.get("optimizer"), str) else []
    for key, label in (("batch_size", "batch"), ("scheduler", "")):
        if key in row and row[key] is not None and not (isinstance(row[key], float) and math.isnan(row[key])):
            parts.append(f"{label} {row[key]}".strip())
    return ", ".join(parts) + f" (experiment {int(row['experiment_id'])})"


def divergence_sentences(search: pd.DataFrame, parameters: list[str], f: SubsetFindings) -> list[str]:
    """Per optimizer (and batch size when searched): the smallest lr that diverged and the largest that did not;
    'did not diverge' is all it says of those (whether they learned is the working range's business)."""
    if "lr" not in search or search["lr"].isna().all():
        return []
    keys = [k for k in ("optimizer", "batch_size") if k in parameters or (k == "optimizer" and search[k].nunique() > 1)]
    lines = []
    for key, rows in search.groupby(keys) if keys else [((), search)]:
        label = ", ".join(f"{k} {v}" for k, v in zip(keys, key if isinstance(key, tuple) else (key,)))
        bad = diverged(rows)["lr"]
        fine = rows.loc[~rows.index.isin(bad.index) & rows["stop_reason"].isin(["completed", "stopped_by_asha"]), "lr"]
        if bad.empty:
            line = (f"no trial diverged (loss NaN) up to the largest learning rate tried, {rows['lr'].max():.3g} (not "
                    "diverging is not learning).")
        else:
            fine_text = f"the largest that did not diverge was {fine.max():.3g}" if len(fine) else "every trial diverged"
            line = f"training diverged (loss NaN) from learning rate {bad.min():.3g} ({trial_count(len(bad))}); {fine_text}."
        lines.append(f"{label}: {line}" if label else line[0].upper() + line[1:])
    return lines


def exponent_sentence(f: SubsetFindings) -> str:
    e = f.exponent
    inside = [rule for rule, ok in e.rules().items() if ok]
    verdict = f"consistent with the {' and the '.join(inside)} rule" if inside else \
        "consistent with neither the linear (alpha = 1) nor the square-root (alpha = 0.5) rule"
    left = f"; batch {', '.join(map(str, e.without_window))} left out, no window above chance" if e.without_window \
        else ""
    return (f"At epoch {f.budget}, the best learning rate scales as batch^{e.alpha:.2f} [{e.low:.2f}, {e.high:.2f}] "
            f"(90% t interval of log lr* on log batch over {e.sizes} batch sizes, each lr* from a curve on the chance "
            f"floor; {e.trials} trials{left}): {verdict}.")


@dataclass(frozen=True)
class Interaction:
    """Whether a parameter's effect differs between the two subsets at one budget."""
    parameter: str
    budget: int
    p: float
    adjusted: float
    spread: tuple[float, float]  # best minus worst value's mean score, on each subset

    @property
    def holds(self) -> bool:
        return self.adjusted < ALPHA


def compare_subsets(found: dict[str, SubsetFindings], parameters: list[str]) -> list[Interaction] | str:
    """At the one headline budget both subsets share, whether or not either shows an effect of its own: the subset
    x parameter interaction in accuracy points, Holm over the parameters (the paired differences' test when both
    subsets trained the same configs, else Freedman-Lane's). A string says why nothing is compared."""
    if len(found) != 2:
        return "one subset only"
    a, b = found.values()
    budget = a.budget
    rows_a, rows_b = a.scored, b.scored
    if len(rows_a) < MIN_TESTED or len(rows_b) < MIN_TESTED:
        return f"{len(rows_a)} and {len(rows_b)} trials at epoch {budget} (at least {MIN_TESTED} each)"
    if not (a.learns() or b.learns()):
        return "neither subset is shown above chance there, so neither has an effect to compare"
    if not (testable(a) or testable(b)):
        return "neither subset has enough trials for its own test of a parameter to reach the corrected level"
    both = pd.concat([rows_a.assign(_second=0), rows_b.assign(_second=1)], ignore_index=True)
    paired = _paired(rows_a, rows_b, parameters)
    tests = []
    for parameter in parameters:
        if parameter not in both or both[parameter].nunique(dropna=False) < 2:
            continue
        groups = inference.groups_of(both[parameter])
        second = both["_second"].to_numpy()
        y = both["score"].to_numpy(float)
        if paired is not None:  # the same configs on both subsets: does their difference depend on the parameter?
            diff_groups = inference.groups_of(paired[parameter])
            p = inference.sign_flip_p(diff_groups.codes, paired["difference"].to_numpy(float), diff_groups.count) \
                if diff_groups.count > 1 else math.nan
        else:
            p = inference.interaction_p(groups.codes, second, y)
        if not math.isnan(p):
            tests.append((parameter, p, (_spread(groups.codes[second == 0], y[second == 0]),
                                         _spread(groups.codes[second == 1], y[second == 1]))))
    return [Interaction(parameter, budget, p, adjusted, spread)
            for (parameter, p, spread), adjusted in zip(tests, holm([t[1] for t in tests]))]


def testable(f: SubsetFindings) -> bool:
    """Whether any parameter's test at the headline budget can reach its corrected level on these trials."""
    level = ALPHA / max(f.family_sizes.get("parameters", 0), 1)
    return any(inference.reachable_p(f.scored, parameter) <= level for parameter in f.tests.get(f.budget, {}))


def _paired(rows_a: pd.DataFrame, rows_b: pd.DataFrame, parameters: list[str]) -> pd.DataFrame | None:
    """When both subsets trained exactly the same configs (a seeded Sobol or random sampler draws the same points for
    each subset), one row per config with the difference of its two scores; else None. Under no interaction the
    differences do not depend on any parameter (only their spread may: a config that learns has seed noise on both
    subsets, one at chance has none), which a sign-flip test keeps apart (inference.sign_flip_p); its error rate is
    measured in bench_verdicts."""
    keys = [p for p in parameters if p in rows_a and p in rows_b]
    if not keys or len(rows_a) != len(rows_b):
        return None

    def keyed(rows: pd.DataFrame) -> pd.DataFrame:
        out = rows[keys + ["score"]].copy()
        out["_key"] = [json.dumps([round(v, 12) if isinstance(v, float) else v for v in values], default=str)
                       for values in rows[keys].itertuples(index=False)]
        return out

    a, b = keyed(rows_a), keyed(rows_b)
    if a["_key"].duplicated().any() or set(a["_key"]) != set(b["_key"]):
        return None
    merged = a.merge(b[["_key", "score"]], on="_key", suffixes=("", "_b"))
    return merged.assign(difference=merged["score"] - merged["score_b"])


def across_subsets(found: dict[str, SubsetFindings], parameters: list[str]) -> list[str]:
    """The sentences of ``compare_subsets``, and the learning rates that learned on each subset side by side."""
    if len(found) != 2:
        return []
    (a_name, a), (b_name, b) = found.items()
    compared = compare_subsets(found, parameters)
    if isinstance(compared, str):
        return [f"Sensitivity across subsets is not compared at epoch {a.budget}: {compared}."]
    lines = []
    for c in compared:
        text = (f"interaction permutation {_p(c.p)}, {_p(c.adjusted)} after Holm over "
                f"{count(len(compared), 'parameter')}; best "
                f"minus worst value {100 * c.spread[0]:.1f} points on {a_name}, {100 * c.spread[1]:.1f} on {b_name}")
        if c.holds:
            more = a_name if c.spread[0] > c.spread[1] else b_name
            lines.append(f"At epoch {c.budget}, {name(c.parameter)}'s effect differs between the subsets, larger on "
                         f"{more} ({text}).")
        else:
            lines.append(f"At epoch {c.budget}, no difference detected in {name(c.parameter)}'s effect between the "
                         f"subsets ({text}).")
    if "lr" in parameters:
        ranges = []
        for f in (a, b):
            learned = f.words[f.words["word"] == "learned"] if len(f.words) else f.words
            ranges.append(f"{f.subset} {_lr_range(learned['lr'])}" if f.learns() and len(learned) else
                          f"{f.subset}: no trial shown above chance")
        lines.append(f"Learning rates that learned at epoch {a.budget}: {'; '.join(ranges)}.")
    return lines


def _spread(codes: np.ndarray, y: np.ndarray) -> float:
    means = [y[codes == g].mean() for g in np.unique(codes)]
    return float(max(means) - min(means))


def data_budget_sentence(f: SubsetFindings) -> str:
    rows = f.scored[~f.scored["diverged"]]
    per_class = rows["train_clips"] / rows["num_classes"]
    if len(rows) < MIN_SLOPE_TRIALS or per_class.nunique() < 3:
        return (f"Data budget: {trial_count(len(rows))} over {per_class.nunique()} training-set sizes at epoch "
                f"{f.budget}, too few for a slope with an interval (at least {MIN_SLOPE_TRIALS} trials over 3 sizes).")
    slope, low, high = data_budget_slope(rows)
    claims = [f"{name(p)} {'matters' if v.holds else 'no effect detected'} ({_p(v.adjusted)} after Holm)"
              for (b, p), v in sorted(f.verdicts.items()) if b == f.budget and p in ("fraction_per_class", "cap_per_class")
              and not math.isnan(v.adjusted)]
    verdict = f"; the verdicts are the parameters' own tests: {', '.join(claims)}" if claims else ""
    return (f"Data budget at epoch {f.budget}: from {per_class.min():.0f} to {per_class.max():.0f} training clips per "
            f"class, val top-1 changes by {100 * slope:+.1f} points per doubling of the clips ({100 * low:+.1f} to "
            f"{100 * high:+.1f}, 90% t interval, {len(rows)} trials; other searched parameters vary alongside and add to "
            f"its spread){verdict}.")


def data_budget_slope(rows: pd.DataFrame) -> tuple[float, float, float]:
    """Points of val top-1 gained per doubling of the training clips per class (least squares on log2 clips), with
    its 90% t interval."""
    x = np.log2((rows["train_clips"] / rows["num_classes"]).to_numpy(float))
    return inference.slope_interval(x, rows["score"].to_numpy(float))


def pretraining_sentence(f: SubsetFindings) -> str:
    """Fine-tuned against from scratch at the headline budget, the one budget claims are made at: the verdict is the
    ``pretrained`` parameter's own (its permutation test, inside the Holm family of every parameter and subset), the
    Welch interval is the size of the difference."""
    rows = f.scored
    tuned, scratch = rows[rows["pretrained"].notna()], rows[rows["pretrained"].isna()]
    if min(len(tuned), len(scratch)) < 2:
        return (f"Fine-tuned vs from scratch: too few trials to compare at epoch {f.budget} ({len(tuned)} fine-tuned, "
                f"{len(scratch)} from scratch; at least 2 of each).")
    diff, low, high = welch_interval(tuned["score"].to_numpy(), scratch["score"].to_numpy())
    verdict = f.verdicts.get((f.budget, "pretrained"))
    if verdict is not None and verdict.holds:
        said = f"{'fine-tuning' if diff > 0 else 'from scratch'} is better ({_p(verdict.adjusted)} after Holm)"
    elif verdict is not None and not math.isnan(verdict.adjusted):
        said = f"no difference detected ({_p(verdict.adjusted)} after Holm)"
    else:
        said = "not tested"
    return (f"Fine-tuned vs from scratch at epoch {f.budget}: fine-tuned trials score {_pct(tuned['score'].mean())} "
            f"on average ({trial_count(len(tuned))}) against {_pct(scratch['score'].mean())} from scratch ({len(scratch)}): "
            f"{100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] (95%, Welch); {said}. Different learning "
            "rates are pooled in each group.")
