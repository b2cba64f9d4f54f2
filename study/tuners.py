"""The Ray Tune experiments of a study: per subset the search (the space's sampler proposes, ASHA stops early) and,
when asked, the seed repeats of its best configs. Built new, or restored from the study's storage on --resume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.trainable.function_trainable import wrap_function

from common.files import write_json
from study.recorder import StudyRecorder
from study.searcher import METRIC, MODE, StudySearcher
from study.study_dir import StudyLocation, StudyRequest
from study.trainable import REPEAT_OF, REPORTED_CONFIG, TRIAL_KEYS, TrialPlan

# The progress table: what was searched shows as a parameter, the rest as the value the trial reports.
KEY_COLUMNS = {"optimizer": "optimizer", "lr": "lr", "batch_size": "batch", "scheduler": "scheduler"}
METRIC_COLUMNS = {"epoch": "epoch", "epoch_lr": "lr now", "val_top1": "val top-1", "train_loss": "train loss"}


def seeds_experiment(subset: str) -> str:
    return f"{subset}-seeds"


def named_trainable(trainable: Callable, plan: TrialPlan):
    """The function trainable as Tune's class, whose actors show the trial's name (STUDY.SUBSET.INDEX) as their
    name in the Ray dashboard and the State API instead of the function's."""
    base = wrap_function(tune.with_parameters(trainable, plan=plan))

    class NamedTrial(base):
        def __repr__(self) -> str:
            return self.trial_name

    NamedTrial.__name__ = NamedTrial.__qualname__ = base.__name__
    return tune.with_resources(NamedTrial, plan.resources)


def _reporter(plan: TrialPlan) -> tune.CLIReporter:
    searched = set(plan.space.searched)
    return tune.CLIReporter(parameter_columns={k: v for k, v in KEY_COLUMNS.items() if k in searched},
                            metric_columns={**{k: v for k, v in KEY_COLUMNS.items()
                                               if k not in searched and k in REPORTED_CONFIG}, **METRIC_COLUMNS},
                            max_report_frequency=30, max_progress_rows=12, metric=METRIC, mode=MODE)


def _run_config(location: StudyLocation, plan: TrialPlan, name: str, request: StudyRequest) -> tune.RunConfig:
    return tune.RunConfig(
        name=name, storage_path=location.tune_storage, verbose=1, progress_reporter=_reporter(plan),
        callbacks=[StudyRecorder(name)], sync_config=tune.SyncConfig(sync_artifacts=bool(location.remote)),
        failure_config=tune.FailureConfig(max_failures=request.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))


def restored(location: StudyLocation, name: str, trainable, echo: Callable[[str], None]) -> tune.Tuner | None:
    """The experiment ``name`` as stored, or None when it was never started. Its pickled callback and searcher
    find the study through the active session (study/session.py), wherever the study is now."""
    experiment = f"{location.tune_storage}/{name}"
    if not tune.Tuner.can_restore(experiment):
        return None
    echo(f"{name}: resuming Tune experiment {experiment}")
    return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True)


def search_tuner(location: StudyLocation, plan: TrialPlan, request: StudyRequest, trainable) -> tune.Tuner:
    """The search of one subset: the space's sampler proposes (the paper recipe first), ASHA stops, at most
    max_concurrent trials at once."""
    scheduler = ASHAScheduler(time_attr="epoch", metric=METRIC, mode=MODE, max_t=plan.epochs,
                              grace_period=plan.space.grace_period, reduction_factor=plan.space.reduction_factor) \
        if request.early_stopping else None
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(StudySearcher(plan.subset), max_concurrent=request.max_concurrent),
            scheduler=scheduler, num_samples=request.num_samples, reuse_actors=request.reuse_actors,
            trial_name_creator=plan.trial_name, trial_dirname_creator=plan.trial_dirname),
        run_config=_run_config(location, plan, plan.subset, request))


def repeat_points(trials: pd.DataFrame, subset: str, repeats: int, seeds: int, first_seed: int) -> list[dict]:
    """The best ``repeats`` search trials of ``subset``, each with ``seeds`` new seeds after ``first_seed``. Ranked by
    the study's score, the last epoch's val top-1, completed trials first (an ASHA-stopped trial's last score is
    from a smaller budget)."""
    search = trials[(trials["subset"] == subset) & trials["repeat_of"].isna()].dropna(subset=["last_val_top1"])
    best = search.assign(completed=search["stop_reason"] == "completed").sort_values(
        ["completed", "last_val_top1"], ascending=False).head(repeats)
    return [{**{k: v for k, v in json.loads(row["sampled"]).items() if k not in TRIAL_KEYS},
             "seed": first_seed + k, REPEAT_OF: row["trial_id"]}
            for _, row in best.iterrows() for k in range(1, seeds + 1)]


class FixedPoints(Searcher):
    """Hands out a fixed list of configs, one per trial, then says it is finished. (Tune's own variant generator
    wants every point to share one set of keys; a seed repeat of an Adam config has no momentum.)"""

    def __init__(self, points: list[dict]):
        super().__init__(metric=METRIC, mode=MODE)
        self.points, self.given = list(points), 0

    def suggest(self, trial_id: str) -> dict | str:
        if self.given >= len(self.points):
            return Searcher.FINISHED
        self.given += 1
        return dict(self.points[self.given - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        """Saved with the experiment, so a resumed study does not hand out the same points twice."""
        write_json(Path(checkpoint_path), {"points": self.points, "given": self.given})

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.points, self.given = state["points"], state["given"]


def repeat_tuner(location: StudyLocation, plan: TrialPlan, points: list[dict], request: StudyRequest,
                 trainable) -> tune.Tuner:
    """Every point trained to the end (no early stopping): the spread across seeds is the noise floor."""
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(FixedPoints(points), max_concurrent=request.max_concurrent),
            num_samples=len(points), reuse_actors=request.reuse_actors, trial_name_creator=plan.trial_name,
            trial_dirname_creator=plan.trial_dirname),
        run_config=_run_config(location, plan, seeds_experiment(plan.subset), request))
