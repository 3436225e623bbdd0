"""Writing and reading checkpoints: atomic, verified, and never running code.

Every checkpoint msclr writes goes through `save`: the file is written beside its final name,
then renamed over it, and `<file>.sha256` (the hex SHA-256 of its bytes) is written beside it.
`load` checks that digest when the sidecar exists and unpickles with ``weights_only=True``, so a
crafted file cannot run code. Every failure is one `CheckpointError` whose message names the file.
`fresh_folder` picks the output folder of a run or an evaluation that holds nothing yet, so a
rerun never writes over earlier results.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

# Checkpoints written before the RNG state was stored as plain types hold numpy's as an ndarray of
# uint32: arrays are data, so exactly these numpy globals are allowed, nothing that runs code.
_LEGACY_NUMPY = [np.ndarray, np.dtype, np.dtypes.UInt32DType, np._core.multiarray._reconstruct]


class CheckpointError(ValueError):
    """The file is not a usable msclr checkpoint (the message names the file and the problem)."""


def fresh_folder(out: Path, taken: Callable[[Path], bool]) -> Path:
    """out itself if `taken(out)` is false, else the first of out-2, out-3, ... that is not taken."""
    folder, i = out, 2
    while taken(folder):
        folder, i = out.with_name(f"{out.name}-{i}"), i + 1
    return folder


def digest_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save(path: str | Path, obj) -> Path:
    """torch.save `obj` to `path` atomically, then its digest to `<path>.sha256`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = digest_path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        hexdigest = sha256_of(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # the old digest goes first: a crash between the two renames leaves a checkpoint without a
        # digest (read unverified), never a good checkpoint with a stale digest (a false alarm)
        digest.unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _write_atomic(digest, lambda p: p.write_text(f"{hexdigest}  {path.name}\n"))
    return path


def _first_line(e: BaseException) -> str:
    line = (str(e).strip().splitlines() or [""])[0].split(". ")[0]  # the first sentence: torch's run on
    return line if len(line) <= 160 else line[:157] + "..."


def load(path: str | Path, map_location="cpu"):
    """The object in `path`, loaded without running code; CheckpointError (one line) if it cannot be."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; name the file in it (e.g. {path / 'last.pt'})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    digest = digest_path(path)
    if digest.is_file():
        want = (digest.read_text().split() or [""])[0].lower()
        if sha256_of(path) != want:
            raise CheckpointError(
                f"{path}: was modified or corrupted after it was written (its SHA-256 differs from {digest.name})"
            )
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip, pickle and unpickler errors of many types, messages of many lines
        text = str(e)
        found = re.search(r"GLOBAL ([\w.]+)", text)  # the unpickler refused a function or class
        if "Weights only load failed" in text and found:
            raise CheckpointError(
                f"{path}: refusing to execute code from an untrusted checkpoint (it needs {found.group(1)})"
            ) from e
        if "Weights only load failed" in text:  # a pickle opcode torch does not accept: not a checkpoint
            found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
            why = f"{type(e).__name__}: {found.group(1).strip() if found else 'not a torch checkpoint'}"
        else:
            why = f"{type(e).__name__}: {_first_line(e)}" if _first_line(e) else type(e).__name__
        raise CheckpointError(f"{path}: cannot read it as a torch checkpoint, truncated or corrupt? ({why})") from e
