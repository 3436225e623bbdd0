"""Reading a store: `open_store` -> `Store` (the layout: msclr.data.store); its format constants,
StoreError, and how conventions stored with it are checked against the known ones."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ... import skeletons
from ...skeletons import Convention, ConventionError

FORMAT = "msclr-store"
FORMAT_VERSION = 1
META = "meta.json"


class StoreError(ValueError):
    """A store is missing, malformed or inconsistent (the message names the file)."""


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
    from ...skeletons.builtin import BUILTIN_SPECS

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
