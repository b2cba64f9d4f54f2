"""ST-GCN (Yan, Xiong, Lin, AAAI 2018) with the original implementation's module names.

Parameter names match the authors' ``net.st_gcn.Model`` so their released checkpoints load as plain
state_dicts. The graph aggregation is one matmul per block over a channels-last view instead of the
original einsum: the same arithmetic without the permute/contiguous copies (see bench/).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.graph import LAYOUTS, adjacency_partitions

PAPER_CHANNELS = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
PAPER_STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
PAPER_TEMPORAL_KERNEL = 9  # frames of each block's temporal convolution (a 9x1 kernel)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network. The defaults are the paper's; ``width`` < 1 is the labelled CPU-sized variant."""

    num_classes: int = 400
    in_channels: int = 3
    layout: str = "openpose"
    strategy: str = "spatial"
    max_hop: int = 1
    edge_importance: bool = True
    temporal_kernel: int = PAPER_TEMPORAL_KERNEL
    dropout: float = 0.0
    width: float = 1.0

    def channels(self) -> tuple[int, ...]:
        return tuple(max(4, round(c * self.width)) for c in PAPER_CHANNELS)


# Up to this many (input x output) channels the graph convolution runs as one dense matmul (see GraphConv). Where
# the forms cross depends on the CPU's vector width: ``python -m bench.bench_model --layers`` times both per layer
# (forward + backward, one thread) and prints where the dense form stops being faster, which is where these
# thresholds come from. With AVX-512 the factored form's 1x1 convolution (oneDNN) outruns the dense form's matmul
# (MKL's sgemm) from smaller layers on. Both forms give the same outputs (tests/test_model.py).
DENSE_MAX_CHANNEL_PRODUCT = {"AVX512": 192}.get(torch.backends.cpu.get_cpu_capability(), 640)


class GraphConv(nn.Module):
    """1x1 convolution to K·C_out channels, then each partition k aggregates its rows over joints with A_k.

    Both steps are linear, so for few channels they fold into one (V·C_out) x (V·C_in) matrix,
    M[(w, o), (v, c)] = sum_k A_k[v, w] W_k[o, c], applied to each (clip, frame) row of the channels-last input
    in one large matmul. It does V·C/K(C+V) times the arithmetic of the two steps (1.9x at C = 8), but the two
    steps are a 1x1 convolution and n·T tiny matmuls, which run far below the machine's rate at those widths.
    The parameters are the same either way (the authors' names and shapes)."""

    def __init__(self, in_channels: int, out_channels: int, partitions: int):
        super().__init__()
        self.partitions = partitions
        self.conv = nn.Conv2d(in_channels, out_channels * partitions, kernel_size=1)
        self.dense = in_channels * out_channels <= DENSE_MAX_CHANNEL_PRODUCT

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        return self._dense(x, adjacency) if self.dense else self._factored(x, adjacency)

    def _dense(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        k, w = self.partitions, adjacency.shape[2]
        weight = self.conv.weight.view(k, -1, c)
        out_channels = weight.shape[1]
        matrix = torch.einsum("kvw,koc->wovc", adjacency, weight).reshape(w * out_channels, v * c)
        bias = torch.einsum("kvw,ko->wo", adjacency, self.conv.bias.view(k, out_channels)).reshape(-1)
        rows = x.permute(0, 2, 3, 1).reshape(n * t, v * c)  # a view when x is channels-last
        out = torch.addmm(bias, rows, matrix.t())
        return out.view(n, t, w, out_channels).permute(0, 3, 1, 2)

    def _factored(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, kc, t, v = y.shape
        k = self.partitions
        # Channel index is k·C + c, so (n, T, V, K·C) reshapes to (n·T, V·K, C) and A to (W, V·K):
        # contracting V and K together is one batched matmul, and a channels-last y makes it copy-free.
        rows = y.permute(0, 2, 3, 1).reshape(n * t, v * k, kc // k)
        weights = adjacency.permute(2, 1, 0).reshape(adjacency.shape[2], v * k)
        # bmm over a stride-0 expanded A: torch.matmul would fold the batch and transpose-copy ``rows``.
        out = torch.bmm(weights.expand(n * t, *weights.shape), rows)
        return out.view(n, t, -1, kc // k).permute(0, 3, 1, 2)


class STGCNBlock(nn.Module):
    """Graph conv -> BN -> ReLU -> temporal conv -> BN -> dropout, plus residual, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, partitions: int, temporal_kernel: int,
                 stride: int = 1, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1),
                      ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        self.has_residual = residual
        if residual and (in_channels != out_channels or stride != 1):
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.residual = None

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        if not self.has_residual:
            res = None
        elif self.residual is None:
            res = x
        else:
            res = self.residual(x)
        y = self.tcn(self.gcn(x, adjacency))
        if res is not None:
            y += res  # in place: the batch norm before it keeps its input, not its output, for backward
        return F.relu(y, inplace=True)


class STGCN(nn.Module):
    """Input (N, C, T, V, M) -> class logits (N, num_classes). Persons share weights; logits average them."""

    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        if config.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {config.layout!r}; choose one of {', '.join(LAYOUTS)}")
        if config.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {config.num_classes}")
        self.config = config
        adjacency = torch.from_numpy(adjacency_partitions(LAYOUTS[config.layout], config.strategy, config.max_hop))
        self.register_buffer("A", adjacency)
        partitions, joints = adjacency.shape[0], adjacency.shape[1]
        self.data_bn = nn.BatchNorm1d(config.in_channels * joints)
        channels = config.channels()
        blocks = []
        previous = config.in_channels
        for i, (out, stride) in enumerate(zip(channels, PAPER_STRIDES)):
            blocks.append(STGCNBlock(previous, out, partitions, config.temporal_kernel, stride,
                                     dropout=0.0 if i == 0 else config.dropout, residual=i > 0))
            previous = out
        self.st_gcn_networks = nn.ModuleList(blocks)
        if config.edge_importance:
            self.edge_importance = nn.ParameterList(
                [nn.Parameter(torch.ones_like(adjacency)) for _ in blocks])
        else:
            self.edge_importance = None
        self.fcn = nn.Conv2d(previous, config.num_classes, kernel_size=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled per-clip features (N, C_last), before the classifier."""
        n, c, t, v, m = x.shape
        # data_bn normalises each (joint, coordinate) channel, with the original's V-major channel order.
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n * m, v, c, t).permute(0, 2, 3, 1).contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(self.st_gcn_networks):
            adjacency = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, adjacency)
        return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.features(x), self.fcn.weight.flatten(1), self.fcn.bias)

    def replace_head(self, num_classes: int) -> STGCN:
        """New, freshly initialised classifier for fine-tuning a pretrained network on another label set."""
        self.fcn = nn.Conv2d(self.fcn.in_channels, num_classes, kernel_size=1).to(self.fcn.weight.device)
        self.config = dataclasses.replace(self.config, num_classes=num_classes)
        return self


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
