"""The study's answer as numbers and codes: what the page, the workbook, the console and ``summary.json``'s
``answer`` and ``trials`` say, computed once here so that no rendering runs a test or reads a score of its own.

Per subset, at its headline budget: does it learn (the ``learning`` family's verdict), which searched parameters
matter with their effect in points, the learning rates that learned, or why it cannot tell yet; across the subsets,
whether a parameter's effect differs; the next step as data (what to run, how many trials per subset, how long that
takes at this study's measured pace); and one row per trial with its score at every budget and its verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from common.files import is_uri
from reports import inference
from reports.findings import MIN_TESTED, Interaction, SubsetFindings, compare_subsets, searched_frame
from reports.inference import ALPHA
from reports.power import power_at, trials_needed
from reports.scaling import Exponent
from reports.scores import INDEPENDENT, at_budget, expected_max, expected_max_band, search_trials
from reports.table import plain

MATTERS, NOT_DETECTED, NOT_TESTABLE = "matters", "not_detected", "not_testable"


@dataclass(frozen=True)
class ParameterAnswer:
    parameter: str  # the config field, e.g. "lr"
    verdict: str  # MATTERS, NOT_DETECTED or NOT_TESTABLE
    trials: int
    p: float | None  # the permutation test's p, uncorrected
    p_holm: float | None
    level: float  # the corrected level the smallest p of the family is held to (alpha / family size)
    effect: float | None  # best minus worst value's mean val top-1 (a fraction: 0.05 is 5 points)
    detectable: float | None  # NOT_DETECTED: the best-minus-worst difference found with 80% probability
    reach: float | None  # the smallest p this test can give on these trials (the most extreme outcome); None: too few
    # trials for the test to run at all
    trials_needed: int | None  # trials per subset from which the test can reach the level and detect ``effect``
    power: float | None  # MATTERS: how often the test finds the response measured here; below 80%, the effect found
    # is likely overstated (a test with little power finds an effect mostly when the noise happened to enlarge it)


@dataclass(frozen=True)
class SubsetAnswer:
    subset: str
    budget: int  # the headline budget (epochs)
    final: bool  # the budget is the last epoch (completed trials), not an ASHA rung
    trials: int  # trials scored at the budget
    chance: float | None
    learns: bool | None  # None: not tested (no class count recorded, or no trial scored)
    learns_p_holm: float | None
    learned: int
    at_chance: int
    diverged: int
    best_score: float | None  # the highest score at the budget: one run, the highest of ``trials``
    best_experiment_id: int | None
    best_lr: float | None
    working_lr: tuple[float, float] | None  # the lr range whose trials all learned, when they form one range
    parameters: tuple[ParameterAnswer, ...]
    could_be_best_from: float | None  # with measured seed noise: scores from here up could be the best config's (95%)
    exponent: ExponentFit | None  # lr* ~ batch^alpha at the headline budget, where estimated


@dataclass(frozen=True)
class ExponentFit:
    alpha: float
    low: float  # 90% t interval
    high: float
    lr_at_paper_batch: float  # lr* at batch 256 on the fitted line


@dataclass(frozen=True)
class ExpectedBest:
    """Dodge et al. (2019): the expected best score of n independent random draws of the space, n = 1..draws, at one
    budget every draw reached, with a 90% bootstrap band."""
    subset: str
    budget: int
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class AcrossSubsets:
    budget: int | None
    compared: bool  # False: not compared, ``why`` says why
    why: str | None
    differs: tuple[str, ...]  # parameters whose effect differs between the subsets (Holm over the parameters)
    tested: tuple[str, ...]  # parameters compared
    p_holm: tuple[float, ...]  # per tested parameter


@dataclass(frozen=True)
class NextStep:
    action: str  # "add_trials", "train_longer", "repeat_seeds", "done" or "resume" (no trial recorded yet)
    trials_per_subset: int | None  # add_trials: the study's trial count per subset the power analysis asks for
    added_trials: int | None  # per subset, beyond what the study ran: what the command adds to it
    expected_s: float | None  # the added trials' run time at this study's measured pace (``pace_s``)
    command: str | None
    because: tuple[str, ...]  # the subsets and parameters that asked for it, e.g. "kinetics-motion: lr"
    repeats: int | None  # repeat_seeds: each subset's best configs the command re-runs (--repeats K)
    seeds: int | None  # repeat_seeds: the new seeds each of them gets (--seeds N)


@dataclass(frozen=True)
class TrialRow:
    subset: str
    trial_id: str
    experiment_id: int | None
    folder: str | None
    config: dict[str, float | int | str | bool | None]  # the searched parameters' values, by parameter
    scores: dict[str, float]  # epoch (as text, a JSON key) -> val top-1 at that budget
    stop_reason: str | None
    epochs_run: int | None
    epochs_planned: int | None
    verdict: str | None  # at the headline budget: "learned", "at chance", "diverged"; None: not scored there
    repeat_of: str | None
    folder_link: str | None  # the trial's experiment folder, relative to the report
    curves_link: str | None  # its accuracy curves, relative to the report (the report's copy when it marks a stop)
    curve: tuple[float | None, ...]  # val top-1 at epochs 1, 2, ... (None where it was not measured: NaN)
    train_clips_per_class: float | None
    could_be_best: bool  # in the set holding the truly best config at the headline budget (95%; seed noise measured)
    record: dict[str, float | int | str | bool | list | None]  # its trials.parquet row, RECORD_FIELDS of it: what
    # the workbook's experiment sheet shows


@dataclass(frozen=True)
class StudyAnalysis:
    subsets: tuple[SubsetAnswer, ...]
    across: AcrossSubsets
    next_step: NextStep
    trials: tuple[TrialRow, ...]
    expected_best: tuple[ExpectedBest, ...]

    def to_json(self) -> dict:
        """The ``answer``, ``trials`` and ``expected_best`` of summary.json: every key a field name above."""
        data = asdict(self)
        return {"answer": {k: data[k] for k in ("subsets", "across", "next_step")}, "trials": data["trials"],
                "expected_best": data["expected_best"]}


# -------------------------------------------------------------------------------------------------- subsets
def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def parameter_answers(f: SubsetFindings, parameters: list[str]) -> tuple[ParameterAnswer, ...]:
    """Each searched parameter's verdict at the headline budget; one with too few trials there to be tested at all
    (fewer than findings.MIN_TESTED) is not testable, with the trials the power analysis asks for."""
    family = max(f.family_sizes.get("parameters", 0), 1)
    level = ALPHA / family
    tests = f.tests.get(f.budget, {})
    out = []
    for parameter in sorted(parameters):
        test, verdict = tests.get(parameter), f.verdicts.get((f.budget, parameter))
        if test is None or verdict is None:
            if len(f.scored) < MIN_TESTED and parameter in f.scored and f.scored[parameter].nunique() > 1:
                out.append(ParameterAnswer(parameter, NOT_TESTABLE, len(f.scored), None, None, level, None, None, None,
                                           trials_needed(parameter, f.scored, f.noise.sd, level), None))
            continue
        reach, power, found_at = inference.reachable_p(f.scored, parameter), None, None
        if verdict.holds:
            kind, needed = MATTERS, None
            power = power_at(f.scored, parameter, len(f.scored), f.noise.sd, level)
        elif reach > level or f.detectable.get((f.budget, parameter)) is None:  # it cannot find even the largest
            # difference 4 times in 5; the noise planted: the spread within the test's groups, unless seeds measured it
            noise = f.noise.sd if f.noise.source == "seeds" else max(f.noise.sd, _number(test.within_sd) or 0.0)
            kind, needed = NOT_TESTABLE, trials_needed(parameter, f.scored, noise, level)
        else:
            kind, needed = NOT_DETECTED, None
            found_at = f.detectable[(f.budget, parameter)]
        out.append(ParameterAnswer(parameter, kind, test.trials, _number(test.p), _number(verdict.adjusted), level,
                                   _number(test.effect), found_at, reach, needed, power))
    return tuple(out)


def working_lr(words: pd.DataFrame) -> tuple[float, float] | None:
    """The lr range whose trials all learned, when the trials that learned are not interleaved with ones that did
    not (else no single range holds)."""
    if words.empty or "lr" not in words or words["lr"].isna().any():
        return None
    learned = words[words["word"] == "learned"]
    if learned.empty:
        return None
    low, high = float(learned["lr"].min()), float(learned["lr"].max())
    inside = words[(words["lr"] >= low) & (words["lr"] <= high)]
    return (low, high) if (inside["word"] == "learned").all() else None


def could_be_best_from(f: SubsetFindings) -> float | None:
    """The lowest score that could still be the best config's at the headline budget (Gupta's 95% set), where the
    seed noise was measured; None otherwise."""
    rows = f.scored[~f.scored["diverged"]] if len(f.scored) else f.scored
    if f.noise.source != "seeds" or f.noise.dof < 1 or rows.empty:
        return None
    spread = inference.gupta_constant(len(rows), dof=f.noise.dof) * math.sqrt(2) * f.noise.sd
    return float(rows["score"].max() - spread)


def exponent_fit(f: SubsetFindings) -> ExponentFit | None:
    e = f.exponent
    return ExponentFit(e.alpha, e.low, e.high, e.lr_at_paper_batch) if isinstance(e, Exponent) else None


def subset_answer(f: SubsetFindings, parameters: list[str]) -> SubsetAnswer:
    rows, words = f.scored, f.words
    verdict = f.learning.get(f.budget)
    counts = words["word"].value_counts() if len(words) else pd.Series(dtype=int)
    best = f.best
    return SubsetAnswer(
        f.subset, int(f.budget), f.budget >= f.final, len(rows), f.chance,
        None if verdict is None or math.isnan(verdict.adjusted) else bool(verdict.holds),
        None if verdict is None else _number(verdict.adjusted),
        int(counts.get("learned", 0)), int(counts.get("at chance", 0)), int(counts.get("diverged", 0)),
        None if best is None else float(best["score"]),
        None if best is None else int(best["experiment_id"]),
        None if best is None or "lr" not in best else _number(best["lr"]),
        working_lr(words) if f.learns() else None, parameter_answers(f, parameters), could_be_best_from(f),
        exponent_fit(f))


def across_answer(found: dict[str, SubsetFindings], parameters: list[str]) -> AcrossSubsets:
    if len(found) != 2:
        return AcrossSubsets(None, False, "one subset only", (), (), ())
    budget = next(iter(found.values())).budget
    compared = compare_subsets(found, parameters)
    if isinstance(compared, str):
        return AcrossSubsets(budget, False, compared, (), (), ())
    return _across(budget, compared)


def _across(budget: int, compared: list[Interaction]) -> AcrossSubsets:
    return AcrossSubsets(budget, True, None, tuple(c.parameter for c in compared if c.holds),
                         tuple(c.parameter for c in compared), tuple(float(c.adjusted) for c in compared))


# ------------------------------------------------------------------------------------------------ next step
# The seed repeats the next step asks for once the verdicts need nothing more: the best config against the runner-up
# from new seeds alone (reports/comparisons.py), and a noise floor on 2 x (3 - 1) = 4 degrees of freedom per subset.
REPEAT_CONFIGS, REPEAT_SEEDS = 2, 3


def wall_s(trials: pd.DataFrame) -> float | None:
    """The study's wall time over ``trials``: from the first one's start to the last update. It holds what the
    study's own machines did (concurrency, start-up, early stops included)."""
    if trials.empty or "started_at" not in trials:
        return None
    start, end = pd.to_datetime(trials["started_at"]).min(), pd.to_datetime(trials["updated_at"]).max()
    if pd.isna(start) or pd.isna(end) or end <= start:
        return None
    return float((end - start).total_seconds())


