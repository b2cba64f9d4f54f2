"""Convert the raw Kinetics-skeleton release into the layout the original code trains on.

Streams clips through a process pool into a memory-mapped .npy (the real training split is ~240k clips,
7.5 GB of JSON, 31 GB of float32), so memory stays flat; every output is written under a temporary name
and renamed when complete. Clips that cannot be converted faithfully are skipped, counted and listed in
provenance.json; a clip whose label disagrees with the label file stops the conversion (wrong pairing).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np

from common.files import atomic_path, write_json, write_pickle
from common.progress import Progress
from kinetics.errors import DataError
from kinetics.layout import (
    CLIP_SHAPE,
    SPLITS,
    class_names_file,
    data_file,
    label_file,
    provenance_file,
    raw_clip_dir,
    raw_label_file,
)
from kinetics.raw import ClipSkipped, read_clip

SYNTHETIC_MARKER = "synthetic.json"  # written by the generator into the raw directory


def read_label_file(path: Path) -> dict[str, dict]:
    """clip id -> {"has_skeleton", "label", "label_index"}, validated."""
    if not path.is_file():
        raise DataError(f"{path}: label file not found")
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON ({exc})") from exc
    if not isinstance(labels, dict):
        raise DataError(f"{path}: expected an object mapping clip id -> label info")
    for clip_id, info in labels.items():
        if not isinstance(info, dict) or not {"has_skeleton", "label_index"} <= set(info):
            raise DataError(f"{path}: entry {clip_id!r} needs 'has_skeleton' and 'label_index', got {info!r}")
    return labels


def class_names_from_labels(*label_maps: dict[str, dict]) -> list[str]:
    names: dict[int, str] = {}
    for labels in label_maps:
        for info in labels.values():
            names.setdefault(int(info["label_index"]), str(info.get("label", "")))
    count = max(names) + 1 if names else 0
    return [names.get(k, f"class {k}") for k in range(count)]


def _read(path: Path):
    try:
        return read_clip(path)
    except ClipSkipped as exc:
        return exc
    except OSError as exc:
        return ClipSkipped(f"{path.name}: unreadable ({exc})")


def _shrink_npy(path: Path, rows: int, header_len: int) -> None:
    """Rewrite the .npy header in place for fewer rows and cut the file: no second copy of the data. numpy pads
    the header so the first axis can change length without moving the data."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (rows, *CLIP_SHAPE)}
    with open(path, "r+b") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        if handle.tell() != header_len:
            raise RuntimeError(f"{path}: the .npy header for {rows} rows would move the data ({handle.tell()} bytes, "
                               f"not {header_len})")
        handle.truncate(header_len + rows * int(np.prod(CLIP_SHAPE)) * np.dtype(np.float32).itemsize)


def convert_split(raw: Path, out: Path, split: str, workers: int) -> dict:
    labels = read_label_file(raw_label_file(raw, split))
    clip_dir = raw_clip_dir(raw, split)
    if not clip_dir.is_dir():
        raise DataError(f"{clip_dir}: clip directory not found")
    files = sorted(p for p in clip_dir.iterdir() if p.suffix == ".json")
    unlisted = [p.name for p in files if p.stem not in labels]
    if unlisted:
        raise DataError(f"{clip_dir}: {len(unlisted)} clip(s) have no entry in {raw_label_file(raw, split).name}, "
                        f"e.g. {', '.join(unlisted[:5])}")
    candidates = [p for p in files if labels[p.stem]["has_skeleton"]]
    skipped: dict[str, list[str]] = {"no_skeleton": [p.name for p in files if not labels[p.stem]["has_skeleton"]],
                                     "unconvertible": []}
    if not candidates:
        raise DataError(f"{clip_dir}: no clip with a skeleton to convert")
    names, label_indices = [], []
    progress = Progress(f"convert {split}", len(candidates))
    target = data_file(out, split)
    with atomic_path(target) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(candidates), *CLIP_SHAPE))
        header_len = array.offset
        with multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else _Serial() as pool:
            for path, result in zip(candidates, pool.imap(_read, candidates, chunksize=16)):
                progress.advance()
                if isinstance(result, ClipSkipped):
                    skipped["unconvertible"].append(str(result))
                    continue
                expected = int(labels[path.stem]["label_index"])
                if result.label_index != expected:
                    raise DataError(f"{path}: label_index {result.label_index} disagrees with "
                                    f"{raw_label_file(raw, split).name} ({expected}); wrong label file for this split?")
                array[len(names)] = result.array
                names.append(path.name)
                label_indices.append(expected)
        array.flush()
        del array
        if len(names) < len(candidates):
            _shrink_npy(tmp, len(names), header_len)
    write_pickle(label_file(out, split), (names, label_indices))
    return {"clips": len(names), "skipped": {k: len(v) for k, v in skipped.items()},
            "unconvertible": skipped["unconvertible"]}


class _Serial:
    """Stands in for a pool when one process is enough (tests, tiny sets)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(fn, items, chunksize=1):
        return map(fn, items)


def convert(raw: Path, out: Path, workers: int | None = None) -> dict:
    """Convert both splits; returns (and writes to provenance.json) what was converted and skipped."""
    raw, out = Path(raw), Path(out)
    if not raw.is_dir():
        raise DataError(f"{raw}: raw dataset directory not found")
    workers = workers or min(8, os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)
    marker = raw / SYNTHETIC_MARKER
    generator = json.loads(marker.read_text()) if marker.is_file() else None
    splits = {split: convert_split(raw, out, split, workers) for split in SPLITS}
    names = class_names_from_labels(*(read_label_file(raw_label_file(raw, s)) for s in SPLITS))
    write_json(class_names_file(out), names)
    provenance = {"source": "synthetic" if generator else "real", "raw": str(raw.resolve()),
                  "generator": generator, "splits": splits}
    write_json(provenance_file(out), provenance)
    return provenance


def write_class_names(label_json: Path, out: Path) -> list[str]:
    """For arrays made by the original tools, which keep no class names: take them from a raw label file."""
    names = class_names_from_labels(read_label_file(Path(label_json)))
    write_json(class_names_file(Path(out)), names)
    return names
