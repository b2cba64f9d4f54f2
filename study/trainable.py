"""The Ray Tune trainable: a thin adapter from a sampled config to an Experiment, one report per epoch.

Each report carries a checkpoint (the trainer's full state), so a retried or resumed trial continues from
its last finished epoch. The dataset is opened once per worker process (memory maps, shared through the
page cache by every trial on the node); nothing is converted or copied per trial.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray
import torch
from ray import tune

from common import logs
from kinetics.dataset import ConvertedDataset
from kinetics.source import resolve_data_dir
from study import live_metrics, ray_compat
from study.spaces import SearchSpace
from training.config import ConfigError, TrainConfig
from training.experiment import Experiment

REPEAT_OF = "repeat_of"  # in a seed repeat's config: the trial id whose hyperparameters it re-runs
REPEAT_INDEX_BASE = 5000  # seed repeats are numbered from here, apart from the search's trials
SUBSET, INDEX = "subset", "trial_index"  # every trial's config says its subset and its index within that subset
# Keys of a trial's config that say where the trial came from, not how it trains (study/searcher.py adds two).
TRIAL_KEYS = (REPEAT_OF, INDEX, "optuna_number", "sampled_by")
# Reported with every epoch, so the progress table shows them also where the search does not vary them.
REPORTED_CONFIG = ("optimizer", "batch_size", "scheduler")
# In the first report after a restore: the epochs the checkpoint holds, for the driver to record those it missed.
RESTORED_HISTORY = "restored_history"
# Marks that report when the restored checkpoint is the last epoch's: no new epoch, the last one sent again.
REPLAYED = "replayed"
# In every report: how many epochs' checkpoints could not reach the storage (0: the newest one is there), and why.
STORAGE_BEHIND, STORAGE_ERROR = "storage_behind", "storage_error"
OUTAGE_LIMIT_S = float(os.environ.get("STGCN_STUDY_OUTAGE_LIMIT_S", "86400"))  # how long an ended trial waits


@dataclass(frozen=True)
class TrialPlan:
    """Everything a trial needs besides its sampled hyperparameters; sent once to every worker."""
    study: str
    subset: str
    subset_position: int
    space: SearchSpace
    cpu_profile: bool
    experiments_dir: str  # "" = inside the trial's own directory (synced to remote storage by Tune)
    overrides: dict = field(default_factory=dict)
    resources: dict = field(default_factory=lambda: {"cpu": 1.0, "gpu": 0.0})  # Ray resources of each trial
    log_level: int = logging.INFO  # the driver's (--quiet, -v), for the trainer's lines in the trial's process
    early_stopping: bool = True  # ASHA stops trials at its rungs (--no-early-stopping: every trial runs to its end)

    def config_for(self, sampled: dict) -> TrainConfig:
        """A seed repeat's sample carries its own seed; the search adds keys about the trial (TRIAL_KEYS)."""
        own = {k: v for k, v in sampled.items() if k not in TRIAL_KEYS}
        seed = {"seed": own.pop("seed")} if "seed" in own else {}
        return self.space.to_config(own, self.cpu_profile, {**self.overrides, "subset": self.subset, **seed})

    @property
    def epochs(self) -> int:
        """Epochs a trial plans to run (ASHA's max_t)."""
        return self.config_for({}).epochs

    @property
    def rungs(self) -> tuple[int, ...]:
        """ASHA's rungs before the last epoch: the epochs after which the scheduler may stop a trial."""
        if not self.early_stopping:
            return ()
        space, epochs, rungs = self.space, self.epochs, []
        while space.grace_period * space.reduction_factor ** len(rungs) < epochs:
            rungs.append(space.grace_period * space.reduction_factor ** len(rungs))
        return tuple(rungs)

    def experiment_id(self, index: int) -> int:
        """Unique within the study and stable across resumes: 10000 per subset plus the trial's index."""
        return 10_000 * (self.subset_position + 1) + index



def trial_name(study: str, trial) -> str:
    """Tune's trial name (also the dashboard's actor name): STUDY.SUBSET.INDEX, the index within the subset."""
    return f"{study}.{trial.config[SUBSET]}.{trial.config[INDEX]:04d}"


def trial_dirname(trial) -> str:
    return f"{trial.config[SUBSET]}_{trial.config[INDEX]:04d}_{trial.trial_id}"


@functools.lru_cache(maxsize=4)
def open_dataset(data: str) -> ConvertedDataset:
    """Once per worker process: later trials in a reused worker skip even the index read."""
    return ConvertedDataset(resolve_data_dir(data))


