"""The multi-skeleton Dataset: memory-mapped store reads, valid-crop-resize, padding.

One item is one sample in every convention of the run (the layout table), cropped in time
*once* (the conventions are the same motion) and resampled to T frames:

* train: AimCLR/CrosSCLR `valid_crop_resize` - a crop ratio p drawn uniformly from
  `p_interval` (default [0.5, 1]), crop length clip(floor(L * p), min_crop, L) frames of the
  valid part L, at a uniformly random start; then linear interpolation to T frames
  (identical to their ``F.interpolate(..., mode='bilinear', align_corners=False)`` along time).
* eval: the centred crop of ratio `eval_p` (AimCLR uses 0.95; 1.0 = the whole valid part),
  resized the same way.

A convention whose valid length differs from the others' (e.g. an estimator run at another
frame rate) gets the same crop in relative time. Persons are cut or zero-padded to M and
joints zero-padded to the table's V_max.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..skeletons import LayoutTable
from .store import Store, open_store

EVAL_P = 0.95  # centred crop ratio of evaluation (AimCLR's test-time crop)


def eval_crop(length: int, eval_p: float = EVAL_P) -> tuple[float, float]:
    """(begin, crop length) of the centred evaluation crop of a valid length."""
    bias = int((1.0 - eval_p) * length / 2)
    return float(bias), float(length - 2 * bias)


class NonFiniteSampleError(ValueError):
    """A sample holds NaN or inf values (the message names the sample and the convention)."""


def resample_positions(begin: float, length: float, T: int) -> np.ndarray:
    """Source frame positions of T output frames for a crop [begin, begin + length).

    Linear interpolation with half-pixel centres (align_corners=False), as torch's
    F.interpolate: pos = begin + (i + 0.5) * length / T - 0.5, clamped to the crop.
    """
    i = np.arange(T, dtype=np.float64)
    pos = (i + 0.5) * (length / T) - 0.5
    pos = np.clip(pos, 0.0, max(length - 1.0, 0.0))
    return begin + pos


def gather_frames(sample: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 1 of (C, T, V, M) at fractional frame positions."""
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, sample.shape[1] - 1)
    w = (positions - lo).astype(np.float32)[None, :, None, None]
    a = sample[:, lo]
    b = sample[:, hi]
    return a + (b - a) * w