def pace_s(trials: pd.DataFrame) -> float | None:
    """Seconds of the study's wall time per trial run."""
    wall = wall_s(trials)
    return None if wall is None else wall / len(trials)


def epoch_pace_s(trials: pd.DataFrame) -> float | None:
    """Seconds of the study's wall time per epoch run: for trials that run to their end, as seed repeats do."""
    wall, epochs = wall_s(trials), trials["epochs_run"].sum() if "epochs_run" in trials else 0
    return None if wall is None or not epochs else wall / float(epochs)


def next_step(answers: tuple[SubsetAnswer, ...], trials: pd.DataFrame, manifest: dict, root: Path) -> NextStep:
    """What to run next: the study itself while no trial is recorded; a later budget when no subset is shown above
    chance (nothing can be attributed then); more trials in this study when a parameter of a subset that learns could
    not be tested (as many as the power analysis asks for); a later budget for a subset not shown above chance; else
    the verdicts need nothing more, and a study without seed repeats is asked for them (without, the noise floor is
    only the validation set's sampling noise): added to it, or, when it was started with them, run by resuming it."""
    if not answers:  # no trial recorded yet: a study just started, or stopped before its first epoch ended
        return NextStep("resume", None, None, None, resume_command(manifest, root), (), None, None)
    silent = tuple(a.subset for a in answers if not a.learns)
    if len(silent) == len(answers):
        return NextStep("train_longer", None, None, None, None, silent, None, None)
    asked = [(a.subset, p) for a in answers if a.learns for p in a.parameters if p.verdict == NOT_TESTABLE]
    if asked:
        counts = [p.trials_needed for _, p in asked]
        because = tuple(f"{s}: {p.parameter}" for s, p in asked)
        if any(c is None for c in counts):
            return NextStep("add_trials", None, None, None, None, because, None, None)
        per_subset = max(counts)
        ran = manifest.get("request", {}).get("num_samples") or max((a.trials for a in answers), default=0)
        added = per_subset - ran
        pace = pace_s(search_trials(trials))
        expected = None if pace is None else pace * added * len(answers)
        return NextStep("add_trials", per_subset, added, expected,
                        resume_command(manifest, root, f"--add-trials {added}"), because, None, None)
    if silent:
        return NextStep("train_longer", None, None, None, None, silent, None, None)
    searched = search_trials(trials)
    if len(searched) < len(trials):  # the repeats ran
        return NextStep("done", None, None, None, None, (), None, None)
    request = manifest.get("request", {})
    started_with = bool(request.get("repeats") and request.get("seeds"))  # its repeats not run yet: --resume runs them
    configs = request["repeats"] if started_with else min(REPEAT_CONFIGS, min(a.trials for a in answers))
    seeds = request["seeds"] if started_with else REPEAT_SEEDS
    added = configs * seeds
    pace = epoch_pace_s(searched)
    epochs = searched["epochs_planned"].max() if "epochs_planned" in searched else None
    expected = None if pace is None or pd.isna(epochs) else pace * float(epochs) * added * len(answers)
    growth = () if started_with else (f"--repeats {configs} --seeds {seeds}",)
    return NextStep("repeat_seeds", None, added, expected, resume_command(manifest, root, *growth),
                    tuple(a.subset for a in answers), configs, seeds)


