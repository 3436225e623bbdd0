"""NTU RGB+D .skeleton files: the reader of their grammar, in C++ and in Python.

`parse_skeleton_file` uses the C++ parser of msclr._C (csrc/io/ntu_skeleton.cpp, GIL
released, files in parallel threads) and falls back to `parse_skeleton_bytes_py`, the
readable Python reference, which implements the same grammar and gives identical arrays
(the grammar is documented in csrc/io/ntu_skeleton.h). A malformed file raises
`SkeletonParseError` ("<file>:<line>: <what>"); `prepare` skips it and lists it.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

NUM_JOINTS = 25
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientationW X Y Z trackingState
BODY_FIELDS = 9  # after the body id
MAX_BODIES_PER_FRAME = 64
MAX_FRAMES = 1_000_000
FLOAT32_MAX = float(np.finfo(np.float32).max)


class SkeletonParseError(ValueError):
    """A malformed .skeleton file: the message is '<file>:<line>: <what>'."""


def _cpp():
    from .. import _ext

    mod = _ext.extension()
    if mod is None or not hasattr(mod, "parse_ntu_skeleton_file"):
        return None
    return mod


def cpp_parser_available() -> bool:
    return _cpp() is not None


_NUMBER = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNSIGNED = re.compile(rb"[0-9]+")
_SEPARATORS = re.compile(rb"[ \t]+")


def _quote(tok: bytes) -> str:
    out = ["'"]
    for c in tok[:40]:
        ch = chr(c)
        out.append(ch if 0x20 <= c < 0x7F and ch not in "'\\" else f"\\x{c:02x}")
    if len(tok) > 40:
        out.append("...")
    return "".join(out) + "'"


class _Lines:
    """Lines of a file (one trailing '\\r' dropped), split into fields, with line numbers."""

    def __init__(self, data: bytes, name: str):
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # the text ends with '\n' (or is empty)
        self.lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        self.name = name
        self.line = 0  # 1-based number of the last line read
        self.what = ""

    def fail(self, message: str):
        raise SkeletonParseError(f"{self.name}:{self.line}: {message}")

    def fields(self, what: str, count: int) -> list[bytes]:
        self.what = what
        if self.line >= len(self.lines):
            self.line += 1  # the line that is missing
            self.fail(f"file ended early: expected {what}")
        tokens = [t for t in _SEPARATORS.split(self.lines[self.line]) if t]
        self.line += 1
        if len(tokens) != count:
            got = f"more than {JOINT_FIELDS + 1}" if len(tokens) > JOINT_FIELDS + 1 else str(len(tokens))
            self.fail(f"{what}: expected {count} {'field' if count == 1 else 'fields'}, got {got}")
        return tokens

    def integer(self, tok: bytes, field: int) -> int:
        digits = tok.lstrip(b"0") or b"0"  # leading zeros are fine; int() refuses > 4300 digits
        if not _UNSIGNED.fullmatch(tok) or len(digits) > 19 or int(digits) > 2**63 - 1:
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is not an unsigned integer")
        return int(digits)

    def number(self, tok: bytes, field: int) -> float:
        if not _NUMBER.fullmatch(tok):
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is not a number")
        v = float(tok)
        mantissa = re.split(rb"[eE]", tok)[0]
        if math.isinf(v) or (v == 0.0 and re.search(rb"[1-9]", mantissa)):
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is out of range")  # rounds to inf or 0
        return v

    def float32(self, tok: bytes, field: int) -> float:
        v = self.number(tok, field)
        if abs(v) > FLOAT32_MAX:
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is out of float32 range")
        return v


def parse_skeleton_bytes_py(data: bytes, name: str = "<bytes>", num_joints: int = NUM_JOINTS) -> dict:
    """The readable reference parser; same grammar and arrays as the C++ one.

    Returns {"num_frames": int, "bodies_per_frame": int32 (F,), "body_id": int64 (B,),
    "body_info": float64 (B, 9), "joints": float32 (B, J, 12)}.
    """
    src = _Lines(data, name)
    frames = src.integer(src.fields("the frame count", 1)[0], 1)
    if frames > MAX_FRAMES:
        src.fail(f"frame count {frames} exceeds {MAX_FRAMES}")
    bodies_per_frame, body_id, body_info, joints = [], [], [], []
    for f in range(1, frames + 1):
        count = src.integer(src.fields(f"the body count of frame {f}", 1)[0], 1)
        if count > MAX_BODIES_PER_FRAME:
            src.fail(f"{src.what}: {count} bodies (more than {MAX_BODIES_PER_FRAME})")
        bodies_per_frame.append(count)
        for b in range(1, count + 1):
            tok = src.fields(f"the body line of body {b} of frame {f}", 1 + BODY_FIELDS)
            body_id.append(src.integer(tok[0], 1))
            body_info.append([src.number(t, k + 2) for k, t in enumerate(tok[1:])])
            nj = src.integer(src.fields(f"the joint count of body {b} of frame {f}", 1)[0], 1)
            if nj != num_joints:
                src.fail(f"{src.what}: {nj} joints, expected {num_joints}")
            for j in range(1, nj + 1):
                tok = src.fields(f"joint {j} of body {b} of frame {f}", JOINT_FIELDS)
                joints.append([src.float32(t, k + 1) for k, t in enumerate(tok)])
    for k in range(src.line, len(src.lines)):  # only blank lines may follow
        if _SEPARATORS.sub(b"", src.lines[k]):
            src.line = k + 1
            src.fail("unexpected content after the last frame")
    return dict(
        num_frames=frames,
        bodies_per_frame=np.array(bodies_per_frame, np.int32),
        body_id=np.array(body_id, np.int64),
        body_info=np.array(body_info, np.float64).reshape(-1, BODY_FIELDS),
        joints=np.array(joints, np.float64).astype(np.float32).reshape(-1, num_joints, JOINT_FIELDS),
    )


def parse_skeleton_file_py(path: str | Path, num_joints: int = NUM_JOINTS) -> dict:
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    return parse_skeleton_bytes_py(data, path, num_joints)


def parse_skeleton_file(path: str | Path, num_joints: int = NUM_JOINTS, parser: str = "auto") -> dict:
    """Parse one .skeleton file with the C++ parser ('cpp'), the Python one ('python') or
    the C++ one when built ('auto')."""
    if parser not in ("auto", "cpp", "python"):
        raise ValueError(f"parser must be 'auto', 'cpp' or 'python', got {parser!r}")
    mod = _cpp() if parser != "python" else None
    if mod is None:
        if parser == "cpp":
            from .. import _ext

            raise RuntimeError(f"the C++ parser is not available: {_ext.load_error() or 'msclr._C lacks it'}")
        return parse_skeleton_file_py(path, num_joints)
    try:
        return mod.parse_ntu_skeleton_file(str(path), num_joints)
    except ValueError as e:  # msclr._C.SkeletonParseError
        raise SkeletonParseError(str(e)) from None


def parse_skeleton_bytes(data: bytes, name: str = "<bytes>", num_joints: int = NUM_JOINTS) -> dict:
    """The C++ parser on bytes in memory (tests, fuzzing)."""
    mod = _cpp()
    if mod is None:
        raise RuntimeError("the C++ parser is not available (msclr._C is not built)")
    try:
        return mod.parse_ntu_skeleton_bytes(data, name, num_joints)
    except ValueError as e:
        raise SkeletonParseError(str(e)) from None
