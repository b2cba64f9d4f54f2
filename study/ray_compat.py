"""Every use of Ray's private API, in one module: what the runner and the fault harness need that Ray Tune does not
offer publicly. Each of these can change in any Ray release, so pyproject.toml bounds Ray to the releases listed in
TESTED_RAY (the suite runs on the locked one, tests/test_ray_compat.py), and ``check_version`` refuses another
before a study starts, naming what to install.

- the function trainable as Tune's class, to subclass it (a trial named in the dashboard, restored from its newest
  checkpoint on storage): ``wrap_function``, and the trainable's storage context and whether it was restored;
- the checkpoint folder's name for an index, and the result Tune restores a trial from;
- whether an exception from ``tune.report`` with a checkpoint is the storage not taking it (an outage), which Tune
  raises as a pyarrow error, or as a RuntimeError when its storage marker cannot be seen;
- two hooks of the fault harness (study/faults.py): after Tune registers a trial's checkpoint, and inside Tune's
  upload of its experiment state;
- the name of the trial a reused actor runs now: in its log lines' prefix, and on every task Tune sends it;
- a search that had finished, asked again after a restore when its searcher has trials left (a study that grows);
- Ray Train's logger of its line per checkpoint, quieted in the trial's process unless -v.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import pyarrow as pa
import ray
from ray import tune
from ray.train._internal import storage as _storage
from ray.train._internal.session import _TrainingResult
from ray.tune.trainable.function_trainable import wrap_function

TESTED_RAY = ("2.60",)  # major.minor releases whose private API this module was checked against

__all__ = ["TESTED_RAY", "announce_actor_name", "check_version", "checkpoint_dir_name", "let_search_grow",
           "name_trial_tasks", "on_checkpoint_registered", "restored_result", "trainable_storage", "upload_failed",
           "was_restored", "within_state_upload", "wrap_function"]


class UntestedRay(RuntimeError):
    pass


def check_version(version: str = ray.__version__) -> None:
    """Refuses a Ray release whose private API this module was not checked against."""
    if ".".join(version.split(".")[:2]) not in TESTED_RAY:
        raise UntestedRay(f"Ray {version} is installed; stgcn-study uses parts of Ray Tune that are not public and was "
                          f"tested on Ray {', '.join(TESTED_RAY)}.x: pip install 'ray[tune,default]=={TESTED_RAY[-1]}.*'")


def checkpoint_dir_name(index: int) -> str:
    return _storage.StorageContext._make_checkpoint_dir_name(index)


def restored_result(checkpoint: tune.Checkpoint, iteration: int):
    """What Tune restores a trial from: its checkpoint, with the iteration it was taken at."""
    from ray.tune.result import TRAINING_ITERATION
    return _TrainingResult(checkpoint=checkpoint, metrics={TRAINING_ITERATION: iteration})


def upload_failed(exc: BaseException) -> str | None:
    """Why the storage did not take a checkpoint, when ``exc`` (raised by ``tune.report`` with one) says so; None
    for any other failure."""
    if isinstance(exc, (OSError, pa.ArrowException)):
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    if isinstance(exc, RuntimeError) and str(exc).startswith("Unable to set up cluster storage"):
        return "the storage cannot be read: Tune's marker file in the experiment folder is not there"
    return None


def trainable_storage(trainable):
    """A trainable's storage context: its trial folder on storage and the index of its next checkpoint."""
    return trainable._storage


def was_restored(trainable) -> bool:
    return trainable._restored


def on_checkpoint_registered(hook: Callable[[], None]) -> None:
    """Calls ``hook`` each time Tune has registered a trial's new checkpoint (and deleted the one num_to_keep drops),
    before the experiment state that names the checkpoints is saved."""
    from ray.tune.experiment.trial import Trial
    original = Trial.on_checkpoint

    def on_checkpoint(self, checkpoint_result):
        original(self, checkpoint_result)
        hook()

    Trial.on_checkpoint = on_checkpoint


def within_state_upload(upload: Callable) -> None:
    """Replaces Tune's copy of a local folder to the storage (its experiment state among them) by ``upload(original,
    local_path, fs, fs_path, exclude)``."""
    original = _storage._upload_to_fs_path
    _storage._upload_to_fs_path = lambda local_path, fs, fs_path, exclude=None: upload(original, local_path, fs,
                                                                                      fs_path, exclude)


def quiet_checkpoint_lines(level: int) -> None:
    """Ray Train logs "Checkpoint successfully created at ..." at INFO after every report, in the trial's process;
    the trainer's own line already says each epoch, so those lines show only with -v (``level`` DEBUG)."""
    logging.getLogger(_storage.__name__).setLevel(logging.INFO if level <= logging.DEBUG else logging.WARNING)


def announce_actor_name(name: str) -> None:
    """Ray prefixes an actor's log lines with the name its ``__repr__`` gave when it was created; a reused actor says
    its new one in the marker line that Ray's log monitor reads from the worker's output."""
    from ray._private.ray_constants import LOG_PREFIX_ACTOR_NAME
    for stream in (sys.stdout, sys.stderr):
        print(f"{LOG_PREFIX_ACTOR_NAME}{name}", file=stream, flush=True)


class _TasksNamed:
    """An actor handle whose method calls are Ray tasks named ``NAME.METHOD``."""

    def __init__(self, actor, name: str):
        self._actor, self._name = actor, name

    def __getattr__(self, method: str):
        return getattr(self._actor, method).options(name=f"{self._name}.{method}")


def name_trial_tasks() -> None:
    """Every task Tune sends a trial's live actor is named after the trial (STUDY.SUBSET.INDEX.train), so the
    dashboard's task lists and the worker's process title name the trial that a reused actor runs now (the actor
    keeps the name of the trial it was started for). Installed once per driver process."""
    from ray.tune.execution.tune_controller import TuneController
    original = TuneController._schedule_trial_task
    if getattr(original, "names_tasks", False):
        return

    def schedule(self, trial, method_name, *args, **kwargs):
        live = self._actor_manager._live_actors_to_ray_actors_resources
        tracked = self._trial_to_actor.get(trial)
        if tracked not in live:  # an actor still starting: its tasks wait, and go under its own (this trial's) name
            return original(self, trial, method_name, *args, **kwargs)
        actor, resources = live[tracked]
        live[tracked] = (_TasksNamed(actor, str(trial)), resources)
        try:
            return original(self, trial, method_name, *args, **kwargs)
        finally:
            live[tracked] = (actor, resources)

    schedule.names_tasks = True
    TuneController._schedule_trial_task = schedule


def let_search_grow() -> None:
    """Tune saves a search that said it was finished as finished, and a restored experiment then asks it for nothing
    more. After a restore the search is asked again when its searcher says it has trials left
    (``has_trials_left()``: a study whose budget --add-trials raised). Installed once per driver process."""
    from ray.tune.search.search_generator import SearchGenerator
    original = SearchGenerator.set_state
    if getattr(original, "lets_grow", False):
        return

    def set_state(self, state):
        original(self, state)
        searcher = self.searcher
        while hasattr(searcher, "searcher"):  # Tune's wrappers (concurrency limits) around the study's searcher
            searcher = searcher.searcher
        if getattr(searcher, "has_trials_left", lambda: False)():
            self._finished = False

    set_state.lets_grow = True
    SearchGenerator.set_state = set_state