def resume_command(manifest: dict, root: Path, *growth: str) -> str:
    """The command that resumes this study (the study at ``root``) with ``growth``, the options that add to it. Its
    storage is named unless it is ./studies of the directory the report is built from."""
    space = str(manifest.get("request", {}).get("space") or root.name)
    parts = ["python -m study.run", f"--space {space.rsplit('/', 1)[-1].removesuffix('.yaml')}", f"--name {root.name}"]
    tune_storage = str(manifest.get("tune_storage") or "")
    if is_uri(tune_storage):
        parts.append(f"--storage {tune_storage.rsplit('/', 1)[0]}")
    elif root.parent.resolve() != (Path.cwd() / "studies").resolve():
        parts.append(f"--storage {root.parent.resolve()}")
    return " ".join([*parts, "--resume", *growth])


# ---------------------------------------------------------------------------------------------------- trials
Links = Callable[[str], tuple[str | None, str | None]]
# The trials.parquet columns a trial's row in the workbook is written from (reports/spreadsheet.py).
RECORD_FIELDS = ("experiment_id", "folder", "subset", "index", "epochs_run", "epochs_planned", "optimizer", "momentum",
                 "nesterov", "beta1", "beta2", "lr", "batch_size", "scheduler", "milestones", "gamma", "plateau_patience",
                 "plateau_factor", "warmup_epochs", "weight_decay", "fraction_per_class", "cap_per_class", "sampling",
                 "seed", "train_clips", "data_source", "pretrained", "pretrained_sha256", "model_variant",
                 "last_train_top1", "last_val_top1", "best_val_top1", "best_epoch", "last_val_top5", "last_motion_top1",
                 "stop_reason", "wall_time_s", "optuna_number", "sampled_by", "retries", "error", "repeat_of")


