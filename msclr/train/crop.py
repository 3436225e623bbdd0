"""What pre-training reads: the split's train part, and the random temporal crop of its sequences."""

from __future__ import annotations

import math

import numpy as np

from .errors import TrainError


def pretraining_split(store, split: str | None) -> str | None:
    """The split whose train part pre-training reads: the given one, else the store's first
    (never the test subjects by accident); "all" (or a store without splits): every sample."""
    if split == "all":
        return None
    splits = list(store.splits)
    if split is None:
        return splits[0] if splits else None
    if split not in splits:
        raise TrainError(f"data.split={split!r}: store {store.path} has splits {splits or 'none'} (or use all)")
    return split


def _valid_lengths(store, names, split) -> np.ndarray:
    """Per sample, the longest valid length over the run's conventions (what the crop is drawn on)."""
    idx = np.arange(len(store)) if split is None else store.split(*split)
    lengths = np.max([np.where(store.available(n), store.lengths(n), 0) for n in names], axis=0)[idx]
    return lengths[lengths > 0]


def resolve_min_crop(lengths: np.ndarray, min_crop, p_low: float) -> int:
    """data.min_crop in frames; auto: AimCLR's 64 (NTU), capped at p_low x the median of the
    valid `lengths`, so that the crop ratio still acts on short sequences."""
    if min_crop != "auto":
        return int(min_crop)
    median = float(np.median(lengths)) if lengths.size else 64.0
    return max(1, min(64, int(math.floor(p_low * median))))


def describe_crop(lengths: np.ndarray, p_interval, min_crop: int) -> str:
    """One line: what the random temporal crop does on sequences of these valid lengths."""
    if not lengths.size:
        return "no sequences"
    lo, hi = p_interval
    med = int(np.median(lengths))
    short = float(np.mean(lengths <= min_crop))
    return (
        f"{lo:g}-{hi:g} of each sequence, at least {min_crop} frames; sequences have "
        f"{int(lengths.min())}-{int(lengths.max())} frames (median {med}: crops of "
        f"{min(max(int(lo * med), min_crop), med)}-{med} frames); {100 * short:.0f}% are <= {min_crop} frames "
        "and never cropped"
    )
