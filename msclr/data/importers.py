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
from .store import Store, StoreBuilder, StoreError, is_store, open_store, valid_lengths

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

FOLDER_LAYOUT = """\
Layout of a "bring your own" folder (every path relative to the folder):

  labels.csv            UTF-8 CSV. Header row: sample_id,label[,<split>...], then one row per
                        sample. sample_id: a plain file name stem (no '/', '\\', '..', control
                        characters); label: an integer >= 0; each extra column is a split named
                        by its header, with 'train', 'test' or an empty cell (in neither part).
                        A split needs at least one 'train' row; one without 'test' rows is kept
                        for pre-training and refused by evaluation. Blank lines are skipped.
  samples/<sample_id>.npy
                        one array per row of labels.csv, written by numpy.save (no pickles):
                        shape (T, V, C) for one person or (T, M, V, C), T >= 1 frames, V the
                        convention's joints, C channels (the same C for every sample; 3 = x, y, z);
                        dtype float16/32/64 or integer (stored as float32). Complex, object and
                        other dtypes, NaN/inf, T = 0, M = 0 and arrays whose values are all 0 are
                        refused; all-zero frames are kept and counted in a warning. Files must lie
                        inside the folder (ids and symlinks that leave it are refused).
  convention.json | convention.yaml | convention.yml
                        the skeleton (msclr.skeletons file format: name, joints, bones, centre,
                        flip_pairs, unit, description); only one of them. Leave it out when a
                        built-in convention is named with --convention.
  classes.txt           optional: class names, one per line (line i = label i).

Persons: a sample with more persons holding data than --persons (M) is an error, unless
--keep-first-persons keeps the first M (the count of samples cut is reported). Coordinates
in 'mm' (the convention's unit or --unit) are scaled to metres. --normalize applies ST-GCN's
pre-normalisation (as `prepare ntu` / `utd-mhad --normalize`) to conventions with NTU's or
Kinect v1's spine and shoulder joints (msclr.data.ntu.NORMALIZATION_ROLES).
"""

CONVENTION_FILES = ("convention.json", "convention.yaml", "convention.yml")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def folder_convention(folder: str | Path, convention: str | None = None) -> Convention:
    """The convention of a "bring your own" folder: `convention` (a built-in name) or its file."""
    folder = Path(folder)
    if convention:
        return skeletons.get(convention)
    present = [folder / n for n in CONVENTION_FILES if (folder / n).is_file()]
    if len(present) > 1:
        raise ValueError(f"{folder}: more than one convention file ({', '.join(p.name for p in present)}); keep one")
    if not present:
        raise FileNotFoundError(
            f"{folder}: no {' / '.join(CONVENTION_FILES)} (or pass a built-in convention with --convention)"
        )
    try:
        return skeletons.load_file(present[0])
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{present[0]}: cannot read: {_one_line(e)}") from None


_BAD_ID = re.compile(r"[/\\\x00-\x1f\x7f]")


def _check_sample_id(sid: str, where: str) -> None:
    if not sid:
        raise ValueError(f"{where}: empty sample_id")
    if _BAD_ID.search(sid) or sid in (".", "..") or Path(sid).is_absolute():
        raise ValueError(
            f"{where}: sample_id {sid!r} is not a plain name (no '/', '\\', '..' or control characters): "
            "samples are read from samples/<sample_id>.npy inside the folder only"
        )


