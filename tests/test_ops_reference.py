"""The reference ops against independent naive formulas: values, every gradient, opcheck, dtypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import enqueue_problem, graph_conv_problem, infonce_problem, need_backend, unit

from msclr.ops import enqueue, infonce_queue, masked_graph_conv
from msclr.ops import graph_conv as gc_mod
from msclr.ops import infonce as nce_mod
from msclr.ops.enqueue import _enqueue_ref  # the module: msclr.ops.enqueue is the function


# ---------------------------------------------------------------- masked_graph_conv
def st_gcn_naive(x, layout, A, W, b, imp):
    """ST-GCN's ConvTemporalGraphical, one sample at a time: 1x1 conv to K*C_out, then einsum."""
    K, O, C = W.shape
    n, _, t, v = x.shape
    z_all = F.conv2d(x, W.reshape(K * O, C, 1, 1), None if b is None else b.reshape(-1))
    out = []
    for i in range(n):
        a = A[layout[i]] if imp is None else A[layout[i]] * imp[layout[i]]
        out.append(torch.einsum("kctv,kvw->ctw", z_all[i].view(K, O, t, v), a))
    return torch.stack(out)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("with_importance", [True, False])
def test_graph_conv_matches_st_gcn(with_bias, with_importance):
    table, x, layout, W, b, imp = graph_conv_problem(5, 3, 17, 4)
    b = b if with_bias else None
    imp = imp if with_importance else None
    y = masked_graph_conv(x, layout, table.A, W, b, imp, backend="reference")
    torch.testing.assert_close(y, st_gcn_naive(x, layout, table.A, W, b, imp), rtol=1e-5, atol=1e-5)
    # padded joints are exactly zero, valid ones are not
    pad = ~table.joint_mask[layout]
    assert (y.permute(0, 3, 1, 2)[pad] == 0).all()
    assert (y.permute(0, 3, 1, 2)[~pad].abs().sum(-1).sum(-1) > 0).all()


def test_graph_conv_gradients_match_autograd_of_naive():
    table, x, layout, W, b, imp = graph_conv_problem(4, 3, 5, 3)
    leaves = [p.clone().requires_grad_() for p in (x, W, b, imp)]
    gy = torch.randn(4, 5, 3, table.v_max)
    y = masked_graph_conv(leaves[0], layout, table.A, leaves[1], leaves[2], leaves[3], backend="reference")
    got = torch.autograd.grad(y, leaves, gy)
    leaves2 = [p.clone().requires_grad_() for p in (x, W, b, imp)]
    want = torch.autograd.grad(st_gcn_naive(leaves2[0], layout, table.A, *leaves2[1:]), leaves2, gy)
    for name, g1, g2 in zip(("x", "weight", "bias", "importance"), got, want):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-4, msg=f"gradient of {name}")


@pytest.mark.slow
def test_graph_conv_gradcheck_float64():
    table, x, layout, W, b, imp = graph_conv_problem(3, 2, 3, 2, names=("coco17", "h36m17"))
    args = [p.double().requires_grad_() for p in (x, W, b, imp)]
    A = table.A.double()

    def f(x_, w_, b_, i_):
        return masked_graph_conv(x_, layout, A, w_, b_, i_, backend="reference")

    assert torch.autograd.gradcheck(f, args)


def test_graph_conv_odd_shapes():
    # N=1, T=1, C_in=3, C_out=17, V_max=43 with one layout
    table, x, layout, W, b, imp = graph_conv_problem(1, 3, 17, 1)
    y = masked_graph_conv(x, layout, table.A, W, b, imp)
    assert y.shape == (1, 17, 1, 43)
    torch.testing.assert_close(y, st_gcn_naive(x, layout, table.A, W, b, imp), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_graph_conv_low_precision(dtype):
    """Error of the op vs fp32 at most 2x the error of the same-dtype naive torch computation."""
    table, x, layout, W, b, imp = graph_conv_problem(4, 16, 16, 6)
    exact = st_gcn_naive(x.double(), layout, table.A.double(), W.double(), b.double(), imp.double())
    y = masked_graph_conv(x.to(dtype), layout, table.A, W.to(dtype), b.to(dtype), imp, backend="reference")
    assert y.dtype == dtype
    lowp = st_gcn_naive(x.to(dtype), layout, table.A.to(dtype), W.to(dtype), b.to(dtype), imp.to(dtype))
    # inputs rounded to dtype are common to both; compare with the exact result on the rounded inputs
    err_op = (y.double() - exact).abs().max()
    err_torch = (lowp.double() - exact).abs().max()
    assert err_op <= 2 * err_torch + 1e-6


def test_graph_conv_opcheck():
    table, x, layout, W, b, imp = graph_conv_problem(3, 3, 4, 2)
    args = (x.requires_grad_(), layout, table.A, W.requires_grad_(), b.requires_grad_(), imp.requires_grad_())
    torch.library.opcheck(gc_mod._ref_forward, args)
    torch.library.opcheck(gc_mod._ref_forward, (x, layout, table.A, W, None, None))


def test_graph_conv_bad_input_messages():
    table, x, layout, W, b, imp = graph_conv_problem(3, 3, 17, 4)
    with pytest.raises(ValueError, match="weight must be"):
        masked_graph_conv(x, layout, table.A, W[:, :, :2])
    with pytest.raises(ValueError, match="layout must be int64"):
        masked_graph_conv(x, layout.int(), table.A, W)
    with pytest.raises(ValueError, match="A must be"):
        masked_graph_conv(x, layout, table.A[:, :, :5, :5], W)
    with pytest.raises(ValueError, match="importance must be"):
        masked_graph_conv(x, layout, table.A, W, None, imp[:1])


# ---------------------------------------------------------------- infonce_queue
def moco_cross_entropy(q, k, queue, tau):
    """MoCo v2's loss: logits [l_pos, l_neg] / tau, cross-entropy with label 0."""
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / tau
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long), reduction="none")


