"""Importers of common skeleton dataset formats into the store.

stgcn       st-gcn / CrosSCLR / AimCLR preprocessed data: ``{part}_data_joint.npy`` (or
            ``{part}_data.npy`` / ``{part}_position.npy``), float32 (N, C, T, V, M), with
            ``{part}_label.pkl`` = pickle of (sample names, labels) and, when present,
            ``{part}_num_frame.npy`` (valid frames; otherwise the frames up to the last
            non-zero one). Parts ``train`` and ``val`` become the train/test of one split.
ctrgcn      CTR-GCN / SGN ``.npz``: x_train/x_test (N, T, M*V*C) (NTU: M=2, V=25, C=3, joint-major
            then xyz), y_train/y_test one-hot (N, K) or labels (N,). Read in chunks straight
            from the zip, so a 7 GB array never sits in memory.
pyskl       PySKL / MMAction2 annotation pickle: {'split': {'xsub_train': [...], ...},
            'annotations': [{'frame_dir', 'label', 'keypoint' (M, T, V, C), optional
            'keypoint_score' (M, T, V), 'total_frames'}]}. 2-D keypoints with scores become
            (x, y, score) channels, as ST-GCN does for Kinetics.
estimator   per-sample outputs of a pose estimator for an existing store, matched by sample
            id: ``<dir>/<sample_id>.npy`` (or .npz), (T, V, C) or (T, M, V, C); units mm are
            scaled to metres (MeTRAbs' smplx_42 / berkeley_mhad_43 / smpl_24 are in mm).
folder      "bring your own" data, see `import_folder`.

Pickles are read with an unpickler that only builds plain Python containers and numpy
arrays, so a pickle from elsewhere cannot run code.
"""

from __future__ import annotations

import csv
import io
import pickle
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import skeletons
from ..skeletons import Convention
from .store import Store, StoreBuilder, StoreError, open_store, valid_lengths

MM = {"m": 1.0, "mm": 0.001, "px": 1.0}


# ----------------------------------------------------------------------------- helpers


class _SafeUnpickler(pickle.Unpickler):
    """Builds builtins containers and numpy arrays/scalars only."""

    ALLOWED = {
        ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
        ("builtins", "frozenset"), ("builtins", "str"), ("builtins", "bytes"), ("builtins", "int"),
        ("builtins", "float"), ("builtins", "complex"), ("builtins", "bool"), ("builtins", "slice"),
        ("collections", "OrderedDict"), ("collections", "defaultdict"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
    }  # fmt: skip

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "numpy" and name.endswith("dtype")):
            return super().find_class(module, name)
        if module in ("numpy", "numpy.dtypes") and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a pickle (only data is allowed)")


def load_pickle(path: str | Path):
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _SafeUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: {e}") from e
    except (EOFError, OSError) as e:
        raise ValueError(f"{path}: cannot read the pickle: {e}") from e


def _convention_for(v: int, given: str | None, what: str) -> Convention:
    if given:
        conv = skeletons.get(given)
        if conv.num_joints != v:
            raise ValueError(f"{what}: {v} joints, convention {conv.name!r} has {conv.num_joints}")
        return conv
    guess = {25: "ntu25", 20: "kinect_v1_20", 18: "openpose18", 17: "coco17", 24: "smpl24", 42: "smplx42"}
    if v not in guess:
        raise ValueError(f"{what}: {v} joints; name the convention with --convention")
    return skeletons.get(guess[v])


