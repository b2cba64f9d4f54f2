"""The original ST-GCN augmentations (random choose, shift, move) over a whole batch (B, C, T, V, M) at once.

Same distributions as the authors' per-clip, per-frame tools, but one copy and a few in-place broadcast
passes per batch. One deliberate difference: joints that are absent (x = y = score = 0) stay zero under random
move, where the original moved them off the origin and invented data.

The converter guarantees what makes the score channel enough (kinetics/raw.py): scores are >= 0 and a joint
with score 0 has x = y = 0. So a joint is present exactly where its score is > 0 and a frame is empty exactly
where no score is > 0; the original tests all three channels, which reads three times the data.
"""

from __future__ import annotations

import math

import torch

ANGLES_DEG = (-10.0, -5.0, 0.0, 5.0, 10.0)
SCALES = (0.9, 1.0, 1.1)
TRANSLATIONS = (-0.2, -0.1, 0.0, 0.1, 0.2)
# The four parameters' choices as one padded table (angles in radians), so one draw picks all of them.
_MOVE_CHOICES = ([math.radians(a) for a in ANGLES_DEG], SCALES, TRANSLATIONS, TRANSLATIONS)
_MOVE_TABLE = torch.tensor([list(c) + [0.0] * (5 - len(c)) for c in _MOVE_CHOICES], dtype=torch.float32)
_MOVE_COUNTS = torch.tensor([float(len(c)) for c in _MOVE_CHOICES])
_MOVE_ROWS = torch.arange(4) * _MOVE_TABLE.shape[1]


def _randint_upto(high: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-element uniform integer in [0, high] (inclusive, as Python's random.randint)."""
    return torch.floor(torch.rand(high.shape, generator=gen) * (high + 1).float()).long().clamp(max=high)


def place_frames(x: torch.Tensor, offset: torch.Tensor, length: int) -> torch.Tensor:
    """out[b, :, t] = x[b, :, t + offset[b]] where that frame exists, else zeros: crop, pad or shift of the whole
    batch as one row gather (a frame of one channel is a contiguous row of V·M values), whatever the offsets."""
    b, c, t, v, m = x.shape
    frames = offset[:, None] + torch.arange(length)  # (B, length) source frame of each output frame
    rows = torch.arange(b * c).view(b, c, 1) * t + frames.clamp(0, t - 1)[:, None, :]
    out = x.reshape(b * c * t, v * m).index_select(0, rows.view(-1).to(x.device)).view(b, c, length, v, m)
    outside = (frames < 0) | (frames >= t)
    if bool(outside.any()):
        out.mul_(~outside.to(x.device)[:, None, :, None, None])
    return out


def choose_offset(batch: int, frames: int, window: int, gen: torch.Generator) -> torch.Tensor:
    """Random choose's draw: where each clip's window starts (negative: where a shorter clip starts in the zero
    padding). The first draw ``augment`` makes without shift, so a loader can make it before reading and read only
    the window's frames (kinetics/dataset.py), then hand ``augment`` the rest of the same generator."""
    begin = _randint_upto(torch.full((batch,), abs(frames - window)), gen)
    return begin if frames > window else -begin


def random_choose(x: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    """A random ``window``-frame crop per clip; shorter clips are zero-padded at a random position."""
    if x.shape[2] == window:
        return x
    return place_frames(x, choose_offset(x.shape[0], x.shape[2], window, gen), window)


def _shift_offset(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Where each clip's non-empty frame span moves: frame s of the shifted clip is frame s + offset of x."""
    b, _, t, v, m = x.shape
    valid = (x[:, 2].reshape(b, t, v * m).sum(dim=2) > 0).cpu()  # (B, T): frames with a joint present
    frames = torch.arange(t)[None, :].expand(b, t)
    begin = torch.where(valid, frames, t).min(dim=1).values
    end = torch.where(valid, frames + 1, 0).max(dim=1).values
    empty = end == 0
    begin, end = torch.where(empty, 0, begin), torch.where(empty, t, end)
    bias = _randint_upto(t - (end - begin), gen)
    return begin - bias


def random_shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Move each clip's non-empty frame span to a random position within the same length."""
    return place_frames(x, _shift_offset(x, gen), x.shape[2])


def sample_move(batch: int, frames: int, gen: torch.Generator) -> torch.Tensor:
    """Per clip and frame (B, T, 4): angle (rad), scale, tx, ty, each linear from a random start to a random end."""
    ramp = torch.linspace(0.0, 1.0, frames) if frames > 1 else torch.zeros(1)
    choice = (torch.rand((batch, 2, 4), generator=gen) * _MOVE_COUNTS).long()  # (B, start/end, parameter)
    ends = _MOVE_TABLE.view(-1)[choice + _MOVE_ROWS]
    return torch.lerp(ends[:, None, 0], ends[:, None, 1], ramp[None, :, None])


def apply_move_(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """In place: rotate, scale and translate x/y of every joint by its clip's and frame's parameters; absent
    joints (score 0) get no translation and stay 0. In place, with one temporary channel, because a fresh
    allocation costs page faults that take longer than the arithmetic (python -m bench.bench_augment)."""
    angle, scale, tx, ty = (p.to(x.device)[:, :, None, None] for p in params.unbind(dim=2))
    cos_s, sin_s = torch.cos(angle) * scale, torch.sin(angle) * scale
    px, py = x[:, 0], x[:, 1]
    original_x = px.clone()
    px.mul_(cos_s).addcmul_(py, sin_s, value=-1.0)
    py.mul_(cos_s).addcmul_(original_x, sin_s)
    present = torch.sign(x[:, 2], out=original_x)  # 1 where the joint is present, else 0 (scores are >= 0)
    px.addcmul_(present, tx)
    py.addcmul_(present, ty)
    return x


def augment(x: torch.Tensor, window: int, gen: torch.Generator, choose: bool = True, shift: bool = False,
            move: bool = True) -> torch.Tensor:
    """In the original feeder's order: shift, then choose (or pad to ``window``), then move (per clip, rotation,
    scale and translation interpolated linearly from a random start to a random end). Shift and choose
    compose into one frame offset per clip, so the batch is copied once. (Frames outside a clip's non-empty span
    are zero, which is what makes the composition exact.)"""
    b, _, t, _, _ = x.shape
    offset, length = torch.zeros(b, dtype=torch.long), t
    if shift:
        offset += _shift_offset(x, gen)
    if choose and t != window:
        offset, length = offset + choose_offset(b, t, window, gen), window
    elif not choose and 0 < window and t < window:
        length = window
    if length != t or bool(offset.any()):
        x = place_frames(x, offset, length)
    elif move:
        x = x.clone()  # the move works in place; the caller's batch stays as it was
    if move:
        apply_move_(x, sample_move(b, length, gen))
    return x