def test_infonce_p1_is_moco():
    q, k, queue = unit(6, 16, seed=1), unit(6, 16, seed=2), unit(50, 16, seed=3)
    out = infonce_queue(q, k, queue, 0.07, backend="reference")
    torch.testing.assert_close(out.losses, moco_cross_entropy(q, k, queue, 0.07))
    torch.testing.assert_close(out.loss, out.losses.mean())
    torch.testing.assert_close(out.lse, torch.logsumexp(q @ queue.T / 0.07, 1))
    assert out.topk is None and out.divergence is None


def test_infonce_multi_positive_and_partial_queue():
    q, k, queue, _ = infonce_problem(5, 3, 17, 8)
    out = infonce_queue(q, k, queue, 0.2, valid=9, backend="reference")
    want = torch.stack([moco_cross_entropy(q, k[:, p], queue[:9], 0.2) for p in range(3)], 1).mean(1)
    torch.testing.assert_close(out.losses, want)
    # an empty queue: each term is log(exp(s)) - s = 0
    empty = infonce_queue(q, k, queue, 0.2, valid=0, backend="reference")
    assert torch.isneginf(empty.lse).all() and (empty.losses.abs() < 1e-6).all()


def test_infonce_topk_equals_torch_topk():
    q, k, queue = unit(7, 16, seed=4), unit(7, 16, seed=5), unit(40, 16, seed=6)
    out = infonce_queue(q, k, queue, 0.07, topk=5, backend="reference")
    assert torch.equal(out.topk, (q @ queue.T).topk(5, dim=1).indices)
    partial = infonce_queue(q, k, queue, 0.07, topk=5, valid=3, backend="reference")
    assert torch.equal(partial.topk[:, :3], (q @ queue[:3].T).topk(3, dim=1).indices)
    assert (partial.topk[:, 3:] == -1).all()


def test_infonce_divergence_is_aimclr():
    q, k, queue, q2 = unit(6, 8, seed=1), unit(6, 2, 8, seed=2), unit(30, 8, seed=3), unit(6, 8, seed=7)
    out = infonce_queue(q, k, queue, 0.1, q2=q2, backend="reference")
    cand = torch.cat([k, queue.expand(6, -1, -1)], 1)  # (N, P+Q, D)
    p = torch.softmax(torch.einsum("nd,njd->nj", q, cand) / 0.1, 1)
    logp2 = torch.log_softmax(torch.einsum("nd,njd->nj", q2, cand) / 0.1, 1)
    torch.testing.assert_close(out.divergence, -(p * logp2).sum(1).mean())


def test_infonce_gradients_match_autograd_of_naive():
    q, k, queue, q2 = infonce_problem(5, 3, 20, 8)
    qa, q2a = q.clone().requires_grad_(), q2.clone().requires_grad_()
    out = infonce_queue(qa, k, queue, 0.1, q2=q2a, valid=12, backend="reference")
    got = torch.autograd.grad(out.loss + 0.7 * out.divergence, (qa, q2a))

    qb, q2b = q.clone().requires_grad_(), q2.clone().requires_grad_()
    loss = torch.stack([moco_cross_entropy(qb, k[:, p], queue[:12], 0.1) for p in range(3)], 1).mean()
    cand = torch.cat([k, queue[:12].expand(5, -1, -1)], 1)
    p = torch.softmax(torch.einsum("nd,njd->nj", qb, cand) / 0.1, 1).detach()
    div = -(p * torch.log_softmax(torch.einsum("nd,njd->nj", q2b, cand) / 0.1, 1)).sum(1).mean()
    want = torch.autograd.grad(loss + 0.7 * div, (qb, q2b))
    for name, g1, g2 in zip(("q", "q2"), got, want):
        torch.testing.assert_close(g1, g2, msg=f"gradient of {name}")


