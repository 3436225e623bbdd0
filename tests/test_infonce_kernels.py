"""Fused infonce_queue backends (cpu, triton, cuda) against the reference: values, gradients, dtypes.

The Triton kernels run on CPU under TRITON_INTERPRET=1 on small shapes. The interpreter has to be
chosen before triton is imported, so those cases run in a child pytest process with the variable
set (test_triton_interpreter_in_subprocess, helpers.run_triton_interpreter_child) and the rest of
the suite is unaffected. CUDA and Triton-on-GPU tests skip without a GPU.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import (
    GPU,
    assert_compiled_matches_eager,
    compile_triton_for_sm90,
    cuda_kernel_facts,
    infonce_problem,
    need_backend,
    run_triton_interpreter_child,
    sm90_code_facts,
    unit,
)

from msclr.ops import enqueue, infonce_queue
from msclr.ops import infonce as nce_mod

OPS = ("infonce_queue",)  # what the fused_backend fixture requires of a backend


def run(name, q, k, queue, tau, valid=None, topk=0, q2=None, div_weight=0.7):
    """Outputs and the gradients of loss + div_weight * divergence w.r.t. q (and q2)."""
    qa = q.clone().requires_grad_()
    q2a = q2.clone().requires_grad_() if q2 is not None else None
    out = infonce_queue(qa, k, queue, tau, valid=valid, topk=topk, q2=q2a, backend=name)
    total = out.loss + (div_weight * out.divergence if q2 is not None else 0)
    grads = torch.autograd.grad(total, (qa,) if q2 is None else (qa, q2a))
    return out, grads


def assert_topk_matches(idx, q, queue, valid, topk, tol=1e-5):
    """The selected queue entries hold the top-k logits in descending order (ties aside), -1 padded."""
    n_valid = min(valid, queue.shape[0])
    want = min(topk, n_valid)
    assert idx.shape == (q.shape[0], topk) and idx.dtype == torch.int64
    assert (idx[:, want:] == -1).all()
    if want == 0:
        return
    sel = idx[:, :want].cpu()
    assert ((sel >= 0) & (sel < n_valid)).all()
    assert all(len(set(row.tolist())) == want for row in sel), "duplicate top-k indices"
    u = (q.double() @ queue[:n_valid].double().T).cpu()
    ref_vals, ref_idx = u.topk(want, dim=1)
    torch.testing.assert_close(u.gather(1, sel), ref_vals, rtol=0, atol=tol)
    # indices differ only where two logits are (numerically) tied
    differ = sel != ref_idx
    assert ((ref_vals - u.gather(1, sel)).abs()[differ] <= tol).all()


# ---------------------------------------------------------------- values and gradients


@pytest.mark.parametrize("P", [1, 3])
@pytest.mark.parametrize("Q", [1, 17, 4096])
@pytest.mark.parametrize("D", [64, 128])
def test_matches_reference(fused_backend, P, Q, D):
    name, device = fused_backend
    if name == "triton" and device == "cpu" and Q == 4096 and D == 128:
        pytest.skip("the Triton interpreter is slow: Q=4096 runs at D=64 only")
    n = 6
    q, k, queue, q2 = infonce_problem(n, P, Q, D, device=device, seed=P + Q + D)
    valid = max(1, (2 * Q) // 3)  # a partially filled queue (the whole of it when Q = 1)
    topk = 5
    got, g_got = run(name, q, k, queue, 0.07, valid=valid, topk=topk, q2=q2)
    want, g_want = run("reference", q, k, queue, 0.07, valid=valid, topk=topk, q2=q2)
    torch.testing.assert_close(got.losses, want.losses, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.lse, want.lse, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.divergence, want.divergence, rtol=1e-5, atol=1e-5)
    assert_topk_matches(got.topk, q, queue, valid, topk)
    for what, a, b in zip(("q", "q2"), g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"gradient of {what}")

    # the full queue, no optional outputs
    got, (gq,) = run(name, q, k, queue, 0.2)
    want, (gq_want,) = run("reference", q, k, queue, 0.2)
    torch.testing.assert_close(got.losses, want.losses, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gq, gq_want, rtol=1e-4, atol=1e-5)
    assert got.topk is None and got.divergence is None


def test_raw_op_outputs_and_conventions(fused_backend):
    """The op itself: six outputs with the reference's shapes/dtypes, empty where not asked for."""
    name, device = fused_backend
    q, k, queue, q2 = infonce_problem(5, 2, 40, 16, device=device)
    valid = torch.tensor(33, device=device)
    op = nce_mod._FORWARD[name]
    for args in [(3, q2, True), (0, None, False), (2, None, True), (0, q2, False), (1, q2, True)]:
        got = op(q, k, queue, valid, 0.1, *args)
        want = nce_mod._FORWARD["reference"](q, k, queue, valid, 0.1, *args)
        for i, (a, b) in enumerate(zip(got, want)):
            assert a.shape == b.shape and a.dtype == b.dtype and a.device == b.device, (i, args)
            if i == 2:
                assert_topk_matches(a, q, queue, 33, args[0])
            else:
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"output {i} with {args}")


