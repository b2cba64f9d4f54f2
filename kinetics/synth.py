"""Synthetic data in the raw Kinetics-skeleton release layout, so the real converter and loaders run end to end.

Each class is a motion of a 2D kinematic skeleton (fixed bone lengths, joint angles over time): which
joints move, at what frequency, amplitude, phase and posture, and along which path. Each clip adds the
nuisance of real OpenPose output: varying length, camera offset and scale, jitter, missing joints
(score 0), a second person, confidence scores, and the odd clip without a skeleton. Deterministic per seed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.files import write_json
from common.progress import Progress
from kinetics.convert import SYNTHETIC_MARKER
from kinetics.layout import MAX_FRAMES, NUM_JOINTS, SPLITS, raw_clip_dir, raw_label_file
from kinetics.subsets import KINETICS_MOTION

FPS = 30.0
# Angle channels of the kinematic skeleton, in radians; 0 is the rest pose (limbs hanging, torso upright).
CHANNELS = ("torso", "head", "r_shoulder", "r_elbow", "l_shoulder", "l_elbow", "r_hip", "r_knee", "l_hip", "l_knee")
BONE = {"torso": 0.20, "neck": 0.07, "upper_arm": 0.10, "forearm": 0.09, "thigh": 0.12, "shin": 0.12,
        "shoulder": 0.06, "hip": 0.04}


@dataclass(frozen=True)
class SynthSpec:
    classes: int = 400
    clips_per_class: int = 16
    val_clips_per_class: int | None = None
    seed: int = 0

    def val_clips(self) -> int:
        return self.val_clips_per_class if self.val_clips_per_class is not None else max(2, self.clips_per_class // 4)


def class_names(count: int) -> list[str]:
    """The 30 kinetics-motion names first (so every scaled-down set has them), then numbered others."""
    if count < len(KINETICS_MOTION):
        raise ValueError(f"--classes must be at least {len(KINETICS_MOTION)} so kinetics-motion exists, got {count}")
    return list(KINETICS_MOTION) + [f"synthetic action {k:03d}" for k in range(len(KINETICS_MOTION), count)]


def _class_motion(rng: np.random.Generator) -> dict:
    """A class: a few strongly moving channels at one frequency, a posture, and a body path."""
    mean = rng.uniform(-0.25, 0.25, len(CHANNELS))
    amplitude = rng.uniform(0.0, 0.08, len(CHANNELS))
    active = rng.choice(len(CHANNELS), size=rng.integers(2, 5), replace=False)
    amplitude[active] = rng.uniform(0.4, 1.3, len(active))
    mean[active] += rng.uniform(-0.6, 0.6, len(active))
    return {
        "mean": mean, "amplitude": amplitude, "phase": rng.uniform(0, 2 * np.pi, len(CHANNELS)),
        "frequency": rng.uniform(0.3, 2.5),
        "bob": rng.choice([0.0, rng.uniform(0.01, 0.05)]),  # vertical bounce of the whole body
        "drift": rng.choice([0.0, 1.0]) * rng.uniform(-0.15, 0.15, 2),  # walk across the frame, per clip
    }


def _forward_kinematics(angles: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Angles (C, T) and hip-centre root (2, T) -> OpenPose-18 joints (2, T, 18), image axes (y down)."""
    a = dict(zip(CHANNELS, angles))
    out = np.zeros((2, angles.shape[1], NUM_JOINTS))

    def along(start, angle, length):  # a bone hanging at ``angle`` from straight down
        return start + length * np.stack([np.sin(angle), np.cos(angle)])

    def up(start, angle, length):  # a bone pointing up, tilted by ``angle``
        return start + length * np.stack([np.sin(angle), -np.cos(angle)])

    torso = a["torso"]
    side = np.stack([np.cos(torso), np.sin(torso)])  # body's left-right axis, turns with the torso
    neck = up(root, torso, BONE["torso"])
    nose = up(neck, torso + a["head"], BONE["neck"])
    out[:, :, 1], out[:, :, 0] = neck, nose
    for name, sign, shoulder_j, elbow_j, wrist_j in (("r", -1, 2, 3, 4), ("l", 1, 5, 6, 7)):
        shoulder = neck + sign * BONE["shoulder"] * side
        upper = torso + sign * a[f"{name}_shoulder"]
        elbow = along(shoulder, upper, BONE["upper_arm"])
        wrist = along(elbow, upper + sign * a[f"{name}_elbow"], BONE["forearm"])
        out[:, :, shoulder_j], out[:, :, elbow_j], out[:, :, wrist_j] = shoulder, elbow, wrist
    for name, sign, hip_j, knee_j, ankle_j in (("r", -1, 8, 9, 10), ("l", 1, 11, 12, 13)):
        hip = root + sign * BONE["hip"] * side
        thigh = sign * 0.05 + a[f"{name}_hip"]
        knee = along(hip, thigh, BONE["thigh"])
        ankle = along(knee, thigh - np.abs(a[f"{name}_knee"]), BONE["shin"])
        out[:, :, hip_j], out[:, :, knee_j], out[:, :, ankle_j] = hip, knee, ankle
    for joint, dx, dy in ((14, -0.012, -0.012), (15, 0.012, -0.012), (16, -0.025, -0.005), (17, 0.025, -0.005)):
        out[0, :, joint] = nose[0] + dx
        out[1, :, joint] = nose[1] + dy
    return out


