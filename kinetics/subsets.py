"""Subsets of Kinetics-skeleton as data: which classes, which clips, and labels remapped to 0..K-1.

``kinetics-motion`` is the 30 classes the ST-GCN authors named as motion-related. ``kinetics-392`` drops
the 8 classes with the fewest training clips that have skeletons (ties by class index), unless a class-list
file is given. Sampling (a per-class fraction or cap, stratified or uniform over clips, seeded) applies to the
training split only, so every sampled subset is evaluated on the same validation clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinetics.errors import DataError

KINETICS_MOTION = (
    "belly dancing", "punching bag", "capoeira", "squat", "windsurfing", "skipping rope",
    "swimming backstroke", "hammer throw", "throwing discus", "tobogganing", "hopscotch", "hitting baseball",
    "roller skating", "arm wrestling", "snatch weight lifting", "tai chi", "riding mechanical bull",
    "salsa dancing", "hurling (sport)", "lunge", "skateboarding", "country line dancing", "juggling balls",
    "surfing crowd", "deadlifting", "clean and jerk", "crawling baby", "push up", "front raises", "pull ups",
)
SUBSET_NAMES = ("kinetics-motion", "kinetics-392")
SAMPLINGS = ("stratified", "uniform")
DROPPED_FOR_392 = 8


@dataclass(frozen=True)
class SubsetSpec:
    """What a study trains on. ``classes_file``: one class name per line, replacing the named rule."""

    name: str = "kinetics-motion"
    classes_file: str | None = None
    fraction_per_class: float | None = None
    cap_per_class: int | None = None
    sample_seed: int = 0
    sampling: str = "stratified"  # or "uniform": see _sample

    def __post_init__(self):
        if self.name not in SUBSET_NAMES:
            raise DataError(f"unknown subset {self.name!r}; choose one of {', '.join(SUBSET_NAMES)}")
        if self.fraction_per_class is not None and not 0 < self.fraction_per_class <= 1:
            raise DataError(f"subset fraction_per_class must be in (0, 1], got {self.fraction_per_class}")
        if self.cap_per_class is not None and self.cap_per_class < 1:
            raise DataError(f"subset cap_per_class must be >= 1, got {self.cap_per_class}")
        if self.sampling not in SAMPLINGS:
            raise DataError(f"subset sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")

    @property
    def sampled(self) -> bool:
        return self.fraction_per_class is not None or self.cap_per_class is not None


@dataclass(frozen=True)
class SubsetIndex:
    """Clip rows of one split and their labels in 0..K-1; ``class_names[k]`` names label k."""

    rows: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    original_classes: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.rows)


def _classes_from_file(path: Path, class_names: list[str]) -> list[int]:
    if not path.is_file():
        raise DataError(f"{path}: class-list file not found")
    wanted = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return _indices_of(wanted, class_names, str(path))


def _indices_of(wanted, class_names: list[str], where: str) -> list[int]:
    position = {name: k for k, name in enumerate(class_names)}
    unknown = [name for name in wanted if name not in position]
    if unknown:
        raise DataError(f"{where}: {len(unknown)} class name(s) unknown to the dataset: "
                        f"{', '.join(map(repr, unknown[:10]))}")
    return sorted(position[name] for name in wanted)


def rarest_classes(train_labels: np.ndarray, num_classes: int, drop: int = DROPPED_FOR_392) -> list[int]:
    """The ``drop`` classes with fewest training clips, ties broken by lower class index first."""
    counts = np.bincount(train_labels, minlength=num_classes)
    order = np.lexsort((np.arange(num_classes), counts))
    return sorted(order[:drop].tolist())


def select_classes(spec: SubsetSpec, class_names: list[str], train_labels: np.ndarray) -> list[int]:
    """Original class indices of the subset, ascending."""
    if spec.classes_file:
        return _classes_from_file(Path(spec.classes_file), class_names)
    if spec.name == "kinetics-motion":
        return _indices_of(KINETICS_MOTION, class_names, "kinetics-motion")
    if len(class_names) <= DROPPED_FOR_392:
        raise DataError(f"kinetics-392 needs more than {DROPPED_FOR_392} classes; the dataset has {len(class_names)}")
    dropped = set(rarest_classes(train_labels, len(class_names)))
    return [k for k in range(len(class_names)) if k not in dropped]


def build_index(spec: SubsetSpec, class_names: list[str], labels: np.ndarray, classes: list[int],
                split: str, where: str) -> SubsetIndex:
    """Rows of ``labels`` in ``classes``, sampled (train only) and remapped; errors name ``where``."""
    remap = np.full(max(len(class_names), int(labels.max(initial=0)) + 1), -1)
    remap[classes] = np.arange(len(classes))
    rows = np.flatnonzero(remap[labels] >= 0)
    if split == "train" and spec.sampled:
        rows = _sample(rows, labels[rows], spec)
    if len(rows) == 0:
        raise DataError(f"{where}: subset {spec.name} has no {split} clip")
    return SubsetIndex(rows=rows, labels=remap[labels[rows]], class_names=tuple(class_names[k] for k in classes),
                       original_classes=tuple(classes))


def _sample(rows: np.ndarray, labels: np.ndarray, spec: SubsetSpec) -> np.ndarray:
    """The training clips kept. Stratified: the fraction (and at most the cap) of each class's clips, so every class
    keeps its share. Uniform: as many clips in all as stratified sampling would keep, drawn from all clips at once,
    so the classes keep the imbalance they have in Kinetics. Seeded by ``sample_seed``."""
    rng = np.random.default_rng(spec.sample_seed)
    take = {}
    for label in np.unique(labels):
        count = int((labels == label).sum())
        if spec.fraction_per_class is not None:
            count = max(1, int(round(count * spec.fraction_per_class)))
        if spec.cap_per_class is not None:
            count = min(count, spec.cap_per_class)
        take[label] = count
    if spec.sampling == "uniform":
        return np.sort(rng.choice(rows, size=sum(take.values()), replace=False))
    return np.sort(np.concatenate([rng.choice(rows[labels == label], size=count, replace=False)
                                   for label, count in take.items()]))
