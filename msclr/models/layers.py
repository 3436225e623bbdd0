"""Masked building blocks of the unified ST-GCN: padded joints contribute nothing anywhere.

All inputs are (N, C, T, V_max) with a joint mask (N, V_max) float (1 valid, 0 padding) and,
where per-convention parameters exist, layout ids (N,). Statistics are computed with
segment sums (one-hot matmuls) rather than Python loops over layouts, so shapes stay
static and torch.compile keeps one graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import INPUT_NORMS
from ..ops import IMPLEMENTED, masked_bn_apply, masked_bn_stats, masked_graph_conv, resolve
from ..ops.backends import dtype_name
from ..ops.batch_norm import accumulation_dtype


def global_sum(t: Tensor) -> Tensor:
    """Sum over all ranks (with autograd) under torch.distributed, so BatchNorm statistics are
    those of the global batch (synchronised BN, as one process on the concatenated batch)."""
    if (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    ):
        import torch.distributed.nn.functional as dist_fn

        return dist_fn.all_reduce(t)
    return t


class MaskedBatchNorm(nn.Module):
    """BatchNorm over channels whose statistics count valid joints only; padding stays 0.

    forward(x, mask, residual, relu, dropout) = act(dropout(BN(x)) * m + residual), act = ReLU or
    identity: the tail of an ST-GCN unit in one call, so that the fused backend (msclr.ops
    masked_bn_stats / masked_bn_apply) does it in one pass. The `reference` backend (and `auto`
    where no fused kernel exists, e.g. on CUDA) runs the same two ops through their reference
    implementations, hash-seeded dropout included: fused and reference training draw the same
    dropout masks and agree with dropout on.
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1, backend: str = "auto"):
        super().__init__()
        self.eps, self.momentum, self.backend = eps, momentum, backend
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(
        self, x: Tensor, mask: Tensor, residual: Tensor | None = None, relu: bool = False, dropout: float = 0.0
    ) -> Tensor:
        if residual is not None and residual.dtype != x.dtype:  # e.g. under autocast: as `y + residual` does
            dt = torch.promote_types(x.dtype, residual.dtype)
            x, residual = x.to(dt), residual.to(dt)
        return self._normalize(x, mask, residual, relu, dropout)

    def _bn_backend(self, x: Tensor, op: str = "masked_bn_apply") -> str:
        """The backend of `op` ("masked_bn_stats" or "masked_bn_apply", each its own backend key)."""
        # A backend asked for by name that has no BatchNorm kernel (cuda: the graph conv has one,
        # this op not) runs the ops' torch reference instead of failing.
        if self.backend != "auto" and self.backend not in IMPLEMENTED[op]:
            return "reference"
        return resolve(op, self.backend, x.device.type, dtype_name(x))

    def _update_running(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)

    def _normalize(self, x, mask, residual, relu, dropout):
        """Statistics (masked_bn_stats, all-reduced under DDP), running stats, then masked_bn_apply."""
        acc = accumulation_dtype(x)
        if self.training:
            stats = masked_bn_stats(x, mask, backend=self._bn_backend(x, "masked_bn_stats"))  # (2, C) float64
            count = mask.to(torch.float64).sum().reshape(1) * x.shape[2]
            # one all-reduce of [sum, sum of squares, count]: the statistics of the global batch
            total = global_sum(torch.cat([stats.reshape(-1), count]))
            count = total[-1].clamp_min(1.0)
            mean = total[: x.shape[1]] / count
            # float64 sums: E[x^2] - E[x]^2 loses nothing that matters for float32 activations
            var = (total[x.shape[1] : -1] / count - mean * mean).clamp_min(0.0)
            self._update_running(mean, var, count)
        else:
            mean, var = self.running_mean.to(torch.float64), self.running_var.to(torch.float64)
        scale = self.weight.to(torch.float64) * torch.rsqrt(var + self.eps)
        shift = self.bias.to(torch.float64) - mean * scale
        return masked_bn_apply(
            x,
            mask,
            scale.to(acc),
            shift.to(acc),
            residual=residual,
            relu=relu,
            dropout=dropout,
            backend=self._bn_backend(x, "masked_bn_apply"),
        )


