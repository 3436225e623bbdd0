"""A "bring your own" folder -> store: FOLDER_LAYOUT describes the folder, `import_folder` reads it."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ... import skeletons
from ...skeletons import Convention
from ..normalization import normalization_joints, pre_normalize
from ..store import Store, StoreBuilder, StoreError, is_store
from .common import MM, _check_finite

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
Kinect v1's spine and shoulder joints (msclr.data.normalization.NORMALIZATION_ROLES).
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


def _labels_header(labels_csv: Path, rows: list[list[str]]) -> list[str]:
    """The header row of labels.csv, checked: sample_id, label, then uniquely named split columns."""
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
    return header


def _label(value: str, where: str) -> int:
    try:
        lab = int(value)
    except ValueError:
        raise ValueError(f"{where}: label {value!r} is not an integer") from None
    if lab < 0:
        raise ValueError(f"{where}: label {lab} is negative (labels are 0, 1, ...)")
    return lab


def _add_to_splits(parts: dict[str, dict[str, list[int]]], split_names, cells, index: int, where: str) -> None:
    """Sample `index` joins the train or test part of each split whose cell names one."""
    for s, value in zip(split_names, cells):
        value = value.strip().lower()
        if value in ("train", "test"):
            parts[s][value].append(index)
        elif value:
            raise ValueError(f"{where}: split {s!r} value {value!r} is not train/test/empty")


def _read_labels(labels_csv: Path) -> tuple[list[str], list[int], dict[str, dict[str, list[int]]], dict[str, int]]:
    """(ids, labels, splits, line of each id) of labels.csv; ValueError naming file:line and field."""
    try:
        with open(labels_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{labels_csv}: cannot read: {_one_line(e)}") from None
    header = _labels_header(labels_csv, rows)
    split_names = header[2:]
    ids, labels, lines = [], [], {}
    parts = {s: {"train": [], "test": []} for s in split_names}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"{labels_csv}:{line}"
        if len(row) != len(header):
            raise ValueError(f"{where}: {len(row)} columns, the header has {len(header)}")
        sid = row[0].strip()
        _check_sample_id(sid, where)
        if sid in lines:
            raise ValueError(f"{where}: sample_id {sid!r} repeats line {lines[sid]}")
        lab = _label(row[1], where)
        _add_to_splits(parts, split_names, row[2:], len(ids), where)
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


def _class_names(classes: Path, labels_csv: Path, ids, labels, lines) -> list[str] | None:
    """classes.txt's names (None without it); ValueError when a label has no name."""
    if not classes.is_file():
        return None
    class_names = [ln.strip() for ln in classes.read_text().splitlines() if ln.strip()]
    worst = max(range(len(ids)), key=lambda i: labels[i])
    if labels[worst] >= len(class_names):
        raise ValueError(
            f"{classes}: {len(class_names)} class names, but {labels_csv}:{lines[ids[worst]]} has label {labels[worst]}"
        )
    return class_names


def _read_samples(
    folder: Path, ids: list[str], conv: Convention, unit: str, max_persons: int, keep_first_persons: bool
) -> tuple[list[np.ndarray], list[tuple[str, int]], list[tuple[str, int]]]:
    """Every sample as (T, M, V, C) float32 in metres (or the unit), at most max_persons persons;
    with the samples whose persons were cut and those with all-zero frames (for the warnings)."""
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
    return samples, cut, zero_frames


def _pack(samples: list[np.ndarray], v: int, joints: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """The store's (N, C, T_max, V, M) array and the lengths; each sample pre-normalised with `joints`."""
    t_max = max(x.shape[0] for x in samples)
    m = max(x.shape[1] for x in samples)
    data = np.zeros((len(samples), samples[0].shape[3], t_max, v, m), np.float32)
    lengths = np.zeros(len(samples), np.int32)
    for i, x in enumerate(samples):
        data[i, :, : x.shape[0], :, : x.shape[1]] = x.transpose(3, 0, 2, 1)
        lengths[i] = x.shape[0]
        if joints:
            data[i, :, : x.shape[0]] = pre_normalize(data[i, :, : x.shape[0]], **joints)
    return data, lengths


def _warn(log: Callable[[str], None], cut, zero_frames, parts, max_persons: int) -> None:
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
    keep_first_persons. normalize: ST-GCN pre-normalisation (msclr.data.normalization.pre_normalize).
    Warnings (all-zero frames, persons cut, splits without a test part) go to `log`.
    """
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
    class_names = _class_names(folder / "classes.txt", labels_csv, ids, labels, lines)
    samples, cut, zero_frames = _read_samples(folder, ids, conv, unit, max_persons, keep_first_persons)
    if joints and samples[0].shape[3] != 3:
        raise ValueError(f"{folder}: --normalize needs (x, y, z) samples, these have C = {samples[0].shape[3]}")
    data, lengths = _pack(samples, conv.num_joints, joints)
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
                source=dict(format="folder", path=str(folder.resolve())),
                coordinates="ST-GCN pre-normalised" if normalize else "as in the files",
            ),
            overwrite=overwrite,
        )
    except StoreError as e:
        raise ValueError(f"{labels_csv}: {e}") from e
    builder.add(conv, data, lengths, unit="m" if unit == "mm" else unit)
    store = builder.finish()
    _warn(log, cut, zero_frames, parts, max_persons)
    return store
