"""Augmentation throughput (sequences/s): torch vs DALI, CPU here and GPU where present.

Batch 128, T=50, V_max=43 (berkeley_mhad43 is the widest built-in convention), M=2, a mix
of layouts. Providers: "torch" (msclr.augment.TorchAugment) and "dali" (DaliAugment, CPU
pipeline with device_id=None on CPU, GPU pipeline on a GPU); "dali-prefetch" streams the
batches through DaliAugment.iterate with two batches in flight. There is no "reference"
provider: the sequences/s are in the notes column.
"""

from __future__ import annotations

import pytest
import torch
from conftest import ROUNDS, sync

from msclr import skeletons
from msclr.augment import AugmentParams, dali_import_error, make_augment

N, T, M = 128, 50, 2
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CONVENTIONS = ("ntu25", "smplx42", "berkeley_mhad43", "smpl24")


def _batch(device, n=N, t=T):
    table = skeletons.LayoutTable([skeletons.get(c) for c in CONVENTIONS])
    g = torch.Generator().manual_seed(0)
    layout = torch.randint(0, len(table), (n,), generator=g)
    x = torch.randn(n, 3, t, table.v_max, M, generator=g) * table.joint_mask[layout][:, None, None, :, None]
    return table, x.to(device), layout.to(device)


def _note(benchmark, extra=""):
    stats = benchmark.stats.stats if hasattr(benchmark.stats, "stats") else benchmark.stats
    if stats is None:  # --benchmark-disable: the step ran once, untimed
        return
    benchmark.extra_info["note"] = f"{N / stats.median:.0f} sequences/s{extra}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("provider", ["torch", "dali", "dali-prefetch"])
@pytest.mark.parametrize("preset", ["normal", "extreme"])
def test_augment_throughput(benchmark, preset, provider, device):
    if provider.startswith("dali") and dali_import_error():
        pytest.skip(dali_import_error())
    table, x, layout = _batch(device)
    backend = "dali" if provider.startswith("dali") else "torch"
    aug = make_augment(AugmentParams.preset(preset), table, backend=backend, device=device)
    benchmark.group = f"augment {preset} B={N} T={T} V={table.v_max} M={M} {device}"
    benchmark.extra_info["provider"] = provider
    gen = torch.Generator(device=device if backend == "torch" else "cpu").manual_seed(0)
    rounds = ROUNDS if device == "cpu" else 10 * ROUNDS

    if provider == "dali-prefetch":
        # Steady state of a stream: each round takes one augmented batch off a running iterator.
        stream = aug.iterate((x, layout) for _ in range(rounds + 3))

        def run():
            next(stream)
            sync(device)

    else:

        def run():
            aug(x, layout, gen)
            sync(device)

    benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    _note(benchmark, f" ({aug!r})")