def could_be_best(f: SubsetFindings) -> set[str]:
    """The trials in the 95% set that holds the best config at the headline budget (Gupta), seed noise measured."""
    threshold = could_be_best_from(f)
    if threshold is None:
        return set()
    rows = f.scored[~f.scored["diverged"]]
    return set(rows.loc[rows["score"] >= threshold, "trial_id"])


def trial_rows(trials: pd.DataFrame, epochs: pd.DataFrame, found: dict[str, SubsetFindings], parameters: list[str],
               links: Links) -> tuple[TrialRow, ...]:
    """Every trial, search and seed repeats, in the subsets' order, with the searched parameters' values, its score at
    each budget it was compared at, its verdict at the headline budget, and ``links(folder)``: its folder and its
    curves, relative to the report."""
    scores: dict[str, dict[str, float]] = {}
    words: dict[str, str] = {}
    for f in found.values():
        for budget, rows in f.scored_at.items():
            for trial_id, score in zip(rows["trial_id"], rows["score"]):
                scores.setdefault(trial_id, {})[str(budget)] = float(score)
        if len(f.words):
            words.update(zip(f.words["trial_id"], f.words["word"]))
    candidates = {trial_id for f in found.values() for trial_id in could_be_best(f)}
    if trials.empty:
        return ()
    curves = {trial_id: rows.sort_values("epoch") for trial_id, rows in epochs.groupby("trial_id")} if len(epochs) else {}
    order = {subset: i for i, subset in enumerate(found)}
    rows = searched_frame(trials, parameters)
    rows = rows.assign(_order=rows["subset"].map(order).fillna(len(order))).sort_values(["_order", "index"])
    return tuple(TrialRow(
        str(row["subset"]), str(row["trial_id"]), _integer(row.get("experiment_id")), _text(row.get("folder")),
        {p: _value(row.get(p)) for p in parameters}, scores.get(row["trial_id"], {}), _text(row.get("stop_reason")),
        _integer(row.get("epochs_run")), _integer(row.get("epochs_planned")), words.get(row["trial_id"]),
        _text(row.get("repeat_of")), *links(str(row.get("folder"))), _curve(curves.get(row["trial_id"])),
        _number(row["train_clips"] / row["num_classes"]) if pd.notna(row.get("train_clips")) and pd.notna(
            row.get("num_classes")) else None, row["trial_id"] in candidates,
        {key: _record_value(row.get(key)) for key in RECORD_FIELDS}) for _, row in rows.iterrows())