def _check_finite(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{what}: NaN/inf value at index {tuple(int(i) for i in bad)}")


def _sample_id(name) -> str:
    name = str(name)
    for ext in (".skeleton", ".npy", ".avi", ".mp4"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


# ----------------------------------------------------------------------------- st-gcn / AimCLR


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


# ----------------------------------------------------------------------------- CTR-GCN .npz


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


# ----------------------------------------------------------------------------- PySKL


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


# ----------------------------------------------------------------------------- estimator outputs


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


# ----------------------------------------------------------------------------- bring your own


def import_folder(
    folder: str | Path,
    out: str | Path,
    convention: str | None = None,
    unit: str | None = None,
    max_persons: int = 2,
    dataset: str | None = None,
    overwrite: bool = False,
) -> Store:
    """ "Bring your own" dataset. Layout of `folder`::

        convention.json       the skeleton (msclr.skeletons file format: name, joints, bones,
                              centre, flip_pairs, unit, ...); or pass a built-in name as
                              `convention` and leave this file out
        labels.csv            header row, then one row per sample: sample_id,label[,<split>...]
                              where each extra column is a split named by its header whose
                              values are 'train' or 'test' (or empty: in neither part)
        classes.txt           optional: class names, one per line (line i = label i)
        samples/<sample_id>.npy   float array (T, V, C) or (T, M, V, C)

    Coordinates in 'mm' (convention or `unit`) are scaled to metres.
    """
    folder = Path(folder)
    if convention:
        conv = skeletons.get(convention)
    elif (folder / "convention.json").is_file():
        conv = skeletons.load_file(folder / "convention.json")
    else:
        raise FileNotFoundError(f"{folder}: no convention.json (or pass a built-in convention name)")
    unit = unit or conv.unit
    if unit not in MM:
        raise ValueError(f"unit must be one of {sorted(MM)}, got {unit!r}")
    labels_csv = folder / "labels.csv"
    if not labels_csv.is_file():
        raise FileNotFoundError(f"{folder}: no labels.csv")
    with open(labels_csv, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [h.strip() for h in rows[0][:2]] != ["sample_id", "label"]:
        raise ValueError(f"{labels_csv}: the header must start with 'sample_id,label'")
    split_names = [h.strip() for h in rows[0][2:]]
    ids, labels, parts = [], [], {s: {"train": [], "test": []} for s in split_names}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(rows[0]):
            raise ValueError(f"{labels_csv}:{line}: {len(row)} columns, the header has {len(rows[0])}")
        sid = row[0].strip()
        try:
            lab = int(row[1])
        except ValueError:
            raise ValueError(f"{labels_csv}:{line}: label {row[1]!r} is not an integer") from None
        for s, value in zip(split_names, row[2:]):
            value = value.strip().lower()
            if value in ("train", "test"):
                parts[s][value].append(len(ids))
            elif value:
                raise ValueError(f"{labels_csv}:{line}: split {s!r} value {value!r} is not train/test/empty")
        ids.append(sid)
        labels.append(lab)
    class_names = None
    if (folder / "classes.txt").is_file():
        class_names = [ln.strip() for ln in (folder / "classes.txt").read_text().splitlines() if ln.strip()]
    samples = []
    for sid in ids:
        path = folder / "samples" / f"{sid}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (sample {sid!r} of labels.csv)")
        x = _to_ctvm(np.load(path, allow_pickle=False), conv.num_joints, str(path))[..., :max_persons]
        _check_finite(x, str(path))
        samples.append(x * np.float32(MM[unit]))
    cs = {x.shape[0] for x in samples}
    if len(cs) != 1:
        raise ValueError(f"{folder}: samples have different channel counts {sorted(cs)}")
    t_max = max(x.shape[1] for x in samples)
    m = max(x.shape[3] for x in samples)
    data = np.zeros((len(ids), cs.pop(), t_max, conv.num_joints, m), np.float32)
    lengths = np.zeros(len(ids), np.int32)
    for i, x in enumerate(samples):
        data[i, :, : x.shape[1], :, : x.shape[3]] = x
        lengths[i] = x.shape[1]
    try:
        builder = StoreBuilder.create(
            out,
            dataset=dataset or folder.name,
            sample_ids=ids,
            labels=np.array(labels, np.int64),
            class_names=class_names,
            splits={s: {k: np.array(v, np.int64) for k, v in p.items()} for s, p in parts.items()},
            extra=dict(source=dict(format="folder", path=str(folder.resolve()))),
            overwrite=overwrite,
        )
    except StoreError as e:
        raise ValueError(f"{labels_csv}: {e}") from e
    builder.add(conv, data, lengths, unit="m" if unit == "mm" else unit)
    return builder.finish()