def test_empty_queue_and_fewer_valid_than_topk(fused_backend):
    name, device = fused_backend
    q, k, queue, q2 = infonce_problem(4, 3, 17, 64, device=device)
    for valid in (0, 2):
        got, g_got = run(name, q, k, queue, 0.1, valid=valid, topk=5, q2=q2)
        want, g_want = run("reference", q, k, queue, 0.1, valid=valid, topk=5, q2=q2)
        if valid == 0:  # nothing to contrast with: loss 0, lse -inf, zero gradient for q
            assert torch.isneginf(got.lse).all() and (got.losses.abs() < 1e-6).all()
            assert (g_got[0] == 0).all()
        torch.testing.assert_close(got.losses, want.losses, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got.lse, want.lse)
        torch.testing.assert_close(got.divergence, want.divergence, rtol=1e-5, atol=1e-5)
        assert_topk_matches(got.topk, q, queue, valid, 5)
        for a, b in zip(g_got, g_want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_empty_queue_at_a_small_tau_stays_finite(fused_backend):
    """Empty queue, tau 0.005, positives opposite to the queries (logits -200): the queue's weight
    exp(0 - max) must not overflow to inf and turn 0 * inf into NaN in the divergence terms."""
    name, device = fused_backend
    q, k, queue, q2 = infonce_problem(4, 3, 17, 64, device=device)
    k = -q[:, None, :].expand(-1, 3, -1).contiguous()  # every positive logit is -1/tau
    got, g_got = run(name, q, k, queue, 0.005, valid=0, topk=5, q2=q2)
    want, g_want = run("reference", q, k, queue, 0.005, valid=0, topk=5, q2=q2)
    assert torch.isfinite(want.divergence).all() and all(torch.isfinite(g).all() for g in g_want)
    # logits of magnitude 1/tau = 200 carry fp32 rounding of ~2e-5 each: tolerances scaled to match
    torch.testing.assert_close(got.losses, want.losses, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.divergence, want.divergence, rtol=1e-4, atol=1e-4)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 3])
def test_cpu_thread_counts_agree(threads):
    """The cpu kernel splits the queue and the queries by thread count: every split merges to the same result."""
    need_backend("cpu", "cpu", OPS)
    before = torch.get_num_threads()
    q, k, queue, q2 = infonce_problem(300, 2, 3000, 32, seed=3)
    try:
        torch.set_num_threads(threads)
        got, g_got = run("cpu", q, k, queue, 0.1, valid=2900, topk=4, q2=q2)
    finally:
        torch.set_num_threads(before)
    want, g_want = run("reference", q, k, queue, 0.1, valid=2900, topk=4, q2=q2)
    torch.testing.assert_close(got.losses, want.losses, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.divergence, want.divergence, rtol=1e-5, atol=1e-5)
    assert_topk_matches(got.topk, q, queue, 2900, 4)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_topk_16_on_a_larger_queue(fused_backend):
    name, device = fused_backend
    if name == "triton" and device == "cpu":
        q, k, queue, _ = infonce_problem(3, 1, 300, 32, device=device, seed=5)
    else:
        q, k, queue, _ = infonce_problem(33, 1, 5000, 64, device=device, seed=5)
    out = infonce_queue(q, k, queue, 0.07, topk=16, valid=queue.shape[0] - 7, backend=name)
    assert_topk_matches(out.topk, q, queue, queue.shape[0] - 7, 16)


