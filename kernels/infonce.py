"""Triton kernels of msclr::infonce_queue (docs/architecture.md 3.2): one streaming pass over the queue.

Same contract and formulas as msclr.ops.reference.infonce_queue_forward; the loss, lse, top-k,
the AimCLR divergence AND the gradients dq = d loss_i/d q_i, dq2 = d div_i/d q2_i all come out
of a single pass over the queue (why: docs/architecture.md 3.2). Two kernels:

* `_stream`: grid (query blocks, queue splits). A program holds BLOCK_N queries and streams its
  split of the queue in BLOCK_Q-row tiles, flash-attention style: logits u = q.tile^T/tau for the
  tile only (never N x Q), online max m / sum l, a += exp(u - m) @ tile (for dq), the same state
  for q2 (divergence, dq2), the cross term t = sum exp(u - m) u2, and an unsorted running top-k
  set. It writes this per-split state (O(splits * N * D), independent of Q).
* `_finalize`: grid (query blocks,). Merges the splits (rescaling to the common max), adds the P
  positives and writes losses, lse, div, dq, dq2 and the sorted top-k indices.

Inputs fp32/fp16/bf16, fp32 accumulation. On a GPU, fp16/bf16 queues with queries of the same dtype
use tensor-core dots with fp32 accumulation; fp32 dots use "tf32x3" (fp32-level accuracy). Under
TRITON_INTERPRET=1 (set before triton is imported) everything is computed in fp32 (the interpreter
mishandles bf16 arithmetic).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import INTERPRET, on_tensor_device, require_runnable


@triton.jit
def _nan_maximum(a, b):
    """Elementwise max that is NaN where either is (tl.maximum may drop a NaN): a NaN logit must reach
    the loss, as in the reference's logsumexp."""
    return tl.where((a > b) | (a != a), a, b)


@triton.jit
def _nan_max_rows(u):
    """Row max of u, NaN for rows holding a NaN."""
    has_nan = tl.max((u != u).to(tl.int32), 1) > 0
    return tl.where(has_nan, float("nan"), tl.max(tl.where(u != u, float("-inf"), u), 1))


