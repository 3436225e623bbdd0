"""infonce_queue: the public function, its custom ops, fake and autograd registrations."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .. import _ext
from . import reference
from .backends import dtype_name, register_backend, resolve


class InfoNCEOutput(NamedTuple):
    loss: Tensor  # scalar: mean over queries
    losses: Tensor  # (N,) per-query loss
    lse: Tensor  # (N,) logsumexp of the queue logits of each query
    topk: Tensor | None  # (N, topk) int64 queue indices (-1 where fewer valid), or None
    divergence: Tensor | None  # scalar AimCLR divergence of q2 (mean over queries), or None


# ---------------------------------------------------------------- reference backend as custom ops


@torch.library.custom_op("msclr::infonce_queue_ref", mutates_args=())
def _ref_forward(
    q: Tensor, k: Tensor, queue: Tensor, valid: Tensor, tau: float, topk: int, q2: Tensor | None, with_grad: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    outs = reference.infonce_queue_forward(q, k, queue, valid, tau, topk, q2, with_grad)
    return tuple(o.contiguous() for o in outs)  # as the fake function promises


def _fake_forward(q, k, queue, valid, tau, topk, q2, with_grad):
    n, d = q.shape
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    per_q = q.new_empty(n, dtype=acc)
    idx = q.new_empty(n, topk, dtype=torch.int64)
    div = q.new_empty(n if q2 is not None else 0, dtype=acc)
    dq = q.new_empty((n, d) if with_grad else (0,), dtype=acc)
    dq2 = q.new_empty((n, d) if with_grad and q2 is not None else (0,), dtype=acc)
    return per_q, torch.empty_like(per_q), idx, div, dq, dq2


_ref_forward.register_fake(_fake_forward)


def _setup_context(ctx, inputs, output):
    q, k, queue, valid, tau, topk, q2, with_grad = inputs
    _, _, _, _, dq, dq2 = output
    ctx.has_q2 = q2 is not None
    ctx.dtypes = (q.dtype, q2.dtype if q2 is not None else None)
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(dq, dq2)


def _backward(ctx, g_loss, g_lse, g_topk, g_div, g_dq, g_dq2):
    """The forward already holds d loss_i/d q_i and d div_i/d q2_i: scale them per sample."""
    dq, dq2 = ctx.saved_tensors
    grad_q = grad_q2 = None
    if ctx.needs_input_grad[0] and g_loss is not None:
        grad_q = (g_loss[:, None] * dq).to(ctx.dtypes[0])
    if ctx.has_q2 and ctx.needs_input_grad[6] and g_div is not None:
        grad_q2 = (g_div[:, None] * dq2).to(ctx.dtypes[1])
    return grad_q, None, None, None, None, None, grad_q2, None


_ref_forward.register_autograd(_backward, setup_context=_setup_context)

_FORWARD = {"reference": _ref_forward}
register_backend("infonce_queue", "reference")


# ---------------------------------------------------------------- fused backends
# Every fused backend computes the same six outputs as the reference in ONE streaming pass over
# the queue, dq/dq2 included; the autograd backward below only scales them (docs/architecture.md 3.2).


def _register_cpp_backends() -> None:
    """cpu / cuda: the C++ op msclr::infonce_queue (schema csrc/infonce.cpp, kernels per dispatch key)."""
    if not _ext.has_op("infonce_queue"):
        return
    op = torch.ops.msclr.infonce_queue.default
    torch.library.register_fake("msclr::infonce_queue")(_fake_forward)
    torch.library.register_autograd("msclr::infonce_queue", _backward, setup_context=_setup_context)
    _FORWARD["cpu"] = op  # csrc/cpu/infonce_kernel.cpp
    register_backend("infonce_queue", "cpu")
    if _ext.built_with_cuda():
        _FORWARD["cuda"] = op  # csrc/cuda/infonce_kernel.cu
        register_backend("infonce_queue", "cuda")


def _register_triton_backend() -> None:
    """triton: kernels/infonce.py, launched inside an opaque custom op (runs on CPU under TRITON_INTERPRET=1)."""
    try:
        from ..kernels import infonce as triton_infonce
    except ImportError:  # triton not installed: the backend does not exist here
        return

    @torch.library.custom_op("msclr::infonce_queue_triton", mutates_args=())
    def _triton_forward(
        q: Tensor, k: Tensor, queue: Tensor, valid: Tensor, tau: float, topk: int, q2: Tensor | None, with_grad: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        return triton_infonce.infonce_queue_forward(q, k, queue, valid, tau, topk, q2, with_grad)

    _triton_forward.register_fake(_fake_forward)
    _triton_forward.register_autograd(_backward, setup_context=_setup_context)
    _FORWARD["triton"] = _triton_forward
    register_backend("infonce_queue", "triton")


_register_cpp_backends()
_register_triton_backend()


def _as_count(valid, queue: Tensor) -> Tensor:
    if valid is None:
        return torch.full((), queue.shape[0], dtype=torch.int64, device=queue.device)
    if isinstance(valid, Tensor):
        # a copy: callers advance their fill count in place after the loss, before backward
        return valid.reshape(()).to(device=queue.device, dtype=torch.int64).clone()
    return torch.full((), int(valid), dtype=torch.int64, device=queue.device)


def infonce_queue(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    tau: float,
    *,
    valid: Tensor | int | None = None,
    topk: int = 0,
    q2: Tensor | None = None,
    backend: str = "auto",
) -> InfoNCEOutput:
    """Cross-skeleton InfoNCE with P positives per query and a queue of negatives (docs/architecture.md 3.2).

        s_ip = q_i.k_ip/tau   u_ij = q_i.queue_j/tau   lse_i = logsumexp_j u_ij
        loss = mean_i (1/P) sum_p [log(exp(s_ip) + exp(lse_i)) - s_ip]

    Args:
        q: (N, D) queries; k: (N, P, D) or (N, D) positive keys; queue: (Q, D) ring buffer, read
            in place. All expected L2-normalised. tau: temperature.
        valid: number of filled queue entries (entries >= valid are ignored); None = all.
        topk: also return the indices of the top-k queue entries per query (k <= 16).
        q2: (N, D) second query set: also return the AimCLR divergence of q2 against the
            detached softmax of q over [k_i, queue].
    Gradients flow to q and q2 only; k and queue are treated as constants (they come from the
    momentum encoder in MoCo and get no gradient there either).

    Backends (`backend`: auto, reference, cpu, cuda, triton) never materialise the N x Q logits:
    they stream the queue in tiles with an online max/sum, and the gradient of q (and q2) comes
    out of that same pass, so the backward never re-reads the queue that a MoCo step overwrites
    before backward (docs/architecture.md 3.2). The gradient is first order only.
    """
    if k.dim() == 2:
        k = k.unsqueeze(1)
    if q.dim() != 2 or k.dim() != 3 or k.shape[0] != q.shape[0] or k.shape[2] != q.shape[1]:
        raise ValueError(f"infonce_queue: q must be (N, D) and k (N, P, D); got {tuple(q.shape)} and {tuple(k.shape)}")
    if queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"infonce_queue: queue must be (Q, {q.shape[1]}), got {tuple(queue.shape)}")
    if q2 is not None and q2.shape != q.shape:
        raise ValueError(f"infonce_queue: q2 must have q's shape {tuple(q.shape)}, got {tuple(q2.shape)}")
    if not 0 <= topk <= 16:
        raise ValueError(f"infonce_queue: topk must be in 0..16, got {topk}")
    if not tau > 0:
        raise ValueError(f"infonce_queue: tau must be > 0, got {tau}")
    which = resolve("infonce_queue", backend, q.device.type, dtype_name(queue))  # the queue's dtype decides the dots
    with_grad = torch.is_grad_enabled() and (q.requires_grad or (q2 is not None and q2.requires_grad))
    losses, lse, idx, div, dq, dq2 = _FORWARD[which](
        q.contiguous(), k.contiguous(), queue, _as_count(valid, queue), float(tau), int(topk), q2, with_grad
    )
    return InfoNCEOutput(
        loss=losses.mean(),
        losses=losses,
        lse=lse,
        topk=idx if topk > 0 else None,
        divergence=div.mean() if q2 is not None else None,
    )
