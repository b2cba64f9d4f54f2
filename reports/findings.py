"""What the data says, in sentences generated from it: per subset which parameters matter (with intervals), the
learning rates within the noise of the best, where training diverges and the noise floor; across subsets, whether
a parameter matters more on one. When the spread of results cannot be told apart from noise or from chance, the
sentences say exactly that and no importance ranking is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.comparisons import welch_interval
from reports.importance import Importance, difference, importances
from reports.scaling import Exponent, batch_exponent
from reports.scores import NoiseFloor, at_budget, chance, diverged, noise_floor, search_trials

MIN_TRIALS = 6  # fewer scored trials at a budget than this and no importance is estimated there
MIN_COMPARED = 3  # the headline budget is the deepest one at least this many trials reached
NAMES = {"lr": "learning rate", "batch_size": "batch size", "weight_decay": "weight decay", "warmup_epochs": "warm-up",
         "linear_scaling": "linear scaling of the lr", "fraction_per_class": "training fraction per class",
         "cap_per_class": "training clips per class (cap)", "plateau_patience": "plateau patience",
         "plateau_factor": "plateau factor"}


def name(parameter: str) -> str:
    return NAMES.get(parameter, parameter.replace("_", " "))


def searched_frame(trials: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """The trials with a column per searched parameter: the config value the trial trained with, or for a switch
    that is not a config field (linear_scaling) the sampled value."""
    out = trials.copy()
    for parameter in parameters:
        if parameter not in out:
            out[parameter] = [json.loads(s).get(parameter) for s in out["sampled"]]
    return out


@dataclass
class SubsetFindings:
    subset: str
    budget: int  # the epochs the headline figures are measured at
    scored: pd.DataFrame  # the trials compared at that budget, with ``score``
    noise: NoiseFloor
    chance: float | None
    importances: dict[int, dict[str, Importance]] = field(default_factory=dict)  # budget -> parameter -> importance
    scored_at: dict[int, pd.DataFrame] = field(default_factory=dict)  # every budget's compared trials
    noise_at: dict[int, NoiseFloor] = field(default_factory=dict)  # every budget's noise floor
    exponent: Exponent | str | None = None
    sentences: list[str] = field(default_factory=list)

    @property
    def best(self) -> pd.Series | None:
        return self.scored.loc[self.scored["score"].idxmax()] if len(self.scored) else None

    @property
    def detectable(self) -> bool:
        return detectable(self.scored, self.noise, self.chance)

    def mattering(self, budget: int | None = None) -> dict[str, Importance]:
        found = self.importances.get(self.budget if budget is None else budget, {})
        return {p: i for p, i in found.items() if i.matters(len(found))} if self.detectable else {}


def detectable(rows: pd.DataFrame, noise: NoiseFloor, chance_level: float | None) -> bool:
    """Whether the scores rise above chance and spread beyond the noise, so a ranking means something."""
    if len(rows) < 2:
        return False
    best, worst = rows["score"].max(), rows["score"].min()
    above_chance = chance_level is None or best > chance_level + 1.96 * noise.sd
    return above_chance and not noise.within(best, worst)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _interval(imp: Importance) -> str:
    return f"{imp.value:.2f} [{imp.low:.2f}, {imp.high:.2f}]"


def analyse_subset(trials: pd.DataFrame, epochs: pd.DataFrame, subset: str, parameters: list[str],
                   levels: list[int]) -> SubsetFindings:
    search = searched_frame(search_trials(trials, subset), parameters)
    final = levels[-1] if levels else int(search["epochs_planned"].max())
    # The headline budget: the deepest at which at least MIN_COMPARED trials can be told apart (ASHA lets the
    # better trials go on, so a deeper budget compares fewer, better trials; at the first rung the trials may not
    # have started learning); else the deepest enough trials reached, or any trial did.
    scored_at = {b: at_budget(search, epochs, b, final) for b in levels or [final]}
    noise_at = {b: noise_floor(trials, subset, epochs, b if b < final else None, rows) for b, rows in scored_at.items()}
    chance_level = chance(trials, subset)
    deepest = [b for b in sorted(scored_at, reverse=True) if len(scored_at[b])]
    compared = [b for b in deepest if len(scored_at[b]) >= MIN_COMPARED]
    budget = next((b for b in compared if detectable(scored_at[b], noise_at[b], chance_level)),
                  (compared or deepest or [final])[0])
    noise = noise_at.get(budget) or noise_floor(trials, subset)
    found = SubsetFindings(subset, budget, scored_at.get(budget, pd.DataFrame()), noise, chance_level)
    found.scored_at, found.noise_at = scored_at, noise_at
    for b, rows in scored_at.items():
        if len(rows) >= MIN_TRIALS:
            found.importances[b] = importances(rows, parameters)
    if "batch_size" in parameters and "lr" in search:
        found.exponent = batch_exponent(found.scored) if len(found.scored) else None
    found.sentences = _subset_sentences(found, search, final, parameters)
    return found


def _subset_sentences(found: SubsetFindings, search: pd.DataFrame, final: int, parameters: list[str]) -> list[str]:
    rows, lines = found.scored, []
    where = f"epoch {found.budget}, the last epoch of the completed trials" if found.budget >= final else \
        f"epoch {found.budget}, an ASHA rung"
    if rows.empty:
        return [f"{found.subset}: no trial has a score yet."]
    chance_text = f" (chance {_pct(found.chance)})" if found.chance else ""
    lines.append(f"{found.subset}: {len(rows)} trials compared at {where}: val top-1 from {_pct(rows['score'].min())} "
                 f"to {_pct(rows['score'].max())}{chance_text}. Noise floor: {found.noise.describe()}.")
    best = found.best
    if not found.detectable:
        cause = "chance" if found.chance and best["score"] <= found.chance + 1.96 * found.noise.sd else "the noise floor"
        lines.append(f"The spread of results cannot be told apart from {cause}: no detectable sensitivity, so no "
                     "importance ranking is given.")
    elif found.budget not in found.importances:
        varied = [name(p) for p in parameters if p in rows and rows[p].nunique(dropna=False) > 1]
        effect = f"{' and '.join(varied)} {'moves' if len(varied) == 1 else 'move'} val top-1 beyond the noise floor " \
                 f"here, but" if varied else "Scores spread beyond the noise floor, but"
        lines.append(f"{effect[0].upper()}{effect[1:]} {len(rows)} trials are too few for an importance with an "
                     f"interval ({MIN_TRIALS} needed); the importance plot shows the budgets that had enough.")
    else:
        ranked = sorted(found.importances.get(found.budget, {}).items(), key=lambda kv: -kv[1].value)
        mattering = found.mattering()
        if not mattering:
            lines.append("No detectable sensitivity: no searched parameter explains the spread better than shuffled "
                         "scores do, so no importance ranking is given.")
        for parameter, imp in ranked:
            if parameter in mattering:
                lines.append(f"{name(parameter).capitalize()} matters: it explains {_interval(imp)} of the variance of "
                             f"the score (90% interval; permutation p = {imp.p:.3f}, {imp.trials} trials).")
        quiet = [f"{name(p)} ({_interval(i)})" for p, i in ranked if p not in mattering]
        if mattering and quiet:
            lines.append(f"Not detectable: {', '.join(quiet)}.")
    if "lr" in rows and found.detectable:
        near = rows[[found.noise.within(best["score"], s) for s in rows["score"]]]
        lines.append(f"Learning rates {near['lr'].min():.3g} to {near['lr'].max():.3g} score within the noise floor of "
                     f"the best ({_pct(best['score'])} at lr {best['lr']:.3g}; {len(near)} of {len(rows)} trials).")
    others = [f"epoch {b} ({len(r)} trials): {_pct(r['score'].min())} to {_pct(r['score'].max())}, "
              f"{'beyond' if detectable(r, found.noise_at[b], found.chance) else 'within'} its noise floor"
              for b, r in sorted(found.scored_at.items()) if b != found.budget and len(r)]
    if others:
        lines.append(f"At the other budgets: {'; '.join(others)}.")
    lines.extend(divergence_sentences(search, parameters))
    if {"fraction_per_class", "cap_per_class", "sampling"} & set(parameters) and len(rows) >= 3:
        lines.append(data_budget_sentence(rows))
    if "pretrained" in parameters:
        lines.append(pretraining_sentence(found))
    if isinstance(found.exponent, Exponent):
        e = found.exponent
        inside = [rule for rule, ok in e.rules().items() if ok]
        verdict = f"consistent with the {' and the '.join(inside)} rule" if inside else \
            "consistent with neither the linear (alpha = 1) nor the square-root (alpha = 0.5) rule"
        lines.append(f"The best learning rate scales as batch^{e.alpha:.2f} [{e.low:.2f}, {e.high:.2f}] (90% interval, "
                     f"{e.trials} trials): {verdict}.")
    elif isinstance(found.exponent, str):
        lines.append(f"Batch-size exponent not estimated: {found.exponent}.")
    if "best_val_top1" in rows and found.budget >= final:
        gap = best["best_val_top1"] - best["score"]
        lines.append(f"The best trial's best epoch scored {_pct(best['best_val_top1'])}, {100 * gap:.1f} points above its "
                     "last epoch: a maximum over epochs of the reported split, optimistic; the study's score is the last "
                     "epoch.")
    return lines


def divergence_sentences(search: pd.DataFrame, parameters: list[str]) -> list[str]:
    """Per optimizer (and batch size when searched): the largest lr that trained stably, the smallest that diverged."""
    if "lr" not in search or search["lr"].isna().all():
        return []
    keys = [k for k in ("optimizer", "batch_size") if k in parameters or (k == "optimizer" and search[k].nunique() > 1)]
    lines = []
    for key, rows in search.groupby(keys) if keys else [((), search)]:
        label = ", ".join(f"{k} {v}" for k, v in zip(keys, key if isinstance(key, tuple) else (key,)))
        bad = diverged(rows)["lr"]
        stable = rows.loc[~rows.index.isin(bad.index) & rows["stop_reason"].isin(["completed", "stopped_by_asha"]), "lr"]
        if bad.empty:
            line = f"no trial diverged; the largest learning rate tried, {rows['lr'].max():.3g}, trained stably."
        else:
            stable_text = f"the largest that trained stably was {stable.max():.3g}" if len(stable) else "none trained"
            line = f"training diverged from learning rate {bad.min():.3g} ({len(bad)} trials); {stable_text}."
        lines.append(f"{label}: {line}" if label else line[0].upper() + line[1:])
    return lines


def across_subsets(per_subset: dict[str, SubsetFindings]) -> list[str]:
    """The seed's question: does sensitivity differ between the subsets? One sentence per parameter."""
    if len(per_subset) != 2:
        return []
    (a_name, a), (b_name, b) = per_subset.items()
    if not (a.detectable and b.detectable):
        quiet = [f.subset for f in (a, b) if not f.detectable]
        return [f"Sensitivity is not compared across subsets: {' and '.join(quiet)} show no detectable sensitivity."]
    lines = []
    shared = set(a.importances.get(a.budget, {})) & set(b.importances.get(b.budget, {}))
    for parameter in sorted(shared):
        ia, ib = a.importances[a.budget][parameter], b.importances[b.budget][parameter]
        diff, low, high = difference(ia, ib)
        if low > 0 or high < 0:
            more, less, (im, il) = (a_name, b_name, (ia, ib)) if diff > 0 else (b_name, a_name, (ib, ia))
            lines.append(f"{name(parameter).capitalize()} matters more on {more}: {_interval(im)} vs {_interval(il)} on "
                         f"{less} (difference {abs(diff):.2f} [{min(abs(low), abs(high)):.2f}, "
                         f"{max(abs(low), abs(high)):.2f}]).")
        else:
            lines.append(f"{name(parameter).capitalize()} matters about equally on both: {_interval(ia)} on {a_name} vs "
                         f"{_interval(ib)} on {b_name} (difference {diff:+.2f} [{low:+.2f}, {high:+.2f}], interval "
                         "includes 0).")
    ranges = []
    for f in (a, b):
        if "lr" in f.scored and len(f.scored):
            near = f.scored[[f.noise.within(f.best["score"], s) for s in f.scored["score"]]]
            ranges.append(f"{f.subset} {near['lr'].min():.3g} to {near['lr'].max():.3g}")
    if len(ranges) == 2:
        lines.append(f"Best learning-rate range (within the noise of each subset's best): {'; '.join(ranges)}.")
    return lines


