"""An independent ST-GCN (Yan et al., AAAI 2018) as SkeletonCLR, AimCLR and CrosSCLR configure it.

Written from the published equations, for holding msclr's encoder and converter against
(tests/test_models_faithful.py, tests/test_convert.py); it imports nothing from msclr.models.
Module and parameter names are those of the released code, so `Model.state_dict()` has the
keys those codebases save (`data_bn.*`, `st_gcn_networks.i.gcn.conv.*`, `.tcn.0/2/3.*`,
`.residual.0/1.*`, `edge_importance.i`, `A`, `fc.*`).

One unit (input x, partition adjacency A_k, k < K, each already multiplied by its edge importance):

    g  = sum_k (W_k x + b_k) A_k          graph convolution: a 1x1 conv to K*C_out channels,
                                          channel k*C_out + o belongs to partition k
    h  = BN(conv_9x1(ReLU(BN(g))))        temporal convolution, stride s along time
    y  = ReLU(dropout(h) + residual(x))   residual: none (unit 0), x, or BN(conv_1x1, stride s)

The network: BatchNorm1d(V*C) over (N*M, V*C, T), ten units (channels c, c, c, c, 2c, 2c, 2c,
4c, 4c, D; stride 2 at units 4 and 7), the mean over (T, V), then over the M persons.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# channel multiplier of hidden_channels of the first nine units; the tenth outputs hidden_dim
MULTIPLIERS = (1, 1, 1, 1, 2, 2, 2, 4, 4)
STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)
KERNEL_T = 9


class GraphConv(nn.Module):
    """sum_k (W_k x + b_k) A_k, with W_k, b_k slices of one 1x1 convolution (named `conv`)."""

    def __init__(self, c_in: int, c_out: int, partitions: int):
        super().__init__()
        self.partitions = partitions
        self.conv = nn.Conv2d(c_in, partitions * c_out, kernel_size=1)

    def forward(self, x: Tensor, A: Tensor) -> Tensor:
        n, _, t, v = x.shape
        z = self.conv(x).view(n, self.partitions, -1, t, v)  # channel k*C_out + o -> (k, o)
        return torch.einsum("nkctv,kvw->nctw", z, A)


class Unit(nn.Module):
    def __init__(self, c_in: int, c_out: int, partitions: int, stride: int, dropout: float, residual: bool):
        super().__init__()
        self.gcn = GraphConv(c_in, c_out, partitions)
        pad = (KERNEL_T - 1) // 2
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, (KERNEL_T, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(c_out),
            nn.Dropout(dropout),
        )
        if not residual:
            self.residual_kind = "none"
        elif c_in == c_out and stride == 1:
            self.residual_kind = "identity"
        else:
            self.residual_kind = "conv"
            self.residual = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=(stride, 1)), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor, A: Tensor) -> Tensor:
        if self.residual_kind == "none":
            res = 0.0
        elif self.residual_kind == "identity":
            res = x
        else:
            res = self.residual(x)
        return torch.relu(self.tcn(self.gcn(x, A)) + res)


class Model(nn.Module):
    """ST-GCN encoder + linear classifier `fc`; forward(x) returns the pooled (N, hidden_dim) feature,
    forward(x, logits=True) the (N, num_class) scores. x: (N, C, T, V, M)."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        hidden_dim: int,
        num_class: int,
        A: Tensor,
        edge_importance: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        # the released code keeps the graph as a buffer, so it is in every saved state dict
        self.register_buffer("A", A.detach().clone().float())
        k, v = A.shape[0], A.shape[1]
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        chans = [hidden_channels * m for m in MULTIPLIERS] + [hidden_dim]
        units, c_prev = [], in_channels
        for i, (c, s) in enumerate(zip(chans, STRIDES)):
            # the first unit: no residual and no dropout
            units.append(Unit(c_prev, c, k, s, 0.0 if i == 0 else dropout, residual=i > 0))
            c_prev = c
        self.st_gcn_networks = nn.ModuleList(units)
        if edge_importance:
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones(A.shape)) for _ in units])
        else:
            self.edge_importance = None
        self.fc = nn.Linear(hidden_dim, num_class)

    def forward(self, x: Tensor, logits: bool = False) -> Tensor:
        n, c, t, v, m = x.shape
        # input BatchNorm over V*C features, index v*C + c; persons are samples of it
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i, unit in enumerate(self.st_gcn_networks):
            A = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = unit(x, A)
        feature = x.mean((2, 3)).view(n, m, -1).mean(1)  # average pooling over (T, V), then persons
        return self.fc(feature) if logits else feature


@torch.no_grad()
def perturb_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random non-trivial values for what initialisation leaves trivial (BatchNorm affine and running
    statistics, edge importance, biases), so a wrong mapping of any of them shows."""
    g = torch.Generator().manual_seed(seed)

    def rand(t: Tensor, lo: float, hi: float) -> None:
        t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) * (hi - lo) + lo)

    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if name == "A" or name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_var") or "edge_importance" in name:
            rand(t, 0.5, 1.5)
        elif name.endswith(("running_mean", "bias")):
            rand(t, -0.3, 0.3)
        elif t.dim() == 1:  # BatchNorm weight
            rand(t, 0.5, 1.5)
        else:  # convolution / linear weights: keep their fan-in scale, change the values
            bound = float(t.abs().max())
            rand(t, -bound, bound)
    return model
