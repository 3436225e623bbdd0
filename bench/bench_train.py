"""Pre-training throughput: sequences/s of a full contrastive step at batch 128, T=50, M=2, fp32.

Two problems:

* **ntu25** (V=25, one convention): msclr's fused SkeletonCLR step (`fused`: augmentation,
  query and key encoders, InfoNCE with the queue, enqueue, backward, SGD) against
  `aimclr_style`: the model as the released SkeletonCLR/AimCLR code builds it (the
  independent ST-GCN of tests/stgcn_reference.py: shared-person input BatchNorm, conv1x1 +
  einsum graph convolution, nn.Conv2d temporal convolution, MLP head) in a MoCo step with
  plain cross-entropy over [l_pos, l_neg], a (D, K) queue and a momentum update. The released
  code augments in DataLoader workers, so `aimclr_style` is timed on ready views: msclr's step
  pays for its augmentation inside the timed region and the aimclr_style one does not.
* **three conventions** (ntu25 / smplx42 / berkeley_mhad43, V_max=43 mixed per sample): msclr
  `fused` against its own `reference` backends (the same step with the pure-torch ops).

    pytest bench/bench_train.py --benchmark-only
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import ROUNDS, sync
from stgcn_reference import Model  # tests/stgcn_reference.py (bench/conftest.py puts tests/ on the path)

from msclr import skeletons, train

BATCH, T, M = 128, 50, 2
QUEUE, FEATURE, TAU, MOMENTUM = 32768, 128, 0.07, 0.999
MIXED = ["ntu25", "smplx42", "berkeley_mhad43"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from msclr.data.synthetic import make_synthetic_store

    return make_synthetic_store(tmp_path_factory.mktemp("train_bench"), num_samples=BATCH, T=64, seed=0)


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _msclr_trainer(
    store, tmp_path, backend: str, conventions: list[str], batch=BATCH, frames=T, queue=QUEUE, device=None, extra=()
):
    """msclr's Trainer on `store`; `extra`: more arguments of `python -m msclr.train` (--amp, --compile, key=value).
    bench/gpu_report.py builds its trainers here too."""
    _, cfg = train.parse_args(
        [
            "--out",
            str(tmp_path),
            "--data",
            str(store.path),
            "--batch-size",
            str(batch),
            "--backend",
            backend,
            "--device",
            device or _device(),
            "--aug",
            "torch",
            f"data.conventions=[{','.join(conventions)}]",
            f"data.frames={frames}",
            f"data.persons={M}",
            f"method.queue_size={queue}",
            "method.pairing=" + ("single" if len(conventions) == 1 else "batch"),
            # SkeletonCLR's step, as the aimclr_style baseline: pinned, not the quick start's method
            "method.name=skeletonclr",
            "aug.normal=normal",
            "data.split=all",  # a speed bench: every one of the 128 samples
            *extra,
        ]
    )
    return train.Trainer(cfg)


class AimCLRStyleMoCo(torch.nn.Module):
    """SkeletonCLR's MoCo step as the released code writes it, around the published ST-GCN."""

    def __init__(self, A: torch.Tensor, queue: int = QUEUE):
        super().__init__()
        self.queue_size = queue
        self.encoder_q = Model(3, 16, 256, num_class=FEATURE, A=A, edge_importance=True, dropout=0.5)
        self.head_q = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, FEATURE))
        self.encoder_k, self.head_k = copy.deepcopy(self.encoder_q), copy.deepcopy(self.head_q)
        for p in list(self.encoder_k.parameters()) + list(self.head_k.parameters()):
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(FEATURE, queue), dim=0))
        self.ptr = 0

    def forward(self, xq, xk):
        q = F.normalize(self.head_q(self.encoder_q(xq)), dim=1)
        with torch.no_grad():
            for pk, pq in zip(
                list(self.encoder_k.parameters()) + list(self.head_k.parameters()),
                list(self.encoder_q.parameters()) + list(self.head_q.parameters()),
            ):
                pk.data = pk.data * MOMENTUM + pq.data * (1.0 - MOMENTUM)
            k = F.normalize(self.head_k(self.encoder_k(xk)), dim=1)
        l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / TAU
        loss = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))
        with torch.no_grad():  # enqueue
            self.queue[:, self.ptr : self.ptr + k.shape[0]] = k.T
            self.ptr = (self.ptr + k.shape[0]) % self.queue_size
        return loss


def aimclr_style_step(device, batch=BATCH, frames=T, queue=QUEUE):
    """`step()`: one MoCo step of AimCLRStyleMoCo on ntu25 (ready views, SGD), without a device sync."""
    A = skeletons.LayoutTable([skeletons.get("ntu25")]).A[0]  # (K, V, V), the spatial strategy
    model = AimCLRStyleMoCo(A, queue).to(device).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    xq, xk = (torch.randn(batch, 3, frames, 25, M, generator=g).to(device) for _ in range(2))

    def step():
        loss = model(xq, xk)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _time(benchmark, step, group: str, provider: str, device: str) -> None:
    step()  # warm-up: thread pools, allocator, first-call dispatch
    benchmark.group = group
    benchmark.extra_info["provider"] = provider
    benchmark.pedantic(step, rounds=ROUNDS if device == "cpu" else 10 * ROUNDS, iterations=1)
    benchmark.extra_info["note"] = f"{BATCH / benchmark.stats.stats.median:.1f} sequences/s"


@pytest.mark.parametrize("provider", ["aimclr_style", "fused"])
def test_train_step_ntu25(benchmark, store, provider, tmp_path):
    device = _device()
    group = f"train step ntu25 B={BATCH} T={T} V=25 M={M} Q={QUEUE} fp32 {device}"
    if provider == "fused":
        trainer = _msclr_trainer(store, tmp_path, "auto", ["ntu25"])
        batch = next(iter(trainer.loader))

        def step():
            trainer.train_step(batch)
            sync(device)
    else:
        aimclr_step = aimclr_style_step(device)

        def step():
            aimclr_step()
            sync(device)

    _time(benchmark, step, group, provider, device)


@pytest.mark.parametrize("provider", ["reference", "fused"])
def test_train_step_mixed(benchmark, store, provider, tmp_path):
    device = _device()
    trainer = _msclr_trainer(store, tmp_path, "reference" if provider == "reference" else "auto", MIXED)
    batch = next(iter(trainer.loader))

    def step():
        trainer.train_step(batch)
        sync(device)

    group = f"train step 3 conventions B={BATCH} T={T} V=43 M={M} Q={QUEUE} fp32 {device}"
    _time(benchmark, step, group, provider, device)
