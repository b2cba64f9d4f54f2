"""File names of the raw release and of the converted layout: one place, so every reader agrees."""

from __future__ import annotations

from pathlib import Path

SPLITS = ("train", "val")
MAX_FRAMES = 300
NUM_JOINTS = 18
PERSONS_KEPT = 2
PERSONS_READ = 5
CHANNELS = 3  # x, y, confidence
CLIP_SHAPE = (CHANNELS, MAX_FRAMES, NUM_JOINTS, PERSONS_KEPT)


def raw_clip_dir(raw: Path, split: str) -> Path:
    return raw / f"kinetics_{split}"


def raw_label_file(raw: Path, split: str) -> Path:
    return raw / f"kinetics_{split}_label.json"


def data_file(converted: Path, split: str) -> Path:
    return converted / f"{split}_data.npy"


def label_file(converted: Path, split: str) -> Path:
    return converted / f"{split}_label.pkl"


def class_names_file(converted: Path) -> Path:
    return converted / "class_names.json"


def provenance_file(converted: Path) -> Path:
    """Says where the arrays came from (synthetic generator or the real release) and what was skipped."""
    return converted / "provenance.json"
