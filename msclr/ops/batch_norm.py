"""masked_bn_stats / masked_bn_apply: the two halves of the encoder's masked BatchNorm as ops.

MaskedBatchNorm (msclr.models.layers) is, in training,

    stats = masked_bn_stats(x, mask)                      # (2, C) float64 sums over valid joints
    stats = global_sum(stats)                             # all-reduce under DDP (synchronised BN)
    mean, var -> scale = weight / sqrt(var + eps), shift = bias - mean * scale
    out = masked_bn_apply(x, mask, scale, shift, residual, relu, dropout)

and in eval the apply alone with the running statistics. Splitting at the sums keeps the
statistics exact under DDP (autograd of the all-reduce carries the gradient of the global
mean/var back to every rank) while the two passes over x are fused kernels. Backends:
"reference" (pure torch, msclr.ops.reference), "cpu" (C++, csrc/cpu/batch_norm_kernel.cpp) and
"triton" (kernels/batch_norm.py: GPUs, and CPU under TRITON_INTERPRET=1), so on a GPU the whole
encoder runs fused kernels; there is no CUDA C++ kernel (the shipped `auto` order falls through
to triton on a GPU). Each op has its own backend key, "masked_bn_stats" and
"masked_bn_apply" (msclr.ops.IMPLEMENTED, `python -m msclr.tune`), so each half can gain a backend
and be tuned on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _ext
from . import reference
from .backends import dtype_name, register_backend, resolve


# ---------------------------------------------------------------- shapes and autograd, every backend
def _fake_stats(x, mask):
    return x.new_empty((2, x.shape[1]), dtype=torch.float64)


def _fake_stats_backward(grad, x, mask):
    return x.new_empty(x.shape)


def _fake_apply(x, mask, scale, shift, residual, seed, p, relu):
    return x.new_empty(x.shape)


def _fake_apply_backward(grad, out, x, mask, scale, seed, p, relu, has_residual):
    dres = x.new_empty(x.shape) if has_residual else x.new_empty(0)
    return x.new_empty(x.shape), scale.new_empty(scale.shape), scale.new_empty(scale.shape), dres


def _stats_setup(ctx, inputs, output):
    x, mask = inputs
    ctx.save_for_backward(x, mask)


def _make_stats_backward(backward_op):
    def backward(ctx, grad):
        x, mask = ctx.saved_tensors
        return (backward_op(grad.contiguous(), x, mask) if ctx.needs_input_grad[0] else None), None

    return backward


def _apply_setup(ctx, inputs, output):
    x, mask, scale, shift, residual, seed, p, relu = inputs
    # out (not the pre-activation) is saved: the ReLU gradient is (out > 0), and out is the next
    # layer's input, kept alive anyway.
    ctx.save_for_backward(output, x, mask, scale, seed)
    ctx.p, ctx.relu, ctx.has_residual = p, relu, residual is not None


def _make_apply_backward(backward_op):
    def backward(ctx, grad):
        out, x, mask, scale, seed = ctx.saved_tensors
        dx, dscale, dshift, dres = backward_op(
            grad.contiguous(), out, x, mask, scale, seed, ctx.p, ctx.relu, ctx.has_residual
        )
        need = ctx.needs_input_grad
        return (
            dx if need[0] else None,
            None,
            dscale if need[2] else None,
            dshift if need[3] else None,
            dres if ctx.has_residual and need[4] else None,
            None,
            None,
            None,
        )

    return backward


# backend name -> (stats op, apply op), each with autograd registered
_OPS: dict[str, tuple] = {}


def _python_backend(backend: str, tag: str, impl) -> tuple:
    """The four custom ops msclr::masked_bn_{stats,apply}_<tag>(_backward) of a backend written in
    Python, registered with fakes, autograd and as `backend`. `impl()` gives the module holding
    masked_bn_stats(_backward) and masked_bn_apply(_backward): msclr.ops.reference, or the Triton
    kernels, imported on first use (Triton reads TRITON_INTERPRET when the kernels are defined).
    Returns (stats, stats backward, apply, apply backward)."""

    @torch.library.custom_op(f"msclr::masked_bn_stats_{tag}", mutates_args=())
    def stats(x: Tensor, mask: Tensor) -> Tensor:
        return impl().masked_bn_stats(x, mask).contiguous()

    @torch.library.custom_op(f"msclr::masked_bn_stats_{tag}_backward", mutates_args=())
    def stats_backward(grad: Tensor, x: Tensor, mask: Tensor) -> Tensor:
        return impl().masked_bn_stats_backward(grad, x, mask).contiguous()

    @torch.library.custom_op(f"msclr::masked_bn_apply_{tag}", mutates_args=())
    def apply(
        x: Tensor,
        mask: Tensor,
        scale: Tensor,
        shift: Tensor,
        residual: Tensor | None,
        seed: Tensor | None,
        p: float,
        relu: bool,
    ) -> Tensor:
        return impl().masked_bn_apply(x, mask, scale, shift, residual, seed, p, relu).contiguous()

    @torch.library.custom_op(f"msclr::masked_bn_apply_{tag}_backward", mutates_args=())
    def apply_backward(
        grad: Tensor,
        out: Tensor,
        x: Tensor,
        mask: Tensor,
        scale: Tensor,
        seed: Tensor | None,
        p: float,
        relu: bool,
        has_residual: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        grads = impl().masked_bn_apply_backward(grad, out, x, mask, scale, seed, p, relu, has_residual)
        return tuple(g.contiguous() for g in grads)

    for op, fake in (
        (stats, _fake_stats),
        (stats_backward, _fake_stats_backward),
        (apply, _fake_apply),
        (apply_backward, _fake_apply_backward),
    ):
        op.register_fake(fake)
    stats.register_autograd(_make_stats_backward(stats_backward), setup_context=_stats_setup)
    apply.register_autograd(_make_apply_backward(apply_backward), setup_context=_apply_setup)
    _OPS[backend] = (stats, apply)
    register_backend("masked_bn_stats", backend)
    register_backend("masked_bn_apply", backend)
    return stats, stats_backward, apply, apply_backward


# reference: pure torch, msclr.ops.reference
_ref_stats, _ref_stats_backward, _ref_apply, _ref_apply_backward = _python_backend(
    "reference", "ref", lambda: reference
)


# ---------------------------------------------------------------- cpu backend: msclr._C
# Schemas msclr::masked_bn_stats(_backward), masked_bn_apply(_backward) in csrc/batch_norm.cpp
# (argument checks in csrc/batch_norm.h), CPU kernels in csrc/cpu/batch_norm_kernel.cpp; shapes and
# autograd here.
if _ext.has_op("masked_bn_apply_backward"):
    torch.library.register_fake("msclr::masked_bn_stats")(_fake_stats)
    torch.library.register_fake("msclr::masked_bn_stats_backward")(_fake_stats_backward)
    torch.library.register_fake("msclr::masked_bn_apply")(_fake_apply)
    torch.library.register_fake("msclr::masked_bn_apply_backward")(_fake_apply_backward)
    torch.library.register_autograd(
        "msclr::masked_bn_stats",
        _make_stats_backward(torch.ops.msclr.masked_bn_stats_backward),
        setup_context=_stats_setup,
    )
    torch.library.register_autograd(
        "msclr::masked_bn_apply",
        _make_apply_backward(torch.ops.msclr.masked_bn_apply_backward),
        setup_context=_apply_setup,
    )
    _OPS["cpu"] = (torch.ops.msclr.masked_bn_stats, torch.ops.msclr.masked_bn_apply)
    register_backend("masked_bn_stats", "cpu")
    register_backend("masked_bn_apply", "cpu")


# ---------------------------------------------------------------- triton backend: kernels/batch_norm.py
# (backends.why_unavailable says when Triton cannot run)
def _triton_kernels():
    from ..kernels import batch_norm

    return batch_norm


_triton_stats, _triton_stats_backward, _triton_apply, _triton_apply_backward = _python_backend(
    "triton", "triton", _triton_kernels
)


def _check(x: Tensor, mask: Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name}: x must be (N, C, T, V), got shape {tuple(x.shape)}")
    if mask.shape != (x.shape[0], x.shape[3]):
        raise ValueError(f"{name}: mask must be (N, V) = {(x.shape[0], x.shape[3])}, got {tuple(mask.shape)}")


def accumulation_dtype(x: Tensor) -> torch.dtype:
    """dtype of scale/shift for `masked_bn_apply` on x: float64 for float64 x, else float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def masked_bn_stats(x: Tensor, mask: Tensor, backend: str = "auto") -> Tensor:
    """Per-channel sums over valid joints: (2, C) float64 [sum m x, sum m x^2] over (N, T, V).

    x: (N, C, T, V) float32/float16/bfloat16/float64; mask: (N, V) 0/1 joint mask (any float
    dtype). Differentiable in x. Backends "reference", "cpu" and "triton" (msclr.ops.backends.auto_order).
    """
    _check(x, mask, "masked_bn_stats")
    which = resolve("masked_bn_stats", backend, x.device.type, dtype_name(x))
    return _OPS[which][0](x.contiguous(), mask)