def test_gradient_unaffected_by_enqueue_before_backward(fused_backend):
    """MoCo enqueues the keys inside the step, before backward: the gradient must not see that."""
    name, device = fused_backend
    q, k, queue, q2 = infonce_problem(6, 1, 24, 64, device=device)
    _, want = run(name, q, k, queue, 0.1, q2=q2)
    qa, q2a, live = q.clone().requires_grad_(), q2.clone().requires_grad_(), queue.clone()
    out = infonce_queue(qa, k, live, 0.1, q2=q2a, backend=name)
    enqueue(live, torch.zeros(1, dtype=torch.int64, device=device), unit(12, 64, seed=9, device=device))
    got = torch.autograd.grad(out.loss + 0.7 * out.divergence, (qa, q2a))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- low precision


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_error_at_most_twice_torch(fused_backend, dtype):
    """Error vs float64 on the rounded inputs at most ~2x that of the same-dtype torch computation."""
    name, device = fused_backend
    n, p, qn, d = 8, 2, 64 if name == "triton" and device == "cpu" else 1024, 64
    q, k, queue, q2 = infonce_problem(n, p, qn, d, device=device, dtype=dtype, seed=11)
    tau = 0.07
    got, (gq, gq2) = run(name, q, k, queue, tau, q2=q2)
    assert got.losses.dtype == torch.float32 and gq.dtype == dtype and gq2.dtype == dtype
    exact, (gq_exact, gq2_exact) = run("reference", q.double(), k.double(), queue.double(), tau, q2=q2.double())

    def lowp_torch(q_, q2_):  # the whole computation in `dtype`
        s = torch.einsum("nd,npd->np", q_, k) / tau
        u = q_ @ queue.T / tau
        loss = (torch.logaddexp(s, torch.logsumexp(u, 1, keepdim=True)) - s).mean(1).mean()
        cand = torch.cat([s, u], 1)
        p_ = torch.softmax(cand, 1).detach()
        c2 = torch.cat([torch.einsum("nd,npd->np", q2_, k) / tau, q2_ @ queue.T / tau], 1)
        div = -(p_ * torch.log_softmax(c2, 1)).sum(1).mean()
        return loss, div

    ql, q2l = q.clone().requires_grad_(), q2.clone().requires_grad_()
    loss_l, div_l = lowp_torch(ql, q2l)
    gl, g2l = torch.autograd.grad(loss_l + 0.7 * div_l, (ql, q2l))

    def err(a, b):
        return (a.double() - b.double()).abs().max().item()

    for what, mine, lowp, ref in [
        ("loss", got.loss, loss_l, exact.loss),
        ("divergence", got.divergence, div_l, exact.divergence),
        ("grad q", gq, gl, gq_exact),
        ("grad q2", gq2, g2l, gq2_exact),
    ]:
        assert torch.isfinite(mine).all(), what
        assert err(mine, ref) <= 2 * err(lowp, ref) + 1e-6, f"{what}: {err(mine, ref)} vs torch {err(lowp, ref)}"


def test_fp16_tau_007_does_not_overflow(fused_backend):
    """Queries equal to queue rows give logits 1/0.07 ~ 14.3 (exp ~ 1.6e6, beyond fp16's 65504)."""
    name, device = fused_backend
    queue = unit(256, 64, seed=3, dtype=torch.float16, device=device)
    q = queue[:8].clone()
    k = unit(8, 64, seed=4, dtype=torch.float16, device=device)
    got, (gq,) = run(name, q, k, queue, 0.07)
    assert torch.isfinite(got.losses).all() and torch.isfinite(gq).all()
    want, (gq_want,) = run("reference", q.double(), k.double(), queue.double(), 0.07)
    torch.testing.assert_close(got.losses.double(), want.losses, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gq.double(), gq_want, rtol=2e-2, atol=2e-3)


