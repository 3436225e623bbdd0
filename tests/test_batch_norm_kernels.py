"""The fused masked BatchNorm ops (masked_bn_stats, masked_bn_apply) and MaskedBatchNorm on them.

cpu kernels against the reference: values and every gradient, odd shapes (N=1, T=1, C=3/17,
layouts of 20/25/43 joints mixed), residual / ReLU / dropout combinations, fp16/bf16 by the
tolerance rule of docs/architecture.md section 8, float64 gradcheck, opcheck, torch.compile(fullgraph=True),
exact zeros on padded joints, running statistics and eval mode of the module.
"""

from __future__ import annotations

import pytest
import torch
from helpers import (
    GPU,
    assert_compiled_matches_eager,
    bn_problem,
    compile_triton_for_sm90,
    need_backend,
    run_triton_interpreter_child,
    sm90_code_facts,
    to,
)

from msclr.models import MaskedBatchNorm
from msclr.ops import batch_norm as bn_mod
from msclr.ops import masked_bn_apply, masked_bn_stats, reference

OPS = ("masked_bn_stats", "masked_bn_apply")


SHAPES = {
    "mixed_c17": (5, 17, 3),
    "c3": (4, 3, 7),
    "n1_t1": (1, 17, 1),
    "n1_t1_v43": (1, 3, 1),
    "wide": (6, 64, 13),
}


# --------------------------------------------------------------------------------------- stats
@pytest.mark.parametrize("shape", list(SHAPES))
def test_stats_matches_reference(fused_backend, shape):
    backend, device = fused_backend
    x, mask, *_ = bn_problem(*SHAPES[shape])
    x, mask = to(device, x, mask)
    x.requires_grad_()
    got = masked_bn_stats(x, mask, backend=backend)
    want = masked_bn_stats(x, mask, backend="reference")
    assert got.dtype == torch.float64 and got.shape == (2, x.shape[1])
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    gs = torch.randn(2, x.shape[1], dtype=torch.float64, device=device)
    (gx,) = torch.autograd.grad(got, x, gs)
    (gx_ref,) = torch.autograd.grad(want, x, gs)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-5)


def test_stats_ignore_padded_joints(fused_backend):
    backend, device = fused_backend
    x, mask, *_ = bn_problem(4, 5, 3)
    garbage = (x + 7.0 * (~mask)[:, None, None, :]).to(device)
    torch.testing.assert_close(
        masked_bn_stats(garbage, mask.to(device), backend=backend).cpu(),
        reference.masked_bn_stats(x, mask),
        rtol=1e-6,
        atol=1e-6,
    )


# --------------------------------------------------------------------------------------- apply
FLAGS = [
    # (residual, relu, dropout)
    (False, False, 0.0),
    (False, True, 0.0),
    (True, True, 0.0),
    (True, False, 0.0),
    (True, True, 0.5),
    (False, False, 0.3),
]


def apply_with_grads(backend, x, mask, scale, shift, res, relu, p, seed, gy):
    leaves = [v.detach().clone().requires_grad_() for v in (x, scale, shift)]
    r = None if res is None else res.detach().clone().requires_grad_()
    out = masked_bn_apply(*leaves[:1], mask, *leaves[1:], residual=r, relu=relu, dropout=p, seed=seed, backend=backend)
    used = leaves + ([r] if r is not None else [])
    grads = torch.autograd.grad(out, used, gy)
    return out.detach(), grads


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: f"res{int(f[0])}_relu{int(f[1])}_p{f[2]}")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_apply_matches_reference(fused_backend, shape, flags):
    backend, device = fused_backend
    has_res, relu, p = flags
    x, mask, scale, shift, res = to(device, *bn_problem(*SHAPES[shape]))
    res = res if has_res else None
    seed = torch.tensor(1234567890123, dtype=torch.int64)
    gy = torch.randn(x.shape).to(device)
    out, grads = apply_with_grads(backend, x, mask, scale, shift, res, relu, p, seed, gy)
    out_ref, grads_ref = apply_with_grads("reference", x, mask, scale, shift, res, relu, p, seed, gy)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    for name, got, want in zip(("x", "scale", "shift", "residual"), grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4, msg=f"gradient of {name}")
    if p > 0:  # the same elements dropped
        torch.testing.assert_close(out == 0, out_ref == 0, rtol=0, atol=0)