@functools.cache
def quiet_stop_signal() -> None:
    """Once per worker process. Ray's worker raises SystemExit from its SIGTERM handler, and Ray sends SIGTERM when
    it ends a worker whose trials are done. When the signal lands while Python runs a cleanup callback (a weakref's),
    Python cannot raise it there and prints "Exception ignored in ... SystemExit: 1" with a traceback: at the end of
    a study, a failure that is none (Ray ends the worker anyway). That report alone is dropped; any other exception
    in a callback is reported as before."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not issubclass(unraisable.exc_type, SystemExit):
            previous(unraisable)

    sys.unraisablehook = hook


def trial_device(requested: str, gpu_ids: list) -> str:
    """The device a trial trains on: exactly what Ray reserved for it. Ray 2.60 no longer hides the GPUs from an
    actor that reserved none, so 'auto' must not look at what CUDA can see."""
    if requested == "auto":
        return "cuda" if gpu_ids else "cpu"
    if requested.startswith("cuda") and not gpu_ids:
        raise ConfigError(f"device {requested!r} asked for, but the trial reserved no GPU: give it one with "
                          "--gpus-per-trial or the space's resources, or set device to auto")
    return requested


def trial_epochs(sampled: dict, plans: dict[str, TrialPlan]) -> Iterator[dict]:
    """The trial as a generator: restore, then per epoch train, checkpoint, report to Tune, and yield the
    metrics. A wrapper can act between epochs (the fault-tolerance tests raise there) without a hook in here."""
    quiet_stop_signal()
    context = tune.get_context()
    plan, index = plans[sampled[SUBSET]], sampled[INDEX]
    config = plan.config_for(sampled)  # a sample the config refuses raises once: its trial is not retried
    torch.set_num_threads(max(1, int(plan.resources["cpu"])))
    logs.configure(plan.log_level)
    ray_compat.quiet_checkpoint_lines(plan.log_level)
    said = logs.get("trainer")
    root = Path(plan.experiments_dir or context.get_trial_dir())
    experiment = Experiment(config, open_dataset(config.data), root, index=index, watched=False,
                            may_end_after=() if REPEAT_OF in sampled else plan.rungs,  # repeats run to their end
                            validated_after=plan.rungs,  # where the report compares trials, repeats included
                            device=trial_device(config.device, ray.get_gpu_ids()),
                            experiment_id=plan.experiment_id(index),
                            echo=lambda line: said.info(logs.trial_line(context.get_trial_name(), line)),
                            run_info={"study": plan.study, "subset": plan.subset, "trial_id": context.get_trial_id(),
                                      "sampled": sampled, "worker_pid": os.getpid()})
    where = {"node": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id()}

    def report(metrics: dict, restored: list[dict], checkpoint: tune.Checkpoint | None) -> None:
        tune.report({**metrics, **({RESTORED_HISTORY: restored} if restored else {}),
                     "epochs_planned": config.epochs, "experiment_id": experiment.experiment_id,
                     "pretrained_sha256": experiment.pretrained_sha256,
                     "folder": experiment.folder.path.name, **{key: getattr(config, key) for key in REPORTED_CONFIG},
                     **where}, checkpoint=checkpoint)

    restored: list[dict] = []
    if tune.get_checkpoint():
        with tune.get_checkpoint().as_directory() as directory:
            experiment.restore(Path(directory))
        restored = list(experiment.trainer.history)  # the driver may not have recorded all of them (study/tuners.py)
        if experiment.finished:  # its last epoch's checkpoint is on storage, the driver died before its result
            report({**restored[-1], REPLAYED: True, STORAGE_BEHIND: 0}, restored, None)  # recorded now
    uploads = CheckpointUploads(report, said)
    try:
        while not experiment.finished:
            metrics = experiment.step()
            uploads.send(metrics, restored, experiment.save_checkpoint)
            restored = []
            live_metrics.publish(plan.study, plan.subset, context.get_trial_name(), metrics)
            yield metrics
        uploads.finish()
    finally:
        uploads.close()


class CheckpointUploads:
    """A storage outage does not stop a trial. Each epoch's checkpoint goes to the storage with its result; when the
    storage cannot take it, the result goes alone (the driver records the epoch, ASHA judges it), training goes on,
    and the newest checkpoint waits on the node, replaced by each newer one and sent with the next result the
    storage takes. A trial that ends while its last checkpoint waits sends it again with back-off (1 s doubling to
    60 s) before it ends, for at most STGCN_STUDY_OUTAGE_LIMIT_S (a day): its result is recorded either way, and a
    restart before the upload continues from the newest checkpoint the storage has."""

    def __init__(self, report: Callable, said: logging.Logger):
        self.report, self.said = report, said
        self.waiting = Path(tempfile.mkdtemp(prefix="stgcn-checkpoint-"))
        self.behind, self.last = 0, None

    def send(self, metrics: dict, restored: list[dict], save: Callable[[Path], Path]) -> None:
        shutil.rmtree(self.waiting)
        self.waiting.mkdir()
        save(self.waiting)
        self.last = metrics
        self._send(metrics, restored)

    def _send(self, metrics: dict, restored: list[dict], **marks) -> None:
        try:
            self.report({**metrics, STORAGE_BEHIND: 0, **marks}, restored, tune.Checkpoint.from_directory(self.waiting))
        except Exception as exc:
            reason = ray_compat.upload_failed(exc)
            if reason is None:
                raise
            self.behind += 0 if marks else 1
            if not marks:
                if self.behind == 1:
                    self.said.warning(f"the storage did not take this epoch's checkpoint ({reason}); training goes "
                                      "on, the newest checkpoint kept here until it does")
                self.report({**metrics, STORAGE_BEHIND: self.behind, STORAGE_ERROR: reason}, restored, None)
            return
        if self.behind:
            self.said.info(f"the storage took the newest checkpoint again, after {self.behind} epoch(s) without")
        self.behind = 0

    def finish(self) -> None:
        """The last checkpoint, if it still waits, is sent until the storage takes it (as a replay of the last
        epoch, which the driver does not record twice)."""
        delay, deadline = 1.0, time.monotonic() + OUTAGE_LIMIT_S
        while self.behind and self.last is not None and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(2 * delay, 60.0)
            self._send(self.last, [], **{REPLAYED: True})
        if self.behind:
            self.said.warning(f"the storage has not taken the last checkpoint after {OUTAGE_LIMIT_S:.0f} s; the trial "
                              "ends with its results recorded, and a restart would continue from the newest checkpoint "
                              "the storage has")

    def close(self) -> None:
        shutil.rmtree(self.waiting, ignore_errors=True)


def run_trial(sampled: dict, plans: dict[str, TrialPlan]) -> None:
    """The Tune function trainable: one trial of any subset (its config says which)."""
    for _ in trial_epochs(sampled, plans):
        pass
