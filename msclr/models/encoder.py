"""The unified ST-GCN encoder over mixed skeleton conventions (docs/architecture.md section 7)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import INIT_SCHEMES
from ..skeletons import LayoutTable
from .layers import LayoutInputNorm, MaskedBatchNorm, STGCNUnit

# (channel multiplier of hidden_channels, temporal stride) of the 10 units of SkeletonCLR/AimCLR;
# the last unit outputs hidden_dim.
UNITS = ((1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1))


class STGCNEncoder(nn.Module):
    """ST-GCN with per-convention adjacency, input BatchNorm and edge importance.

    With one convention and no padding it computes exactly ST-GCN as SkeletonCLR/AimCLR use it
    (tests/test_models_faithful.py holds it against an independent implementation of the
    published equations in train and eval mode).

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
        input_norm: str = "stgcn",
    ):
        super().__init__()
        L, K, V = len(table), table.num_partitions, table.v_max
        self.hidden_dim = hidden_dim
        self.register_buffer("A", table.A.clone(), persistent=False)
        self.register_buffer("joint_mask", table.joint_mask.clone(), persistent=False)
        # stgcn: persons share the input BatchNorm (ST-GCN, SkeletonCLR, AimCLR); per_person: 2s-AGCN
        self.data_bn = LayoutInputNorm(L, in_channels, V, persons, form=input_norm)
        chans = [hidden_channels * mult for mult, _ in UNITS] + [hidden_dim]
        strides = [s for _, s in UNITS] + [1]
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


def simam_attention(x: Tensor, mask: Tensor | None = None, e_lambda: float = 1e-4) -> Tensor:
    """SimAM energy attention (Yang et al., ICML 2021) per channel over (T, V); used by AimCLR's drop.

    x (N, C, T, V); mask (N, V) restricts the mean and the energy to valid joints (padding gets
    attention 0). Without padding it is AimCLR's `Simam_Drop` attention map.
    """
    if mask is None:
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean((2, 3), keepdim=True)) ** 2
        return torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / n + e_lambda)) + 0.5)
    m = mask[:, None, None, :].to(x.dtype)
    count = m.sum((2, 3), keepdim=True) * x.shape[2]
    mean = (x * m).sum((2, 3), keepdim=True) / count.clamp_min(1.0)
    d = (x - mean) ** 2 * m
    return torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / (count - 1).clamp_min(1.0) + e_lambda)) + 0.5) * m


def init_weights_(module: nn.Module, scheme: str = "aimclr") -> nn.Module:
    """Initialise every layer of `module` in place.

    aimclr: SkeletonCLR/AimCLR/CrosSCLR's `weights_init` (applied to the whole MoCo model after it
    is built, so the key encoder gets its own draw): convolution and linear weights N(0, 0.02),
    their biases 0; BatchNorm weights N(1, 0.02), biases 0 (msclr's graph-conv weights are ST-GCN's
    1x1 gcn convolution, the input norm is its data_bn). Edge importance stays 1.
    torch: PyTorch's defaults (as the layers were constructed): nothing changes.
    """
    if scheme == "torch":
        return module
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init scheme must be one of {INIT_SCHEMES}, got {scheme!r}")
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, STGCNUnit)):
                m.weight.copy_(torch.randn(m.weight.shape) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, MaskedBatchNorm, LayoutInputNorm)):
                m.weight.copy_(1.0 + torch.randn(m.weight.shape) * 0.02)
                m.bias.zero_()
    return module
