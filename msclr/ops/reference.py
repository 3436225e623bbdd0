"""Readable pure-torch references of the fused ops (docs/architecture.md section 3): the ground truth.

Forward and backward are written out explicitly so that every fused backend has
a formula to compare against, gradient by gradient. Low-precision inputs are
computed in float32 (float64 stays float64) and cast back to the input dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _acc(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------- argument checks
# The reference backend refuses what the cpu backend refuses, with the same messages
# (csrc/cpu/graph_conv_kernel.cpp, csrc/cpu/enqueue_kernel.cpp): indexing would otherwise wrap a
# negative layout id or queue pointer silently. They read the index tensors on the host.
def check_layout_ids(op: str, layout: Tensor, num_layouts: int) -> None:
    """RuntimeError naming the first sample whose layout id is outside [0, num_layouts)."""
    bad = (layout < 0) | (layout >= num_layouts)
    if bool(bad.any()):
        n = int(bad.nonzero()[0, 0])
        raise RuntimeError(f"{op}: layout[{n}] = {int(layout[n])} is not a layout id in [0, {num_layouts})")


def check_queue_ptr(ptr: Tensor, queue_rows: int) -> None:
    """RuntimeError when the ring pointer is outside the queue's rows."""
    start = int(ptr.reshape(()))
    if not 0 <= start < queue_rows:
        raise RuntimeError(f"msclr::enqueue_: ptr {start} is outside the queue of {queue_rows} rows")


# --------------------------------------------------------------------------- graph conv
def masked_graph_conv_forward(
    x: Tensor, layout: Tensor, A: Tensor, weight: Tensor, bias: Tensor | None, importance: Tensor | None
) -> Tensor:
    """y[n,o,t,w] = sum_k sum_v A_eff[l_n,k,v,w] * (sum_c W[k,o,c] x[n,c,t,v] + b[k,o]).

    Padded joints come out exactly zero because A is zero in their rows and columns.
    """
    acc = _acc(x)
    a_eff = A if importance is None else A * importance
    a_n = a_eff.to(acc)[layout]  # (N, K, V, V)
    z = torch.einsum("koc,nctv->nkotv", weight.to(acc), x.to(acc))
    if bias is not None:
        z = z + bias.to(acc)[None, :, :, None, None]
    return torch.einsum("nkotv,nkvw->notw", z, a_n).to(x.dtype)


