"""The Ray Tune experiments of a study: the search (each subset's sampler proposes, ASHA stops early within each
subset) and, when asked, the seed repeats of each subset's best configs. Each is one Tune experiment holding the
trials of every subset, so the subsets run side by side and no worker idles while one subset finishes. Built new,
or restored from the study's storage on --resume.
"""

from __future__ import annotations

import functools
import json
import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
from ray import tune
from ray.tune.execution.placement_groups import PlacementGroupFactory
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import Searcher

from common import logs
from common.files import atomic_path, is_uri, write_json
from study import ray_compat, session
from study.recorder import StudyRecorder
from study.searcher import METRIC, MODE, StudySearcher
from study.spaces import ASHA_METRICS
from study.study_dir import StudyLocation, StudyRequest
from study.trainable import (
    INDEX,
    REPEAT_INDEX_BASE,
    REPEAT_OF,
    REPORTED_CONFIG,
    SUBSET,
    TRIAL_KEYS,
    TrialPlan,
    trial_dirname,
    trial_name,
)
from training.experiment import CHECKPOINT
from training.results import ENDED, TRIALS, forget, read_frame, recorded

SEARCH, SEEDS = "search", "seeds"  # the Tune experiments, directories of the study
# The progress table: what was searched shows as a parameter, the rest as the value the trial reports.
KEY_COLUMNS = {"optimizer": "optimizer", "lr": "lr", "batch_size": "batch", "scheduler": "scheduler"}
METRIC_COLUMNS = {"epoch": "epoch", "epoch_lr": "lr now", "val_top1": "val top-1", "train_loss": "train loss"}

# Tune's own output by the driver's level: none when quiet, its status table, each result's line with -v
TUNE_VERBOSITY = {logging.WARNING: 0, logging.INFO: 1, logging.DEBUG: 2}


def named_trainable(trainable: Callable, plans: dict[str, TrialPlan]):
    """The function trainable as Tune's class, whose actors show the trial's name (STUDY.SUBSET.INDEX) as their
    name in the Ray dashboard and the State API instead of the function's, with the resources of its subset. An
    actor reused for a later trial names that trial in its log lines and its tasks (ray_compat.name_trial_tasks)."""
    ray_compat.name_trial_tasks()
    base = ray_compat.wrap_function(tune.with_parameters(trainable, plans=plans))

    class NamedTrial(base):
        """Also: a trial always continues from its newest checkpoint on storage (see ``newest_checkpoint``)."""

        def __repr__(self) -> str:
            return self.trial_name

        def reset_config(self, new_config) -> bool:
            if not super().reset_config(new_config):
                return False
            ray_compat.announce_actor_name(self.trial_name)
            return True

        def restore(self, checkpoint_path):
            return super().restore(newest_checkpoint(ray_compat.trainable_storage(self), checkpoint_path))

        def step(self):
            if not ray_compat.was_restored(self) and self.iteration == 0:  # Tune's state may name no checkpoint
                found = newest_checkpoint(ray_compat.trainable_storage(self), None)  # that storage has
                if found is not None:
                    self.restore(found)
            return super().step()

    NamedTrial.__name__ = NamedTrial.__qualname__ = base.__name__
    return tune.with_resources(NamedTrial, functools.partial(_resources, plans))


def newest_checkpoint(storage, given):
    """The checkpoint a trial continues from: the newest one in its directory on storage, whatever Tune's saved
    experiment state names. That state is saved, and copied to storage, after Tune has registered a checkpoint and
    deleted the one before it (num_to_keep=1): a driver killed in between leaves a state that names a deleted
    checkpoint, or none for a trial's first one, while a newer one is on storage. A checkpoint on storage whose epoch
    the driver never recorded (the epoch in flight) is continued from too: its epochs travel with the trial's next
    report (``restored_history``). The storage context's index is moved past it, so the next checkpoint gets a new
    name. ``given``: what Tune would restore (ray_compat.restored_result), or None."""
    fs, trial_dir = storage.storage_filesystem, storage.trial_fs_path
    try:
        entries = fs.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
    except (OSError, pa.ArrowException):
        return given
    indices = sorted(int(e.base_name.rsplit("_", 1)[1]) for e in entries
                     if e.type == pafs.FileType.Directory and e.base_name.startswith("checkpoint_")
                     and e.base_name.rsplit("_", 1)[1].isdigit() and fs.get_file_info(f"{e.path}/{CHECKPOINT}").type
                     == pafs.FileType.File)
    if not indices:
        return given
    newest = indices[-1]
    storage.current_checkpoint_index = max(storage.current_checkpoint_index, newest)
    path = f"{trial_dir}/{ray_compat.checkpoint_dir_name(newest)}"
    if given is not None and given.checkpoint.path.rstrip("/") == path:
        return given
    return ray_compat.restored_result(tune.Checkpoint(path, filesystem=fs), newest + 1)  # a checkpoint every report


def _resources(plans: dict[str, TrialPlan], config: dict) -> PlacementGroupFactory:
    resources = plans[config[SUBSET]].resources
    return PlacementGroupFactory([{"CPU": resources["cpu"], "GPU": resources["gpu"]}])


