"""One raw Kinetics-skeleton clip (OpenPose JSON) to the (3, 300, 18, 2) array the original code trains on.

Semantics are the original preprocessing's: first 5 persons per frame, x/y minus 0.5, x/y zeroed where the
joint's score is 0, then per frame persons sorted by total score (descending), 2 kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kinetics.layout import MAX_FRAMES, NUM_JOINTS, PERSONS_KEPT, PERSONS_READ


class ClipSkipped(Exception):
    """This clip cannot be converted faithfully; the converter counts and reports it instead of writing it."""


@dataclass(frozen=True)
class RawClip:
    array: np.ndarray  # (3, MAX_FRAMES, NUM_JOINTS, PERSONS_KEPT) float32
    label_index: int
    label: str


def clip_to_array(frames: list, source: str = "<clip>") -> np.ndarray:
    """The ``data`` list of one clip to its normalised array. ``source`` names the clip in errors."""
    full = np.zeros((3, MAX_FRAMES, NUM_JOINTS, PERSONS_READ), dtype=np.float32)
    for frame in frames:
        t = frame["frame_index"]
        if not isinstance(t, int) or t < 0:
            raise ClipSkipped(f"{source}: frame_index {t!r} is not a non-negative integer")
        if t >= MAX_FRAMES:
            raise ClipSkipped(f"{source}: frame_index {t} exceeds the {MAX_FRAMES}-frame layout")
        for m, person in enumerate(frame["skeleton"][:PERSONS_READ]):
            pose, score = person["pose"], person["score"]
            if len(pose) != 2 * NUM_JOINTS or len(score) != NUM_JOINTS:
                raise ClipSkipped(f"{source}: frame {t} person {m} has {len(pose)} pose values and "
                                  f"{len(score)} scores, expected {2 * NUM_JOINTS} and {NUM_JOINTS}")
            full[0, t, :, m] = pose[0::2]
            full[1, t, :, m] = pose[1::2]
            full[2, t, :, m] = score
    if not np.isfinite(full).all():
        raise ClipSkipped(f"{source}: contains NaN or infinite coordinates")
    if (full[2] < 0).any():  # augmentation reads presence off the score channel (kinetics/augment.py)
        raise ClipSkipped(f"{source}: negative joint score; scores are detection confidences in [0, 1]")
    full[0:2] -= 0.5
    missing = full[2] == 0
    full[0][missing] = 0
    full[1][missing] = 0
    order = np.argsort(-full[2].sum(axis=1), axis=1, kind="stable")  # (T, M): persons by score, per frame
    full = np.take_along_axis(full, order[None, :, None, :], axis=3)
    return np.ascontiguousarray(full[..., :PERSONS_KEPT])


def read_clip(path: Path) -> RawClip:
    """Parse one clip file; malformed content raises ClipSkipped naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
        frames, label_index, label = content["data"], content["label_index"], content.get("label", "")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClipSkipped(f"{path.name}: malformed JSON ({exc})") from exc
    except (KeyError, TypeError) as exc:
        raise ClipSkipped(f"{path.name}: missing field {exc} (expected 'data' and 'label_index')") from exc
    try:
        array = clip_to_array(frames, path.name)
    except (KeyError, TypeError) as exc:
        raise ClipSkipped(f"{path.name}: malformed frame entry ({exc.__class__.__name__}: {exc})") from exc
    return RawClip(array, int(label_index), str(label))