def test_cpu_result_does_not_depend_on_threads():
    """Planes are split over threads (at::parallel_for, real threads since -fopenmp): statistics,
    output and every gradient are bit for bit those of one thread."""
    need_backend("cpu", "cpu", OPS)
    x, mask, scale, shift, res = bn_problem(16, 64, 50)
    seed = torch.tensor(987654321, dtype=torch.int64)
    gy = torch.randn(x.shape)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            stats = masked_bn_stats(x, mask, backend="cpu")
            results.append((stats, *apply_with_grads("cpu", x, mask, scale, shift, res, True, 0.3, seed, gy)))
    finally:
        torch.set_num_threads(before)
    (s1, y1, g1), (s2, y2, g2) = results
    assert torch.equal(s1, s2) and torch.equal(y1, y2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))


def test_dropout_keep_rate_and_seed(fused_backend):
    backend, device = fused_backend
    x = torch.ones(8, 16, 50, 43, device=device)
    mask = torch.ones(8, 43, dtype=torch.bool, device=device)
    one, zero = torch.ones(16, device=device), torch.zeros(16, device=device)
    a = masked_bn_apply(x, mask, one, zero, dropout=0.5, seed=torch.tensor(1), backend=backend)
    b = masked_bn_apply(x, mask, one, zero, dropout=0.5, seed=torch.tensor(1), backend=backend)
    c = masked_bn_apply(x, mask, one, zero, dropout=0.5, seed=torch.tensor(2), backend=backend)
    assert torch.equal(a, b) and not torch.equal(a, c)
    kept = (a != 0).double().mean().item()
    assert abs(kept - 0.5) < 0.01
    assert torch.allclose(a[a != 0], torch.tensor(2.0, device=device))  # kept elements scaled by 1 / (1 - p)
    # neighbouring elements independent: the keep bits of i and i+1 agree about half the time
    flat = (a != 0).flatten()
    assert abs((flat[1:] == flat[:-1]).double().mean().item() - 0.5) < 0.01


