"""ST-GCN in pure PyTorch: the network and its skeleton graphs. Imports nothing else of this project."""

from model.checkpoint import CheckpointError, load_original_checkpoint
from model.graph import LAYOUTS, NTU_RGBD_25, OPENPOSE_18, adjacency_partitions
from model.stgcn import STGCN, ModelConfig, count_parameters

__all__ = [
    "LAYOUTS", "NTU_RGBD_25", "OPENPOSE_18", "STGCN", "CheckpointError", "ModelConfig",
    "adjacency_partitions", "count_parameters", "load_original_checkpoint",
]