def importance_table_rows(per_subset: dict[str, SubsetFindings]) -> list[tuple]:
    """(subset, budget, parameter, importance) for every estimate, for the table and the plot."""
    return [(s, b, p, i) for s, f in per_subset.items() for b, found in sorted(f.importances.items())
            for p, i in found.items()]



def data_budget_slope(rows: pd.DataFrame, seed: int = 0) -> tuple[float, float, float]:
    """Points of val top-1 gained per doubling of the training clips per class (least squares on log2 clips), with
    its 90% bootstrap interval."""
    x = np.log2((rows["train_clips"] / rows["num_classes"]).to_numpy(float))
    y = rows["score"].to_numpy(float)
    slope = lambda i: np.polyfit(x[i], y[i], 1)[0] if np.ptp(x[i]) > 0 else np.nan  # noqa: E731
    draws = [slope(i) for i in np.random.default_rng(seed).integers(0, len(y), (1000, len(y)))]
    low, high = np.nanquantile(draws, [0.05, 0.95])
    return float(slope(np.arange(len(y)))), float(low), float(high)


def data_budget_sentence(rows: pd.DataFrame) -> str:
    per_class = rows["train_clips"] / rows["num_classes"]
    slope, low, high = data_budget_slope(rows)
    return (f"Data budget: from {per_class.min():.0f} to {per_class.max():.0f} training clips per class, val top-1 "
            f"changes by {100 * slope:+.1f} points per doubling of the clips ({100 * low:+.1f} to {100 * high:+.1f}, 90% "
            f"interval, {len(rows)} trials).")