def test_padded_joints_are_exactly_zero(fused_backend):
    backend, device = fused_backend
    x, mask, scale, shift, res = bn_problem(5, 17, 3)
    x = x + 5.0 * (~mask)[:, None, None, :]  # garbage on padded joints must not leak
    x, mask, scale, shift, res = to(device, x, mask, scale, shift, res)
    for relu, r, p in ((False, None, 0.0), (True, res, 0.5)):
        out = masked_bn_apply(x, mask, scale, shift, residual=r, relu=relu, dropout=p, backend=backend)
        pad = ~mask
        assert (out.permute(0, 3, 1, 2)[pad] == 0).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision(fused_backend, dtype):
    """Kernel error vs an fp32 reference at most ~2x that of the same computation in torch at dtype."""
    backend, device = fused_backend
    x32, mask, scale, shift, res32 = to(device, *bn_problem(6, 17, 5))
    x, res = x32.to(dtype), res32.to(dtype)
    seed = torch.tensor(99)
    gy = torch.randn(x.shape).to(device, dtype)
    gy32 = gy.float()  # the fp32 reference sees the same (rounded) inputs
    out, grads = apply_with_grads(backend, x, mask, scale, shift, res, True, 0.5, seed, gy)
    out32, grads32 = apply_with_grads("reference", x.float(), mask, scale, shift, res.float(), True, 0.5, seed, gy32)
    # the same formula evaluated by plain torch in dtype
    m = mask[:, None, None, :].to(dtype)
    keep = reference.dropout_keep(seed, tuple(x.shape), 0.5, device).to(dtype)
    z = (x * scale.to(dtype)[:, None, None] + shift.to(dtype)[:, None, None]) * keep * 2 * m + res
    out_td = torch.relu(z)
    err = (out.float() - out32).abs().max()
    err_td = (out_td.float() - out32).abs().max()
    assert err <= 2 * err_td + 1e-6
    g_td = torch.where(out_td > 0, gy, 0) * keep * 2 * m * scale.to(dtype)[:, None, None]
    assert (grads[0].float() - grads32[0]).abs().max() <= 2 * (g_td.float() - grads32[0]).abs().max() + 1e-6
    for got, want in zip(grads[1:3], grads32[1:3]):  # scale, shift: float32 sums of the same terms
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert out.dtype == dtype and grads[0].dtype == dtype and grads[1].dtype == torch.float32

    got = masked_bn_stats(x, mask, backend=backend)
    torch.testing.assert_close(got, reference.masked_bn_stats(x, mask), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_gradcheck_float64(backend):
    need_backend(backend, "cpu", OPS)
    x, mask, scale, shift, res = bn_problem(3, 3, 2, dtype=torch.float64)
    seed = torch.tensor(7)
    res = res + 3.0  # keeps the ReLU input off its kink at padded joints (where it would be exactly 0)
    x, scale, shift, res = (v.requires_grad_() for v in (x, scale, shift, res))
    assert torch.autograd.gradcheck(lambda x: masked_bn_stats(x, mask, backend=backend), (x,))
    for relu, p in ((False, 0.0), (True, 0.5)):
        # x away from the ReLU kink: shift pushes most pre-activations far from 0
        assert torch.autograd.gradcheck(
            lambda x, s, b, r, relu=relu, p=p: masked_bn_apply(
                x, mask, s, b, residual=r, relu=relu, dropout=p, seed=seed, backend=backend
            ),
            (x, scale, shift, res),
        )


def _opcheck_args():
    x, mask, scale, shift, res = bn_problem(3, 5, 2)
    x.requires_grad_()
    scale.requires_grad_()
    shift.requires_grad_()
    res.requires_grad_()
    seed = torch.tensor(5)
    return x, mask, scale, shift, res, seed


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_opcheck(backend):
    need_backend(backend, "cpu", OPS)
    x, mask, scale, shift, res, seed = _opcheck_args()
    if backend == "cpu":
        stats, apply = torch.ops.msclr.masked_bn_stats, torch.ops.msclr.masked_bn_apply
        stats_b, apply_b = torch.ops.msclr.masked_bn_stats_backward, torch.ops.msclr.masked_bn_apply_backward
    else:
        stats, apply = bn_mod._ref_stats, bn_mod._ref_apply
        stats_b, apply_b = bn_mod._ref_stats_backward, bn_mod._ref_apply_backward
    torch.library.opcheck(stats, (x, mask))
    torch.library.opcheck(apply, (x, mask, scale, shift, res, seed, 0.5, True))
    torch.library.opcheck(apply, (x, mask, scale, shift, None, None, 0.0, False))
    g = torch.randn(2, 5, dtype=torch.float64)
    torch.library.opcheck(stats_b, (g, x.detach(), mask))
    out = apply(x, mask, scale, shift, res, seed, 0.5, True).detach()
    gy = torch.randn(x.shape)
    torch.library.opcheck(apply_b, (gy, out, x.detach(), mask, scale.detach(), seed, 0.5, True, True))
    torch.library.opcheck(apply_b, (gy, out, x.detach(), mask, scale.detach(), None, 0.0, False, False))


# --------------------------------------------------------------------------------------- module
def module_run(backend, x, mask, res, train, seed=0, relu=True):
    torch.manual_seed(seed)
    bn = MaskedBatchNorm(x.shape[1], backend=backend).to(x.device)
    with torch.no_grad():
        bn.weight.copy_(1 + 0.3 * torch.randn(x.shape[1]))
        bn.bias.copy_(0.3 * torch.randn(x.shape[1]))
        bn.running_mean.copy_(torch.randn(x.shape[1]))
        bn.running_var.copy_(1 + torch.rand(x.shape[1]))
    bn.train(train)
    xl = x.detach().clone().requires_grad_()
    rl = res.detach().clone().requires_grad_()
    out = bn(xl, mask, residual=rl, relu=relu)
    gy = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.device)
    grads = torch.autograd.grad(out, [xl, rl, bn.weight, bn.bias], gy)
    return out.detach(), grads, bn


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", ["mixed_c17", "n1_t1", "wide"])
def test_module_fused_matches_reference(fused_backend, shape, train):
    """MaskedBatchNorm on the fused ops = the plain-torch version: output, every gradient, running stats."""
    backend, device = fused_backend
    x, mask, _, _, res = to(device, *bn_problem(*SHAPES[shape]))
    out, grads, bn = module_run(backend, x, mask, res, train)
    out_ref, grads_ref, bn_ref = module_run("reference", x, mask, res, train)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    for name, got, want in zip(("x", "residual", "weight", "bias"), grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4, msg=f"gradient of {name}")
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var, rtol=1e-6, atol=1e-6)


