"""Writing a store: `StoreBuilder` makes a new one or adds conventions to one (the layout:
msclr.data.store); `valid_lengths` of padded arrays."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import skeletons
from ...skeletons import Convention, ConventionError
from .atomic import AtomicArray, atomic_save_npy, atomic_write_json
from .reader import FORMAT, FORMAT_VERSION, META, Store, StoreError, _is_builtin, _same_convention, is_store, open_store


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
        from ... import __version__

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