def pretraining_sentence(found: SubsetFindings) -> str:
    """Fine-tuned against from scratch at the deepest budget with at least two trials in each group (ASHA may leave
    one group too thin at the headline budget)."""
    def groups(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        return rows[rows["pretrained"].notna()], rows[rows["pretrained"].isna()]

    usable = [b for b, rows in sorted(found.scored_at.items(), reverse=True)
              if len(rows) and min(len(g) for g in groups(rows)) >= 2]
    if not usable:
        tuned, scratch = groups(found.scored)
        return (f"Pre-training: too few trials to compare at any budget ({len(tuned)} fine-tuned, {len(scratch)} from "
                f"scratch at epoch {found.budget}).")
    budget = usable[0]
    tuned, scratch = groups(found.scored_at[budget])
    diff, low, high = welch_interval(tuned["score"].to_numpy(), scratch["score"].to_numpy())
    verdict = "fine-tuning is better" if low > 0 else ("from scratch is better" if high < 0 else "no detectable difference")
    return (f"Pre-training: at epoch {budget}, fine-tuned trials score {_pct(tuned['score'].mean())} on average "
            f"({len(tuned)} trials) against {_pct(scratch['score'].mean())} from scratch ({len(scratch)}): "
            f"{100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] (95%, Welch); {verdict}. Different learning "
            "rates are pooled in each group.")
