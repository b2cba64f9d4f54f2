"""How much accelerator memory a training step of the network needs, before any accelerator is at hand.

The peak of a step is the tensors the forward keeps for the backward (they grow with the batch and the frames),
plus the parameters, their gradients and the optimizer's state, plus what the framework and cuDNN hold. The kept
tensors are counted by running one forward on the CPU with a hook that sees every tensor autograd saves, each
storage once, at one clip; bf16 autocast is counted as such (the tensors it saves are the narrower ones). The rest is
arithmetic. ``python -m bench.bench_gpu`` measures the same peak with torch.cuda.max_memory_allocated on a card, and
the plan (study/plan.py) prefers that figure when it has one.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.stgcn import STGCN, ModelConfig

GIB = 1024 ** 3
FRAMEWORK_BYTES = int(1.5 * GIB)  # CUDA context, cuDNN workspaces and the caching allocator's slack, assumed
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2}  # tensors of state per parameter (momentum; two moments)


@dataclass(frozen=True)
class StepMemory:
    activations_per_clip: int  # bytes kept for the backward, per clip
    parameters: int  # bytes of the parameters
    optimizer: str

    def total(self, batch: int) -> int:
        """Bytes at the step's peak for ``batch`` clips."""
        weights = self.parameters * (2 + OPTIMIZER_STATES.get(self.optimizer, 2))  # weights, gradients, state
        return self.activations_per_clip * batch + weights + FRAMEWORK_BYTES


@functools.lru_cache(maxsize=32)
def saved_bytes_per_clip(width: float, frames: int, classes: int, amp: bool, persons: int = 2) -> int:
    """Bytes of the tensors autograd keeps for the backward of one clip (each storage counted once)."""
    torch.manual_seed(0)
    model = STGCN(ModelConfig(num_classes=classes, width=width)).to(memory_format=torch.channels_last).train()
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    x = torch.randn(1, 3, frames, 18, persons)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext():
            F.cross_entropy(model(x).float(), torch.zeros(1, dtype=torch.long))
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for pointer, size in seen.items() if pointer not in parameters)


def step_memory(width: float = 1.0, frames: int = 150, classes: int = 400, amp: bool = True,
                optimizer: str = "sgd") -> StepMemory:
    model = STGCN(ModelConfig(num_classes=classes, width=width))
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return StepMemory(saved_bytes_per_clip(width, frames, classes, amp), parameters, optimizer)
