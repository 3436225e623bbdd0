"""Pre-training throughput: sequences/s of a full MS-CLR step (augmentation, query and key
encoders, InfoNCE, enqueue, backward, SGD) at batch 128, T=50, M=2, three conventions
(ntu25 / smplx42 / berkeley_mhad43, V_max=43), fused backends (`auto`) vs `reference`.

    pytest bench/bench_train.py --benchmark-only
"""

from __future__ import annotations

import pytest
import torch
from conftest import sync

from msclr import train

BATCH = 128


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from msclr.data.synthetic import make_synthetic_store

    return make_synthetic_store(tmp_path_factory.mktemp("train_bench"), num_samples=BATCH, T=64, seed=0)


@pytest.mark.parametrize("provider", ["reference", "auto"])
def test_train_step(benchmark, store, provider, tmp_path):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _, cfg = train.parse_args(
        [
            "--out",
            str(tmp_path),
            "--data",
            str(store.path),
            "--batch-size",
            str(BATCH),
            "--backend",
            provider,
            "--device",
            device,
            "--aug",
            "torch",
            "data.conventions=[ntu25,smplx42,berkeley_mhad43]",
            "data.frames=50",
            "data.persons=2",
            "method.queue_size=32768",
            "data.split=all",  # a speed bench: every one of the 128 samples
        ]
    )
    trainer = train.Trainer(cfg)
    batch = next(iter(trainer.loader))
    trainer.train_step(batch)  # warm-up
    benchmark.group = f"train step B={BATCH} T=50 V=43 M=2 {device}"
    benchmark.extra_info["provider"] = "reference" if provider == "reference" else "fused"

    def step():
        trainer.train_step(batch)
        sync(device)

    benchmark.pedantic(step, rounds=2 if device == "cpu" else 10, iterations=1)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info["note"] = f"{BATCH / seconds:.1f} sequences/s"
