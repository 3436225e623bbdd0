"""CTR-GCN / SGN .npz -> store, read in chunks straight from the zip (the format: msclr.data.importers)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from ... import skeletons
from ..store import Store, StoreBuilder, valid_lengths
from .common import _check_finite


def _npz_header(stream, key: str):
    """(shape, dtype, fortran_order) of an .npy stream, leaving it at the first data byte."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"{key}: .npy format version {version} is not supported")
    if dtype.hasobject:
        raise ValueError(f"{key}: object arrays are not supported")
    return shape, dtype, fortran


def _npz_open(zf: zipfile.ZipFile, key: str):
    name = key + ".npy"
    if name not in zf.namelist():
        raise KeyError(key)
    return zf.open(name)


def _read_rows(stream, dtype, row_shape, count) -> np.ndarray:
    nbytes = count * int(np.prod(row_shape)) * dtype.itemsize
    buf = stream.read(nbytes)
    if len(buf) != nbytes:
        raise ValueError("the array ended early (truncated .npz)")
    return np.frombuffer(buf, dtype=dtype).reshape((count, *row_shape))


def import_ctrgcn(
    npz: str | Path,
    out: str | Path,
    split: str | None = None,
    convention: str = "ntu25",
    persons: int = 2,
    unit: str | None = None,
    dataset: str | None = None,
    overwrite: bool = False,
    chunk: int = 512,
) -> Store:
    npz = Path(npz)
    if split is None:
        stem = npz.stem.lower()
        split = next((s for k, s in (("csub", "xsub"), ("cset", "xset"), ("cs", "xsub"), ("cv", "xview"))
                      if re.search(rf"(^|_){k}($|_)", stem)), "split")  # fmt: skip
    conv = skeletons.get(convention)
    with zipfile.ZipFile(npz) as zf:
        parts = {}
        for part in ("train", "test"):
            try:
                with _npz_open(zf, f"x_{part}") as stream:
                    xs, xdt, xfortran = _npz_header(stream, f"{npz}: x_{part}")
                with _npz_open(zf, f"y_{part}") as stream:
                    y = np.load(io.BytesIO(stream.read()), allow_pickle=False)
            except KeyError as e:
                raise ValueError(f"{npz}: no {e.args[0]} array (expected x_train, y_train, x_test, y_test)") from None
            if len(xs) != 3 or xfortran:
                raise ValueError(f"{npz}: x_{part} must be a C-order (N, T, M*V*C) array, got shape {xs}")
            if xs[2] % (persons * conv.num_joints) != 0:
                raise ValueError(f"{npz}: x_{part} has {xs[2]} values per frame, not {persons} x {conv.num_joints} x C")
            lab = y.argmax(1) if y.ndim == 2 else y.reshape(-1)
            if lab.shape[0] != xs[0]:
                raise ValueError(f"{npz}: y_{part} has {lab.shape[0]} labels for {xs[0]} samples")
            parts[part] = (xs, xdt, lab.astype(np.int64), y.shape[1] if y.ndim == 2 else None)
        (ntr, t, f), (nte, t2, _) = parts["train"][0], parts["test"][0]
        if t2 != t:
            raise ValueError(f"{npz}: train and test have different frame counts ({t}, {t2})")
        c = f // (persons * conv.num_joints)
        n = ntr + nte
        labels = np.concatenate([parts["train"][2], parts["test"][2]])
        k = parts["train"][3] or int(labels.max()) + 1
        ids = [f"train_{i:06d}" for i in range(ntr)] + [f"test_{i:06d}" for i in range(nte)]
        builder = StoreBuilder.create(
            out,
            dataset=dataset or npz.stem,
            sample_ids=ids,
            labels=labels,
            num_classes=k,
            splits={split: {"train": np.arange(ntr), "test": np.arange(ntr, n)}},
            extra=dict(source=dict(format="ctrgcn", path=str(npz.resolve()))),
            overwrite=overwrite,
        )
        arr = builder.allocate(conv, (n, c, t, conv.num_joints, persons))
        lengths = np.zeros(n, np.int32)
        row = 0
        for part in ("train", "test"):
            xs, xdt, _, _ = parts[part]
            with _npz_open(zf, f"x_{part}") as stream:
                _npz_header(stream, f"{npz}: x_{part}")
                for s in range(0, xs[0], chunk):
                    cnt = min(chunk, xs[0] - s)
                    block = _read_rows(stream, xdt, xs[1:], cnt).astype(np.float32)
                    _check_finite(block, f"{npz} x_{part} rows {s}..{s + cnt - 1}")
                    # (n, T, M*V*C), persons then joints then xyz -> (n, C, T, V, M)
                    block = block.reshape(cnt, t, persons, conv.num_joints, c).transpose(0, 4, 1, 3, 2)
                    arr[row : row + cnt] = block
                    lengths[row : row + cnt] = valid_lengths(block)
                    row += cnt
    builder.commit(conv, lengths, unit=unit or conv.unit, note="imported from a CTR-GCN .npz")
    return builder.finish()
