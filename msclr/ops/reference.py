"""Readable pure-torch references of the fused ops (DESIGN.md section 3): the ground truth.

Forward and backward are written out explicitly so that every fused backend has
a formula to compare against, gradient by gradient. Low-precision inputs are
computed in float32 (float64 stays float64) and cast back to the input dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _acc(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


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

    loss_i depends on q_i only (keys and queue are constants), so its gradient is computed in
    the same pass over the queue (as fused linear cross-entropy does) and the backward only
    scales it. The backward therefore never reads the queue, which the training step
    overwrites (enqueue) before backward runs. With sig_ip = sigmoid(lse_i - s_ip):
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
    """Write keys (B, D) into the ring buffer queue (Q, D) at ptr, wrapping; advance ptr in place."""
    Q, B = queue.shape[0], keys.shape[0]
    rows = (ptr.reshape(()) + torch.arange(B, device=queue.device)) % Q
    queue.index_copy_(0, rows, keys.to(queue.dtype))
    ptr.copy_((ptr + B) % Q)
