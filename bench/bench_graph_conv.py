"""masked_graph_conv: the fused backends against the baselines a user would otherwise write.

Encoder shapes: N=64 (and 128 on a GPU), V_max=43 mixing ntu25 / smplx42 / berkeley_mhad43
sample by sample, K=3, and (C_in, C_out, T) of every distinct graph convolution of the ST-GCN
encoder with hidden_channels=16 and 64 (T halves after the strided units); forward, and
forward+backward (gradients of x, weight, bias and importance).

Providers:
  eager         the formula (reference.masked_graph_conv_forward) in plain torch, autograd
                saving what it likes: what a user writes first
  aimclr_style  the released ST-GCN's graph conv: a 1x1 Conv2d to K*C_out channels, then
                einsum with one adjacency shared by the batch (the V_max-padded smplx42 one,
                so the FLOPs match): no per-sample layouts
  compile       torch.compile of the formula, autograd through the compiled graph
  reference     msclr's reference backend (the formula with an explicit backward)
  cpu/cuda/triton  the fused kernels
Compilation and warm-up happen outside the timed rounds.
On a GPU the notes give the achieved bandwidth of the minimal traffic (x, y and, with backward,
grad y and grad x once each) against the H100's ~3 TB/s.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ROUNDS, sync

from msclr import skeletons
from msclr.ops import masked_graph_conv, reference, why_unavailable

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# (C_in, C_out, T): the graph convolutions of the encoder (T=50 input, stride 2 at units 4 and 7)
SHAPES = [(3, 16, 50), (16, 16, 50), (16, 32, 50), (32, 32, 25), (32, 64, 25), (64, 64, 13), (64, 256, 13)]
PROVIDERS = ["eager", "aimclr_style", "compile", "reference", "cpu", "cuda", "triton"]
K = 3
PEAK_BYTES_PER_S = 3.0e12  # H100 HBM3, for the bandwidth notes


def _problem(n, c_in, c_out, T, device):
    table = skeletons.LayoutTable([skeletons.get(nm) for nm in ("ntu25", "smplx42", "berkeley_mhad43")])
    g = torch.Generator().manual_seed(0)
    layout = torch.arange(n) % len(table)
    x = torch.randn(n, c_in, T, table.v_max, generator=g) * table.joint_mask[layout][:, None, None, :]
    W = torch.randn(K, c_out, c_in, generator=g) / c_in**0.5
    b = torch.randn(K, c_out, generator=g)
    imp = 1 + 0.1 * torch.randn(table.A.shape, generator=g)
    gy = torch.randn(n, c_out, T, table.v_max, generator=g)
    return [t.to(device) for t in (x, layout, table.A, W, b, imp, gy)]


def _aimclr_style(x, A, W, b, imp):
    """The released ST-GCN graph conv: conv1x1 to K*C_out channels, einsum with a shared A."""
    n, _, t, v = x.shape
    z = torch.nn.functional.conv2d(x, W.reshape(-1, W.shape[-1], 1, 1), b.reshape(-1))
    return torch.einsum("nkctv,kvw->nctw", z.view(n, K, -1, t, v), A * imp)


def _compiled_reference(backend="inductor"):
    torch._dynamo.reset()  # a fresh cache per shape: no recompile limit, no dynamic-shape graph
    return torch.compile(reference.masked_graph_conv_forward, dynamic=False, backend=backend)


def make_step(provider, with_backward, shape, n, device, compile_backend="inductor"):
    """(step, x, gy): `step()` runs `provider` once (forward, and the gradients of x, weight, bias
    and importance when with_backward), without a device sync; x and gy for traffic figures.
    bench/gpu_report.py times the same steps."""
    c_in, c_out, T = shape
    x, layout, A, W, b, imp, gy = _problem(n, c_in, c_out, T, device)
    leaves = [v.requires_grad_(with_backward) for v in (x, W, b, imp)]
    if provider == "eager":

        def forward():
            return reference.masked_graph_conv_forward(leaves[0], layout, A, *leaves[1:])
    elif provider == "aimclr_style":
        shared = A[1].contiguous()  # smplx42's adjacency, padded to V_max=43

        def forward():
            return _aimclr_style(leaves[0], shared, leaves[1], leaves[2], leaves[3][1])
    elif provider == "compile":
        fn = _compiled_reference(compile_backend)

        def forward():
            return fn(leaves[0], layout, A, *leaves[1:])
    else:

        def forward():
            return masked_graph_conv(leaves[0], layout, A, *leaves[1:], backend=provider)

    def step():
        y = forward()
        if with_backward:
            torch.autograd.grad(y, leaves, gy)

    return step, x, gy


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [64, 128])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}to{s[1]}T{s[2]}")
@pytest.mark.parametrize("with_backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_masked_graph_conv(benchmark, provider, with_backward, shape, n, device):
    if n == 128 and device != "cuda":
        pytest.skip("N=128 is a GPU shape")
    if provider not in ("eager", "aimclr_style", "reference", "compile"):
        reason = why_unavailable(provider, device)
        if reason:
            pytest.skip(reason)
    c_in, c_out, T = shape
    step, x, gy = make_step(provider, with_backward, shape, n, device)

    def run():
        step()
        sync(device)

    run()  # compiles (compile provider), autotunes (triton), warms caches: outside the timed rounds
    pass_name = "fwd+bwd" if with_backward else "fwd"
    benchmark.group = f"masked_graph_conv {pass_name} N={n} C={c_in}->{c_out} T={T} V=43 mixed {device}"
    benchmark.extra_info["provider"] = provider
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    if device == "cuda":
        elem = x.element_size()
        traffic = (x.numel() + gy.numel()) * elem * (2 if with_backward else 1)
        seconds = benchmark.stats.stats.median
        benchmark.extra_info["note"] = (
            f"{traffic / seconds / 1e9:.0f} GB/s ({100 * traffic / seconds / PEAK_BYTES_PER_S:.1f}% of 3 TB/s)"
        )
