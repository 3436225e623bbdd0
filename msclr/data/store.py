"""The multi-skeleton store: one directory per dataset (docs/architecture.md section 6).

Layout of a store directory::

    meta.json                   everything small: format version, dataset name, sample ids,
                                labels, class names, per-sample info (subject, camera, ...),
                                splits, and one entry per convention
    <conv>.npy                  float32 (N, C, T_max, V_l, M), memory-mappable
    <conv>.lengths.npy          int32 (N,): valid frames of each sample in that convention
    <conv>.available.npy        bool (N,): False where the convention is missing for a sample
    conventions/<conv>.json     only for conventions that msclr.skeletons does not know
                                (user-defined or derived ones); `open_store` registers them

Every convention array is aligned by sample index (row i of every array is sample_ids[i]).
A convention entry in meta.json says its unit, channels and, for derived conventions,
``derived_from`` (the source convention) and ``derivation`` (the joint map used).

Every file is written atomically (a temporary file in the same directory, then
`os.replace`), and meta.json is written last, so a store is either complete or not
opened at all. `StoreBuilder` writes a new store or adds conventions to an existing one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import skeletons
from ..skeletons import Convention, ConventionError

FORMAT = "msclr-store"
FORMAT_VERSION = 1
META = "meta.json"


class StoreError(ValueError):
    """A store is missing, malformed or inconsistent (the message names the file)."""


# ----------------------------------------------------------------------------- atomic files


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write a file atomically: readers see the old file or the new one, never a part.

    durable=True also fsyncs, so the new file survives a power cut once this returns.
    """
    path = Path(path)
    tmp = _tmp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


def atomic_write_json(path: str | Path, obj: Any, durable: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode(), durable)


def atomic_save_npy(path: str | Path, array: np.ndarray, durable: bool = True) -> None:
    path = Path(path)
    tmp = _tmp_name(path)
    with open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


class AtomicArray:
    """A .npy file filled in place through a memmap, renamed into place by `commit`.

    For arrays too large for memory (NTU: N x 3 x 300 x 25 x 2 float32 is ~10 GB).
    """

    def __init__(self, path: str | Path, shape: Sequence[int], dtype=np.float32, durable: bool = True):
        self.path = Path(path)
        self.durable = durable
        self.tmp = _tmp_name(self.path)
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=dtype, shape=tuple(shape))

    def commit(self) -> None:
        self.array.flush()
        del self.array
        if self.durable:
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        if self.durable:
            _fsync_dir(self.path.parent)

    def abort(self) -> None:
        self.array = None
        self.tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- conventions


def _load_convention(spec: dict, where: str) -> Convention:
    """A convention stored in a store: built-in names must match, others get registered."""
    conv = skeletons.from_dict(spec, where=where)
    name = conv.name
    if name in skeletons.available():
        known = skeletons.get(name)
        if _same_convention(known, conv):
            return known
        raise ConventionError(
            f"{where}: convention {name!r} differs from the one already known under that name "
            "(a built-in or one registered by another store); rename it in one of them"
        )
    return skeletons.register(conv)


def _same_convention(a: Convention, b: Convention) -> bool:
    return (a.joints, a.bones, a.centre, a.flip) == (b.joints, b.bones, b.centre, b.flip)


def _is_builtin(name: str) -> bool:
    from ..skeletons.builtin import BUILTIN_SPECS

    return name in BUILTIN_SPECS


# ----------------------------------------------------------------------------- reading


