"""Loading the ST-GCN authors' released checkpoints (a plain state_dict of their ``net.st_gcn.Model``).

The architecture is read off the tensors (classes from ``fcn``, joints and partitions from ``A`` or the
first graph conv, edge importance from its keys), so a file is never loaded into a mismatched network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model.graph import LAYOUTS, STRATEGIES, adjacency_partitions
from model.stgcn import PAPER_CHANNELS, PAPER_TEMPORAL_KERNEL, STGCN, ModelConfig

_LAYOUT_BY_JOINTS = {layout.num_joints: name for name, layout in LAYOUTS.items()}


class CheckpointError(ValueError):
    """The file is not an ST-GCN checkpoint this network can take; the message names the file and keys."""


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc.__class__.__name__}: {exc})") from exc
    for wrapper in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state_dict (name -> tensor), found {type(obj).__name__}")
    # Checkpoints saved from nn.DataParallel carry a 'module.' prefix.
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _infer_config(path: Path, state: dict[str, torch.Tensor]) -> ModelConfig:
    needed = ("fcn.weight", "st_gcn_networks.0.gcn.conv.weight", "data_bn.running_mean")
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointError(
            f"{path}: not an ST-GCN checkpoint; missing keys: {', '.join(missing)}; "
            f"found keys such as: {', '.join(sorted(state)[:8])}")
    num_classes, last_channels = state["fcn.weight"].shape[:2]
    width = last_channels / PAPER_CHANNELS[-1]
    conv0 = state["st_gcn_networks.0.gcn.conv.weight"]  # (partitions x first block's channels, in_channels, 1, 1)
    if "A" in state:
        partitions, joints = state["A"].shape[:2]
    else:
        joints = state["data_bn.running_mean"].shape[0] // conv0.shape[1]
        partitions = conv0.shape[0] // ModelConfig(width=width).channels()[0]
    if joints not in _LAYOUT_BY_JOINTS:
        raise CheckpointError(f"{path}: {joints} joints match no known layout ({', '.join(LAYOUTS)})")
    layout = _LAYOUT_BY_JOINTS[joints]
    strategy = _strategy_for(path, state.get("A"), layout, partitions)
    tcn = "st_gcn_networks.0.tcn.2.weight"
    temporal_kernel = state[tcn].shape[2] if tcn in state else PAPER_TEMPORAL_KERNEL
    return ModelConfig(num_classes=num_classes, in_channels=conv0.shape[1], layout=layout, strategy=strategy,
                       edge_importance="edge_importance.0" in state, temporal_kernel=temporal_kernel, width=width)


def _strategy_for(path: Path, adjacency: torch.Tensor | None, layout: str, partitions: int) -> str:
    candidates = [s for s in STRATEGIES if adjacency_partitions(LAYOUTS[layout], s).shape[0] == partitions]
    if adjacency is not None:
        candidates = [s for s in candidates
                      if np.allclose(adjacency_partitions(LAYOUTS[layout], s), adjacency.numpy(), atol=1e-6)]
    if not candidates:
        raise CheckpointError(f"{path}: buffer 'A' ({partitions} partitions) matches no partition strategy "
                              f"of the {layout} layout")
    return candidates[0]


def load_original_checkpoint(path: str | Path, num_classes: int | None = None) -> STGCN:
    """Build the network the file describes and load it; ``num_classes`` other than the file's gives a new head.

    With a new head every weight but the classifier is loaded, ready for fine-tuning on a subset.
    """
    path = Path(path)
    state = _read_state_dict(path)
    config = _infer_config(path, state)
    model = STGCN(config)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: keys do not match an ST-GCN with {config.num_classes} classes; "
            f"missing: {missing or 'none'}; unexpected: {unexpected or 'none'}")
    wrong_shape = [f"{k}: file {tuple(v.shape)} vs network {tuple(model.state_dict()[k].shape)}"
                   for k, v in state.items() if v.shape != model.state_dict()[k].shape]
    if wrong_shape:
        raise CheckpointError(f"{path}: tensor shapes differ: {'; '.join(wrong_shape)}")
    model.load_state_dict(state)
    if num_classes is not None and num_classes != config.num_classes:
        model.replace_head(num_classes)
    return model