def test_infonce_gradcheck_float64():
    q, k, queue, q2 = infonce_problem(4, 2, 9, 6, dtype=torch.float64)

    def losses(q_):
        return infonce_queue(q_, k, queue, 0.5, valid=7, backend="reference").losses

    def divergence(q2_):  # the target softmax of q is detached by contract, so q is held fixed
        return infonce_queue(q, k, queue, 0.5, q2=q2_, valid=7, backend="reference").divergence

    assert torch.autograd.gradcheck(losses, (q.clone().requires_grad_(),))
    assert torch.autograd.gradcheck(divergence, (q2.clone().requires_grad_(),))


def test_infonce_fp16_tau_007_no_overflow():
    q, k, queue = unit(8, 128, seed=1, dtype=torch.float16), unit(8, 128, seed=2, dtype=torch.float16), None
    queue = unit(4096, 128, seed=3, dtype=torch.float16)
    q = q.requires_grad_()
    out = infonce_queue(q, k, queue, 0.07, backend="reference")
    assert torch.isfinite(out.losses).all() and out.losses.dtype == torch.float32
    (g,) = torch.autograd.grad(out.loss, q)
    assert torch.isfinite(g).all() and g.dtype == torch.float16
    ref = moco_cross_entropy(q.detach().double(), k.double(), queue.double(), 0.07)
    torch.testing.assert_close(out.losses.double(), ref, rtol=1e-3, atol=1e-3)


def test_infonce_opcheck():
    q, k, queue, q2 = infonce_problem(4, 2, 10, 8)
    valid = torch.tensor(7)
    args = (q.requires_grad_(), k, queue, valid, 0.1, 3, q2.requires_grad_(), True)
    torch.library.opcheck(nce_mod._ref_forward, args)
    torch.library.opcheck(nce_mod._ref_forward, (q.detach(), k, queue, valid, 0.1, 0, None, False))


def test_infonce_bad_input_messages():
    q, k, queue = unit(4, 8), unit(4, 8), unit(10, 8)
    with pytest.raises(ValueError, match="queue must be"):
        infonce_queue(q, k, queue[:, :4], 0.1)
    with pytest.raises(ValueError, match="topk must be"):
        infonce_queue(q, k, queue, 0.1, topk=17)
    with pytest.raises(ValueError, match="tau must be"):
        infonce_queue(q, k, queue, 0.0)


# ---------------------------------------------------------------- enqueue
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_enqueue_wraps(backend, dtype):
    need_backend(backend, "cpu", "enqueue")
    queue = torch.zeros(5, 3, dtype=dtype)
    ptr = torch.tensor([3])
    keys = torch.arange(1, 5, dtype=torch.float32)[:, None].expand(4, 3)
    enqueue(queue, ptr, keys, backend=backend)
    assert torch.equal(queue[:, 0].float(), torch.tensor([3.0, 4.0, 0.0, 1.0, 2.0]))
    assert ptr.item() == 2
    enqueue(queue, ptr, torch.full((3, 3), 9.0), backend=backend)
    assert torch.equal(queue[:, 0].float(), torch.tensor([3.0, 4.0, 9.0, 9.0, 9.0])) and ptr.item() == 0


def test_enqueue_errors():
    queue, ptr = torch.zeros(4, 3), torch.tensor([0])
    with pytest.raises(ValueError, match="do not fit"):
        enqueue(queue, ptr, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="one-element int64"):
        enqueue(queue, torch.tensor([0.0]), torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="backend 'cuda' is not available"):
        enqueue(queue, ptr, torch.zeros(2, 3), backend="cuda")


def test_enqueue_opcheck():
    queue, ptr, keys = enqueue_problem(6, 4, 3, ptr=5)
    torch.library.opcheck(_enqueue_ref, (queue, ptr, keys))
    need_backend("cpu", "cpu", "enqueue")
    torch.library.opcheck(torch.ops.msclr.enqueue_.default, (queue, ptr, keys))


def test_infonce_gradient_unaffected_by_enqueue_before_backward():
    """MoCo enqueues the keys inside the step, before backward: the gradient must not see that."""
    q, k, queue = unit(6, 8, seed=1), unit(6, 8, seed=2), unit(12, 8, seed=3)
    qa = q.clone().requires_grad_()
    out = infonce_queue(qa, k, queue, 0.1, backend="reference")
    (want,) = torch.autograd.grad(out.loss, qa)
    qb, live = q.clone().requires_grad_(), queue.clone()
    out = infonce_queue(qb, k, live, 0.1, backend="reference")
    enqueue(live, torch.tensor([0]), unit(6, 8, seed=9))
    (got,) = torch.autograd.grad(out.loss, qb)
    torch.testing.assert_close(got, want)