def test_module_gradcheck_float64():
    """Through the statistics too (mean and variance depend on x) in float64."""
    need_backend("cpu", "cpu", OPS)
    x, mask, _, _, res = bn_problem(3, 3, 2, dtype=torch.float64)
    bn = MaskedBatchNorm(3, backend="cpu").double()
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: bn(x, mask), (x,))


class BNUnit(torch.nn.Module):
    """MaskedBatchNorm with a residual and ReLU over one fixed joint mask (training mode)."""

    def __init__(self, mask, c=17):
        super().__init__()
        self.bn = MaskedBatchNorm(c, backend="cpu")
        self.register_buffer("mask", mask)

    def forward(self, x, res):
        return self.bn(x, self.mask, residual=res, relu=True)


def test_compile_fullgraph_module():
    """Output, the gradients of x, residual, weight and bias, and the running statistics as in eager."""
    need_backend("cpu", "cpu", OPS)
    x, mask, _, _, res = bn_problem(5, 17, 3)
    # twice: the running statistics move between the steps
    steps = [(x.detach().requires_grad_(), res.detach().requires_grad_())] * 2
    _, compiled_mod = assert_compiled_matches_eager(
        lambda: BNUnit(mask), steps, rtol=1e-5, atol=1e-5, grad_rtol=1e-5, grad_atol=1e-5
    )
    bn = compiled_mod.bn
    # with dropout: the seed is drawn inside the graph; the compiled op still runs and masks padding
    out_d = torch.compile(lambda x: masked_bn_apply(x, mask, bn.weight.detach(), bn.bias.detach(), dropout=0.5))(x)
    assert (out_d.permute(0, 3, 1, 2)[~mask] == 0).all()


def test_errors():
    need_backend("cpu", "cpu", OPS)
    x, mask, scale, shift, res = bn_problem(2, 3, 2)
    with pytest.raises(ValueError, match="mask"):
        masked_bn_stats(x, mask[:, :5], backend="cpu")
    with pytest.raises(ValueError, match="scale"):
        masked_bn_apply(x, mask, scale[:2], shift, backend="cpu")
    with pytest.raises(ValueError, match="dropout"):
        masked_bn_apply(x, mask, scale, shift, dropout=1.0, backend="cpu")
    with pytest.raises(RuntimeError, match="seed"):
        torch.ops.msclr.masked_bn_apply(x, mask, scale, shift, None, torch.tensor([1, 2]), 0.5, False)


def test_module_backend_without_bn_kernel_runs_plain_torch():
    """--backend cuda picks the CUDA graph conv; BatchNorm, which has no CUDA C++ kernel, runs the reference."""
    x, mask, _, _, res = bn_problem(3, 5, 2)
    for op in ("masked_bn_stats", "masked_bn_apply"):
        assert MaskedBatchNorm(5, backend="cuda")._bn_backend("cpu", op) == "reference"
    torch.manual_seed(0)
    out = MaskedBatchNorm(5, backend="cuda")(x, mask, residual=res, relu=True)
    torch.manual_seed(0)
    torch.testing.assert_close(out, MaskedBatchNorm(5, backend="reference")(x, mask, residual=res, relu=True))