def _person(motion: dict, frames: int, rng: np.random.Generator, x_offset: float) -> np.ndarray:
    """One person's joints (2, frames, 18) doing ``motion`` with per-clip variation."""
    t = np.arange(frames) / FPS
    freq = motion["frequency"] * rng.uniform(0.85, 1.15)
    amp = motion["amplitude"] * rng.uniform(0.8, 1.2, len(CHANNELS))
    phase = motion["phase"] + rng.uniform(0, 2 * np.pi)
    angles = motion["mean"][:, None] + amp[:, None] * np.sin(2 * np.pi * freq * t[None, :] + phase[:, None])
    root = np.array([0.5 + x_offset, 0.55])[:, None] + motion["drift"][:, None] * (t / t[-1] - 0.5)[None, :]
    root = root + np.array([0.0, 1.0])[:, None] * motion["bob"] * np.sin(4 * np.pi * freq * t + phase[0])
    return _forward_kinematics(angles, root)


def _clip_frames(motion: dict, idle: dict, rng: np.random.Generator) -> list[dict]:
    """The ``data`` list of one clip: camera, jitter, missing joints, sometimes a second person."""
    frames = int(rng.integers(MAX_FRAMES // 3, MAX_FRAMES + 1))
    people = [_person(motion, frames, rng, rng.uniform(-0.08, 0.08))]
    if rng.random() < 0.25:
        people.append(_person(idle, frames, rng, rng.choice([-0.3, 0.3])))
    scale, shift = rng.uniform(0.85, 1.15), rng.uniform(-0.05, 0.05, 2)
    persons = []
    for i, joints in enumerate(people):
        xy = (joints - 0.5) * scale + 0.5 + shift[:, None, None] + rng.normal(0, 0.004, joints.shape)
        score = rng.uniform(0.45, 1.0, (frames, NUM_JOINTS)) * (1.0 if i == 0 else 0.6)
        missing = rng.random((frames, NUM_JOINTS)) < 0.03
        if rng.random() < 0.2:  # a joint lost for a long stretch, as OpenPose does with occlusion
            start = rng.integers(0, frames)
            missing[start:start + frames // 3, rng.integers(0, NUM_JOINTS)] = True
        missing |= ((xy < 0) | (xy > 1)).any(axis=0)
        xy[:, missing] = 0.0
        score[missing] = 0.0
        persons.append((xy, score))
    data = []
    for t in range(frames):
        skeleton = []
        for xy, score in persons:
            if score[t].max() == 0:
                continue
            pose = np.round(xy[:, t, :].T.reshape(-1), 3).tolist()  # x0, y0, x1, y1, ...
            skeleton.append({"pose": pose, "score": np.round(score[t], 3).tolist()})
        data.append({"frame_index": t, "skeleton": skeleton})
    return data


def _train_counts(spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """Clips per class; some non-motion classes are rarer, so 'drop the rarest classes' has a clear answer."""
    counts = np.full(spec.classes, spec.clips_per_class)
    others = np.arange(len(KINETICS_MOTION), spec.classes)
    rare = rng.choice(others, size=min(len(others), max(8, spec.classes // 10)), replace=False)
    counts[rare] = np.maximum(2, spec.clips_per_class - rng.integers(1, max(2, spec.clips_per_class // 2), len(rare)))
    return counts


def generate(out: Path, spec: SynthSpec = SynthSpec()) -> Path:
    """Write the raw release layout under ``out``; returns ``out``."""
    out = Path(out)
    names = class_names(spec.classes)
    rng = np.random.default_rng(spec.seed)
    motions = [_class_motion(rng) for _ in names]
    idle = {**_class_motion(rng), "amplitude": np.full(len(CHANNELS), 0.05), "drift": np.zeros(2)}
    counts = {"train": _train_counts(spec, rng), "val": np.full(spec.classes, spec.val_clips())}
    for split in SPLITS:
        clip_dir = raw_clip_dir(out, split)
        clip_dir.mkdir(parents=True, exist_ok=True)
        labels = {}
        progress = Progress(f"synth {split}", int(counts[split].sum()))
        for label_index, (name, motion) in enumerate(zip(names, motions)):
            for i in range(counts[split][label_index]):
                clip_id = f"synth_{split}_{label_index:03d}_{i:04d}"
                clip_rng = np.random.default_rng([spec.seed, SPLITS.index(split), label_index, i])
                has_skeleton = clip_rng.random() >= 0.01
                data = _clip_frames(motion, idle, clip_rng) if has_skeleton else []
                clip = {"data": data, "label": name, "label_index": label_index}
                (clip_dir / f"{clip_id}.json").write_text(json.dumps(clip, separators=(",", ":")))
                labels[clip_id] = {"has_skeleton": has_skeleton, "label": name, "label_index": label_index}
                progress.advance()
        write_json(raw_label_file(out, split), labels)
    write_json(out / SYNTHETIC_MARKER, {**asdict(spec), "generator": "kinetics.synth"})
    return out
