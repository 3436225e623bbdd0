"""PySKL / MMAction2 annotation pickle -> store (the format: msclr.data.importers)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..store import Store, StoreBuilder
from .common import _check_finite, _convention_for, load_pickle


def import_pyskl(
    pkl: str | Path,
    out: str | Path,
    convention: str | None = None,
    max_persons: int = 2,
    unit: str | None = None,
    dataset: str | None = None,
    num_classes: int | None = None,
    overwrite: bool = False,
) -> Store:
    pkl = Path(pkl)
    obj = load_pickle(pkl)
    if not isinstance(obj, dict) or "annotations" not in obj:
        raise ValueError(f"{pkl}: expected a dict with 'annotations' (and 'split')")
    anns = obj["annotations"]
    if not anns:
        raise ValueError(f"{pkl}: no annotations")
    ids, labels, samples = [], [], []
    for i, a in enumerate(anns):
        try:
            kp = np.asarray(a["keypoint"], np.float32)
            ids.append(str(a["frame_dir"]))
            labels.append(int(a["label"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{pkl}: annotation {i} lacks frame_dir/label/keypoint ({e})") from None
        if kp.ndim != 4:
            raise ValueError(f"{pkl}: annotation {ids[-1]!r}: keypoint shape {kp.shape}, expected (M, T, V, C)")
        if kp.shape[-1] == 2 and a.get("keypoint_score") is not None:
            score = np.asarray(a["keypoint_score"], np.float32)
            if score.shape != kp.shape[:3]:
                raise ValueError(f"{pkl}: annotation {ids[-1]!r}: keypoint_score shape {score.shape} != {kp.shape[:3]}")
            kp = np.concatenate([kp, score[..., None]], -1)
        _check_finite(kp, f"{pkl}: annotation {ids[-1]!r}")
        samples.append(kp[:max_persons])
    shapes = {s.shape[2:] for s in samples}
    if len(shapes) != 1:
        raise ValueError(f"{pkl}: annotations have different (V, C): {sorted(shapes)}")
    v, c = shapes.pop()
    conv = _convention_for(v, convention, str(pkl))
    t_max = max(s.shape[1] for s in samples)
    m = max(s.shape[0] for s in samples)
    index = {sid: i for i, sid in enumerate(ids)}
    if len(index) != len(ids):
        raise ValueError(f"{pkl}: duplicate frame_dir values")
    splits: dict[str, dict[str, np.ndarray]] = {}
    for key, members in (obj.get("split") or {}).items():
        mt = re.match(r"^(.*)_(train|val|test)$", key)
        name, part = (mt.group(1), "train" if mt.group(2) == "train" else "test") if mt else (key, "all")
        missing = [s for s in members if s not in index]
        if missing:
            raise ValueError(f"{pkl}: split {key!r} names unknown samples, e.g. {missing[0]!r}")
        splits.setdefault(name, {})[part] = np.array([index[s] for s in members], np.int64)
    data = np.zeros((len(ids), c, t_max, v, m), np.float32)
    lengths = np.zeros(len(ids), np.int32)
    for i, s in enumerate(samples):
        data[i, :, : s.shape[1], :, : s.shape[0]] = s.transpose(3, 1, 2, 0)
        lengths[i] = s.shape[1]
    builder = StoreBuilder.create(
        out,
        dataset=dataset or pkl.stem,
        sample_ids=ids,
        labels=np.array(labels),
        num_classes=num_classes or max(labels) + 1,
        splits=splits,
        extra=dict(source=dict(format="pyskl", path=str(pkl.resolve()))),
        overwrite=overwrite,
    )
    channels = ["x", "y", "score"] if c == 3 and next(iter(anns)).get("keypoint_score") is not None else None
    builder.add(conv, data, lengths, unit=unit or ("px" if c != 3 or channels else conv.unit), channels=channels)
    return builder.finish()
