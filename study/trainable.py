"""The Ray Tune trainable: a thin adapter from a sampled config to an Experiment, one report per epoch.

Each report carries a checkpoint (the trainer's full state), so a retried or resumed trial continues from
its last finished epoch. The dataset is opened once per worker process (memory maps, shared through the
page cache by every trial on the node); nothing is converted or copied per trial.
"""

from __future__ import annotations

import functools
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ray
import torch
from ray import tune

from study import live_metrics
from study.config import TrainConfig
from study.data.dataset import ConvertedDataset
from study.data.source import resolve_data_dir
from study.run_experiment import Experiment
from study.spaces import SearchSpace

REPEAT_OF = "repeat_of"  # in a seed repeat's config: the trial id whose hyperparameters it re-runs
REPEAT_INDEX_BASE = 5000  # seed repeats are numbered from here, apart from the search's trials
# Reported with every epoch, so the progress table shows them also where the search does not vary them.
REPORTED_CONFIG = ("optimizer", "batch_size", "scheduler")


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
    cpus: float = 1.0
    index_shift: int = -1  # trial index = Tune's trial counter + shift (the search counts from 1)

    def config_for(self, sampled: dict) -> TrainConfig:
        """A seed repeat's sample carries its own seed and the trial it repeats (not a config field)."""
        own = {k: v for k, v in sampled.items() if k != REPEAT_OF}
        seed = {"seed": own.pop("seed")} if "seed" in own else {}
        return self.space.to_config(own, self.cpu_profile, {**self.overrides, "subset": self.subset, **seed})

    def experiment_id(self, index: int) -> int:
        """Unique within the study and stable across resumes: 10000 per subset plus the trial's index."""
        return 10_000 * (self.subset_position + 1) + index

    def trial_name(self, trial) -> str:
        """Tune's trial name (also the dashboard's), carrying the index the search gave the trial."""
        counter = int(str(trial.experiment_tag).split("_", 1)[0])
        return f"{self.study}.{self.subset}.{counter + self.index_shift:04d}"

    @staticmethod
    def index_of(trial_name: str) -> int:
        return int(trial_name.rsplit(".", 1)[1])

    def trial_dirname(self, trial) -> str:
        return f"{self.index_of(self.trial_name(trial)):04d}_{trial.trial_id}"


@functools.lru_cache(maxsize=4)
def open_dataset(data: str) -> ConvertedDataset:
    """Once per worker process: later trials in a reused worker skip even the index read."""
    return ConvertedDataset(resolve_data_dir(data))


def trial_epochs(sampled: dict, plan: TrialPlan) -> Iterator[dict]:
    """The trial as a generator: restore, then per epoch train, checkpoint, report to Tune, and yield the
    metrics. A wrapper can act between epochs (the fault-tolerance tests raise there) without a hook in here."""
    context = tune.get_context()
    index = plan.index_of(context.get_trial_name())
    config = plan.config_for(sampled)
    torch.set_num_threads(max(1, int(plan.cpus)))
    root = Path(plan.experiments_dir or context.get_trial_dir())
    experiment = Experiment(config, open_dataset(config.data), root, index=index,
                            experiment_id=plan.experiment_id(index),
                            echo=lambda line: print(f"[{context.get_trial_name()}] {line}", flush=True),
                            run_info={"study": plan.study, "subset": plan.subset, "trial_id": context.get_trial_id(),
                                      "sampled": sampled})
    where = {"node": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id()}
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            experiment.restore(Path(directory))
    while not experiment.finished:
        metrics = experiment.step()
        with tempfile.TemporaryDirectory() as directory:
            experiment.save_checkpoint(Path(directory))
            tune.report({**metrics, "experiment_id": experiment.experiment_id, "folder": experiment.folder.path.name,
                         **{key: getattr(config, key) for key in REPORTED_CONFIG}, **where},
                        checkpoint=tune.Checkpoint.from_directory(directory))
        live_metrics.publish(plan.study, plan.subset, context.get_trial_name(), metrics)
        yield metrics


def run_trial(sampled: dict, plan: TrialPlan) -> None:
    """The Tune function trainable."""
    for _ in trial_epochs(sampled, plan):
        pass
