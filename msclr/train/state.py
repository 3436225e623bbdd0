"""What an exact resume needs: the sampler that starts mid-epoch, the RNG states, checkpoint saving."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Sampler

from .. import checkpoint_io
from .errors import TrainError

RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "step", "step_in_epoch", "rng", "config", "conventions")


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch that can start mid-epoch (exact resume).

    With several ranks, global batch i is perm[i*B:(i+1)*B] and rank r reads its r-th
    slice of it, so the ranks together see exactly the batches of a single process.
    """

    def __init__(self, n: int, seed: int, batch_size: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise TrainError(f"batch size {batch_size} is not divisible by the {world} processes")
        self.n, self.seed, self.batch_size, self.rank, self.world = n, seed, batch_size, rank, world
        self.epoch, self.start_batch = 0, 0

    def set_position(self, epoch: int, start_batch: int) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        B, b = self.batch_size, self.batch_size // self.world
        batches = perm[: (self.n // B) * B].view(-1, B)[self.start_batch :]
        return iter(batches[:, self.rank * b : (self.rank + 1) * b].flatten().tolist())

    def __len__(self) -> int:
        return (self.n // self.batch_size - self.start_batch) * (self.batch_size // self.world)


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic, with its SHA-256 beside it (msclr.checkpoint_io)."""
    checkpoint_io.save(path, state)


def rng_state() -> dict:
    """The global RNG states as tensors and plain numbers, so that checkpoints load with
    weights_only=True (no numpy arrays, no pickled tuples of Python objects)."""
    # the legacy global numpy RNG is saved because third-party code may draw from it
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, mt, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(gauss),
        },
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss_next": gauss_next},
    }


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n, p = s["numpy"], s["python"]
    if isinstance(n, dict):
        n = (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(n)  # noqa: NPY002
    if isinstance(p, dict):
        p = (p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"])
    random.setstate(p)  # a checkpoint of an older msclr holds the tuples themselves