class LayoutInputNorm(nn.Module):
    """ST-GCN's input BatchNorm, one per convention (layout), over (samples, persons, frames).

    form="stgcn" (default): ST-GCN / SkeletonCLR / AimCLR / CrosSCLR's `BatchNorm1d(V*C)` applied
    to (N*M, V*C, T): persons share statistics and affine parameters (parameter shape
    (L, 1, V, C)). form="per_person": the 2s-AGCN / MS-G3D `BatchNorm1d(M*V*C)`, one set per
    person slot ((L, M, V, C)). Input (N, C, T, V, M) with layout ids (N,); the statistics of
    each layout come from the samples of that layout in the batch (layouts absent from the
    batch keep their running statistics); padded joints stay zero. Computes in float32, or in
    float64 for float64 input.
    """

    def __init__(
        self, num_layouts: int, channels: int, v_max: int, persons: int, eps=1e-5, momentum=0.1, form: str = "stgcn"
    ):
        super().__init__()
        if form not in INPUT_NORMS:
            raise ValueError(f"input norm form must be one of {INPUT_NORMS}, got {form!r}")
        self.eps, self.momentum, self.form = eps, momentum, form
        shape = (num_layouts, 1 if form == "stgcn" else persons, v_max, channels)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))

    def forward(self, x: Tensor, layout: Tensor, joint_mask: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        dt = torch.promote_types(x.dtype, torch.float32)  # fp16/bf16 -> fp32; fp64 stays fp64
        xf = x.to(dt).permute(0, 4, 3, 1, 2)  # (N, M, V, C, T)
        # the axes a statistic runs over, besides samples: frames, and persons when they share it
        axes, per_sample = ((1, 4), t * m) if self.form == "stgcn" else ((4,), t)
        if self.training:
            onehot = F.one_hot(layout, self.weight.shape[0]).to(dt)  # (N, L)
            count = global_sum(onehot.sum(0) * per_sample)  # (L,)
            denom = count.clamp_min(1.0)[:, None, None, None]
            sums = xf.sum(axes, keepdim=True).flatten(-2)  # (N, M or 1, V, C)
            mean = global_sum(torch.einsum("nl,nmvc->lmvc", onehot, sums)) / denom
            centred = xf - mean[layout][..., None]
            sq = (centred**2).sum(axes, keepdim=True).flatten(-2)
            var = global_sum(torch.einsum("nl,nmvc->lmvc", onehot, sq)) / denom
            with torch.no_grad():
                present = (count > 0)[:, None, None, None]
                unbiased = (var * denom / (denom - 1).clamp_min(1.0)).to(self.running_var.dtype)
                mean_r = mean.to(self.running_mean.dtype)
                self.running_mean.copy_(
                    torch.where(present, self.running_mean.lerp(mean_r, self.momentum), self.running_mean)
                )
                self.running_var.copy_(
                    torch.where(present, self.running_var.lerp(unbiased, self.momentum), self.running_var)
                )
        else:
            mean, var = self.running_mean.to(dt), self.running_var.to(dt)
        scale = self.weight.to(dt) * torch.rsqrt(var + self.eps)  # (L, M or 1, V, C)
        shift = self.bias.to(dt) - mean * scale
        y = xf * scale[layout][..., None] + shift[layout][..., None]
        y = y * joint_mask[:, None, :, None, None].to(y.dtype)  # padded joints: exactly 0
        return y.permute(0, 3, 4, 2, 1).to(x.dtype)  # back to (N, C, T, V, M)


class STGCNUnit(nn.Module):
    """One ST-GCN block: masked graph conv -> BN -> ReLU -> temporal conv (k x 1) -> BN -> dropout,
    plus a residual, then ReLU. Per-convention edge importance; everything else shared."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        num_layouts: int,
        num_partitions: int,
        v_max: int,
        stride: int = 1,
        kernel_t: int = 9,
        dropout: float = 0.0,
        residual: bool = True,
        edge_importance: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        self.backend = backend
        k = num_partitions
        self.weight = nn.Parameter(torch.empty(k, c_out, c_in))
        self.bias = nn.Parameter(torch.zeros(k, c_out))
        # Same init as nn.Conv2d(c_in, k*c_out, 1), which ST-GCN's gcn uses.
        bound = 1.0 / c_in**0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.importance = nn.Parameter(torch.ones(num_layouts, k, v_max, v_max)) if edge_importance else None
        self.bn1 = MaskedBatchNorm(c_out, backend=backend)
        self.tcn = nn.Conv2d(c_out, c_out, (kernel_t, 1), (stride, 1), ((kernel_t - 1) // 2, 0))
        self.bn2 = MaskedBatchNorm(c_out, backend=backend)
        self.dropout = nn.Dropout(dropout)
        if not residual:
            self.res_mode = "none"
        elif c_in == c_out and stride == 1:
            self.res_mode = "identity"
        else:
            self.res_mode = "conv"
            self.res_conv = nn.Conv2d(c_in, c_out, 1, (stride, 1))
            self.res_bn = MaskedBatchNorm(c_out, backend=backend)

    def forward(self, x: Tensor, layout: Tensor, A: Tensor, mask: Tensor) -> Tensor:
        if self.res_mode == "none":
            res = None
        elif self.res_mode == "identity":
            res = x
        else:
            res = self.res_bn(self.res_conv(x), mask)
        w, b = self.weight.to(x.dtype), self.bias.to(x.dtype)  # autocast does not reach custom ops
        y = masked_graph_conv(x, layout, A, w, b, self.importance, backend=self.backend)
        y = self.bn1(y, mask, relu=True)
        # bn2 masks after dropout (the conv bias would leak into padding), adds the residual, ReLU
        p = self.dropout.p if self.training else 0.0
        return self.bn2(self.tcn(y), mask, residual=res, relu=True, dropout=p)