def masked_graph_conv_backward(
    grad: Tensor,
    x: Tensor,
    layout: Tensor,
    A: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    importance: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients (x, weight, bias, importance); bias/importance grads are zeros when absent.

    The importance gradient is reduced per layout:
    d importance[l] = A[l] * sum_{n: l_n = l} sum_{o,t} z[n,k,o,t,v] dy[n,o,t,w].
    """
    acc = _acc(x)
    a_eff = A if importance is None else A * importance
    a_n = a_eff.to(acc)[layout]
    xf, wf, gy = x.to(acc), weight.to(acc), grad.to(acc)
    gz = torch.einsum("notw,nkvw->nkotv", gy, a_n)
    gx = torch.einsum("nkotv,koc->nctv", gz, wf)
    gw = torch.einsum("nkotv,nctv->koc", gz, xf)
    gb = gz.sum((0, 3, 4)) if bias is not None else torch.zeros_like(gw[:, :, 0])
    if importance is None:
        gi = torch.zeros_like(A)
    else:
        # z is recomputed rather than saved, as the fused kernels do.
        z = torch.einsum("koc,nctv->nkotv", wf, xf)
        if bias is not None:
            z = z + bias.to(acc)[None, :, :, None, None]
        ga_n = torch.einsum("nkotv,notw->nkvw", z, gy)
        ga = torch.zeros(A.shape, dtype=acc, device=A.device).index_add_(0, layout, ga_n)
        gi = (ga * A.to(acc)).to(importance.dtype)
    gb = gb.to(bias.dtype) if bias is not None else gb.to(weight.dtype)
    return gx.to(x.dtype), gw.to(weight.dtype), gb, gi


# --------------------------------------------------------------------------- InfoNCE with queue
def _queue_logits(q: Tensor, queue: Tensor, valid: Tensor, tau: float) -> Tensor:
    """u[i, j] = q_i . queue_j / tau, -inf for the entries j >= valid not yet filled."""
    u = q @ queue.T / tau
    filled = torch.arange(queue.shape[0], device=queue.device) < valid.reshape(())
    return u.masked_fill(~filled, float("-inf"))


def _softmax_rows(logits: Tensor, lse: Tensor) -> Tensor:
    """exp(logits - lse) with rows whose lse is -inf (nothing valid) set to 0."""
    return torch.where(torch.isfinite(lse)[:, None], torch.exp(logits - lse[:, None]), 0.0)


def infonce_queue_forward(
    q: Tensor,
    k: Tensor,
    queue: Tensor,
    valid: Tensor,
    tau: float,
    topk: int,
    q2: Tensor | None,
    with_grad: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per-sample InfoNCE with P positives and a queue of negatives, and its gradient.

    s_ip = q_i.k_ip/tau, u_ij = q_i.queue_j/tau, lse_i = logsumexp_j u_ij,
    loss_i = (1/P) sum_p [log(exp(s_ip) + exp(lse_i)) - s_ip].
    Optional: indices of the top-k queue entries per query (-1 where fewer are valid) and the
    AimCLR divergence div_i = -sum_j p_ij log softmax(l2_i)_j over the candidates c = [k_i, queue],
    with p_i = softmax(l_i) of q (no gradient) and l2 the logits of q2.

    The gradient comes out of this pass and the backward only scales it, never reading the
    queue (docs/architecture.md 3.2). With sig_ip = sigmoid(lse_i - s_ip):
        dq_i  = d loss_i/d q_i = 1/(P tau) sum_p sig_ip [ sum_j softmax(u_i)_j queue_j - k_ip ]
        dq2_i = d div_i/d q2_i = 1/tau sum_j (softmax(l2_i)_j - p_ij) c_j
    Returns (loss_i, lse, topk_idx, div_i, dq, dq2); div_i and dq2 are empty without q2, dq and
    dq2 empty without with_grad. Float outputs are float32 (float64 for float64 inputs).
    """
    acc = _acc(q)
    qf, kf, qu = q.to(acc), k.to(acc), queue.to(acc)
    P = k.shape[1]
    s = torch.einsum("nd,npd->np", qf, kf) / tau
    u = _queue_logits(qf, qu, valid, tau)
    lse = torch.logsumexp(u, 1)
    loss = (torch.logaddexp(s, lse[:, None]) - s).mean(1)

    n = q.shape[0]
    if topk > 0:
        vals, idx = u.topk(min(topk, u.shape[1]), dim=1)
        idx = torch.where(torch.isinf(vals), -1, idx)
        if topk > u.shape[1]:  # fewer queue slots than asked: pad with -1
            idx = torch.cat([idx, idx.new_full((n, topk - u.shape[1]), -1)], 1)
    else:
        idx = torch.empty(n, 0, dtype=torch.int64, device=q.device)

    if with_grad:
        sig = torch.sigmoid(lse[:, None] - s)  # weight of the negatives in term p
        neg_mean = _softmax_rows(u, lse) @ qu  # sum_j softmax(u_i)_j queue_j
        dq = (sig.sum(1)[:, None] * neg_mean - torch.einsum("np,npd->nd", sig, kf)) / (P * tau)
    else:
        dq = q.new_empty(0, dtype=acc)

    if q2 is None:
        return loss, lse, idx, q.new_empty(0, dtype=acc), dq, q.new_empty(0, dtype=acc)
    full = torch.cat([s, u], 1)  # candidates [k_i, queue]
    p = _softmax_rows(full, torch.logsumexp(full, 1))
    q2f = q2.to(acc)
    full2 = torch.cat([torch.einsum("nd,npd->np", q2f, kf) / tau, _queue_logits(q2f, qu, valid, tau)], 1)
    lse2 = torch.logsumexp(full2, 1)
    div = lse2 - (p * full2.masked_fill(p == 0, 0.0)).sum(1)
    if with_grad:
        w = _softmax_rows(full2, lse2) - p  # (N, P + Q)
        dq2 = (torch.einsum("np,npd->nd", w[:, :P], kf) + w[:, P:] @ qu) / tau
    else:
        dq2 = q.new_empty(0, dtype=acc)
    return loss, lse, idx, div, dq, dq2


# --------------------------------------------------------------------------- queue
def enqueue_(queue: Tensor, ptr: Tensor, keys: Tensor) -> None:
    """Write keys (B, D) into the ring buffer queue (Q, D) at ptr, wrapping; advance ptr in place.

    ptr outside [0, Q) is an error (as in the cpu backend), not wrapped."""
    Q, B = queue.shape[0], keys.shape[0]
    check_queue_ptr(ptr, Q)
    rows = (ptr.reshape(()) + torch.arange(B, device=queue.device)) % Q
    queue.index_copy_(0, rows, keys.to(queue.dtype))
    ptr.copy_((ptr + B) % Q)


# --------------------------------------------------------------------------- masked batch norm
# The two halves of MaskedBatchNorm (msclr.models.layers): per-channel sums over valid joints,
# then one fused apply. Between them the sums can be all-reduced (synchronised BN under DDP).
def masked_bn_stats(x: Tensor, mask: Tensor) -> Tensor:
    """(2, C) float64: [sum m x, sum m x^2] over samples, frames and joints (mask m (N, V), 0/1)."""
    xf = x.to(torch.float64)
    xm = xf * mask.to(torch.float64)[:, None, None, :]
    return torch.stack([xm.sum((0, 2, 3)), (xm * xf).sum((0, 2, 3))])


def masked_bn_stats_backward(grad: Tensor, x: Tensor, mask: Tensor) -> Tensor:
    """d x = m * (grad[0] + 2 grad[1] x), per channel."""
    acc = _acc(x)
    g = grad.to(acc)[:, None, :, None, None]
    m = mask.to(acc)[:, None, None, :]
    return (m * (g[0] + 2 * g[1] * x.to(acc))).to(x.dtype)


_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """(x * c) mod 2^32 for x in [0, 2^32) held in int64, without overflowing int64."""
    lo = x * (c & 0xFFFF)  # < 2^48
    hi = ((x * (c >> 16)) & 0xFFFF) << 16  # only the low 16 bits of the high product survive mod 2^32
    return (lo + hi) & _M32


def _mix32(x: Tensor) -> Tensor:
    """The "lowbias32" integer finaliser (C. Wellons), as in csrc/cpu/batch_norm_kernel.cpp."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def dropout_keep(seed: Tensor, shape: tuple[int, ...], p: float, device=None) -> Tensor:
    """Bool keep mask of `shape`: element i (flat, row-major) is kept iff
    mix32(lo32(i) ^ lo32(seed) ^ mix32(hi32(i) ^ hi32(seed))) >= floor(p * 2^32)."""
    s = int(seed.reshape(()).item()) & 0xFFFFFFFFFFFFFFFF
    numel = 1
    for d in shape:
        numel *= d
    i = torch.arange(numel, dtype=torch.int64, device=device)
    key = (s & _M32) ^ _mix32(((i >> 32) & _M32) ^ (s >> 32))
    h = _mix32((i & _M32) ^ key)
    return (h >= int(p * 4294967296.0)).view(shape)


def _apply_factor(x: Tensor, mask: Tensor, seed: Tensor | None, p: float) -> Tensor:
    """m[n,v] * keep / (1 - p): the factor every normalised element is multiplied by."""
    acc = _acc(x)
    f = mask.to(acc)[:, None, None, :].expand(x.shape)
    if seed is not None and p > 0:
        keep = dropout_keep(seed, tuple(x.shape), p, x.device)
        f = torch.where(keep, f * (1.0 / (1.0 - p)), torch.zeros((), dtype=acc, device=x.device))
    return f


def masked_bn_apply(
    x: Tensor,
    mask: Tensor,
    scale: Tensor,
    shift: Tensor,
    residual: Tensor | None,
    seed: Tensor | None,
    p: float,
    relu: bool,
) -> Tensor:
    """act((x * scale[c] + shift[c]) * m * keep/(1-p) + residual), act = relu or identity."""
    acc = _acc(x)
    z = (x.to(acc) * scale.to(acc)[:, None, None] + shift.to(acc)[:, None, None]) * _apply_factor(x, mask, seed, p)
    if residual is not None:
        z = z + residual.to(acc)
    if relu:
        z = z.clamp_min(0)
    return z.to(x.dtype)


def masked_bn_apply_backward(
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
    """Gradients (x, scale, shift, residual); the residual one is empty (0,) without a residual."""
    acc = _acc(x)
    g = grad.to(acc)
    if relu:
        g = torch.where(out > 0, g, torch.zeros((), dtype=acc, device=g.device))
    gz = g * _apply_factor(x, mask, seed, p)
    dx = gz * scale.to(acc)[:, None, None]
    dscale = (gz * x.to(acc)).sum((0, 2, 3))
    dshift = gz.sum((0, 2, 3))
    dres = g.to(x.dtype, copy=True) if has_residual else x.new_empty(0)  # never alias grad
    return dx.to(x.dtype), dscale.to(scale.dtype), dshift.to(scale.dtype), dres
