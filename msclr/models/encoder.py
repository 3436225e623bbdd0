"""The unified ST-GCN encoder over mixed skeleton conventions (DESIGN.md section 7)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..skeletons import LayoutTable
from .layers import LayoutInputNorm, STGCNUnit

# (channel multiplier of hidden_channels, temporal stride) of the 10 units of SkeletonCLR/AimCLR;
# the last unit outputs hidden_dim.
_UNITS = ((1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1))


class STGCNEncoder(nn.Module):
    """ST-GCN with per-convention adjacency, input BatchNorm and edge importance.

    Input: x (N, C, T, V_max, M) padded batch and layout (N,) ids into `table`. Persons are
    folded into the batch (N*M sequences keep their sample's layout) and averaged after the
    masked mean pooling over valid joints and frames. Output: (N, hidden_dim) features, or
    (N, num_outputs) when a head is attached (`fc`).
    """

    def __init__(
        self,
        table: LayoutTable,
        in_channels: int = 3,
        hidden_channels: int = 16,
        hidden_dim: int = 256,
        persons: int = 2,
        kernel_t: int = 9,
        dropout: float = 0.5,
        edge_importance: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        L, K, V = len(table), table.num_partitions, table.v_max
        self.hidden_dim = hidden_dim
        self.register_buffer("A", table.A.clone(), persistent=False)
        self.register_buffer("joint_mask", table.joint_mask.clone(), persistent=False)
        self.data_bn = LayoutInputNorm(L, in_channels, V, persons)
        chans = [hidden_channels * mult for mult, _ in _UNITS] + [hidden_dim]
        strides = [s for _, s in _UNITS] + [1]
        c_prev = in_channels
        units = []
        for i, (c, s) in enumerate(zip(chans, strides)):
            units.append(
                STGCNUnit(
                    c_prev,
                    c,
                    L,
                    K,
                    V,
                    stride=s,
                    kernel_t=kernel_t,
                    dropout=0.0 if i == 0 else dropout,
                    residual=i > 0,
                    edge_importance=edge_importance,
                    backend=backend,
                )
            )
            c_prev = c
        self.units = nn.ModuleList(units)

    def feature_map(self, x: Tensor, layout: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Last feature map (N*M, C, T', V), its layout ids and joint mask."""
        n, c, t, v, m = x.shape
        mask = self.joint_mask[layout]  # (N, V)
        x = self.data_bn(x, layout, mask)
        x = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)  # fold persons into the batch
        layout_m = layout.repeat_interleave(m)
        mask_m = mask.repeat_interleave(m, dim=0)
        for unit in self.units:
            x = unit(x, layout_m, self.A, mask_m)
        return x, layout_m, mask_m

    @staticmethod
    def pool(x: Tensor, mask: Tensor, persons: int) -> Tensor:
        """Masked mean over frames and valid joints, then the mean over persons."""
        mf = mask[:, None, None, :].to(x.dtype)
        pooled = (x * mf).sum((2, 3)) / (mf.sum((2, 3)) * x.shape[2]).clamp_min(1.0)
        return pooled.view(-1, persons, pooled.shape[1]).mean(1)

    def forward(self, x: Tensor, layout: Tensor) -> Tensor:
        fmap, _, mask = self.feature_map(x, layout)
        return self.pool(fmap, mask, x.shape[-1])


def simam_attention(x: Tensor, e_lambda: float = 1e-4) -> Tensor:
    """SimAM energy attention (Yang et al., ICML 2021) per channel over (T, V); used by AimCLR's drop."""
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean((2, 3), keepdim=True)) ** 2
    return torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / n + e_lambda)) + 0.5)