def test_mixed_dtypes(fused_backend):
    """An fp16 query against an fp32 queue (autocast-style) matches the reference."""
    name, device = fused_backend
    q, k, queue, _ = infonce_problem(5, 2, 50, 64, device=device)
    got, (g,) = run(name, q.half(), k, queue, 0.1, topk=2)
    want, (g_want,) = run("reference", q.half(), k, queue, 0.1, topk=2)
    torch.testing.assert_close(got.losses, want.losses, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g, g_want, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- float64 gradcheck, opcheck, compile


def test_cpu_gradcheck_float64():
    need_backend("cpu", "cpu", OPS)
    q, k, queue, q2 = infonce_problem(4, 2, 300, 6, dtype=torch.float64)

    def losses(q_):
        return infonce_queue(q_, k, queue, 0.5, valid=290, topk=3, backend="cpu").losses

    def divergence(q2_):  # the target softmax of q is detached by contract, so q is held fixed
        return infonce_queue(q, k, queue, 0.5, q2=q2_, valid=290, backend="cpu").divergence

    out = infonce_queue(q, k, queue, 0.5, q2=q2, backend="cpu")
    assert out.losses.dtype == torch.float64 and out.divergence.dtype == torch.float64
    assert torch.autograd.gradcheck(losses, (q.clone().requires_grad_(),))
    assert torch.autograd.gradcheck(divergence, (q2.clone().requires_grad_(),))


def test_opcheck(fused_backend):
    name, device = fused_backend
    op = nce_mod._FORWARD[name]
    q, k, queue, q2 = infonce_problem(4, 2, 20, 16, device=device)
    valid = torch.tensor(13, device=device)
    torch.library.opcheck(op, (q.requires_grad_(), k, queue, valid, 0.1, 3, q2.requires_grad_(), True))
    torch.library.opcheck(op, (q.detach(), k, queue, valid, 0.1, 0, None, False))


class TinyMoCoStep(torch.nn.Module):
    """Encoder (one linear map), InfoNCE with a queue and divergence, then enqueue: one MoCo step."""

    def __init__(self, backend_name, d_in=12, d=16, queue_size=40):
        super().__init__()
        self.backend_name = backend_name
        self.proj = torch.nn.Linear(d_in, d)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, d), dim=1))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.int64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, x1, x2):
        q = F.normalize(self.proj(x1), dim=1)
        k = F.normalize(self.proj(x2), dim=1).detach()
        q2 = F.normalize(self.proj(x2 + 0.05 * x1), dim=1)
        out = infonce_queue(q, k, self.queue, 0.07, valid=self.count, topk=2, q2=q2, backend=self.backend_name)
        enqueue(self.queue, self.ptr, k, backend="cpu")
        self.count.add_(k.shape[0]).clamp_(max=self.queue.shape[0])
        return out.loss + 0.5 * out.divergence, out.topk


def test_compile_fullgraph_step_with_enqueue_cpu():
    need_backend("cpu", "cpu", OPS)

    def check_step(step, eager, compiled_mod, *_):
        assert compiled_mod.ptr.item() == eager.ptr.item() == (8 * (step + 1)) % 40

    # the queue fills up over the steps (valid = 0, 8, 16, ...); the top-k indices must be equal
    g = torch.Generator().manual_seed(1)
    steps = [(torch.randn(8, 12, generator=g), torch.randn(8, 12, generator=g)) for _ in range(4)]
    assert_compiled_matches_eager(
        lambda: TinyMoCoStep("cpu"), steps, rtol=1e-5, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-5, check_step=check_step
    )


# ---------------------------------------------------------------- memory and errors


def test_cpu_never_allocates_n_by_q():
    """The largest allocation inside the cpu op is far below one N x Q float32 logits matrix."""
    need_backend("cpu", "cpu", OPS)
    n, qn = 128, 32768
    q, k, queue, q2 = infonce_problem(n, 3, qn, 64)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run("cpu", q, k, queue, 0.07, topk=4, q2=q2)
    largest = max(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)
    assert largest < n * qn * 4 / 20, f"largest allocation {largest} bytes"
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run("reference", q, k, queue, 0.07, topk=4, q2=q2)
    assert max(e.cpu_memory_usage for e in prof.events()) >= n * qn * 4  # the probe sees N x Q


