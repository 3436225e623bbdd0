"""masked_graph_conv: reference (eager), torch.compile(reference), and the fused backends.

Encoder shapes: N=64 (and 128 on a GPU), T=50, V_max=43 mixing ntu25 / smplx42 /
berkeley_mhad43 sample by sample, K=3, (C_in, C_out) as in the ST-GCN units; forward, and
forward+backward (gradients of x, weight, bias and importance). Few rounds: the reference is slow.

`compile` is torch.compile of the pure-torch reference forward (reference.masked_graph_conv_forward)
with autograd through the compiled graph; it is compiled (and warmed up) outside the timed region.
On a GPU the notes give the achieved bandwidth of the minimal traffic (x, y and, with backward,
grad y and grad x once each) against the H100's ~3 TB/s.
"""

from __future__ import annotations

import pytest
import torch
from conftest import sync

from msclr import skeletons
from msclr.ops import masked_graph_conv, reference, why_unavailable

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CHANNELS = [(3, 16), (16, 16), (32, 32), (64, 64), (64, 256)]
PROVIDERS = ["reference", "compile", "cpu", "cuda", "triton"]
T, K = 50, 3
PEAK_BYTES_PER_S = 3.0e12  # H100 HBM3, for the bandwidth notes


def _problem(n, c_in, c_out, device):
    table = skeletons.LayoutTable([skeletons.get(nm) for nm in ("ntu25", "smplx42", "berkeley_mhad43")])
    g = torch.Generator().manual_seed(0)
    layout = torch.arange(n) % len(table)
    x = torch.randn(n, c_in, T, table.v_max, generator=g) * table.joint_mask[layout][:, None, None, :]
    W = torch.randn(K, c_out, c_in, generator=g) / c_in**0.5
    b = torch.randn(K, c_out, generator=g)
    imp = 1 + 0.1 * torch.randn(table.A.shape, generator=g)
    gy = torch.randn(n, c_out, T, table.v_max, generator=g)
    return [t.to(device) for t in (x, layout, table.A, W, b, imp, gy)]


def _compiled_reference():
    torch._dynamo.reset()  # a fresh cache per shape: no recompile limit, no dynamic-shape graph
    return torch.compile(reference.masked_graph_conv_forward, dynamic=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [64, 128])
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}to{c[1]}")
@pytest.mark.parametrize("with_backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_masked_graph_conv(benchmark, provider, with_backward, channels, n, device):
    if n == 128 and device != "cuda":
        pytest.skip("N=128 is a GPU shape")
    if provider not in ("reference", "compile"):
        reason = why_unavailable(provider, device)
        if reason:
            pytest.skip(reason)
    c_in, c_out = channels
    x, layout, A, W, b, imp, gy = _problem(n, c_in, c_out, device)
    leaves = [v.requires_grad_(with_backward) for v in (x, W, b, imp)]
    if provider == "compile":
        fn = _compiled_reference()

        def forward():
            return fn(leaves[0], layout, A, *leaves[1:])
    else:

        def forward():
            return masked_graph_conv(leaves[0], layout, A, *leaves[1:], backend=provider)

    def run():
        y = forward()
        if with_backward:
            torch.autograd.grad(y, leaves, gy)
        sync(device)

    run()  # compiles (compile provider), autotunes (triton), warms caches: outside the timed rounds
    pass_name = "fwd+bwd" if with_backward else "fwd"
    benchmark.group = f"masked_graph_conv {pass_name} N={n} C={c_in}->{c_out} T={T} V=43 mixed {device}"
    benchmark.extra_info["provider"] = provider
    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    if device == "cuda":
        elem = x.element_size()
        traffic = (x.numel() + gy.numel()) * elem * (2 if with_backward else 1)
        seconds = benchmark.stats.stats.median
        benchmark.extra_info["note"] = (
            f"{traffic / seconds / 1e9:.0f} GB/s ({100 * traffic / seconds / PEAK_BYTES_PER_S:.1f}% of 3 TB/s)"
        )
