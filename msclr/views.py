"""How a batch of one motion in several conventions becomes the two views of contrastive learning.

`make_pairs` chooses the query and key conventions per `method.pairing`; `to_stream` turns
joints into the motion or bone stream. Training and evaluation both use them.
"""

from __future__ import annotations

import torch

from .skeletons import LayoutTable


def make_pairs(x: torch.Tensor, available: torch.Tensor, pairing: str, single: int, gen: torch.Generator):
    """Choose query and key conventions. x: (N, L, C, T, V, M), available: (N, L) bool.

    Returns xq (N, C, T, V, M), layout_q (N,), xk (N, P, C, T, V, M), layout_k (N, P).
    single: both views from one convention; batch: one random (query, key) convention pair
    for the whole batch (the paper's code); sample: an independent pair per sample; all:
    every other convention of the sample is a positive (P = L - 1; a missing one is replaced
    by another augmentation of the query's convention).
    """
    n, L = available.shape
    rows = torch.arange(n)
    if pairing == "single" or L == 1:
        lq = torch.full((n,), single if pairing == "single" else 0, dtype=torch.long)
        lk = lq[:, None]
    elif pairing == "batch":
        both = available.all(0).nonzero().flatten()
        if len(both) >= 2:
            pick = both[torch.randperm(len(both), generator=gen)[:2]]
            lq = pick[0].expand(n).clone()
            lk = pick[1].expand(n, 1).clone()
        else:  # conventions missing for some samples: fall back to per-sample pairs
            return make_pairs(x, available, "sample", single, gen)
    else:
        score = torch.rand(n, L, generator=gen).masked_fill(~available, -1.0)
        lq = score.argmax(1)
        if pairing == "sample":
            other = score.scatter(1, lq[:, None], -2.0)
            lk = other.argmax(1)
            lk = torch.where(other.max(1).values >= 0, lk, lq)[:, None]  # only one available: same convention
        else:  # all
            others = torch.stack([torch.tensor([j for j in range(L) if j != i]) for i in range(L)])
            lk = others[lq]  # (N, L-1)
            lk = torch.where(available[rows[:, None], lk], lk, lq[:, None])
    xq = x[rows, lq]
    xk = x[rows[:, None], lk]
    return xq, lq, xk, lk


def to_stream(x: torch.Tensor, layout: torch.Tensor, stream: str, table: LayoutTable) -> torch.Tensor:
    """joint (as is), motion (frame difference, last frame 0) or bone (x[v] - x[parent[v]])."""
    if stream == "joint":
        return x
    if stream == "motion":
        out = torch.zeros_like(x)
        out[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
        return out
    return table.bones(x, layout)