def test_bad_input_messages(fused_backend):
    name, device = fused_backend
    q, k, queue, _ = infonce_problem(4, 1, 10, 8, device=device)
    op = nce_mod._FORWARD[name]
    with pytest.raises((RuntimeError, ValueError), match="valid must be one int64"):
        op(q, k, queue, torch.tensor(3.0, device=device), 0.1, 0, None, False)
    with pytest.raises((RuntimeError, ValueError), match="queue must be contiguous"):
        op(q, k, queue.t().contiguous().t(), torch.tensor(3, device=device), 0.1, 0, None, False)
    if name != "cpu":
        with pytest.raises((RuntimeError, TypeError), match="float64"):
            op(q.double(), k.double(), queue.double(), torch.tensor(3, device=device), 0.1, 0, None, False)
    if name == "cuda":
        big = infonce_problem(4, 1, 10, 256, device=device)
        with pytest.raises(RuntimeError, match="exceeds the CUDA kernels' maximum"):
            op(big[0], big[1], big[2], torch.tensor(3, device=device), 0.1, 0, None, False)


@pytest.mark.slow
def test_triton_interpreter_in_subprocess():
    """The triton-interpreter cases of this module, in a child pytest with TRITON_INTERPRET=1."""
    if "triton" not in nce_mod._FORWARD:
        pytest.skip("triton is not installed")
    run_triton_interpreter_child(__file__, min_passed=20)


def test_triton_kernels_compile_for_sm90_without_a_gpu():
    """The GPU lowering of the Triton kernels (not run here): compile for sm_90 with triton's own ptxas,
    every option on (divergence, top-k mining), at the launch configurations; within an H100's shared memory."""
    if "triton" not in nce_mod._FORWARD:
        pytest.skip("triton is not installed")
    from msclr.kernels import infonce as tk

    for dtype, block_d in (("fp32", 128), ("bf16", 128), ("fp32", 512), ("bf16", 512)):
        compiled = _compile_stream(dtype, q2=True, topk=5, block_d=block_d)
        assert compiled.metadata.shared <= 227 * 1024, f"{dtype}: {compiled.metadata.shared} bytes of shared memory"
    consts = dict(HAS_Q2=True, WITH_GRAD=True, TOPK=5, KP=8, BLOCK_N=tk.FINALIZE_BLOCK_N, BLOCK_D=128)
    pointers = {name: "*fp32" for name in tk._finalize.arg_names if name.endswith("_ptr")}
    pointers.update(topi_ptr="*i64", idx_ptr="*i64")
    compile_triton_for_sm90(tk._finalize, "fp32", pointers, consts, _SCALARS, dict(num_warps=tk.FINALIZE_WARPS))


_SCALARS = {"inv_tau": "fp32"}  # every other non-pointer argument of the kernels is i32


def _stream_pointers() -> dict:
    """_stream's pointer types: fp32 outputs and state, int64 indices, q / q2 / queue in the input dtype ("x")."""
    from msclr.kernels import infonce as tk

    pointers = {name: "*fp32" for name in tk._stream.arg_names if name.endswith("_ptr")}
    pointers.update(valid_ptr="*i64", topi_ptr="*i64", q_ptr="x", q2_ptr="x", queue_ptr="x")
    return pointers


def _compile_stream(dtype: str, q2: bool, topk: int, block_d: int = 128):
    """_stream at its launch configuration, specialised as a real launch (D a multiple of 16)."""
    from msclr.kernels import infonce as tk

    lowp = dtype != "fp32"
    block_n, block_q, warps, stages = tk.launch_config(lowp, q2, block_d, False)
    kp = 1 << max(0, topk - 1).bit_length()
    consts = dict(HAS_Q2=q2, WITH_GRAD=True, TOPK=topk, KP=kp, LOWP_DOT=lowp, PRECISION="tf32x3")
    consts.update(BLOCK_N=block_n, BLOCK_Q=block_q, BLOCK_D=block_d)
    options = dict(num_warps=warps, num_stages=stages)
    return compile_triton_for_sm90(tk._stream, dtype, _stream_pointers(), consts, _SCALARS, options, divisible=("D",))