class MultiSkeletonDataset(torch.utils.data.Dataset):
    """A torch Dataset over a store, returning every convention of the layout table.

    Args:
        store: a `Store` or the path of one.
        conventions: conventions to read (each must be in `table` and in the store);
            table conventions not listed here come back as all zeros with available=False.
        table: the run's `msclr.skeletons.LayoutTable`; fixes the order (layout id) and V_max.
        T: frames per item. M: persons per item.
        split: (split name, part), e.g. ("xsub", "train"); None = every sample.
        train: random crop (train) or centre crop (eval).
        p_interval / min_crop: train crop ratio range and minimum crop length (AimCLR: [0.5, 1], 64).
        eval_p: centre-crop ratio in eval mode.
        check_finite: reject NaN/inf (NonFiniteSampleError naming the sample and convention).

    An item is a dict: "x" float32 (L, C, T, V_max, M); "available" bool (L,); "layout" int64
    (L,) = 0..L-1 (slot l of x is layout id l of the table); "label" int64;
    "index" int (position in this dataset); "store_index" int (row in the store);
    "sample_id" str. Samples with no listed convention available are left out.
    """

    def __init__(
        self,
        store: Store | str | Path,
        conventions: Sequence[str],
        table: LayoutTable,
        T: int = 50,
        M: int = 2,
        split: tuple[str, str] | None = None,
        train: bool = True,
        p_interval: tuple[float, float] = (0.5, 1.0),
        min_crop: int = 64,
        eval_p: float = EVAL_P,
        check_finite: bool = True,
    ):
        self.store = store if isinstance(store, Store) else open_store(store)
        self.table = table
        self.T, self.M = int(T), int(M)
        if self.T < 1 or self.M < 1:
            raise ValueError(f"T and M must be >= 1, got T={T}, M={M}")
        conventions = list(conventions)
        if not conventions:
            raise ValueError("MultiSkeletonDataset needs at least one convention")
        for name in conventions:
            if name not in table.names:
                raise ValueError(f"convention {name!r} is not in the layout table {table.names}")
            if name not in self.store.conventions:
                raise ValueError(f"convention {name!r} is not in store {self.store.path} ({self.store.conventions})")
            if self.store.convention(name).num_joints != table.conventions[table.layout_id(name)].num_joints:
                raise ValueError(f"convention {name!r}: the store and the layout table disagree on its joints")
        self.conventions = conventions
        self.slots = [table.layout_id(name) for name in conventions]  # layout id of each convention
        channels = {self.store.info(name)["shape"][1] for name in conventions}
        if len(channels) != 1:
            raise ValueError(f"conventions {conventions} have different channel counts {sorted(channels)}")
        self.C = channels.pop()
        lo, hi = float(p_interval[0]), float(p_interval[1])
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"p_interval must satisfy 0 < low <= high <= 1, got {p_interval}")
        if not 0 < eval_p <= 1:
            raise ValueError(f"eval_p must be in (0, 1], got {eval_p}")
        self.p_interval, self.min_crop, self.eval_p = (lo, hi), int(min_crop), float(eval_p)
        self.train, self.check_finite = bool(train), bool(check_finite)

        idx = np.arange(len(self.store)) if split is None else self.store.split(*split)
        usable = np.zeros(len(self.store), bool)
        for name in conventions:
            usable |= self.store.available(name) & (self.store.lengths(name) > 0)
        self.indices = idx[usable[idx]]
        self.labels = self.store.labels[self.indices]

    def __len__(self) -> int:
        return int(self.indices.size)

    def _crop(self, length: int) -> tuple[float, float]:
        """(begin, crop length) in frames of the reference valid length."""
        if self.train:
            p = self.p_interval[0] + torch.rand(()).item() * (self.p_interval[1] - self.p_interval[0])
            crop = min(max(int(math.floor(length * p)), self.min_crop), length)
            begin = int(torch.randint(0, length - crop + 1, ()).item())
            return float(begin), float(crop)
        return eval_crop(length, self.eval_p)

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        sid = self.store.sample_ids[row]
        L = len(self.table)
        x = np.zeros((L, self.C, self.T, self.table.v_max, self.M), np.float32)
        avail = np.zeros(L, bool)
        lens = {}
        for name in self.conventions:
            if self.store.available(name)[row]:
                n = int(self.store.lengths(name)[row])
                if n > 0:
                    lens[name] = n
        ref = max(lens.values())
        begin, crop = self._crop(ref)
        for name, n in lens.items():
            scale = n / ref
            pos = resample_positions(begin * scale, crop * scale, self.T)
            pos = np.clip(pos, 0.0, n - 1.0)
            arr = self.store.array(name)
            lo = int(np.floor(pos[0]))
            hi = min(int(np.floor(pos[-1])) + 2, n)
            window = np.asarray(arr[row, :, lo:hi])  # read only the frames needed
            frames = gather_frames(window, pos - lo)
            if self.check_finite and not np.isfinite(frames).all():
                raise NonFiniteSampleError(
                    f"sample {sid!r} (store row {row}) has NaN/inf values in convention {name!r} "
                    f"({self.store.path / self.store.info(name)['file']})"
                )
            m = min(self.M, frames.shape[3])
            slot = self.table.layout_id(name)
            x[slot, :, :, : frames.shape[2], :m] = frames[..., :m]
            avail[slot] = True
        return {
            "x": torch.from_numpy(x),
            "available": torch.from_numpy(avail),
            "layout": torch.arange(L, dtype=torch.int64),  # layout id of each slot of x
            "label": torch.tensor(int(self.store.labels[row]), dtype=torch.int64),
            "index": int(i),
            "store_index": row,
            "sample_id": sid,
        }