def _reporter(plans: dict[str, TrialPlan]) -> tune.CLIReporter:
    searched = set(next(iter(plans.values())).space.searched)
    return tune.CLIReporter(parameter_columns={SUBSET: "subset", **{k: v for k, v in KEY_COLUMNS.items() if k in searched}},
                            metric_columns={**{k: v for k, v in KEY_COLUMNS.items()
                                               if k not in searched and k in REPORTED_CONFIG}, **METRIC_COLUMNS},
                            max_report_frequency=30, max_progress_rows=12, metric=METRIC, mode=MODE)


def _run_config(location: StudyLocation, plans: dict[str, TrialPlan], name: str,
                request: StudyRequest) -> tune.RunConfig:
    return tune.RunConfig(
        name=name, storage_path=location.tune_storage, verbose=TUNE_VERBOSITY.get(logs.level(), 1),
        progress_reporter=_reporter(plans),
        callbacks=[StudyRecorder()], sync_config=tune.SyncConfig(sync_artifacts=bool(location.remote)),
        failure_config=tune.FailureConfig(max_failures=request.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))


def restored(location: StudyLocation, name: str, trainable, echo: Callable[[str], None]) -> tune.Tuner | None:
    """The experiment ``name`` as stored, or None when it was never started. Its pickled callback, searcher and
    scheduler find the study through the active session (study/session.py), wherever the study is now."""
    experiment = f"{location.tune_storage}/{name}"
    if not tune.Tuner.can_restore(experiment) or not state_saved(experiment):
        return None
    echo(f"{name}: resuming Tune experiment {experiment}")
    ray_compat.let_search_grow()
    tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True)
    forget_unknown_trials(location, tuner, repeats=name == SEEDS, echo=echo)
    return tuner


def state_saved(experiment: str) -> bool:
    """Whether Tune saved the experiment's state at least once. A Tuner writes tuner.pkl when it is built, its state
    only once it runs: one built and never run (a driver stopped in between, as after the seed repeats are chosen) is
    built again, not restored (Tune restores it as a restart that ran only one of its seed repeats)."""
    fs, path = pafs.FileSystem.from_uri(experiment) if is_uri(experiment) else (pafs.LocalFileSystem(), experiment)
    entries = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return any(e.base_name.startswith("experiment_state") for e in entries)


def forget_unknown_trials(location: StudyLocation, tuner: tune.Tuner, repeats: bool,
                          echo: Callable[[str], None]) -> None:
    """Rows of trials that the restored experiment does not know are removed. Tune saves its experiment state (and
    copies it to storage) a moment after it starts a trial: a driver killed in that moment leaves a trial in the
    tables that Tune will not resume. Its sampler state (the Optuna journal saved with Tune's) does not know it
    either, so Tune asks for its config again and it starts over under a new id."""
    try:
        results = list(tuner.get_results())
    except RuntimeError:  # Tune could not read back its trials: it will not resume them either way, keep the rows
        return
    named = [Path(result.path).name.rsplit("_", 2) for result in results]  # trial_dirname: subset, index, id
    known = {trial_id for _, _, trial_id in named}
    if not repeats:  # a search trial's index is its Optuna number
        session.active().tune_trials.update({trial_id: (subset, int(index)) for subset, index, trial_id in named})
    if not (location.root / TRIALS).is_dir():
        return
    trials = read_frame(location.root, TRIALS)
    mine = trials[trials["repeat_of"].notna() == repeats]
    for _, row in mine[~mine["trial_id"].isin(known)].iterrows():
        echo(f"{row['subset']} trial {row['trial_id']}: started after Tune last saved its state, so it starts over "
             f"as a new trial ({int(row['epochs_run'])} epoch(s) discarded)")
        location.push(*forget(location.root, row["subset"], row["trial_id"]))


class KeepsEndedTrials(FIFOScheduler):
    """A trial can end (completed, stopped by ASHA, diverged, errored: recorded so in the tables, Optuna told) after
    Tune last saved its experiment state, which then still calls it running. A resumed Tune would start it again:
    a completed one only to report its last epoch again, but an ASHA-stopped one would train on past the rung that
    stopped it. So a restored trial whose row says it ended is stopped before it starts, as it ended."""

    def __init__(self):
        super().__init__()
        self.ended: list = []  # restored trials to stop, once Tune has added them

    def on_trial_add(self, tune_controller, trial):
        row, _ = recorded(session.active().location.root, trial.config[SUBSET], trial.trial_id)
        if row is not None and row["stop_reason"] in ENDED:
            self.ended.append(trial)

    def choose_trial_to_run(self, tune_controller):
        while self.ended:  # Tune cannot stop a trial while it adds it; it can before it starts any
            tune_controller.stop_trial(self.ended.pop())
        return super().choose_trial_to_run(tune_controller)