# The stream kernel's configurations as InfoNCE launches them: (dtype, divergence q2, top-k mining, D).
SM90_CASES = [
    pytest.param("bf16", False, 0, 128, id="bf16-training"),  # SkeletonCLR / MS-CLR with a bf16 queue
    pytest.param("bf16", True, 1, 128, id="bf16-aimclr"),  # AimCLR: divergence and nearest-neighbour mining
    pytest.param("bf16", False, 16, 128, id="bf16-top16"),
    pytest.param("bf16", False, 0, 256, id="bf16-training-d256"),
    pytest.param("bf16", True, 1, 256, id="bf16-aimclr-d256"),
    pytest.param("fp32", False, 0, 128, id="fp32-training"),
    pytest.param("fp32", True, 1, 128, id="fp32-aimclr"),
    pytest.param(
        "fp32",
        False,
        0,
        256,
        id="fp32-training-d256",
        marks=pytest.mark.xfail(strict=True, reason="tf32x3 at D=256 spills 64 B of stack on sm_90 (issue 16)"),
    ),
]


@pytest.mark.parametrize("dtype,q2,topk,block_d", SM90_CASES)
def test_triton_stream_on_sm90_uses_tensor_cores_and_does_not_spill(dtype, q2, topk, block_d):
    """Proof without a GPU: the SASS that ptxas makes for sm_90 at the launch configuration has
    tensor-core instructions (wgmma where the tile has 64 rows), the 16-bit paths load the queue
    with asynchronous copies (the loop is software-pipelined, top-k mining included), and no
    register spills."""
    if "triton" not in nce_mod._FORWARD:
        pytest.skip("triton is not installed")
    from msclr.kernels import infonce as tk

    facts = sm90_code_facts(_compile_stream(dtype, q2, topk, block_d))
    assert facts["hgmma"] + facts["hmma"] > 0, facts
    block_n = tk.launch_config(dtype != "fp32", q2, block_d, False)[0]
    if block_n >= 64:  # wgmma needs 64-row tiles
        assert facts["hgmma"] > 0, facts
    if dtype != "fp32":  # fp32's tf32x3 operands go through registers (split in three), not cp.async
        assert facts["ldgsts"] > 0, facts
    assert facts["stack"] == 0, facts


# ---------------------------------------------------------------- the CUDA tensor-core kernel