def test_opcheck_triton(fused_backend):
    """The Triton custom ops (forward and backward) against their fakes and autograd registrations."""
    backend, device = fused_backend
    if backend != "triton":
        pytest.skip("the cpu ops are checked by test_opcheck")
    x, mask, scale, shift, res, seed = (to(device, v)[0] if v.dim() else v for v in _opcheck_args())
    x, scale, shift, res = (v.detach().requires_grad_() for v in (x, scale, shift, res))
    torch.library.opcheck(bn_mod._triton_stats, (x, mask))
    torch.library.opcheck(bn_mod._triton_apply, (x, mask, scale, shift, res, seed, 0.5, True))
    torch.library.opcheck(bn_mod._triton_apply, (x, mask, scale, shift, None, None, 0.0, False))
    out = bn_mod._triton_apply(x, mask, scale, shift, res, seed, 0.5, True).detach()
    gy = torch.randn(x.shape).to(device)
    torch.library.opcheck(
        bn_mod._triton_apply_backward, (gy, out, x.detach(), mask, scale.detach(), seed, 0.5, True, True)
    )


_AOT_POINTERS = {  # pointer arguments of each kernel: x-typed ("x") or fixed
    "_stats_kernel": {"x_ptr": "x", "mask_ptr": "*fp32", "part_ptr": "*fp64"},
    "_stats_backward_kernel": {"g_ptr": "*fp32", "x_ptr": "x", "mask_ptr": "*fp32", "dx_ptr": "x"},
    "_apply_kernel": {
        **{k: "x" for k in ("x_ptr", "res_ptr", "out_ptr")},
        **{k: "*fp32" for k in ("mask_ptr", "scale_ptr", "shift_ptr")},
    },
    "_apply_backward_kernel": {
        **{k: "x" for k in ("g_ptr", "out_ptr", "x_ptr", "dx_ptr", "dres_ptr")},
        **{k: "*fp32" for k in ("mask_ptr", "scale_ptr", "part_ptr")},
    },
}


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_triton_kernels_compile_for_h100(dtype):
    """The GPU path of every BatchNorm kernel through the real compiler (cubin for sm_90), every
    flag on; the interpreter does not check what the GPU compiler checks. Needs no GPU."""
    triton = pytest.importorskip("triton")
    from msclr.kernels import batch_norm as kernels

    scalars = {"seed_lo": "i64", "seed_hi": "i64", "threshold": "i64", "inv_keep": "fp32"}
    for name, pointers in _AOT_POINTERS.items():
        fn = getattr(kernels, name)
        flags = {f: True for f in ("HAS_RES", "DROPOUT", "RELU") if f in fn.arg_names}
        acc = {"ACC": triton.language.float32} if "ACC" in fn.arg_names else {}
        facts = sm90_code_facts(compile_triton_for_sm90(fn, dtype, pointers, dict(BLOCK=1024, **flags, **acc), scalars))
        assert facts["stack"] == 0, (name, facts)  # no register spills


@pytest.mark.slow
@pytest.mark.skipif(GPU, reason="with a GPU the triton cases run directly")
def test_triton_under_interpreter():
    run_triton_interpreter_child(__file__, min_passed=30)


def test_module_residual_of_another_dtype_is_promoted():
    need_backend("cpu", "cpu", OPS)
    x, mask, _, _, res = bn_problem(3, 5, 2)
    bn, bn_ref = MaskedBatchNorm(5, backend="cpu"), MaskedBatchNorm(5, backend="reference")
    out = bn(x.bfloat16(), mask, residual=res, relu=True)
    want = bn_ref(x.bfloat16(), mask, residual=res, relu=True)
    assert out.dtype == want.dtype == torch.float32
    # the plain version normalises in bfloat16 before the add, the fused one in float32
    torch.testing.assert_close(out, want, rtol=1e-2, atol=3e-2)
