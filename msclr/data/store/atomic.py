"""Atomic files: a temporary file in the same directory, then `os.replace`, so readers see the
old file or the new one, never a part (and, durable, fsynced with its directory)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


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


def _atomic_write(path: str | Path, write: Callable[[BinaryIO], object], durable: bool) -> None:
    """write(f) into a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    tmp = _tmp_name(path)
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write a file atomically: readers see the old file or the new one, never a part.

    durable=True also fsyncs, so the new file survives a power cut once this returns.
    """
    _atomic_write(path, lambda f: f.write(data), durable)


def atomic_write_json(path: str | Path, obj: Any, durable: bool = True) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode(), durable)


def atomic_save_npy(path: str | Path, array: np.ndarray, durable: bool = True) -> None:
    _atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False), durable)


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