# The template arguments of infonce_tensor_core_kernel: (queue dtype, divergence q2, top-k capacity),
# and the stack bytes each may use. Top-16 mining with the divergence keeps 32 more values in
# registers beside the two accumulators (a, a2) and spills a few bytes; AimCLR mines top-1.
TENSOR_CORE_VARIANTS = [
    (dtype, q2, kmax, (24 if dtype == "float" else 16) if (q2 and kmax == 16) else 0)
    for dtype in ("__nv_bfloat16", "__half", "float")  # float: TF32
    for q2 in (False, True)
    for kmax in (0, 1, 16)
]


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_tensor_core_kernel_uses_hmma_and_does_not_spill(arch):
    """Proof without a GPU: every variant of the CUDA tensor-core InfoNCE kernel (16-bit queues, and
    fp32 ones as TF32) that nvcc built into msclr._C runs its two products on tensor cores (HMMA in
    the SASS) and keeps its state in registers (no stack, but top-16 mining with the divergence)."""
    facts = cuda_kernel_facts(arch)
    kernels = {name: f for name, f in facts.items() if "infonce_tensor_core_kernel<" in name}
    assert len(kernels) == len(TENSOR_CORE_VARIANTS), sorted(kernels)
    for dtype, q2, kmax, stack_ceiling in TENSOR_CORE_VARIANTS:
        name = f"infonce_tensor_core_kernel<{dtype}, {str(q2).lower()}, {kmax}>"
        (f,) = [f for n, f in kernels.items() if name in n]
        # 2 HMMA per WMMA product; logits: 4 column blocks x 8 (TF32: 16) k-steps, accumulator: 4 k-steps
        # (TF32: a loop of 8, not unrolled) x 8 column blocks; twice with q2
        assert f["hmma"] >= (256 if q2 else 128), (name, f)
        assert f["stack"] <= stack_ceiling, (name, f)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_cuda_simt_kernels_keep_top_k_in_registers(arch):
    """The fp32 (SIMT) streaming and finalize kernels, one variant per top-k capacity (0, 1, 16):
    no stack. Their top-k lists used to be indexed at run time, which put them in local memory
    (192-224 B of stack in every variant, mining or not)."""
    facts = cuda_kernel_facts(arch)
    kernels = {n: f for n, f in facts.items() if "infonce_stream_kernel<" in n or "infonce_finalize_kernel<" in n}
    assert len(kernels) == 3 * 2 * 2 * 3 + 2 * 3, sorted(kernels)  # dtype x D x q2 x top-k; finalize D x top-k
    for name, f in kernels.items():
        assert f["stack"] == 0, (name, f)


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])  # float32: TF32 allowed
@pytest.mark.parametrize("D", [20, 70, 72, 128])  # plain loads (D % 8 != 0 or % 4), cp.async with zero columns, full
@pytest.mark.parametrize("q2_on,topk", [(False, 0), (True, 1), (False, 5), (True, 16)])
def test_cuda_tensor_core_path_matches_reference(dtype, D, q2_on, topk, monkeypatch):
    """The tensor-core kernel (16-bit queue with queries of its dtype; fp32 with TF32 allowed) against
    the float64 reference on the same inputs: two query blocks (the second partial), a partly filled
    queue whose end falls inside a tile, every option. The exp-weights of the second product are
    rounded to the storage type (to TF32 in fp32, as are the inputs), hence the tolerances."""
    need_backend("cuda", "cuda", OPS)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    q, k, queue, q2 = infonce_problem(70, 2, 1000, D, device="cuda", dtype=dtype, seed=D + topk)
    q2 = q2 if q2_on else None
    valid = 937
    got, g_got = run("cuda", q, k, queue, 0.07, valid=valid, topk=topk, q2=q2)
    want, g_want = run(
        "reference", q.double(), k.double(), queue.double(), 0.07, valid=valid, topk=topk,
        q2=q2.double() if q2 is not None else None,
    )  # fmt: skip
    weight_rel = 2.0**-8 if dtype == torch.bfloat16 else 2.0**-11  # one rounding of a weight in (0, 1]
    # logits: exact products of 16-bit inputs; TF32 rounds q and the queue (2^-11 each) times 1/tau
    logit_tol = 4 * 2.0**-11 / 0.07 if dtype == torch.float32 else 1e-4
    torch.testing.assert_close(got.losses.double(), want.losses, rtol=1e-4, atol=logit_tol)
    torch.testing.assert_close(got.lse.double(), want.lse, rtol=1e-4, atol=logit_tol)
    if q2 is not None:  # t / L1 is a weighted mean of logits up to 1/tau
        torch.testing.assert_close(got.divergence.double(), want.divergence, rtol=0, atol=weight_rel / 0.07 + logit_tol)
    if topk:
        assert_topk_matches(got.topk, q.double(), queue.double(), valid, topk, tol=1e-3 + 0.07 * logit_tol)
    for what, a, b in zip(("q", "q2"), g_got, g_want):
        tol = 4 * weight_rel + (0.07 * logit_tol if dtype == torch.float32 else 0)
        torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol, msg=f"gradient of {what}")


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason="no CUDA GPU on this machine")
def test_cuda_takes_the_tensor_core_kernel_for_16_bit_queues(monkeypatch):
    """Which streaming kernel runs, read from the profiler: tensor cores for a bf16 queue with bf16
    queries and for fp32 with TF32 allowed; the fp32 SIMT kernel for fp32 (torch's default: no TF32)
    and for fp32 queries against a bf16 queue."""
    from torch.profiler import ProfilerActivity, profile

    need_backend("cuda", "cuda", OPS)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)

    def kernels(q_dtype, queue_dtype):
        q, k, queue, _ = infonce_problem(64, 1, 512, 128, device="cuda")
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            run("cuda", q.to(q_dtype), k.to(q_dtype), queue.to(queue_dtype), 0.1)
            torch.cuda.synchronize()
        return " ".join(e.name for e in prof.events())

    assert "infonce_tensor_core_kernel" in kernels(torch.bfloat16, torch.bfloat16)
    for q_dtype, queue_dtype in ((torch.float32, torch.float32), (torch.float32, torch.bfloat16)):
        names = kernels(q_dtype, queue_dtype)
        assert "infonce_stream_kernel" in names and "infonce_tensor_core_kernel" not in names, (q_dtype, queue_dtype)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    assert "infonce_tensor_core_kernel" in kernels(torch.float32, torch.float32)
