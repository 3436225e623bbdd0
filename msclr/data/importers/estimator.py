"""Per-sample pose-estimator outputs -> a convention of an existing store (the format: msclr.data.importers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ... import skeletons
from ..store import Store, StoreBuilder, open_store
from .common import MM


def _load_sample_array(path: Path, key: str | None) -> np.ndarray:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            names = list(z.keys())
            if not names:
                raise ValueError(f"{path}: empty .npz")
            k = key or names[0]
            if k not in z:
                raise ValueError(f"{path}: no array {k!r} (has {names})")
            return np.asarray(z[k])
    return np.load(path, allow_pickle=False)


def _to_ctvm(arr: np.ndarray, v: int, what: str) -> np.ndarray:
    """(T, V, C) or (T, M, V, C) -> (C, T, V, M) float32."""
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[2] != v:
        raise ValueError(f"{what}: shape {arr.shape}, expected (T, {v}, C) or (T, M, {v}, C)")
    return np.ascontiguousarray(arr.astype(np.float32).transpose(3, 0, 2, 1))


def import_estimator(
    store: str | Path | Store,
    outputs: str | Path,
    convention: str,
    unit: str = "mm",
    key: str | None = None,
    max_persons: int = 2,
    nan: str = "error",
    log: Callable[[str], None] = print,
) -> Store:
    """Add `convention` to a store from ``<outputs>/<sample_id>.npy|.npz`` files.

    Samples without a file are marked unavailable. unit: 'mm' scales by 0.001 (to metres).
    nan: 'error' rejects NaN/inf (naming the file), 'zero' sets those joints to 0.
    """
    store = store if isinstance(store, Store) else open_store(store)
    outputs = Path(outputs)
    if not outputs.is_dir():
        raise FileNotFoundError(f"estimator output directory {outputs} does not exist")
    if unit not in MM:
        raise ValueError(f"unit must be one of {sorted(MM)}, got {unit!r}")
    if nan not in ("error", "zero"):
        raise ValueError(f"nan must be 'error' or 'zero', got {nan!r}")
    conv = skeletons.get(convention)
    files = {}
    for p in sorted(outputs.iterdir()):
        if p.suffix in (".npy", ".npz"):
            files.setdefault(p.stem, p)
    row_of = {s: i for i, s in enumerate(store.sample_ids)}
    unknown = sorted(set(files) - set(row_of))
    loaded, zeroed = {}, 0
    for sid, path in files.items():
        if sid not in row_of:
            continue
        x = _to_ctvm(_load_sample_array(path, key), conv.num_joints, str(path))[..., :max_persons]
        bad = ~np.isfinite(x)
        if bad.any():
            if nan == "error":
                raise ValueError(f"{path}: NaN/inf values (sample {sid!r}); use nan='zero' to zero them")
            x[bad] = 0.0
            zeroed += int(bad.sum())
        loaded[row_of[sid]] = x * np.float32(MM[unit])
    if not loaded:
        raise ValueError(f"{outputs}: no file matches a sample id of store {store.path}")
    c = {x.shape[0] for x in loaded.values()}
    if len(c) != 1:
        raise ValueError(f"{outputs}: samples have different channel counts {sorted(c)}")
    t_max = max(x.shape[1] for x in loaded.values())
    m = max(x.shape[3] for x in loaded.values())
    builder = StoreBuilder.extend(store.path)
    arr = builder.allocate(conv, (len(store), c.pop(), t_max, conv.num_joints, m))
    lengths = np.zeros(len(store), np.int32)
    for row, x in loaded.items():
        arr[row, :, : x.shape[1], :, : x.shape[3]] = x
        lengths[row] = x.shape[1]
    available = np.zeros(len(store), bool)
    available[list(loaded)] = True
    builder.commit(
        conv,
        lengths,
        available,
        unit="m" if unit == "mm" else unit,
        note=f"pose-estimator outputs from {outputs} ({unit}{', scaled to m' if unit == 'mm' else ''})",
    )
    log(f"{convention}: {len(loaded)} of {len(store)} samples from {outputs}")
    if unknown:
        log(f"{len(unknown)} file(s) match no sample id, e.g. {unknown[0]!r}")
    if zeroed:
        log(f"{zeroed} NaN/inf values set to 0")
    return builder.finish()
