"""Skeleton graphs as data: layouts are edge tables, partition strategies are small functions of hop distance.

Matches the construction of the original ST-GCN (Yan et al., 2018): self links plus the layout's bones,
hop distances up to ``max_hop``, adjacency normalised as A·D^-1 (each column sums to one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """A skeleton: joint count, undirected bones (0-based) and the centre joint the spatial strategy uses."""

    name: str
    num_joints: int
    bones: tuple[tuple[int, int], ...]
    center: int


# OpenPose-18, the layout of the Kinetics-skeleton release.
OPENPOSE_18 = Layout(
    name="openpose",
    num_joints=18,
    bones=(
        (4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5),
        (8, 2), (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14),
    ),
    center=1,
)

# NTU RGB+D 25 joints (Kinect v2), given 1-based in the dataset's documentation.
_NTU_BONES_1BASED = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
    (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
    (22, 23), (23, 8), (24, 25), (25, 12),
)
NTU_RGBD_25 = Layout(
    name="ntu-rgb+d",
    num_joints=25,
    bones=tuple((i - 1, j - 1) for i, j in _NTU_BONES_1BASED),
    center=21 - 1,
)

LAYOUTS = {layout.name: layout for layout in (OPENPOSE_18, NTU_RGBD_25)}
STRATEGIES = ("uniform", "distance", "spatial")

def hop_distance(layout: Layout, max_hop: int = 1) -> np.ndarray:
    """(V, V) shortest-path hop counts, ``inf`` beyond ``max_hop``."""
    v = layout.num_joints
    adjacency = np.eye(v)
    for i, j in layout.bones:
        adjacency[i, j] = adjacency[j, i] = 1
    hops = np.full((v, v), np.inf)
    reach = np.eye(v)
    for d in range(max_hop + 1):
        if d > 0:
            reach = reach @ adjacency
        hops[(reach > 0) & np.isinf(hops)] = d
    return hops


def normalize_columns(adjacency: np.ndarray) -> np.ndarray:
    """A·D^-1 with D the column degrees: aggregation averages over each joint's neighbourhood."""
    degree = adjacency.sum(axis=0)
    inv = np.where(degree > 0, 1.0 / np.where(degree > 0, degree, 1.0), 0.0)
    return adjacency * inv[None, :]


def adjacency_partitions(layout: Layout, strategy: str = "spatial", max_hop: int = 1) -> np.ndarray:
    """(K, V, V) float32 partitioned adjacency; K = 1 (uniform), max_hop+1 (distance), 2·max_hop+1 (spatial)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown partition strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    hops = hop_distance(layout, max_hop)
    normalized = normalize_columns((hops <= max_hop).astype(np.float64))
    if strategy == "uniform":
        parts = [normalized]
    elif strategy == "distance":
        parts = [np.where(hops == d, normalized, 0.0) for d in range(max_hop + 1)]
    else:
        # Entry [j, i] sends joint j's features to joint i. As in the original code, neighbours farther from
        # the centre than i share the root's partition and nearer ones get their own (checkpoints rely on it).
        # Compare, never subtract: beyond max_hop both distances are inf, and the original counts inf == inf.
        to_center = hops[:, layout.center]
        j_dist, i_dist = to_center[:, None], to_center[None, :]
        parts = []
        for d in range(max_hop + 1):
            at_hop = hops == d
            root = np.where(at_hop & (j_dist == i_dist), normalized, 0.0)
            if d == 0:
                parts.append(root)
                continue
            farther = np.where(at_hop & (j_dist > i_dist), normalized, 0.0)
            nearer = np.where(at_hop & (j_dist < i_dist), normalized, 0.0)
            parts.extend([root + farther, nearer])
    return np.stack(parts).astype(np.float32)
