"""One experiment end to end: a Trainer plus its experiment folder and checkpoint. Shared by the standalone
CLI (study.train) and the Ray Tune trainable, so both write the same folder the same way.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Collection
from pathlib import Path

import torch

from common import logs
from common.files import atomic_path
from kinetics.dataset import ConvertedDataset
from model import LAYOUTS
from training.config import ConfigError, TrainConfig
from training.folder import ExperimentFolder, folder_name, parse_folder_name
from training.pretrain import resolve_pretrained, sha256
from training.trainer import Trainer, check_same_config

CHECKPOINT = "checkpoint.pt"


def describe_epoch(m: dict) -> str:
    if m["diverged"]:
        return f"epoch {m['epoch']}: diverged (training loss is NaN/inf), lr {m['epoch_lr']:.3g}"
    scored = not math.isnan(m["val_top1"])
    val = (f"val loss {m['val_loss']:.4f} top-1 {100 * m['val_top1']:.1f}% top-5 {100 * m['val_top5']:.1f}%" if scored
           else "val not scored this epoch (eval_interval)")
    inference = f", {m['inference_ms_per_clip']:.2f} ms/clip inference" if scored else ""
    return (f"epoch {m['epoch']}: train loss {m['train_loss']:.4f} top-1 {100 * m['train_top1']:.1f}% | {val} | "
            f"lr {m['epoch_lr']:.3g} | {m['epoch_time_s']:.1f}s, {m['clips_per_s']:.0f} clips/s{inference}")


class Experiment:
    """A trainer writing its experiment folder; ``step()`` runs one epoch and records everything."""

    def __init__(self, config: TrainConfig, dataset: ConvertedDataset, root: Path, index: int = 0,
                 experiment_id: int | None = None, echo: Callable[[str], None] | None = None, run_info: dict | None = None,
                 continues: str | None = None, device: str | None = None, watched: bool = True,
                 may_end_after: Collection[int] = (), validated_after: Collection[int] = ()):
        """``continues``: the name of an existing folder this run must go on writing; a config or dataset that would
        name another folder is refused before anything is written. ``watched``: a run someone follows as it goes
        (study.train) has its curves redrawn after every epoch and its sample predictions drawn after the first as
        well as at its end. Otherwise (a study's trial) figures are drawn where they can be the run's last: its end,
        and for the sample predictions also the epochs in ``may_end_after`` (ASHA's rungs, where the scheduler may
        stop it from outside); the report draws the curves of a trial ASHA stopped, and a figure nobody looks at is
        time taken from training. ``validated_after``: epochs validated whatever the config's ``eval_interval``
        says (a study's ASHA rungs, where trials are compared)."""
        self.config, self.echo = config, echo or logs.get("trainer").info
        self.watched, self.may_end_after = watched, frozenset(may_end_after)
        weights = resolve_pretrained(config, self.echo)
        self.pretrained_sha256 = sha256(weights) if weights else None  # names the exact weights a result started from
        self.trainer = Trainer(config, dataset, device, weights, validated_after)
        self.experiment_id = experiment_id if experiment_id is not None else int(time.time() * 1000) % 100_000
        name = folder_name(index, self.experiment_id, config, self.trainer.num_classes)
        if continues is not None and name != continues:
            raise ConfigError(f"{Path(root) / continues}: this config and data would write folder {name}; resume with "
                              "the config and data the run was started with")
        self.folder = ExperimentFolder(Path(root) / name)
        self.title = f"{config.optimizer} lr={config.lr:.3g} bs={config.batch_size} {config.scheduler} ({name})"
        self.folder.write_run_info({
            **(run_info or {}), "experiment_id": self.experiment_id, "folder": name, "config": config.to_dict(),
            "seed": config.seed, "data_source": dataset.source, "data_dir": str(dataset.root),
            "model_variant": config.model_variant, "num_classes": self.trainer.num_classes,
            "class_names": list(self.trainer.class_names), "device": str(self.trainer.device),
            "pretrained_file": str(weights) if weights else None, "pretrained_sha256": self.pretrained_sha256,
            "torch": torch.__version__, "python": platform.python_version()})
        self.folder.copy_sources()

    @property
    def finished(self) -> bool:
        return self.trainer.finished

    def step(self) -> dict:
        metrics = self.trainer.run_epoch()
        line = describe_epoch(metrics)
        self.folder.log(line)
        self.echo(line)
        stop = (metrics["epoch"], "diverged (loss NaN)") if metrics["diverged"] else (None, None)
        ended = self.trainer.finished or metrics["diverged"]
        self.folder.record_epochs(self.trainer.history, self.title, *stop, curves=self.watched or ended)
        if self.config.sample_images and (ended or metrics["epoch"] in self.may_end_after
                                          or (self.watched and metrics["epoch"] == 1)):
            self.folder.write_samples(*self.trainer.sample_predictions(self.config.sample_images),
                                      self.trainer.class_names, LAYOUTS[self.trainer.model.config.layout].bones)
        return metrics

    def save_checkpoint(self, directory: Path) -> Path:
        target = Path(directory) / CHECKPOINT
        with atomic_path(target) as tmp:
            torch.save(self.trainer.state_dict(), tmp)
        return target

    @classmethod
    def resumed(cls, config: TrainConfig, dataset: ConvertedDataset, folder: Path, **kwargs) -> Experiment:
        """The run whose folder is ``folder``, continued in that folder from its checkpoint. A config other than
        the checkpoint's is refused before anything in the folder is written."""
        folder = Path(folder)
        path = folder / CHECKPOINT
        if not path.is_file():
            raise ConfigError(f"{folder}: no {CHECKPOINT} to resume from")
        state = torch.load(path, map_location="cpu", weights_only=False)
        check_same_config(state, config)
        parsed = parse_folder_name(folder.name)
        experiment = cls(config, dataset, folder.parent, parsed["index"], parsed["experiment_id"],
                         continues=folder.name, **kwargs)
        experiment._load(state, path)
        return experiment

    def restore(self, directory: Path) -> bool:
        path = Path(directory) / CHECKPOINT
        if not path.is_file():
            return False
        self._load(torch.load(path, map_location="cpu", weights_only=False), path)
        return True

    def _load(self, state: dict, path: Path) -> None:
        self.trainer.load_state_dict(state)
        self.folder.log(f"restored from {path} after epoch {self.trainer.epoch}")
        if self.trainer.history:
            self.folder.record_epochs(self.trainer.history, self.title)


def best(history: list[dict], key: str = "val_top1") -> float:
    values = [m[key] for m in history if not math.isnan(m[key])]
    return max(values) if values else math.nan
