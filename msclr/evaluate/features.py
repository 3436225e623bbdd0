"""Frozen-encoder features: computed once per (checkpoint, store, split part, conventions) and cached."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import checkpoint_io
from ..skeletons import LayoutTable

log = logging.getLogger("msclr.evaluate")


@dataclass
class FeatureSet:
    """features (N, L, D) float32 for every convention slot of the table (zeros where a sample
    lacks that convention), available (N, L) bool, labels (N,), sample ids."""

    features: torch.Tensor
    available: torch.Tensor
    labels: torch.Tensor
    sample_ids: list[str]
    conventions: list[str]

    def of(self, convention: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(features, labels, sample ids) of the samples that have `convention`."""
        l = self.conventions.index(convention)
        rows = self.available[:, l]
        ids = [s for s, r in zip(self.sample_ids, rows.tolist()) if r]
        return self.features[rows, l], self.labels[rows], ids


def eval_dataset(store, table: LayoutTable, conventions, T: int, M: int, split, train: bool):
    from ..data import MultiSkeletonDataset

    return MultiSkeletonDataset(store, conventions, table, T=T, M=M, split=split, train=train)


def encode_batch(encoder, x: torch.Tensor, layout: torch.Tensor, stream: str, table: LayoutTable) -> torch.Tensor:
    """Features (N, D) of padded sequences (N, C, T, V, M) in the checkpoint's stream."""
    from ..views import to_stream

    return encoder(to_stream(x, layout, stream, table), layout)


@torch.no_grad()
def extract(encoder, dataset, table: LayoutTable, stream: str, device, batch_size: int = 128, desc="features"):
    """Encode every available convention of every sample of `dataset` (eval mode, no grad)."""
    encoder.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    feats, avail, labels, ids = [], [], [], []
    slots = [table.layout_id(c) for c in dataset.conventions]
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, disable=None):
        x, a = batch["x"], batch["available"]
        n = x.shape[0]
        out = torch.zeros(n, len(table), encoder.hidden_dim)
        for l in slots:
            rows = a[:, l].nonzero().flatten()
            if rows.numel() == 0:
                continue
            layout = torch.full((rows.numel(),), l, dtype=torch.long, device=device)
            f = encode_batch(encoder, x[rows, l].to(device), layout, stream, table)
            out[rows, l] = f.float().cpu()
        feats.append(out)
        avail.append(a)
        labels.append(batch["label"])
        ids.extend(batch["sample_id"])
    return FeatureSet(torch.cat(feats), torch.cat(avail), torch.cat(labels), ids, list(table.names))


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached_features(cache_dir: Path, key_parts: dict, compute) -> FeatureSet:
    """Load features from `cache_dir` when the key (checkpoint identity, data, crop, ...) matches,
    else compute and write them atomically."""
    key = cache_key(**key_parts)
    path = Path(cache_dir) / f"features_{key_parts.get('part', 'all')}_{key}.pt"
    if path.is_file():
        try:
            d = checkpoint_io.load(path)
            log.info("features: cached %s", path)
            return FeatureSet(**d)
        except Exception as e:  # a damaged cache is recomputed, not fatal
            log.warning("features: cache %s is unreadable (%s); recomputing", path, e)
    fs = compute()
    checkpoint_io.save(path, fs.__dict__)
    return fs


def file_identity(path: Path) -> dict:
    st = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A class-balanced, seeded subset: round(fraction * n_c) samples of each class c (at least
    one), positions into `labels`, sorted."""
    if not 0 < fraction <= 1:
        raise ValueError(f"labelled fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * rows.size)))
        keep.append(rng.choice(rows, size=min(k, rows.size), replace=False))
    return np.sort(np.concatenate(keep))
