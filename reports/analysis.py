"""Numbers behind the plots: hyperparameter importance, expected best accuracy vs budget, seed noise, and
bootstrap confidence for "config A beats config B". Pure functions of the result tables (and Optuna)."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pandas as pd
from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the report builds throwaway in-memory studies

# Published ST-GCN figures (Yan et al., AAAI 2018): Kinetics-skeleton 400 classes, and Kinetics-Motion.
PUBLISHED = {"kinetics-392": {"top1": 0.307, "top5": 0.528, "what": "Kinetics-skeleton (400 classes)"},
             "kinetics-motion": {"top1": 0.724, "top5": None, "what": "Kinetics-Motion (30 classes)"}}


def importances(study: optuna.Study, trials: pd.DataFrame, seed: int = 0) -> tuple[dict[str, dict], list[str]]:
    """fANOVA and PED-ANOVA importances of the searched parameters, scored by each trial's best val top-1
    (Optuna's own value is the last reported one, which ASHA cuts short). Returns (evaluator -> {param:
    importance}, notes on what could not be computed and why)."""
    best = trials.set_index("index")["best_val_top1"].to_dict()
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE and not np.isnan(best.get(t.number, np.nan))]
    notes: list[str] = []
    if len(finished) < 3:
        return {}, [f"importance needs at least 3 scored trials, the study has {len(finished)}"]
    scored = optuna.create_study(direction="maximize")
    for t in finished:
        scored.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                   value=float(best[t.number])))
    out = {}
    for name, evaluator in (("fANOVA", FanovaImportanceEvaluator(seed=seed)), ("PED-ANOVA", PedAnovaImportanceEvaluator())):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = dict(get_param_importances(scored, evaluator=evaluator, normalize=True))
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            notes.append(f"{name} not applicable: {exc}")
    return out, notes


def expected_max(scores: np.ndarray) -> np.ndarray:
    """Dodge et al. (2019), "Show your work": the expected maximum of n draws (with replacement) from the
    observed scores, for n = 1..N. E[max_n] = sum_i v_(i) * ((i/N)^n - ((i-1)/N)^n), v sorted ascending."""
    v = np.sort(np.asarray(scores, dtype=float)[~np.isnan(scores)])
    count = len(v)
    if count == 0:
        return np.array([])
    i = np.arange(1, count + 1)
    return np.array([np.sum(v * ((i / count) ** n - ((i - 1) / count) ** n)) for n in range(1, count + 1)])


def seed_noise(trials: pd.DataFrame) -> dict[str, float]:
    """Per subset, the seed-noise floor: the mean over repeated configs of the std of best val top-1 across
    seeds. Configs count as repeated when the study re-ran them with other seeds (``repeat_of``)."""
    if "repeat_of" not in trials or trials["repeat_of"].isna().all():
        return {}
    noise = {}
    for subset, rows in trials.groupby("subset"):
        groups = rows.assign(origin=rows["repeat_of"].fillna(rows["trial_id"])).groupby("origin")["best_val_top1"]
        spreads = [g.std(ddof=1) for _, g in groups if g.notna().sum() >= 2]
        if spreads:
            noise[subset] = float(np.mean(spreads))
    return noise


def bootstrap_beats(a: np.ndarray, b: np.ndarray, draws: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Seed scores of config A and B -> (mean difference, 95% CI low, high) of mean(A) - mean(B)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    diffs = rng.choice(a, (draws, len(a))).mean(1) - rng.choice(b, (draws, len(b))).mean(1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(a.mean() - b.mean()), float(low), float(high)


def seed_comparisons(trials: pd.DataFrame) -> list[list]:
    """Per subset, the best repeated config against each other repeated config: mean difference of best val
    top-1 over seeds with its 95% bootstrap interval, and whether the interval excludes zero."""
    table = [["Subset", "config A (experiment)", "config B (experiment)", "A - B top-1", "95% CI low", "95% CI high",
              "verdict"]]
    if "repeat_of" not in trials or trials["repeat_of"].isna().all():
        return table
    for subset, rows in trials.groupby("subset"):
        rows = rows.assign(origin=rows["repeat_of"].fillna(rows["trial_id"]))
        ids = rows.set_index("trial_id")["experiment_id"]
        groups = {o: g["best_val_top1"].dropna().to_numpy() for o, g in rows.groupby("origin")}
        groups = {o: v for o, v in groups.items() if len(v) >= 2}
        if len(groups) < 2:
            continue
        order = sorted(groups, key=lambda o: -groups[o].mean())
        for other in order[1:]:
            diff, low, high = bootstrap_beats(groups[order[0]], groups[other])
            table.append([subset, int(ids[order[0]]), int(ids[other]), diff, low, high,
                          "A beats B" if low > 0 else "not distinguishable from seed noise"])
    return table
