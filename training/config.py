"""The one config type: it flows from a search space through the trainable and the trainer to the result
tables, and its field names are the spreadsheet's and the plots' vocabulary.

Defaults are the paper's Kinetics-skeleton recipe (SGD nesterov, lr 0.1, wd 1e-4, batch 256, step at
20/30/40 of 50 epochs, window 150, the paper-shape network). ``cpu_profile`` gives the labelled CPU-sized
variant used by the synthetic demo.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path

from common.files import read_yaml_mapping
from kinetics.subsets import SAMPLINGS

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("step", "cosine", "plateau", "none")
SYNTHETIC = "synthetic"


class ConfigError(ValueError):
    """A config value is invalid; the message names the source, the field and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    # optimisation
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = True
    beta1: float = 0.9
    beta2: float = 0.999
    batch_size: int = 256
    # learning-rate schedule
    scheduler: str = "step"
    milestones: tuple[int, ...] = (20, 30, 40)
    gamma: float = 0.1
    plateau_patience: int = 5
    plateau_factor: float = 0.1
    warmup_epochs: int = 0
    epochs: int = 50
    # data
    data: str = SYNTHETIC
    subset: str = "kinetics-motion"
    classes_file: str | None = None
    fraction_per_class: float | None = None  # of each class's training clips (validation is never sampled)
    cap_per_class: int | None = None
    sampling: str = "stratified"  # stratified (per class) or uniform (over all clips: keeps the class imbalance)
    window: int = 150
    frame_stride: int = 1
    random_shift: bool = False
    random_move: bool = True
    # model
    width: float = 1.0
    dropout: float = 0.0
    pretrained: str | None = None  # a checkpoint in the authors' format, or "synthetic" (made by study.pretrain)
    freeze_epochs: int = 0  # epochs a pretrained backbone stays frozen while the new head trains
    # run
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    cudnn_benchmark: bool = True  # cuDNN times its convolution algorithms for the fixed clip shape, CUDA only
    compile: bool = False  # torch.compile the training forward, CUDA only (on CPU: no gain, a crash in torch 2.13)
    loader_workers: int | None = None  # loader processes; None: chosen for the device (trainer.loader_workers_for)
    eval_batch_size: int = 64
    # Validation after every eval_interval-th epoch and the last (the original's --eval_interval, 5 there); a study's
    # trial also after ASHA's rungs, and a plateau schedule after every epoch (it steps on the validation loss).
    eval_interval: int = 1
    sample_images: int = 4

    @property
    def model_variant(self) -> str:
        """'paper' or a label that says how the network was shrunk, for every table and plot."""
        if self.width == 1.0 and self.frame_stride == 1:
            return "paper"
        return f"cpu-sized (width x{self.width:g}, frame stride {self.frame_stride})"

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["milestones"] = list(self.milestones)
        return out

    def applied_dict(self) -> dict:
        """``to_dict`` with the fields this run does not use set to None (momentum of an Adam run, gamma of a
        cosine schedule), so result tables never show a value that had no effect."""
        out = self.to_dict()
        for name, (parent, values) in APPLIES_WHEN.items():
            if getattr(self, parent) not in values:
                out[name] = None
        return out


FIELD_TYPES = typing.get_type_hints(TrainConfig)  # name -> type: float, str | None, tuple[int, ...], ...


def field_type(name: str) -> tuple[type, bool]:
    """A field's type without None (``tuple`` for tuple[int, ...]), and whether it may be None."""
    hint = FIELD_TYPES[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    return typing.get_origin(hint) or hint, optional


def _type_name(name: str) -> str:
    hint = FIELD_TYPES[name]
    return str(hint) if typing.get_args(hint) else hint.__name__

# Fields that only mean something for some optimizers or schedulers: field -> (parent field, values).
APPLIES_WHEN = {"momentum": ("optimizer", ("sgd",)), "nesterov": ("optimizer", ("sgd",)),
                "beta1": ("optimizer", ("adam", "adamw")), "beta2": ("optimizer", ("adam", "adamw")),
                "milestones": ("scheduler", ("step",)), "gamma": ("scheduler", ("step",)),
                "plateau_patience": ("scheduler", ("plateau",)), "plateau_factor": ("scheduler", ("plateau",))}

# CPU-sized variant for the synthetic demo and tests: an eighth of the paper's width, every 3rd frame (10 fps) in
# 40-frame windows, batch 8 (more steps per clip), and no random move: on the synthetic set the move's rotation,
# scale and translation (on top of the generator's own camera nuisance) kept the small network at chance for its
# first 3-4 epochs (docs/running.md, "The CPU profile"), which a study of a few minutes cannot afford.
CPU_PROFILE = {"width": 0.125, "frame_stride": 3, "window": 40, "batch_size": 8, "epochs": 8, "milestones": [7],
               "random_move": False, "eval_batch_size": 64}


# Fields that name files or directories; "synthetic" names the built-in synthetic stand-in, not a path.
PATH_FIELDS = ("data", "classes_file", "pretrained")


def is_path_field(name: str) -> bool:
    return name in PATH_FIELDS


def absolute_paths(values: dict, root: Path) -> dict:
    """``values`` with every path field absolute (``~`` expanded, relative taken against ``root``): trials run in
    their own directories, often on other machines, so a path must mean the same file wherever it is read."""
    out = dict(values)
    for name in PATH_FIELDS:
        value = out.get(name)
        if isinstance(value, str) and value != SYNTHETIC:
            out[name] = str((Path(root) / Path(value).expanduser()).resolve())
    return out


def _coerce(name: str, value, source: str):
    kind, optional = field_type(name)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: field '{name}' must not be empty")
    try:
        if kind is tuple:
            return tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{source}: field '{name}' has {value!r}, expected {_type_name(name)}")


def from_dict(values: dict, source: str = "config") -> TrainConfig:
    """Build and validate; unknown keys and bad values are errors naming ``source`` and the field."""
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}; known fields: "
                          f"{', '.join(sorted(FIELD_TYPES))}")
    config = TrainConfig(**{k: _coerce(k, v, source) for k, v in values.items()})
    validate(config, source)
    return config