def _record_value(value) -> float | int | str | bool | list | None:
    if hasattr(value, "tolist"):  # a list held as an array (milestones)
        return value.tolist()
    return _value(value)


def _curve(rows: pd.DataFrame | None) -> tuple[float | None, ...]:
    """val top-1 by epoch, 1 to the last recorded (None for an epoch missing or NaN)."""
    if rows is None or rows.empty:
        return ()
    by_epoch = dict(zip(rows["epoch"].astype(int), rows["val_top1"]))
    return tuple(_number(by_epoch.get(e)) for e in range(1, max(by_epoch) + 1))


def _value(value) -> float | int | str | bool | None:
    value = plain(value)
    return None if value is pd.NA else value


def _integer(value) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def expected_best(trials: pd.DataFrame, epochs: pd.DataFrame, subsets: list[str], levels: list[int]) -> tuple[
        ExpectedBest, ...]:
    """Per subset and budget, from the independent random draws of the space only (random trials, or a TPE study's
    random start-up; a Sobol design's points are not independent), diverged draws at chance, at every budget all of
    them reached (with ASHA: its first rung)."""
    out = []
    for subset in subsets:
        search = search_trials(trials, subset)
        draws = search[search["sampled_by"].isin(INDEPENDENT) & (search["stop_reason"] != "errored")]
        for budget in levels if len(draws) >= 2 else []:
            rows = at_budget(draws, epochs, budget, levels)
            if len(rows) < len(draws):
                continue  # not every draw reached this budget: the rest would not be a sample of the space
            scores = rows["score"].to_numpy(float)
            low, high = expected_max_band(scores)
            out.append(ExpectedBest(subset, int(budget), *(tuple(map(float, v)) for v in (expected_max(scores), low,
                                                                                            high))))
    return tuple(out)


def analyse_study(found: dict[str, SubsetFindings], trials: pd.DataFrame, epochs: pd.DataFrame, levels: list[int],
                  parameters: list[str], manifest: dict, root: Path, links: Links) -> StudyAnalysis:
    answers = tuple(subset_answer(f, parameters) for f in found.values())
    return StudyAnalysis(answers, across_answer(found, parameters), next_step(answers, trials, manifest, root),
                         trial_rows(trials, epochs, found, parameters, links),
                         expected_best(trials, epochs, list(found), levels))