@triton.jit
def _stream(  # noqa: C901 - a @triton.jit kernel: its ifs are tl.constexpr specialisations, kept in one compiled body
    q_ptr,
    q2_ptr,
    queue_ptr,
    valid_ptr,
    m_ptr,
    l_ptr,
    t_ptr,
    m2_ptr,
    l2_ptr,
    a_ptr,
    a2_ptr,
    topv_ptr,
    topi_ptr,
    N,
    Q,
    D,
    inv_tau,
    tiles_per_split,
    HAS_Q2: tl.constexpr,
    WITH_GRAD: tl.constexpr,
    TOPK: tl.constexpr,
    KP: tl.constexpr,
    LOWP_DOT: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid_n = tl.program_id(0)
    split = tl.program_id(1)
    rows = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    dcol = tl.arange(0, BLOCK_D)
    d_ok = dcol < D
    qmask = row_ok[:, None] & d_ok[None, :]
    qb = tl.load(q_ptr + rows[:, None].to(tl.int64) * D + dcol[None, :], mask=qmask, other=0.0)
    q2b = qb
    if HAS_Q2:
        q2b = tl.load(q2_ptr + rows[:, None].to(tl.int64) * D + dcol[None, :], mask=qmask, other=0.0)
    if not LOWP_DOT:
        qb = qb.to(tl.float32)
        q2b = q2b.to(tl.float32)

    # Rows >= valid of the ring buffer are not filled yet: this split reads [start, end).
    qv = tl.minimum(tl.maximum(tl.load(valid_ptr), 0), Q)
    start = split * tiles_per_split * BLOCK_Q
    end = tl.minimum(start + tiles_per_split * BLOCK_Q, qv).to(tl.int32)

    neg_inf = float("-inf")
    m_i = tl.full([BLOCK_N], neg_inf, tl.float32)
    l_i = tl.zeros([BLOCK_N], tl.float32)
    t_i = tl.zeros([BLOCK_N], tl.float32)
    m2_i = tl.full([BLOCK_N], neg_inf, tl.float32)
    l2_i = tl.zeros([BLOCK_N], tl.float32)
    acc = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    acc2 = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    kcol = tl.arange(0, KP)
    # Running top-k as an unsorted set; padding columns (>= TOPK) hold +inf and are never replaced.
    best_v = tl.where(kcol[None, :] < TOPK, neg_inf, float("inf")) + tl.zeros([BLOCK_N, KP], tl.float32)
    best_i = tl.full([BLOCK_N, KP], -1, tl.int32)  # queue rows fit int32 (Q < 2^31): half the registers
    qcol = tl.arange(0, BLOCK_Q)

    for j0 in range(start, end, BLOCK_Q):
        cols = j0 + qcol
        c_ok = cols < end
        tile = tl.load(
            queue_ptr + cols[:, None].to(tl.int64) * D + dcol[None, :], mask=c_ok[:, None] & d_ok[None, :], other=0.0
        )
        if not LOWP_DOT:
            tile = tile.to(tl.float32)
        u = tl.dot(qb, tl.trans(tile), input_precision=PRECISION) * inv_tau
        u = tl.where(c_ok[None, :], u, neg_inf)

        if TOPK > 0:
            # A tile adds at most TOPK entries to the set, so TOPK rounds of "the tile's best replaces
            # the set's worst if larger" are exact; a fixed, unrolled count (not a data-dependent
            # while loop) keeps the queue loop software-pipelined (async copies of the next tiles).
            cand = tl.where(row_ok[:, None], u, neg_inf)
            for _ in tl.static_range(TOPK):
                cmax = tl.max(cand, 1)
                carg = tl.argmax(cand, 1)
                wpos = tl.argmin(best_v, 1)
                hit = (cmax > tl.min(best_v, 1))[:, None] & (kcol[None, :] == wpos[:, None])
                best_v = tl.where(hit, cmax[:, None], best_v)
                best_i = tl.where(hit, (j0 + carg)[:, None], best_i)
                cand = tl.where(qcol[None, :] == carg[:, None], neg_inf, cand)

        m_new = _nan_maximum(m_i, _nan_max_rows(u))  # NaN sticks; +inf: lse is +inf (_finalize)
        # every logit so far -inf: the sums stay 0 (shift 0, alpha 1), not exp(-inf + inf) = NaN
        alpha = tl.where(m_new == neg_inf, 1.0, tl.exp(m_i - m_new))
        e = tl.exp(u - tl.where(m_new == neg_inf, 0.0, m_new)[:, None])
        l_i = l_i * alpha + tl.sum(e, 1)
        m_i = m_new
        if HAS_Q2:
            u2 = tl.dot(q2b, tl.trans(tile), input_precision=PRECISION) * inv_tau
            t_i = t_i * alpha + tl.sum(tl.where((e == 0) | ~c_ok[None, :], 0.0, e * u2), 1)  # 0 x inf adds 0
            u2 = tl.where(c_ok[None, :], u2, neg_inf)
            m2_new = _nan_maximum(m2_i, _nan_max_rows(u2))
            alpha2 = tl.where(m2_new == neg_inf, 1.0, tl.exp(m2_i - m2_new))
            e2 = tl.exp(u2 - tl.where(m2_new == neg_inf, 0.0, m2_new)[:, None])
            l2_i = l2_i * alpha2 + tl.sum(e2, 1)
            m2_i = m2_new
            if WITH_GRAD:
                if LOWP_DOT:
                    acc2 = acc2 * alpha2[:, None] + tl.dot(e2.to(tile.dtype), tile)
                else:
                    acc2 = acc2 * alpha2[:, None] + tl.dot(e2, tile, input_precision=PRECISION)
        if WITH_GRAD:
            if LOWP_DOT:
                acc = acc * alpha[:, None] + tl.dot(e.to(tile.dtype), tile)
            else:
                acc = acc * alpha[:, None] + tl.dot(e, tile, input_precision=PRECISION)

    so = split.to(tl.int64) * N + rows
    tl.store(m_ptr + so, m_i, mask=row_ok)
    tl.store(l_ptr + so, l_i, mask=row_ok)
    if HAS_Q2:
        tl.store(t_ptr + so, t_i, mask=row_ok)
        tl.store(m2_ptr + so, m2_i, mask=row_ok)
        tl.store(l2_ptr + so, l2_i, mask=row_ok)
    if WITH_GRAD:
        tl.store(a_ptr + so[:, None] * D + dcol[None, :], acc, mask=qmask)
        if HAS_Q2:
            tl.store(a2_ptr + so[:, None] * D + dcol[None, :], acc2, mask=qmask)
    if TOPK > 0:
        tl.store(topv_ptr + so[:, None] * KP + kcol[None, :], best_v, mask=row_ok[:, None])
        tl.store(topi_ptr + so[:, None] * KP + kcol[None, :], best_i.to(tl.int64), mask=row_ok[:, None])


@triton.jit
def _finalize(  # noqa: C901 - a @triton.jit kernel: its ifs are tl.constexpr specialisations, kept in one compiled body
    q_ptr,
    q2_ptr,
    k_ptr,
    m_ptr,
    l_ptr,
    t_ptr,
    m2_ptr,
    l2_ptr,
    a_ptr,
    a2_ptr,
    topv_ptr,
    topi_ptr,
    loss_ptr,
    lse_ptr,
    idx_ptr,
    div_ptr,
    dq_ptr,
    dq2_ptr,
    N,
    D,
    P,
    inv_tau,
    n_splits,
    HAS_Q2: tl.constexpr,
    WITH_GRAD: tl.constexpr,
    TOPK: tl.constexpr,
    KP: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < N
    dcol = tl.arange(0, BLOCK_D)
    d_ok = dcol < D
    qmask = row_ok[:, None] & d_ok[None, :]
    neg_inf = float("-inf")

    # Merge the splits' online-softmax state, rescaled to a common running max (0 while all are empty).
    M = tl.full([BLOCK_N], neg_inf, tl.float32)
    l = tl.zeros([BLOCK_N], tl.float32)
    t = tl.zeros([BLOCK_N], tl.float32)
    a = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    M2 = tl.full([BLOCK_N], neg_inf, tl.float32)
    l2 = tl.zeros([BLOCK_N], tl.float32)
    a2 = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for sp in range(n_splits):
        so = sp * N + rows.to(tl.int64)
        ms = tl.load(m_ptr + so, mask=row_ok, other=neg_inf)
        M_new = _nan_maximum(M, ms)
        ref = tl.where(M_new == neg_inf, 0.0, M_new)
        w_old = tl.exp(M - ref)
        w_s = tl.exp(ms - ref)
        l = l * w_old + w_s * tl.load(l_ptr + so, mask=row_ok, other=0.0)
        if HAS_Q2:
            t = t * w_old + w_s * tl.load(t_ptr + so, mask=row_ok, other=0.0)
        if WITH_GRAD:
            a_s = tl.load(a_ptr + so[:, None] * D + dcol[None, :], mask=qmask, other=0.0)
            a = a * w_old[:, None] + w_s[:, None] * a_s
        M = M_new
        if HAS_Q2:
            m2s = tl.load(m2_ptr + so, mask=row_ok, other=neg_inf)
            M2_new = _nan_maximum(M2, m2s)
            ref2 = tl.where(M2_new == neg_inf, 0.0, M2_new)
            w2_old = tl.exp(M2 - ref2)
            w2_s = tl.exp(m2s - ref2)
            l2 = l2 * w2_old + w2_s * tl.load(l2_ptr + so, mask=row_ok, other=0.0)
            if WITH_GRAD:
                a2_s = tl.load(a2_ptr + so[:, None] * D + dcol[None, :], mask=qmask, other=0.0)
                a2 = a2 * w2_old[:, None] + w2_s[:, None] * a2_s
            M2 = M2_new
    Ms = tl.where(M == neg_inf, 0.0, M)  # the reference point of l, t, a
    M2s = tl.where(M2 == neg_inf, 0.0, M2)
    l_safe = tl.where(l > 0, l, 1.0)  # empty queue: lse = -inf, and no 0 divisions or log(0)
    lse = tl.where(l > 0, Ms + tl.log(l_safe), neg_inf)
    lse = tl.where((M != M) | (M == float("inf")), M, lse)  # a NaN / +inf logit, as torch.logsumexp
    tl.store(lse_ptr + rows, lse, mask=row_ok)

    qb = tl.load(q_ptr + rows[:, None].to(tl.int64) * D + dcol[None, :], mask=qmask, other=0.0)
    q2b = qb
    if HAS_Q2:
        q2b = tl.load(q2_ptr + rows[:, None].to(tl.int64) * D + dcol[None, :], mask=qmask, other=0.0)
    k_row = k_ptr + rows[:, None].to(tl.int64) * P * D + dcol[None, :]

    # Positives: loss_i = 1/P sum_p softplus(lse_i - s_ip); dq_i = 1/(P tau) sum_p sig_ip (a/l - k_ip).
    loss = tl.zeros([BLOCK_N], tl.float32)
    sig_sum = tl.zeros([BLOCK_N], tl.float32)
    gk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    m1 = M
    mq2 = M2
    for p in range(P):
        kp = tl.load(k_row + p * D, mask=qmask, other=0.0)
        s = tl.sum(qb * kp, 1) * inv_tau
        x = lse - s
        z = tl.exp(-tl.abs(x))  # 0 when lse = -inf (empty queue)
        # at s = +inf the reference's inf - inf = NaN; tl.maximum may drop a NaN x
        loss += tl.where((s == float("inf")) | (x != x), float("nan"), tl.maximum(x, 0.0) + tl.log(1.0 + z))
        sig = tl.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
        sig_sum += sig
        gk += sig[:, None] * kp
        if HAS_Q2:
            m1 = _nan_maximum(m1, s)
            mq2 = _nan_maximum(mq2, tl.sum(q2b * kp, 1) * inv_tau)
    tl.store(loss_ptr + rows, loss / P, mask=row_ok)
    if WITH_GRAD:
        neg = tl.where(l > 0, sig_sum / l_safe, 0.0)
        dq = (neg[:, None] * a - gk) * (inv_tau / P)
        tl.store(dq_ptr + rows[:, None].to(tl.int64) * D + dcol[None, :], dq, mask=qmask)

    if HAS_Q2:
        # Candidates [k_i, queue]: p = softmax of q's logits (max m1, sum L1), softmax of q2's (mq2, L2).
        # an empty queue (M = -inf) has l = t = a = 0: weight 0, as exp(0 - m1) overflows at small tau
        w = tl.where(M == neg_inf, 0.0, tl.exp(Ms - m1))
        w2 = tl.where(M2 == neg_inf, 0.0, tl.exp(M2s - mq2))
        L1 = l * w
        L2 = l2 * w2
        cross = t * w
        b1 = a * w[:, None]
        b2 = a2 * w2[:, None]
        for p in range(P):
            kp = tl.load(k_row + p * D, mask=qmask, other=0.0)
            s = tl.sum(qb * kp, 1) * inv_tau
            s2 = tl.sum(q2b * kp, 1) * inv_tau
            e1 = tl.exp(s - m1)
            e2 = tl.exp(s2 - mq2)
            L1 += e1
            L2 += e2
            cross += tl.where(e1 == 0, 0.0, e1 * s2)
            b1 += e1[:, None] * kp
            b2 += e2[:, None] * kp
        tl.store(div_ptr + rows, mq2 + tl.log(L2) - cross / L1, mask=row_ok)
        if WITH_GRAD:
            dq2 = (b2 / L2[:, None] - b1 / L1[:, None]) * inv_tau
            tl.store(dq2_ptr + rows[:, None].to(tl.int64) * D + dcol[None, :], dq2, mask=qmask)

    if TOPK > 0:
        # Merge the splits' candidate sets into one (replace-the-worst, as in _stream; O(splits * k)
        # per query, so a queue cut into many splits is fine), then emit it in descending order.
        kcol = tl.arange(0, KP)
        best_v = tl.where(kcol[None, :] < TOPK, neg_inf, float("inf")) + tl.zeros([BLOCK_N, KP], tl.float32)
        best_i = tl.full([BLOCK_N, KP], -1, tl.int64)
        for sp in range(n_splits):
            base = (sp * N + rows.to(tl.int64)) * KP
            for c in tl.static_range(TOPK):
                v = tl.load(topv_ptr + base + c, mask=row_ok, other=neg_inf)
                ix = tl.load(topi_ptr + base + c, mask=row_ok, other=-1)
                worst = tl.min(best_v, 1)
                wpos = tl.argmin(best_v, 1)
                hit = (v > worst)[:, None] & (kcol[None, :] == wpos[:, None])
                best_v = tl.where(hit, v[:, None], best_v)
                best_i = tl.where(hit, ix[:, None], best_i)
        best_v = tl.where(kcol[None, :] < TOPK, best_v, neg_inf)  # drop the +inf padding columns
        for r in tl.static_range(TOPK):
            top = tl.max(best_v, 1)
            arg = tl.argmax(best_v, 1)
            sel = kcol[None, :] == arg[:, None]
            pick = tl.sum(tl.where(sel, best_i, 0), 1)
            pick = tl.where(top == neg_inf, -1, pick)
            tl.store(idx_ptr + rows.to(tl.int64) * TOPK + r, pick, mask=row_ok)
            best_v = tl.where(sel, neg_inf, best_v)


FINALIZE_BLOCK_N, FINALIZE_WARPS = 16, 8  # a (16, D) tile per tensor: the merge math spills at 64 rows


def launch_config(lowp: bool, has_q2: bool, block_d: int, interp: bool) -> tuple[int, int, int, int]:
    """(BLOCK_N, BLOCK_Q, num_warps, num_stages) of _stream.

    Picked from sm_90 compiles made without a GPU, specialised as a real launch is (aligned
    pointers, D a multiple of 16): tensor-core dots, the queue loads software-pipelined (async
    copies) on the 16-bit paths, and no register spills, for D up to 256 (an fp32 queue at D > 128
    still spills a few bytes: its "tf32x3" dots split every operand in three). Not yet tuned by
    timing on a GPU. tests/test_infonce_kernels.py holds these facts.
    """
    if interp:
        return 16, 16, 1, 1
    wide = block_d > 128
    if lowp:  # wgmma needs 64-row tiles; with q2 two accumulators share the registers
        if not has_q2:
            return 64, 64, (8 if wide else 4), 3
        return (32, 32, 8, 2) if wide else (64, 32, 4, 3)
    # fp32: "tf32x3" dots (mma.sync) stage split operands in registers, hence small tiles
    if not has_q2:
        return (16, 16, 8, 2) if wide else (32, 32, 8, 2)
    return 16, 16, 8, 2


def _num_sms(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4


@on_tensor_device
def infonce_queue_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    queue: torch.Tensor,
    valid: torch.Tensor,
    tau: float,
    topk: int,
    q2: torch.Tensor | None,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(losses, lse, topk_idx, div, dq, dq2) exactly as msclr.ops.reference.infonce_queue_forward."""
    N, D = q.shape
    P, Q = k.shape[1], queue.shape[0]
    for name, t in (("q", q), ("k", k), ("queue", queue)) + ((("q2", q2),) if q2 is not None else ()):
        if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise TypeError(f"infonce_queue (triton): {name} must be float32/float16/bfloat16, got {t.dtype}")
        if t.device != queue.device:
            raise ValueError(f"infonce_queue (triton): {name} is on {t.device} but the queue is on {queue.device}")
    if not queue.is_contiguous():
        raise ValueError("infonce_queue (triton): the queue must be contiguous (it is read in place)")
    if valid.numel() != 1 or valid.dtype != torch.int64:
        raise ValueError("infonce_queue (triton): valid must be one int64 element")
    if P < 1:
        raise ValueError("infonce_queue (triton): k needs at least one positive per query (P >= 1)")
    device = queue.device
    interp = INTERPRET
    require_runnable(device, "infonce_queue")
    f32 = dict(device=device, dtype=torch.float32)
    losses, lse = torch.empty(N, **f32), torch.empty(N, **f32)
    idx = torch.empty(N, topk, device=device, dtype=torch.int64)
    div = torch.empty(N if q2 is not None else 0, **f32)
    dq = torch.empty((N, D) if with_grad else (0,), **f32)
    dq2 = torch.empty((N, D) if with_grad and q2 is not None else (0,), **f32)
    if N == 0:
        return losses, lse, idx, div, dq, dq2

    # Tensor-core dots in the queue's 16-bit dtype when the queries share it (exact inputs, fp32 acc).
    lowp = (
        not interp
        and queue.dtype in (torch.float16, torch.bfloat16)
        and q.dtype == queue.dtype
        and (q2 is None or q2.dtype == queue.dtype)
    )
    q_in = q.contiguous() if lowp else q.float().contiguous()
    q2_in = (q2.contiguous() if lowp else q2.float().contiguous()) if q2 is not None else q_in
    qf, kf = q.float().contiguous(), k.float().contiguous()
    q2f = q2.float().contiguous() if q2 is not None else qf
    valid = valid.reshape(1).to(device)

    block_d = max(16, triton.next_power_of_2(D))
    block_n, block_q, warps, stages = launch_config(lowp, q2 is not None, block_d, interp)
    n_blocks = triton.cdiv(N, block_n)
    tiles = triton.cdiv(Q, block_q)  # from the capacity, not `valid`: no device-to-host sync
    # Split the queue so that small batches still fill the device (splits are merged in _finalize):
    # about two programs per SM, rounded down so the grid is one full wave, not a wave and a tail
    # (rounding up gave 320 programs for 264 slots at N=4096, so 56 ran alone in a second wave).
    splits = max(1, min(tiles, (2 * _num_sms(device)) // n_blocks))
    tiles_per_split = triton.cdiv(tiles, splits) if tiles else 0
    splits = triton.cdiv(tiles, tiles_per_split) if tiles else 1
    kp = triton.next_power_of_2(max(topk, 1))

    state = torch.empty(5, splits, N, **f32)  # m, l, t, m2, l2
    acc = torch.empty((splits, N, D) if with_grad else (1,), **f32)
    acc2 = torch.empty((splits, N, D) if with_grad and q2 is not None else (1,), **f32)
    topv = torch.empty((splits, N, kp) if topk else (1,), **f32)
    topi = torch.empty((splits, N, kp) if topk else (1,), device=device, dtype=torch.int64)
    flags = dict(HAS_Q2=q2 is not None, WITH_GRAD=with_grad, TOPK=topk, KP=kp)
    _stream[(n_blocks, splits)](
        q_in, q2_in, queue, valid, state[0], state[1], state[2], state[3], state[4], acc, acc2, topv, topi,
        N, Q, D, 1.0 / tau, tiles_per_split,
        LOWP_DOT=lowp, PRECISION="tf32x3", BLOCK_N=block_n, BLOCK_Q=block_q, BLOCK_D=block_d,
        num_warps=warps, num_stages=stages, **flags,
    )  # fmt: skip
    fin_block = FINALIZE_BLOCK_N
    _finalize[(triton.cdiv(N, fin_block),)](
        qf, q2f, kf, state[0], state[1], state[2], state[3], state[4], acc, acc2, topv, topi,
        losses, lse, idx, div, dq, dq2, N, D, P, 1.0 / tau, splits,
        BLOCK_N=fin_block, BLOCK_D=block_d, num_warps=1 if interp else FINALIZE_WARPS,
        **flags,
    )  # fmt: skip
    return losses, lse, idx, div, dq, dq2
