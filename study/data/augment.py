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
    """out[b, :, t] = x[b, :, t + offset[b]] where that frame exists, else zeros: crop, pad or shift in one gather."""
    b, c, t, v, m = x.shape
    source = offset.to(x.device)[:, None] + torch.arange(length, device=x.device)[None, :]
    inside = (source >= 0) & (source < t)
    index = source.clamp(0, t - 1)[:, None, :, None, None].expand(b, c, length, v, m)
    return torch.gather(x, 2, index) * inside[:, None, :, None, None].to(x.dtype)


def random_choose(x: torch.Tensor, window: int, gen: torch.Generator) -> torch.Tensor:
    """A random ``window``-frame crop per clip; shorter clips are zero-padded at a random position."""
    t = x.shape[2]
    if t == window:
        return x
    spare = torch.full((x.shape[0],), abs(t - window))
    begin = _randint_upto(spare, gen)
    return place_frames(x, begin if t > window else -begin, window)


def random_shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Move each clip's non-empty frame span to a random position within the same length."""
    b, _, t, _, _ = x.shape
    valid = (x != 0).flatten(3).any(dim=3).any(dim=1).cpu()  # (B, T): frames with any non-zero value
    frames = torch.arange(t)[None, :].expand(b, t)
    begin = torch.where(valid, frames, t).min(dim=1).values
    end = torch.where(valid, frames + 1, 0).max(dim=1).values
    empty = end == 0
    begin, end = torch.where(empty, 0, begin), torch.where(empty, t, end)
    bias = _randint_upto(t - (end - begin), gen)
    return place_frames(x, begin - bias, t)


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
    """Rotate, scale and translate x/y of every joint by its clip's and frame's parameters; absent joints stay 0."""
    angle, scale, tx, ty = (p.to(x.device)[:, :, None, None] for p in params.unbind(dim=2))
    cos_s, sin_s = torch.cos(angle) * scale, torch.sin(angle) * scale
    px, py = x[:, 0], x[:, 1]
    absent = (x == 0).all(dim=1)
    moved_x = (cos_s * px - sin_s * py + tx).masked_fill(absent, 0.0)
    moved_y = (sin_s * px + cos_s * py + ty).masked_fill(absent, 0.0)
    return torch.cat([moved_x[:, None], moved_y[:, None], x[:, 2:]], dim=1)


def random_move(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per clip, rotation, scale and translation interpolated linearly from a random start to a random end."""
    return apply_move(x, sample_move(x.shape[0], x.shape[2], gen))


def augment(x: torch.Tensor, window: int, gen: torch.Generator, choose: bool = True, shift: bool = False,
            move: bool = True) -> torch.Tensor:
    """In the original feeder's order: shift, then choose (or pad to ``window``), then move."""
    if shift:
        x = random_shift(x, gen)
    if choose:
        x = random_choose(x, window, gen)
    elif window > 0 and x.shape[2] < window:
        x = place_frames(x, torch.zeros(x.shape[0], dtype=torch.long), window)
    if move:
        x = random_move(x, gen)
    return x
