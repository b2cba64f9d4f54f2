"""The converted arrays as a training set: validated once, read through a memory map, served in batches.

The whole array is never loaded: each batch reads its rows from the memmap. The memmap is opened lazily in
each process (DataLoader workers, Ray workers) and never pickled. Shuffling and augmentation draw from
generators seeded by (seed, epoch, batch), so an epoch's batches are the same whatever the worker count and
whether the run was resumed.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kinetics.augment import augment, choose_offset
from kinetics.errors import DataError
from kinetics.layout import CHANNELS, NUM_JOINTS, class_names_file, data_file, label_file, provenance_file
from kinetics.subsets import SubsetIndex, SubsetSpec, build_index, select_classes


class _LabelUnpickler(pickle.Unpickler):
    """Label files are pickles; allow only the builtins and numpy scalars they legitimately hold."""

    ALLOWED = {("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("builtins", "int"), ("builtins", "str")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_labels(path: Path) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: label file not found")
    try:
        with open(path, "rb") as handle:
            names, labels = _LabelUnpickler(handle).load()
        labels = np.asarray(labels, dtype=np.int64)
    except Exception as exc:
        raise DataError(f"{path}: not a (clip names, label indices) pickle ({exc.__class__.__name__}: {exc})") from exc
    if len(names) != len(labels):
        raise DataError(f"{path}: {len(names)} clip names but {len(labels)} labels")
    if labels.ndim != 1 or (labels < 0).any():
        raise DataError(f"{path}: label indices must be a flat list of non-negative integers")
    return list(names), labels


def open_array(path: Path) -> np.memmap:
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise DataError(f"{path}: truncated or not a .npy array ({exc})") from exc
    if array.dtype != np.float32:
        raise DataError(f"{path}: dtype is {array.dtype}, expected float32")
    if array.ndim != 5 or array.shape[1] != CHANNELS or array.shape[3] != NUM_JOINTS:
        raise DataError(f"{path}: shape is {array.shape}, expected (N, {CHANNELS}, T, {NUM_JOINTS}, M)")
    return array


@dataclass(frozen=True)
class Split:
    """One split of a converted dataset: where its array is, its clips and labels."""

    data_path: Path
    clip_names: list[str]
    labels: np.ndarray
    shape: tuple[int, ...]


class ConvertedDataset:
    """A converted directory (ours, or the original tools' output plus class_names.json), validated."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset directory not found")
        self.splits = {split: self._split(split) for split in ("train", "val")}
        names_path = class_names_file(self.root)
        if names_path.is_file():
            self.class_names = json.loads(names_path.read_text(encoding="utf-8"))
        else:
            top = max(int(s.labels.max(initial=-1)) for s in self.splits.values()) + 1
            self.class_names = [f"class {k}" for k in range(top)]
        for name, split in self.splits.items():
            if len(split.labels) and split.labels.max() >= len(self.class_names):
                raise DataError(f"{names_path}: {len(self.class_names)} class names, but "
                                f"{label_file(self.root, name).name} uses label {split.labels.max()}")
        prov = provenance_file(self.root)
        self.provenance = json.loads(prov.read_text()) if prov.is_file() else {"source": "real", "note":
                                                                               "converted elsewhere"}

    def _split(self, split: str) -> Split:
        data_path = data_file(self.root, split)
        array = open_array(data_path)
        names, labels = read_labels(label_file(self.root, split))
        if len(labels) != array.shape[0]:
            raise DataError(f"{label_file(self.root, split)}: {len(labels)} labels but {data_path.name} "
                            f"holds {array.shape[0]} clips")
        return Split(data_path, names, labels, tuple(array.shape))

    @property
    def source(self) -> str:
        return self.provenance.get("source", "real")

    def subset(self, spec: SubsetSpec) -> dict[str, SubsetIndex]:
        if spec.classes_file is None and spec.name == "kinetics-motion" and not class_names_file(self.root).is_file():
            raise DataError(f"{class_names_file(self.root)}: missing, and kinetics-motion is defined by class names; "
                            "create it with `python -m kinetics class-names --label-json "
                            "kinetics_train_label.json --out DIR`")
        classes = select_classes(spec, self.class_names, self.splits["train"].labels)
        return {name: build_index(spec, self.class_names, split.labels, classes, name, str(split.data_path))
                for name, split in self.splits.items()}


@dataclass(frozen=True)
class Augmentation:
    window: int = 150
    choose: bool = True
    shift: bool = False
    move: bool = True


class SkeletonBatches(Dataset):
    """Serves whole batches: ``dataset[(seed, positions)]`` -> (x (B, C, T, V, M), y (B,)).

    Positions index the subset; rows are read from the memmap in ascending order (sequential I/O).
    ``frame_stride`` > 1 keeps every n-th frame: the labelled temporal downscale of CPU-sized runs. With random
    choose (and no random shift, the default) only the frames of each clip's window are read: the window's start is
    drawn first, from the batch's own generator, exactly as ``augment`` would draw it, so the batch is the same as
    reading whole clips and cropping them, for half the bytes at the paper's window of 150 of 300 frames.
    ``frames_read`` counts the frames read from the array (per clip: the span a clip's read covers).
    """

    def __init__(self, split: Split, index: SubsetIndex, augmentation: Augmentation | None, frame_stride: int = 1):
        self.split, self.index, self.augmentation = split, index, augmentation
        self.frame_stride = frame_stride
        self.frames_read = 0
        self._array: np.memmap | None = None

    def __getstate__(self):
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return len(self.index)

    @property
    def array(self) -> np.memmap:
        if self._array is None:
            self._array = open_array(self.split.data_path)
        return self._array

    @property
    def frames(self) -> int:
        """Frames of a clip after the stride."""
        return len(range(0, self.array.shape[2], self.frame_stride))

    def _read(self, rows: np.ndarray, starts: np.ndarray | None = None, length: int | None = None) -> np.ndarray:
        """The clips of ``rows`` (strided), or of each its ``length`` frames from strided frame ``starts[i]``."""
        order = np.argsort(rows, kind="stable")
        stride = self.frame_stride
        if starts is None:
            x = np.empty((len(rows), *self.array.shape[1:]), dtype=np.float32)
            x[order] = self.array[rows[order]]
            x = x[:, :, ::stride]
            self.frames_read += len(rows) * self.array.shape[2]
        else:
            c, _, v, m = self.array.shape[1:]
            x = np.empty((len(rows), c, length, v, m), dtype=np.float32)
            for i in order:
                first = int(starts[i]) * stride
                x[i] = self.array[rows[i], :, first:first + length * stride:stride]
            self.frames_read += len(rows) * ((length - 1) * stride + 1)
        if not np.isfinite(x).all():
            bad = rows[~np.isfinite(x).reshape(len(rows), -1).all(axis=1)]
            raise DataError(f"{self.split.data_path}: NaN or infinite values in clip row(s) {bad[:5].tolist()} "
                            f"({', '.join(self.split.clip_names[r] for r in bad[:5])})")
        return x

    def __getitems__(self, key: tuple[int, list[int]]):
        seed, positions = key
        rows = self.index.rows[positions]
        a = self.augmentation
        labels = torch.from_numpy(self.index.labels[positions])
        if a is None:
            return torch.from_numpy(np.ascontiguousarray(self._read(rows))), labels
        gen = torch.Generator().manual_seed(seed)
        if a.choose and not a.shift and self.frames > a.window:
            starts = choose_offset(len(rows), self.frames, a.window, gen).numpy()
            batch = torch.from_numpy(self._read(rows, starts, a.window))
            return augment(batch, a.window, gen, choose=False, shift=False, move=a.move), labels
        batch = torch.from_numpy(np.ascontiguousarray(self._read(rows)))
        return augment(batch, a.window, gen, choose=a.choose, shift=a.shift, move=a.move), labels

    def __getitem__(self, key):
        return self.__getitems__(key)


class BatchPlan:
    """One epoch's batches as (seed, positions); order and seeds follow from (seed, epoch) alone."""

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, shuffle: bool, drop_last: bool = False):
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, epoch
        self.shuffle, self.drop_last = shuffle, drop_last

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        for number, start in enumerate(range(0, self.size, self.batch_size)):
            positions = order[start:start + self.batch_size]
            if self.drop_last and len(positions) < self.batch_size:
                return
            yield int(np.random.SeedSequence([self.seed, self.epoch, number]).generate_state(1)[0]), positions.tolist()

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)


