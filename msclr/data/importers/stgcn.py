"""st-gcn / CrosSCLR / AimCLR preprocessed data -> store (the format: msclr.data.importers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..store import Store, StoreBuilder, valid_lengths
from .common import _check_finite, _convention_for, load_pickle


def _sample_id(name) -> str:
    name = str(name)
    for ext in (".skeleton", ".npy", ".avi", ".mp4"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _stgcn_part_files(d: Path, part: str) -> tuple[Path, Path, Path | None]:
    for cand in (f"{part}_data_joint.npy", f"{part}_data.npy", f"{part}_position.npy"):
        if (d / cand).is_file():
            data = d / cand
            break
    else:
        raise FileNotFoundError(f"{d}: no {part}_data_joint.npy / {part}_data.npy / {part}_position.npy")
    label = d / f"{part}_label.pkl"
    if not label.is_file():
        raise FileNotFoundError(f"{d}: no {part}_label.pkl")
    frames = d / f"{part}_num_frame.npy"
    return data, label, frames if frames.is_file() else None


def import_stgcn(
    data_dir: str | Path,
    out: str | Path,
    split: str = "xsub",
    parts: Sequence[str] = ("train", "val"),
    convention: str | None = None,
    unit: str | None = None,
    dataset: str | None = None,
    num_classes: int | None = None,
    overwrite: bool = False,
    chunk: int = 1024,
) -> Store:
    d = Path(data_dir)
    arrays, names, labels, frames = [], [], [], []
    for part in parts:
        data_file, label_file, frame_file = _stgcn_part_files(d, part)
        arr = np.load(data_file, mmap_mode="r")
        if arr.ndim != 5:
            raise ValueError(f"{data_file}: expected (N, C, T, V, M), got shape {arr.shape}")
        lab = load_pickle(label_file)
        if not (isinstance(lab, (tuple, list)) and len(lab) == 2):
            raise ValueError(f"{label_file}: expected a pickled (sample_names, labels) pair")
        part_names, part_labels = [_sample_id(n) for n in lab[0]], np.asarray(lab[1], dtype=np.int64).reshape(-1)
        if len(part_names) != arr.shape[0] or part_labels.shape[0] != arr.shape[0]:
            raise ValueError(
                f"{label_file}: {len(part_names)} names / {len(part_labels)} labels for {arr.shape[0]} samples"
            )
        nf = np.load(frame_file).astype(np.int64).reshape(-1) if frame_file else None
        if nf is not None and nf.shape[0] != arr.shape[0]:
            raise ValueError(f"{frame_file}: {nf.shape[0]} entries for {arr.shape[0]} samples")
        arrays.append(arr)
        names.append(part_names)
        labels.append(part_labels)
        frames.append(nf)
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"{d}: the parts have different sample shapes {sorted(shapes)}")
    n_c, t, v, m = arrays[0].shape[1:]
    conv = _convention_for(v, convention, str(d))
    all_names = [n for part in names for n in part]
    all_labels = np.concatenate(labels)
    offsets = np.cumsum([0] + [a.shape[0] for a in arrays])
    split_idx = {}
    for k, part in enumerate(parts):
        split_idx["train" if k == 0 else ("test" if part in ("val", "test") else part)] = np.arange(
            offsets[k], offsets[k + 1]
        )
    builder = StoreBuilder.create(
        out,
        dataset=dataset or d.name,
        sample_ids=all_names,
        labels=all_labels,
        num_classes=num_classes or int(all_labels.max()) + 1,
        splits={split: split_idx},
        extra=dict(source=dict(format="stgcn", path=str(d.resolve()), parts=list(parts))),
        overwrite=overwrite,
    )
    out_arr = builder.allocate(conv, (len(all_names), n_c, t, v, m))
    lengths = np.zeros(len(all_names), np.int32)
    for k, arr in enumerate(arrays):
        for s in range(0, arr.shape[0], chunk):
            block = np.asarray(arr[s : s + chunk], dtype=np.float32)
            _check_finite(block, f"{d} part {parts[k]!r} samples {s}..{s + block.shape[0] - 1}")
            out_arr[offsets[k] + s : offsets[k] + s + block.shape[0]] = block
            if frames[k] is None:
                lengths[offsets[k] + s : offsets[k] + s + block.shape[0]] = valid_lengths(block)
        if frames[k] is not None:
            lengths[offsets[k] : offsets[k + 1]] = np.clip(frames[k], 0, t)
    builder.commit(conv, lengths, unit=unit or conv.unit, note="imported from st-gcn/AimCLR preprocessed data")
    return builder.finish()