def _read_labels(labels_csv: Path) -> tuple[list[str], list[int], dict[str, dict[str, list[int]]], dict[str, int]]:
    """(ids, labels, splits, line of each id) of labels.csv; ValueError naming file:line and field."""
    try:
        with open(labels_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{labels_csv}: cannot read: {_one_line(e)}") from None
    if not rows or not "".join(rows[0]).strip():
        raise ValueError(
            f"{labels_csv}: empty file; expected a header 'sample_id,label[,<split>...]' and one row per sample"
        )
    header = [h.strip() for h in rows[0]]
    if header[:2] != ["sample_id", "label"]:
        raise ValueError(f"{labels_csv}: the header must start with 'sample_id,label', got {','.join(header)!r}")
    split_names = header[2:]
    for k, name in enumerate(split_names):
        if not name or name in split_names[:k] or name in ("sample_id", "label"):
            raise ValueError(f"{labels_csv}:1: split column {k + 3} has an empty, repeated or reserved name {name!r}")
    ids, labels, lines = [], [], {}
    parts = {s: {"train": [], "test": []} for s in split_names}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(header):
            raise ValueError(f"{labels_csv}:{line}: {len(row)} columns, the header has {len(header)}")
        sid = row[0].strip()
        _check_sample_id(sid, f"{labels_csv}:{line}")
        if sid in lines:
            raise ValueError(f"{labels_csv}:{line}: sample_id {sid!r} repeats line {lines[sid]}")
        try:
            lab = int(row[1])
        except ValueError:
            raise ValueError(f"{labels_csv}:{line}: label {row[1]!r} is not an integer") from None
        if lab < 0:
            raise ValueError(f"{labels_csv}:{line}: label {lab} is negative (labels are 0, 1, ...)")
        for s, value in zip(split_names, row[2:]):
            value = value.strip().lower()
            if value in ("train", "test"):
                parts[s][value].append(len(ids))
            elif value:
                raise ValueError(f"{labels_csv}:{line}: split {s!r} value {value!r} is not train/test/empty")
        lines[sid] = line
        ids.append(sid)
        labels.append(lab)
    if not ids:
        raise ValueError(f"{labels_csv}: a header but no sample rows")
    for s, p in parts.items():
        if not p["train"]:
            raise ValueError(f"{labels_csv}: split {s!r} has no 'train' row (every split needs a train part)")
    return ids, labels, parts, lines


def _read_sample(path: Path, root: Path, sid: str, v: int) -> np.ndarray:
    """One sample file -> (T, M, V, C) float32; ValueError naming the file, sample and field."""
    what = f"{path} (sample {sid!r})"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (sample {sid!r} of labels.csv)")
    if not path.resolve().is_relative_to(root):
        raise ValueError(f"{what}: resolves to {path.resolve()}, outside {root} (a symlink?); refusing to read it")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # truncated, pickled, object arrays, not .npy
        raise ValueError(f"{what}: not a readable .npy array ({_one_line(e)})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive under a .npy name
        if hasattr(arr, "close"):
            arr.close()
        raise ValueError(f"{what}: a .npz archive, not one .npy array")
    if arr.dtype.kind not in "fiu":
        kind = {"c": "complex", "O": "object", "b": "bool", "U": "string", "S": "bytes", "V": "structured"}
        raise ValueError(
            f"{what}: dtype {arr.dtype} ({kind.get(arr.dtype.kind, 'not a number')}); expected float or integer values"
        )
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"{what}: shape {arr.shape}; expected (T, V, C) or (T, M, V, C)")
    t, m, vv, c = arr.shape
    if vv != v:
        raise ValueError(f"{what}: shape {arr.shape}: V = {vv} joints, the convention has {v}")
    if t == 0:
        raise ValueError(f"{what}: shape {arr.shape}: no frames (T = 0)")
    if m == 0 or c == 0:
        raise ValueError(f"{what}: shape {arr.shape}: empty ({'M' if m == 0 else 'C'} = 0)")
    arr = arr.astype(np.float32)
    _check_finite(arr, what)
    if not arr.any():
        raise ValueError(f"{what}: every value is 0 (an empty sequence)")
    return arr


def import_folder(
    folder: str | Path,
    out: str | Path,
    convention: str | None = None,
    unit: str | None = None,
    max_persons: int = 2,
    dataset: str | None = None,
    overwrite: bool = False,
    keep_first_persons: bool = False,
    normalize: bool = False,
    log: Callable[[str], None] = print,
) -> Store:
    """ "Bring your own" dataset (FOLDER_LAYOUT describes the folder).

    Every error is a ValueError (FileNotFoundError for missing files) naming the file, and the
    line of labels.csv or the sample id and field; nothing is written before all samples read.
    max_persons: M of the store; a sample with more persons holding data is an error unless
    keep_first_persons. normalize: ST-GCN pre-normalisation (msclr.data.ntu.pre_normalize).
    Warnings (all-zero frames, persons cut, splits without a test part) go to `log`.
    """
    from .ntu import normalization_joints, pre_normalize

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such directory")
    if max_persons < 1:
        raise ValueError(f"--persons must be >= 1, got {max_persons}")
    if is_store(out) and not overwrite:
        raise ValueError(f"{out} already holds a store (overwrite it with --overwrite)")
    conv = folder_convention(folder, convention)
    unit = unit or conv.unit
    if unit not in MM:
        raise ValueError(f"unit must be one of {sorted(MM)}, got {unit!r}")
    joints = normalization_joints(conv) if normalize else None
    labels_csv = folder / "labels.csv"
    if not labels_csv.is_file():
        raise FileNotFoundError(f"{folder}: no labels.csv")
    ids, labels, parts, lines = _read_labels(labels_csv)
    class_names = None
    classes = folder / "classes.txt"
    if classes.is_file():
        class_names = [ln.strip() for ln in classes.read_text().splitlines() if ln.strip()]
        worst = max(range(len(ids)), key=lambda i: labels[i])
        if labels[worst] >= len(class_names):
            raise ValueError(
                f"{classes}: {len(class_names)} class names, but {labels_csv}:{lines[ids[worst]]} "
                f"has label {labels[worst]}"
            )
    root = folder.resolve()
    samples, cut, zero_frames = [], [], []
    for sid in ids:
        path = folder / "samples" / f"{sid}.npy"
        x = _read_sample(path, root, sid, conv.num_joints)
        filled = x.reshape(x.shape[0], x.shape[1], -1).any(axis=(0, 2))  # persons holding data
        persons = int(np.flatnonzero(filled)[-1]) + 1
        if persons > max_persons:
            if not keep_first_persons:
                raise ValueError(
                    f"{path} (sample {sid!r}): {persons} persons, more than --persons {max_persons} "
                    "(raise --persons, or --keep-first-persons to keep the first ones)"
                )
            cut.append((sid, persons))
        x = x[:, : min(persons, max_persons)]
        empty = ~x.reshape(x.shape[0], -1).any(axis=1)
        if empty.any():
            zero_frames.append((sid, int(empty.sum())))
        if samples and x.shape[3] != samples[0].shape[3]:
            raise ValueError(
                f"{path} (sample {sid!r}): C = {x.shape[3]} channels, sample {ids[0]!r} has {samples[0].shape[3]}"
            )
        samples.append(x * np.float32(MM[unit]))
    if joints and samples[0].shape[3] != 3:
        raise ValueError(f"{folder}: --normalize needs (x, y, z) samples, these have C = {samples[0].shape[3]}")
    t_max = max(x.shape[0] for x in samples)
    m = max(x.shape[1] for x in samples)
    data = np.zeros((len(ids), samples[0].shape[3], t_max, conv.num_joints, m), np.float32)
    lengths = np.zeros(len(ids), np.int32)
    for i, x in enumerate(samples):
        data[i, :, : x.shape[0], :, : x.shape[1]] = x.transpose(3, 0, 2, 1)
        lengths[i] = x.shape[0]
        if joints:
            data[i, :, : x.shape[0]] = pre_normalize(data[i, :, : x.shape[0]], **joints)
    try:
        builder = StoreBuilder.create(
            out,
            dataset=dataset or folder.name,
            sample_ids=ids,
            labels=np.array(labels, np.int64),
            class_names=class_names,
            num_classes=len(class_names) if class_names else None,
            splits={s: {k: np.array(v, np.int64) for k, v in p.items()} for s, p in parts.items()},
            extra=dict(
                source=dict(format="folder", path=str(root)),
                coordinates="ST-GCN pre-normalised" if normalize else "as in the files",
            ),
            overwrite=overwrite,
        )
    except StoreError as e:
        raise ValueError(f"{labels_csv}: {e}") from e
    builder.add(conv, data, lengths, unit="m" if unit == "mm" else unit)
    store = builder.finish()
    if cut:
        log(
            f"warning: {len(cut)} sample(s) had more than {max_persons} persons; kept the first {max_persons} "
            f"(e.g. {cut[0][0]!r} had {cut[0][1]})"
        )
    if zero_frames:
        log(
            f"warning: {sum(n for _, n in zero_frames)} all-zero frame(s) in {len(zero_frames)} sample(s), kept "
            f"as frames (e.g. {zero_frames[0][0]!r}: {zero_frames[0][1]})"
        )
    for s, p in parts.items():
        if not p["test"]:
            log(f"warning: split {s!r} has no 'test' row: usable for pre-training, refused by evaluation")
    return store