class Store:
    """A store opened for reading. Arrays are memory-mapped lazily, once per process.

    Safe to pickle (DataLoader workers with spawn): open memmaps are dropped and reopened
    in the worker on first use.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.is_file():
            raise StoreError(f"{self.path} is not a msclr store (no {META}; was preparation finished?)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise StoreError(f"{meta_path}: cannot parse: {e}") from e
        if meta.get("format") != FORMAT:
            raise StoreError(f"{meta_path}: not a msclr store (format={meta.get('format')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise StoreError(
                f"{meta_path}: store format version {meta.get('format_version')} is not supported "
                f"(this msclr reads version {FORMAT_VERSION})"
            )
        self.meta: dict[str, Any] = meta
        self.sample_ids: list[str] = list(meta["sample_ids"])
        n = len(self.sample_ids)
        self.labels = np.asarray(meta["labels"], dtype=np.int64)
        if self.labels.shape != (n,):
            raise StoreError(f"{meta_path}: {len(self.labels)} labels for {n} samples")
        self.conventions: list[str] = list(meta["convention_order"])
        self.splits: dict[str, dict[str, np.ndarray]] = {
            name: {part: np.asarray(idx, dtype=np.int64) for part, idx in parts.items()}
            for name, parts in meta.get("splits", {}).items()
        }
        for name, parts in self.splits.items():
            for part, idx in parts.items():
                if idx.size and (idx.min() < 0 or idx.max() >= n):
                    raise StoreError(f"{meta_path}: split {name}/{part} has indices outside 0..{n - 1}")
        self.sample_info: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in meta.get("sample_info", {}).items()}
        self._conventions: dict[str, Convention] = {}
        for name in self.conventions:
            entry = self._entry(name)
            cfile = entry.get("convention_file")
            if cfile:
                spec_path = self.path / cfile
                try:
                    spec = json.loads(spec_path.read_text())
                except (OSError, json.JSONDecodeError) as e:
                    raise StoreError(f"{spec_path}: cannot read the convention: {e}") from e
                self._conventions[name] = _load_convention(spec, str(spec_path))
            else:
                try:
                    self._conventions[name] = skeletons.get(name)
                except ConventionError as e:
                    raise StoreError(f"{meta_path}: convention {name!r}: {e}") from e
        self._cache: dict[str, Any] = {}
        self._pid = os.getpid()

    # -- pickling: never ship open memmaps to another process
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._pid = os.getpid()
        # conventions that were registered in the parent must exist in this process too
        for name, conv in self._conventions.items():
            if name not in skeletons.available():
                skeletons.register(conv)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __repr__(self) -> str:
        return (
            f"Store({str(self.path)!r}, dataset={self.meta.get('dataset')!r}, N={len(self)}, "
            f"classes={self.num_classes}, conventions={self.conventions})"
        )

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def class_names(self) -> list[str] | None:
        return self.meta.get("class_names")

    def _entry(self, name: str) -> dict[str, Any]:
        try:
            return self.meta["conventions"][name]
        except KeyError:
            raise KeyError(f"store {self.path} has no convention {name!r}; it has {self.conventions}") from None

    def info(self, name: str) -> dict[str, Any]:
        """The meta.json entry of a convention (file names, shape, unit, derived_from, ...)."""
        return dict(self._entry(name))

    def is_derived(self, name: str) -> bool:
        return bool(self._entry(name).get("derived_from"))

    def convention(self, name: str) -> Convention:
        self._entry(name)
        return self._conventions[name]

    def _load(self, key: str, filename: str, mmap: bool):
        if self._pid != os.getpid():  # forked: do not share file handles with the parent
            self._cache = {}
            self._pid = os.getpid()
        if key not in self._cache:
            path = self.path / filename
            try:
                arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise StoreError(f"{path}: cannot read: {e}") from e
            self._cache[key] = arr
        return self._cache[key]

    def array(self, name: str) -> np.ndarray:
        """The (N, C, T_max, V_l, M) float32 array of a convention, memory-mapped read-only."""
        entry = self._entry(name)
        arr = self._load("a:" + name, entry["file"], mmap=True)
        if arr.dtype != np.float32 or arr.ndim != 5 or arr.shape[0] != len(self):
            raise StoreError(
                f"{self.path / entry['file']}: expected float32 (N={len(self)}, C, T, V, M), "
                f"got {arr.dtype} {arr.shape}"
            )
        v = self._conventions[name].num_joints
        if arr.shape[3] != v:
            raise StoreError(f"{self.path / entry['file']}: {arr.shape[3]} joints, convention {name!r} has {v}")
        return arr

    def lengths(self, name: str) -> np.ndarray:
        """Valid frames (N,) of every sample in this convention."""
        entry = self._entry(name)
        arr = self._load("l:" + name, entry["lengths"], mmap=False)
        if arr.shape != (len(self),):
            raise StoreError(f"{self.path / entry['lengths']}: shape {arr.shape}, expected ({len(self)},)")
        return arr

    def available(self, name: str) -> np.ndarray:
        """(N,) bool: False where this convention is missing for a sample."""
        entry = self._entry(name)
        arr = self._load("v:" + name, entry["available"], mmap=False)
        if arr.shape != (len(self),):
            raise StoreError(f"{self.path / entry['available']}: shape {arr.shape}, expected ({len(self)},)")
        return arr.astype(bool, copy=False)

    def split(self, name: str, part: str) -> np.ndarray:
        """Sample indices of one part of a split, e.g. store.split('xsub', 'train')."""
        try:
            return self.splits[name][part]
        except KeyError:
            avail = {k: sorted(v) for k, v in self.splits.items()}
            raise KeyError(f"store {self.path} has no split {name}/{part}; it has {avail}") from None

    def index_of(self, sample_ids: Iterable[str]) -> np.ndarray:
        lookup = {s: i for i, s in enumerate(self.sample_ids)}
        out = []
        for s in sample_ids:
            if s not in lookup:
                raise KeyError(f"sample {s!r} is not in store {self.path}")
            out.append(lookup[s])
        return np.asarray(out, dtype=np.int64)


def open_store(path: str | Path) -> Store:
    """Open a prepared store (see the module docstring for its layout)."""
    return Store(path)


def is_store(path: str | Path) -> bool:
    return (Path(path) / META).is_file()


# ----------------------------------------------------------------------------- writing


def _as_int_list(x, what: str, n: int | None = None) -> list[int]:
    arr = np.asarray(x)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise StoreError(f"{what} must be a 1-D integer array, got {arr.dtype} {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise StoreError(f"{what}: {arr.shape[0]} entries for {n} samples")
    return [int(v) for v in arr]


def _jsonable(v):
    arr = np.asarray(v)
    if arr.dtype.kind in "iub":
        return [int(x) for x in arr]
    if arr.dtype.kind == "f":
        return [float(x) for x in arr]
    return [str(x) for x in arr]


class StoreBuilder:
    """Write a store: ``StoreBuilder.create(...)`` for a new one, ``StoreBuilder.extend(path)``
    to add conventions to an existing one; ``add``/``allocate`` + ``commit``; then ``finish()``.

    Convention arrays are written to their final names immediately (atomically), but a
    convention only becomes part of the store when `finish` rewrites meta.json.
    """

    def __init__(self, path: Path, meta: dict[str, Any], durable: bool = True):
        self.path = path
        self.meta = meta
        self.durable = durable
        self._pending: dict[str, AtomicArray] = {}

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        dataset: str,
        sample_ids: Sequence[str],
        labels,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        splits: Mapping[str, Mapping[str, Any]] | None = None,
        sample_info: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        durable: bool = True,
    ) -> StoreBuilder:
        path = Path(path)
        if is_store(path) and not overwrite:
            raise StoreError(f"{path} already holds a store (overwrite it with --overwrite / overwrite=True)")
        path.mkdir(parents=True, exist_ok=True)
        ids = [str(s) for s in sample_ids]
        n = len(ids)
        if len(set(ids)) != n:
            seen, dup = set(), None
            for s in ids:
                if s in seen:
                    dup = s
                    break
                seen.add(s)
            raise StoreError(f"duplicate sample id {dup!r}")
        lab = _as_int_list(labels, "labels", n)
        if num_classes is None:
            num_classes = len(class_names) if class_names is not None else (max(lab) + 1 if lab else 0)
        if class_names is not None and len(class_names) != num_classes:
            raise StoreError(f"{len(class_names)} class names for {num_classes} classes")
        bad = [i for i, v in enumerate(lab) if not 0 <= v < num_classes]
        if bad:
            raise StoreError(f"label {lab[bad[0]]} of sample {ids[bad[0]]!r} is outside 0..{num_classes - 1}")
        split_meta: dict[str, dict[str, list[int]]] = {}
        for name, parts in (splits or {}).items():
            split_meta[name] = {}
            for part, idx in parts.items():
                lst = _as_int_list(idx, f"split {name}/{part}")
                if lst and (min(lst) < 0 or max(lst) >= n):
                    raise StoreError(f"split {name}/{part} has indices outside 0..{n - 1}")
                split_meta[name][part] = lst
        info = {}
        for k, v in (sample_info or {}).items():
            if len(v) != n:
                raise StoreError(f"sample_info[{k!r}]: {len(v)} entries for {n} samples")
            info[k] = _jsonable(v)
        from .. import __version__

        meta = dict(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            dataset=dataset,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            msclr_version=__version__,
            num_samples=n,
            num_classes=int(num_classes),
            class_names=list(class_names) if class_names is not None else None,
            sample_ids=ids,
            labels=lab,
            sample_info=info,
            splits=split_meta,
            convention_order=[],
            conventions={},
            derived={},
        )
        meta.update(dict(extra or {}))
        if overwrite and is_store(path):
            (path / META).unlink()  # the old store stops being a store before any file changes
        return cls(path, meta, durable)

    @classmethod
    def extend(cls, path: str | Path, durable: bool = True) -> StoreBuilder:
        """Add (or replace) conventions of an existing store."""
        store = open_store(path)
        return cls(store.path, json.loads(json.dumps(store.meta)), durable)

    @property
    def num_samples(self) -> int:
        return len(self.meta["sample_ids"])

    def _entry(
        self,
        conv: Convention,
        shape,
        unit: str,
        derived_from: str | None,
        derivation: Any,
        channels: Sequence[str] | None,
        note: str | None,
    ) -> dict[str, Any]:
        name = conv.name
        entry: dict[str, Any] = dict(
            file=f"{name}.npy",
            lengths=f"{name}.lengths.npy",
            available=f"{name}.available.npy",
            shape=[int(s) for s in shape],
            unit=unit,
            channels=list(channels) if channels else (["x", "y", "z"] if shape[1] == 3 else None),
            derived_from=derived_from,
            derivation=derivation,
            convention_file=None,
        )
        if note:
            entry["note"] = note
        if not _is_builtin(name):
            entry["convention_file"] = f"conventions/{name}.json"
        return entry

    def _check_convention(self, conv: Convention | str) -> Convention:
        conv = skeletons.get(conv) if not isinstance(conv, Convention) else conv
        if _is_builtin(conv.name) and not _same_convention(conv, skeletons.get(conv.name)):
            raise ConventionError(f"convention {conv.name!r} has a built-in name but other joints/bones")
        if conv.name in skeletons.available() and not _same_convention(conv, skeletons.get(conv.name)):
            raise ConventionError(
                f"convention {conv.name!r} differs from the one already registered under that name; rename it"
            )
        return conv

    def _check_arrays(self, name, shape, lengths, available, t_max):
        n = self.num_samples
        if len(shape) != 5 or shape[0] != n:
            raise StoreError(f"convention {name!r}: expected (N={n}, C, T, V, M) data, got shape {tuple(shape)}")
        lengths = np.asarray(lengths)
        if lengths.shape != (n,) or (lengths.size and not np.issubdtype(lengths.dtype, np.integer)):
            raise StoreError(
                f"convention {name!r}: lengths must be ({n},) integers, got {lengths.dtype} {lengths.shape}"
            )
        if lengths.size and (lengths.min() < 0 or lengths.max() > t_max):
            raise StoreError(f"convention {name!r}: lengths must lie in 0..T_max={t_max}")
        if available is None:
            available = lengths > 0
        available = np.asarray(available, dtype=bool)
        if available.shape != (n,):
            raise StoreError(f"convention {name!r}: available must be ({n},) bool, got {available.shape}")
        return lengths.astype(np.int32), available

    def add(
        self,
        conv: Convention | str,
        data: np.ndarray,
        lengths,
        available=None,
        *,
        unit: str = "m",
        derived_from: str | None = None,
        derivation: Any = None,
        channels: Sequence[str] | None = None,
        note: str | None = None,
    ) -> None:
        """Write one convention's (N, C, T, V, M) array (converted to float32)."""
        conv = self._check_convention(conv)
        data = np.asarray(data)
        lengths, available = self._check_arrays(
            conv.name, data.shape, lengths, available, data.shape[2] if data.ndim == 5 else 0
        )
        if data.shape[3] != conv.num_joints:
            raise StoreError(f"convention {conv.name!r}: data has {data.shape[3]} joints, convention {conv.num_joints}")
        self._write_convention_file(conv)
        atomic_save_npy(self.path / f"{conv.name}.npy", data.astype(np.float32, copy=False), self.durable)
        self._finish(conv, data.shape, lengths, available, unit, derived_from, derivation, channels, note)

    def allocate(self, conv: Convention | str, shape: Sequence[int]) -> np.ndarray:
        """A zero-filled writable (N, C, T, V, M) float32 memmap; call `commit` when filled."""
        conv = self._check_convention(conv)
        if len(shape) != 5 or shape[0] != self.num_samples or shape[3] != conv.num_joints:
            raise StoreError(
                f"convention {conv.name!r}: cannot allocate shape {tuple(shape)} "
                f"(N={self.num_samples}, V={conv.num_joints})"
            )
        if conv.name in self._pending:
            self._pending[conv.name].abort()
        aa = AtomicArray(self.path / f"{conv.name}.npy", shape, durable=self.durable)
        self._pending[conv.name] = aa
        return aa.array

    def commit(
        self,
        conv: Convention | str,
        lengths,
        available=None,
        *,
        unit: str = "m",
        derived_from: str | None = None,
        derivation: Any = None,
        channels: Sequence[str] | None = None,
        note: str | None = None,
    ) -> None:
        conv = self._check_convention(conv)
        aa = self._pending.pop(conv.name, None)
        if aa is None:
            raise StoreError(f"convention {conv.name!r} was not allocated")
        shape = aa.array.shape
        lengths, available = self._check_arrays(conv.name, shape, lengths, available, shape[2])
        self._write_convention_file(conv)
        aa.commit()
        self._finish(conv, shape, lengths, available, unit, derived_from, derivation, channels, note)

    def _finish(self, conv, shape, lengths, available, unit, derived_from, derivation, channels, note) -> None:
        """After the data array is in place: its lengths and availability, then the metadata entry."""
        atomic_save_npy(self.path / f"{conv.name}.lengths.npy", lengths, self.durable)
        atomic_save_npy(self.path / f"{conv.name}.available.npy", available, self.durable)
        self._register(conv, self._entry(conv, shape, unit, derived_from, derivation, channels, note))

    def _write_convention_file(self, conv: Convention) -> None:
        if _is_builtin(conv.name):
            return
        (self.path / "conventions").mkdir(exist_ok=True)
        atomic_write_json(self.path / "conventions" / f"{conv.name}.json", conv.to_dict(), self.durable)

    def _register(self, conv: Convention, entry: dict[str, Any]) -> None:
        name = conv.name
        self.meta["conventions"][name] = entry
        if name not in self.meta["convention_order"]:
            self.meta["convention_order"].append(name)
        if entry["derived_from"]:
            self.meta.setdefault("derived", {})[name] = entry["derived_from"]
        else:
            self.meta.setdefault("derived", {}).pop(name, None)

    def finish(self) -> Store:
        for aa in self._pending.values():
            aa.abort()
        if self._pending:
            raise StoreError(f"conventions allocated but never committed: {sorted(self._pending)}")
        if not self.meta["convention_order"]:
            raise StoreError(f"store {self.path}: no convention was written")
        atomic_write_json(self.path / META, self.meta, self.durable)
        return open_store(self.path)


def valid_lengths(data: np.ndarray) -> np.ndarray:
    """Frames up to and including the last frame with any non-zero value, for (N, C, T, V, M)."""
    nonzero = np.abs(data).sum(axis=(1, 3, 4)) > 0  # (N, T)
    t = data.shape[2]
    last = t - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), last, 0).astype(np.int32)