def validate(c: TrainConfig, source: str = "config") -> None:
    problems = []
    if c.optimizer not in OPTIMIZERS:
        problems.append(f"'optimizer' is {c.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if c.scheduler not in SCHEDULERS:
        problems.append(f"'scheduler' is {c.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if not (math.isfinite(c.lr) and c.lr > 0):
        problems.append(f"'lr' must be a positive number, got {c.lr}")
    for name in ("weight_decay", "momentum", "gamma", "dropout"):
        value = getattr(c, name)
        if not (math.isfinite(value) and value >= 0):
            problems.append(f"'{name}' must be >= 0, got {value}")
    for name in ("beta1", "beta2", "plateau_factor"):
        if not 0 < getattr(c, name) < 1:
            problems.append(f"'{name}' must be in (0, 1), got {getattr(c, name)}")
    for name in ("batch_size", "epochs", "window", "frame_stride", "eval_batch_size", "eval_interval",
                 "plateau_patience"):
        if getattr(c, name) < 1:
            problems.append(f"'{name}' must be >= 1, got {getattr(c, name)}")
    if c.batch_size < 2:
        problems.append("'batch_size' must be >= 2 (BatchNorm needs two clips to train)")
    if c.warmup_epochs < 0 or c.warmup_epochs >= c.epochs:
        problems.append(f"'warmup_epochs' must be in [0, epochs), got {c.warmup_epochs}")
    if c.scheduler == "step" and (list(c.milestones) != sorted(set(c.milestones)) or
                                  any(m < 1 or m > c.epochs for m in c.milestones)):
        problems.append(f"'milestones' must be increasing epochs in [1, {c.epochs}], got {list(c.milestones)} "
                        "(set milestones to fit the epochs, or use another scheduler)")
    if not 0 < c.width <= 4:
        problems.append(f"'width' must be in (0, 4], got {c.width}")
    if c.sampling not in SAMPLINGS:
        problems.append(f"'sampling' is {c.sampling!r}; choose one of {', '.join(SAMPLINGS)}")
    if c.fraction_per_class is not None and not 0 < c.fraction_per_class <= 1:
        problems.append(f"'fraction_per_class' must be in (0, 1], got {c.fraction_per_class}")
    if c.cap_per_class is not None and c.cap_per_class < 1:
        problems.append(f"'cap_per_class' must be >= 1, got {c.cap_per_class}")
    if c.freeze_epochs < 0 or c.freeze_epochs >= c.epochs:
        problems.append(f"'freeze_epochs' must be in [0, epochs), got {c.freeze_epochs}")
    if c.freeze_epochs and not c.pretrained:
        problems.append("'freeze_epochs' freezes a pretrained backbone; set 'pretrained' too, or freeze_epochs to 0")
    if c.loader_workers is not None and c.loader_workers < 0:
        problems.append(f"'loader_workers' must be >= 0 (or empty for the device's default), got {c.loader_workers}")
    if c.device not in ("auto", "cpu", "cuda") and not c.device.startswith("cuda:"):
        problems.append(f"'device' must be auto, cpu, cuda or cuda:N, got {c.device!r}")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def load(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """A YAML or JSON file of fields (any subset; the rest are the paper defaults)."""
    path = Path(path)
    values = read_yaml_mapping(path, ConfigError, "config file")
    return from_dict({**values, **(overrides or {})}, source=str(path))

