"""The original ST-GCN augmentations (random choose, shift, move) over a whole batch (B, C, T, V, M) at once.

Same distributions as the authors' per-clip, per-frame tools, but one gather or one broadcast affine per
batch. One deliberate difference: joints that are absent (x = y = score = 0) stay zero under random move,
where the original moved them off the origin and invented data.
"""

from __future__ import annotations

import math

import torch

ANGLES_DEG = (-10.0, -5.0, 0.0, 5.0, 10.0)
SCALES = (0.9, 1.0, 1.1)
TRANSLATIONS = (-0.2, -0.1, 0.0, 0.1, 0.2)


def _pick(choices: tuple[float, ...], shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(choices), shape, generator=gen)
    return torch.tensor(choices, dtype=torch.float32)[idx]


def _randint_upto(high: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-element uniform integer in [0, high] (inclusive, as Python's random.randint)."""
    return torch.floor(torch.rand(high.shape, generator=gen) * (high + 1).float()).long().clamp(max=high)


def place_frames(x: torch.Tensor, offset: torch.Tensor, length: int) -> torch.Tensor:
    """out[b, :, t] = x[b, :, t + offset[b]] where that frame exists, else zeros: crop, pad or shift as one copy
    of a contiguous frame range per clip (a memcpy each, no index tensor the size of the batch)."""
    b, c, t, v, m = x.shape
    out = x.new_zeros((b, c, length, v, m))
    for i, shift in enumerate(offset.tolist()):
        low, high = max(0, -shift), min(length, t - shift)
        if high > low:
            out[i, :, low:high] = x[i, :, low + shift:high + shift]
    return out


def _choose_offset(batch: int, frames: int, window: int, gen: torch.Generator) -> torch.Tensor:
    begin = _randint_upto(torch.full((batch,), abs(frames - window)), gen)
    return begin if frames > window else -begin


def random_choose(x: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    """A random ``window``-frame crop per clip; shorter clips are zero-padded at a random position."""
    if x.shape[2] == window:
        return x
    return place_frames(x, _choose_offset(x.shape[0], x.shape[2], window, gen), window)


def _shift_offset(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Where each clip's non-empty frame span moves: frame s of the shifted clip is frame s + offset of x."""
    b, _, t, _, _ = x.shape
    valid = (x.abs().amax(dim=(1, 3, 4)) > 0).cpu()  # (B, T): frames with any non-zero value
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
    columns = []
    for choices in (ANGLES_DEG, SCALES, TRANSLATIONS, TRANSLATIONS):
        ends = _pick(choices, (batch, 2), gen)
        columns.append(ends[:, :1] + (ends[:, 1:] - ends[:, :1]) * ramp[None, :])
    columns[0] = columns[0] * (math.pi / 180.0)
    return torch.stack(columns, dim=2)


def apply_move(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Rotate, scale and translate x/y of every joint by its clip's and frame's parameters; absent joints stay 0
    (they get no translation). Written into one output with in-place multiply-adds: no temporaries per term."""
    angle, scale, tx, ty = (p.to(x.device)[:, :, None, None] for p in params.unbind(dim=2))
    cos_s, sin_s = torch.cos(angle) * scale, torch.sin(angle) * scale
    px, py = x[:, 0], x[:, 1]
    present = ((px != 0) | (py != 0) | (x[:, 2] != 0)).to(x.dtype)
    out = torch.empty_like(x)
    moved_x, moved_y = out[:, 0], out[:, 1]
    torch.mul(px, cos_s, out=moved_x).addcmul_(py, sin_s, value=-1.0).addcmul_(present, tx)
    torch.mul(px, sin_s, out=moved_y).addcmul_(py, cos_s).addcmul_(present, ty)
    out[:, 2:] = x[:, 2:]
    return out


def random_move(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per clip, rotation, scale and translation interpolated linearly from a random start to a random end."""
    return apply_move(x, sample_move(x.shape[0], x.shape[2], gen))


def augment(x: torch.Tensor, window: int, gen: torch.Generator, choose: bool = True, shift: bool = False,
            move: bool = True) -> torch.Tensor:
    """In the original feeder's order: shift, then choose (or pad to ``window``), then move. Shift and choose
    compose into one frame offset per clip, so the batch is copied once. (Frames outside a clip's non-empty span
    are zero, which is what makes the composition exact.)"""
    b, _, t, _, _ = x.shape
    offset, length = torch.zeros(b, dtype=torch.long), t
    if shift:
        offset += _shift_offset(x, gen)
    if choose and t != window:
        offset, length = offset + _choose_offset(b, t, window, gen), window
    elif not choose and 0 < window and t < window:
        length = window
    if length != t or bool(offset.any()):
        x = place_frames(x, offset, length)
    if move:
        x = random_move(x, gen)
    return x
