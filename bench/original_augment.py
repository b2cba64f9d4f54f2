"""The authors' augmentations as they wrote them: one clip at a time, a Python loop over frames.

The benchmark measures kinetics.augment against these; the tests check the same arithmetic. Parameters
can be passed in so both implementations can be compared on identical draws.
"""

from __future__ import annotations

import random

import numpy as np


def random_choose(clip: np.ndarray, size: int, begin: int | None = None) -> np.ndarray:
    c, t, v, m = clip.shape
    if t == size:
        return clip
    if t < size:
        begin = random.randint(0, size - t) if begin is None else begin
        padded = np.zeros((c, size, v, m), dtype=clip.dtype)
        padded[:, begin:begin + t] = clip
        return padded
    begin = random.randint(0, t - size) if begin is None else begin
    return clip[:, begin:begin + size]


def random_shift(clip: np.ndarray, bias: int | None = None) -> np.ndarray:
    c, t, v, m = clip.shape
    shifted = np.zeros(clip.shape, dtype=clip.dtype)
    valid = (clip != 0).sum(axis=3).sum(axis=2).sum(axis=0) > 0
    begin = valid.argmax()
    end = len(valid) - valid[::-1].argmax()
    size = end - begin
    bias = random.randint(0, t - size) if bias is None else bias
    shifted[:, bias:bias + size] = clip[:, begin:end]
    return shifted


def random_move(clip: np.ndarray, params: np.ndarray | None = None, keep_absent: bool = True) -> np.ndarray:
    """``params`` (T, 4): angle (rad), scale, tx, ty per frame; drawn as the original does when None."""
    c, t, v, m = clip.shape
    if params is None:
        ends = [np.random.choice(choices, 2) for choices in
                ([-10.0, -5.0, 0.0, 5.0, 10.0], [0.9, 1.0, 1.1], [-0.2, -0.1, 0.0, 0.1, 0.2],
                 [-0.2, -0.1, 0.0, 0.1, 0.2])]
        params = np.stack([np.linspace(a, b, t) for a, b in ends], axis=1)
        params[:, 0] *= np.pi / 180
    out = clip.copy()
    for f in range(t):
        a, s, tx, ty = params[f]
        theta = np.array([[np.cos(a) * s, -np.sin(a) * s], [np.sin(a) * s, np.cos(a) * s]])
        xy = np.dot(theta, clip[0:2, f].reshape(2, -1))
        xy[0] += tx
        xy[1] += ty
        out[0:2, f] = xy.reshape(2, v, m)
        if keep_absent:
            absent = (clip[:, f] == 0).all(axis=0)
            out[0:2, f][:, absent] = 0
    return out
