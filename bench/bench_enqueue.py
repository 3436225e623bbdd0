"""Ring-buffer enqueue: reference (index_copy_) vs the C++/CUDA kernel."""

from __future__ import annotations

import pytest
import torch
from conftest import sync

from msclr.ops import enqueue, why_unavailable

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("provider", ["reference", "cpu", "cuda"])
@pytest.mark.parametrize("batch", [128, 4096])
def test_enqueue(benchmark, device, provider, batch):
    reason = why_unavailable(provider, device)
    if reason:
        pytest.skip(reason)
    queue = torch.randn(65536, 128, device=device)
    ptr = torch.zeros(1, dtype=torch.int64, device=device)
    keys = torch.randn(batch, 128, device=device)
    benchmark.group = f"enqueue B={batch} Q=65536 D=128 {device}"
    benchmark.extra_info["provider"] = provider

    def run():
        enqueue(queue, ptr, keys, backend=provider)
        sync(device)

    benchmark(run)