class SubsetsASHA(KeepsEndedTrials):
    """ASHA within each subset: a subset's trials are compared with each other only (the scores of a 30- and a
    52-class problem are not on one scale)."""

    def __init__(self, schedulers: dict[str, ASHAScheduler]):
        super().__init__()
        self.by_subset = schedulers
        self._metric = next(iter(schedulers.values())).metric

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def _of(self, trial) -> ASHAScheduler:
        return self.by_subset[trial.config[SUBSET]]

    def on_trial_add(self, tune_controller, trial):
        self._of(trial).on_trial_add(tune_controller, trial)
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(f"{subset}: {asha.debug_string()}" for subset, asha in self.by_subset.items())

    def save(self, checkpoint_path: str) -> None:
        with atomic_path(Path(checkpoint_path)) as tmp, open(tmp, "wb") as handle:
            pickle.dump({subset: asha.__dict__ for subset, asha in self.by_subset.items()}, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            for subset, state in pickle.load(handle).items():
                self.by_subset[subset].__dict__.update(state)


def asha(plans: dict[str, TrialPlan]) -> SubsetsASHA:
    schedulers = {}
    for subset, plan in plans.items():
        space = plan.space
        schedulers[subset] = ASHAScheduler(time_attr="epoch", metric=space.asha_metric,
                                           mode=ASHA_METRICS[space.asha_metric], max_t=plan.epochs,
                                           grace_period=space.grace_period, reduction_factor=space.reduction_factor)
    return SubsetsASHA(schedulers)


def search_tuner(location: StudyLocation, plans: dict[str, TrialPlan], request: StudyRequest, trainable) -> tune.Tuner:
    """The search of every subset: each subset's sampler proposes (the paper recipe first), ASHA stops within each
    subset by the space's rung metric, at most max_concurrent trials of a subset at once."""
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=StudySearcher(tuple(plans), request.max_concurrent),
            scheduler=asha(plans) if request.early_stopping else KeepsEndedTrials(), num_samples=-1,
            reuse_actors=request.reuse_actors, trial_name_creator=functools.partial(trial_name, location.name),
            trial_dirname_creator=trial_dirname),
        run_config=_run_config(location, plans, SEARCH, request))


def repeat_points(trials: pd.DataFrame, subset: str, repeats: int, seeds: int, first_seed: int) -> list[dict]:
    """The best ``repeats`` search trials of ``subset``, each with ``seeds`` new seeds after ``first_seed``. Ranked by
    the study's score, the last epoch's val top-1, completed trials first (an ASHA-stopped trial's last score is
    from a smaller budget)."""
    search = trials[(trials["subset"] == subset) & trials["repeat_of"].isna()].dropna(subset=["last_val_top1"])
    best = search.assign(completed=search["stop_reason"] == "completed").sort_values(
        ["completed", "last_val_top1"], ascending=False).head(repeats)
    points = [{**{k: v for k, v in json.loads(row["sampled"]).items() if k not in TRIAL_KEYS},
               "seed": first_seed + k, REPEAT_OF: row["trial_id"]}
              for _, row in best.iterrows() for k in range(1, seeds + 1)]
    return [{**point, SUBSET: subset, INDEX: REPEAT_INDEX_BASE + i} for i, point in enumerate(points)]


class FixedPoints(Searcher):
    """Hands out a fixed list of configs, one per trial, at most ``max_concurrent`` of a subset at a time, then says
    it is finished. (Tune's own variant generator wants every point to share one set of keys; a seed repeat of an
    Adam config has no momentum.)"""

    def __init__(self, points: list[dict], max_concurrent: int):
        super().__init__(metric=METRIC, mode=MODE)
        self.points, self.max_concurrent = list(points), max_concurrent
        self.given: list[int] = []  # indices of the points handed out
        self.live: dict[str, str] = {}  # trial id -> subset, while it runs

    def suggest(self, trial_id: str) -> dict | str | None:
        waiting = [i for i in range(len(self.points)) if i not in self.given]
        if not waiting:
            return Searcher.FINISHED
        busy = list(self.live.values())
        ready = [i for i in waiting if busy.count(self.points[i][SUBSET]) < self.max_concurrent]
        if not ready:
            return None  # every waiting point's subset is at its limit: Tune asks again later
        self.given.append(ready[0])
        self.live[trial_id] = self.points[ready[0]][SUBSET]
        return dict(self.points[ready[0]])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.live.pop(trial_id, None)

    def save(self, checkpoint_path: str) -> None:
        """Saved with the experiment, so a resumed study does not hand out the same points twice."""
        write_json(Path(checkpoint_path), {"points": self.points, "given": self.given, "live": self.live,
                                           "max_concurrent": self.max_concurrent})

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.points, self.given, self.live = state["points"], state["given"], state["live"]
        self.max_concurrent = state["max_concurrent"]


def repeat_tuner(location: StudyLocation, plans: dict[str, TrialPlan], points: list[dict], request: StudyRequest,
                 trainable) -> tune.Tuner:
    """Every point trained to the end (no early stopping): the spread across seeds is the noise floor."""
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=FixedPoints(points, request.max_concurrent), scheduler=KeepsEndedTrials(),
            num_samples=len(points), reuse_actors=request.reuse_actors,
            trial_name_creator=functools.partial(trial_name, location.name), trial_dirname_creator=trial_dirname),
        run_config=_run_config(location, plans, SEEDS, request))
