"""ST-GCN written the straightforward way the authors' code is: loop-built graph, einsum aggregation,
permute/contiguous data BN. Independent of model/: the tests check model/ against it and the benchmarks
measure model/ against it. Parameter names equal the original ``net.st_gcn.Model``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OPENPOSE_BONES = [(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2),
                  (5, 1), (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)]


def original_graph(strategy: str = "spatial", num_node: int = 18, bones=OPENPOSE_BONES, center: int = 1,
                   max_hop: int = 1) -> np.ndarray:
    """The authors' Graph.get_adjacency, loops and all."""
    edge = [(i, i) for i in range(num_node)] + list(bones)
    a = np.zeros((num_node, num_node))
    for i, j in edge:
        a[j, i] = 1
        a[i, j] = 1
    hop_dis = np.zeros((num_node, num_node)) + np.inf
    transfer = [np.linalg.matrix_power(a, d) for d in range(max_hop + 1)]
    arrive = np.stack(transfer) > 0
    for d in range(max_hop, -1, -1):
        hop_dis[arrive[d]] = d
    valid_hop = range(0, max_hop + 1)
    adjacency = np.zeros((num_node, num_node))
    for hop in valid_hop:
        adjacency[hop_dis == hop] = 1
    dl = np.sum(adjacency, 0)
    dn = np.zeros((num_node, num_node))
    for i in range(num_node):
        if dl[i] > 0:
            dn[i, i] = dl[i] ** (-1)
    norm = np.dot(adjacency, dn)
    if strategy == "uniform":
        return norm[None].astype(np.float32)
    if strategy == "distance":
        out = np.zeros((len(valid_hop), num_node, num_node))
        for i, hop in enumerate(valid_hop):
            out[i][hop_dis == hop] = norm[hop_dis == hop]
        return out.astype(np.float32)
    parts = []
    for hop in valid_hop:
        a_root = np.zeros((num_node, num_node))
        a_close = np.zeros((num_node, num_node))
        a_further = np.zeros((num_node, num_node))
        for i in range(num_node):
            for j in range(num_node):
                if hop_dis[j, i] == hop:
                    if hop_dis[j, center] == hop_dis[i, center]:
                        a_root[j, i] = norm[j, i]
                    elif hop_dis[j, center] > hop_dis[i, center]:
                        a_close[j, i] = norm[j, i]
                    else:
                        a_further[j, i] = norm[j, i]
        if hop == 0:
            parts.append(a_root)
        else:
            parts.append(a_root + a_close)
            parts.append(a_further)
    return np.stack(parts).astype(np.float32)


class OriginalGraphConv(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(cin, cout * k, kernel_size=(1, 1))

    def forward(self, x, a):
        x = self.conv(x)
        n, kc, t, v = x.size()
        x = x.view(n, self.k, kc // self.k, t, v)
        return torch.einsum("nkctv,kvw->nctw", (x, a)).contiguous()


class OriginalBlock(nn.Module):
    def __init__(self, cin, cout, k, stride=1, dropout=0.0, residual=True):
        super().__init__()
        self.gcn = OriginalGraphConv(cin, cout, k)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, (9, 1), (stride, 1), (4, 0)),
            nn.BatchNorm2d(cout), nn.Dropout(dropout, inplace=True))
        self.mode = "none" if not residual else ("identity" if cin == cout and stride == 1 else "conv")
        if self.mode == "conv":
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, (stride, 1)), nn.BatchNorm2d(cout))

    def forward(self, x, a):
        res = 0 if self.mode == "none" else (x if self.mode == "identity" else self.residual(x))
        x = self.gcn(x, a)
        return F.relu(self.tcn(x) + res)


class OriginalSTGCN(nn.Module):
    def __init__(self, num_class=400, in_channels=3, strategy="spatial", edge_importance=True,
                 channels=(64, 64, 64, 64, 128, 128, 128, 256, 256, 256)):
        super().__init__()
        self.register_buffer("A", torch.tensor(original_graph(strategy)))
        k, v = self.A.shape[:2]
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        strides = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
        cins = (in_channels,) + tuple(channels[:-1])
        self.st_gcn_networks = nn.ModuleList(
            OriginalBlock(ci, co, k, s, residual=i > 0) for i, (ci, co, s) in enumerate(zip(cins, channels, strides)))
        self.edge_importance = (nn.ParameterList(nn.Parameter(torch.ones(self.A.size())) for _ in strides)
                                if edge_importance else [1] * len(strides))
        self.fcn = nn.Conv2d(channels[-1], num_class, kernel_size=1)

    def forward(self, x):
        n, c, t, v, m = x.size()
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for gcn, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = gcn(x, self.A * importance)
        x = F.avg_pool2d(x, x.size()[2:])
        x = x.view(n, m, -1, 1, 1).mean(dim=1)
        return self.fcn(x).view(n, -1)