def _whole_batch(batch):
    return batch


PREFETCH_BATCHES = 4  # per loader worker: batches ready ahead of the step, so a GPU step never waits for a batch


class Loader:
    """One split's batches for a whole run, one DataLoader kept across epochs: its worker processes start once
    (persistent), not twice per epoch (training and evaluation), and on CUDA it pins the batches in page-locked
    memory, which is what lets the trainer's non-blocking copy overlap the step. The batch plan is drawn in this
    process, so setting its epoch before iterating is all a new epoch needs."""

    def __init__(self, dataset: SkeletonBatches, batch_size: int, seed: int, shuffle: bool, workers: int = 0,
                 pin_memory: bool = False):
        drop_last = shuffle and len(dataset) % batch_size == 1  # BatchNorm cannot train on a batch of one clip
        self.plan = BatchPlan(len(dataset), batch_size, seed, 0, shuffle, drop_last)
        self.loader = DataLoader(dataset, batch_sampler=self.plan, collate_fn=_whole_batch, num_workers=workers,
                                 persistent_workers=workers > 0, pin_memory=pin_memory,
                                 prefetch_factor=PREFETCH_BATCHES if workers else None)

    def epoch(self, epoch: int) -> DataLoader:
        self.plan.epoch = epoch
        return self.loader


def batches(dataset: SkeletonBatches, batch_size: int, seed: int, epoch: int, shuffle: bool,
            workers: int = 0) -> DataLoader:
    """A loader of one epoch (for one-off reads: benchmarks, tests)."""
    return Loader(dataset, batch_size, seed, shuffle, workers).epoch(epoch)