def masked_bn_apply(
    x: Tensor,
    mask: Tensor,
    scale: Tensor,
    shift: Tensor,
    residual: Tensor | None = None,
    relu: bool = False,
    dropout: float = 0.0,
    seed: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """out = act((x * scale[c] + shift[c]) * keep / (1 - dropout) * m[n, v] + residual), one pass.

    act is ReLU when `relu`, else the identity; padded joints (m = 0) come out exactly 0 when the
    residual is 0 there. Dropout keeps element i (flat index into x) iff a hash of (seed, i) clears
    `dropout` (see reference.dropout_keep), so the backward regenerates the keep mask instead of
    storing it; `seed` (int64 scalar on the CPU) is drawn from torch's default generator when None.

    Args:
        x: (N, C, T, V); mask: (N, V) 0/1; scale, shift: (C,) in accumulation_dtype(x);
        residual: like x, or None; dropout: probability in [0, 1), 0 = none.
    Gradients flow to x, scale, shift and residual.
    """
    _check(x, mask, "masked_bn_apply")
    which = resolve("masked_bn_apply", backend, x.device.type, dtype_name(x))
    acc = accumulation_dtype(x)
    if scale.shape != (x.shape[1],) or shift.shape != (x.shape[1],) or scale.dtype != acc or shift.dtype != acc:
        raise ValueError(f"masked_bn_apply: scale and shift must be ({x.shape[1]},) {acc}")
    if residual is not None and (residual.shape != x.shape or residual.dtype != x.dtype):
        raise ValueError(f"masked_bn_apply: residual must be {tuple(x.shape)} {x.dtype}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"masked_bn_apply: dropout must be in [0, 1), got {dropout}")
    if dropout > 0 and seed is None:
        seed = torch.randint(0, 2**62, (), dtype=torch.int64)
    if dropout == 0:
        seed = None
    if residual is not None:
        residual = residual.contiguous()
    return _OPS[which][1](x.contiguous(), mask, scale.contiguous(), shift.contiguous(), residual, seed, dropout, relu)
