"""A checkpoint to fine-tune from, made offline: the network trained on the synthetic set's classes that are not
kinetics-motion classes, saved as a plain state_dict under the authors' parameter names (our network's names are
theirs, so a paper-shape checkpoint loads into their ``net.st_gcn.Model`` unchanged, and
``model.load_original_checkpoint`` reads it like their released Kinetics weights).

``pretrained: synthetic`` in a config names this checkpoint for the config's network shape; it is made once per
shape and cached like the synthetic set (under a file lock, so trials on a node share one copy).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from common.files import atomic_path, write_text
from kinetics.source import cache_root, open_data
from kinetics.subsets import KINETICS_MOTION
from training.config import SYNTHETIC, ConfigError, TrainConfig
from training.trainer import Trainer

# How the synthetic checkpoint is trained: the paper's optimiser at a rate that trains the CPU-sized network well
# on the synthetic set, long enough for the features to settle.
RECIPE = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4, "scheduler": "cosine",
          "epochs": 12, "seed": 0, "subset": "kinetics-392", "fraction_per_class": None, "cap_per_class": None,
          "pretrained": None, "freeze_epochs": 0, "sample_images": 0}
SHAPE = ("width", "frame_stride", "window", "batch_size", "dropout", "data")  # what the checkpoint depends on


def other_classes(class_names: list[str]) -> list[str]:
    return [name for name in class_names if name not in KINETICS_MOTION]


def pretrain(config: TrainConfig, target: Path, echo: Callable[[str], None] = print) -> Path:
    """Train ``config``'s network on the data's classes outside kinetics-motion and save its state_dict."""
    dataset = open_data(config.data)
    classes = other_classes(dataset.class_names)
    if not classes:
        raise ValueError(f"{dataset.root}: every class is a kinetics-motion class; nothing to pretrain on")
    class_file = target.with_suffix(".classes.txt")
    write_text(class_file, "\n".join(classes) + "\n")
    trainer = Trainer(dataclasses.replace(config, classes_file=str(class_file)), dataset)
    echo(f"pretraining {config.model_variant} on {len(classes)} classes outside kinetics-motion "
         f"({len(trainer.train_set)} clips, {config.epochs} epochs)")
    while not trainer.finished:
        metrics = trainer.run_epoch()
        echo(f"pretrain epoch {metrics['epoch']}: val top-1 {100 * metrics['val_top1']:.1f}%")
    with atomic_path(target) as tmp:
        torch.save(trainer.model.state_dict(), tmp)
    return target


def recipe_for(config: TrainConfig) -> TrainConfig:
    """The pretraining config for a fine-tuning config: its network shape and data, RECIPE for the rest."""
    return dataclasses.replace(TrainConfig(), **{**{k: getattr(config, k) for k in SHAPE}, **RECIPE})


def synthetic_checkpoint(config: TrainConfig, root: Path | None = None, echo: Callable[[str], None] = print) -> Path:
    """The cached synthetic checkpoint for ``config``'s network shape, pretrained on first use."""
    recipe = recipe_for(config)
    key = hashlib.sha1(json.dumps(recipe.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    target = (root or cache_root()) / "pretrained" / f"synthetic_{key}.pt"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            pretrain(recipe, target, echo)
    return target


def resolve_pretrained(config: TrainConfig, echo: Callable[[str], None] = print) -> Path | None:
    """The checkpoint file ``config.pretrained`` names: a path, or the synthetic checkpoint (made if missing)."""
    if not config.pretrained:
        return None
    if config.pretrained == SYNTHETIC:
        if config.data != SYNTHETIC:
            raise ConfigError("pretrained: synthetic is the network pretrained on the synthetic set; with real data "
                              "fine-tune a real checkpoint (pretrained: PATH, e.g. the authors' st_gcn.kinetics.pt)")
        return synthetic_checkpoint(config, echo=echo)
    return Path(config.pretrained)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
