"""MaskedBatchNorm (training mode): the released code's BatchNorm2d, plain torch, torch.compile, fused ops.

Encoder shapes: N*M = 256 sequences (batch 128, two persons), T and C as in the ST-GCN units
(C=16 at T=50, C=256 at T=13), V_max=43 mixing ntu25 / smplx42 / berkeley_mhad43 sample by
sample. Two uses per unit: `bn+relu` (after the graph conv) and `bn+dropout+res+relu` (after the
TCN: dropout 0.5, residual add, ReLU); forward, and forward+backward (gradients of x, residual,
weight and bias). Statistics, running-stat update and the apply are all inside the timed region.

`aimclr_style` is what the released ST-GCN/AimCLR code runs: nn.BatchNorm2d over the padded tensor
(no joint mask: padded joints count in its statistics), F.dropout, the residual add and ReLU,
autograd doing the backward; the baseline a user would otherwise write. `reference` is
MaskedBatchNorm(backend="reference"), the plain-torch module the `reference`
training backend runs; `compile` is torch.compile of that module (compiled and warmed up outside
the timed region); `cpu` is MaskedBatchNorm on msclr.ops.masked_bn_stats / masked_bn_apply.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ROUNDS, sync

from msclr import skeletons
from msclr.models import MaskedBatchNorm
from msclr.ops import why_unavailable

N = 256
SHAPES = [(16, 50), (256, 13)]  # (C, T)
PROVIDERS = ["aimclr_style", "reference", "compile", "cpu"]
VARIANTS = {"bn+relu": (False, 0.0), "bn+dropout+res+relu": (True, 0.5)}


def _problem(c, t, n=N):
    table = skeletons.LayoutTable([skeletons.get(nm) for nm in ("ntu25", "smplx42", "berkeley_mhad43")])
    g = torch.Generator().manual_seed(0)
    mask = table.joint_mask[torch.arange(n) % len(table)]
    m = mask[:, None, None, :]
    x = (torch.randn(n, c, t, table.v_max, generator=g) + 0.3) * m
    res = torch.randn(n, c, t, table.v_max, generator=g).relu() * m
    gy = torch.randn(n, c, t, table.v_max, generator=g)
    return x, res, mask, gy


def make_step(provider, with_backward, variant, shape, device="cpu", n=N, compile_backend="inductor"):
    """`step()`: one training-mode call of `provider` (and the gradients of x, residual, weight and
    bias when with_backward), without a device sync. Fused providers (cpu, triton) run
    MaskedBatchNorm on that backend; reference and compile on the reference one. bench/gpu_report.py
    times the same steps."""
    c, t = shape
    has_res, p = VARIANTS[variant]
    x, res, mask, gy = (v.to(device) for v in _problem(c, t, n))
    fused = provider not in ("aimclr_style", "reference", "compile")
    bn = MaskedBatchNorm(c, backend=provider if fused else "reference").to(device).train()
    leaves = [v.requires_grad_(with_backward) for v in (x, res)]

    def forward(x, r):
        return bn(x, mask, residual=r if has_res else None, relu=True, dropout=p)

    if provider == "aimclr_style":
        bn = torch.nn.BatchNorm2d(c).to(device).train()

        def forward(x, r):
            y = torch.nn.functional.dropout(bn(x), p, training=True) if p > 0 else bn(x)
            return torch.relu(y + r if has_res else y)

    if provider == "compile":
        torch._dynamo.reset()  # a fresh cache per shape
        forward = torch.compile(forward, dynamic=False, backend=compile_backend)

    def step():
        y = forward(*leaves)
        if with_backward:
            wanted = [leaves[0], bn.weight, bn.bias] + ([leaves[1]] if has_res else [])
            torch.autograd.grad(y, wanted, gy)

    return step


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"C{s[0]}_T{s[1]}")
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("with_backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_masked_batch_norm(benchmark, provider, with_backward, variant, shape):
    if provider == "cpu":
        reason = why_unavailable("cpu", "cpu")
        if reason:
            pytest.skip(reason)
    c, t = shape
    step = make_step(provider, with_backward, variant, shape)

    def run():
        step()
        sync("cpu")

    run()  # compiles (compile provider) and warms caches: outside the timed rounds
    benchmark.group = f"masked_batch_norm {variant} {'fwd+bwd' if with_backward else 'fwd'} N={N} C={c} T={t} V=43"
    benchmark.extra_info["provider"] = provider
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
