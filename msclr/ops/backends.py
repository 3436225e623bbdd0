"""Backend choice for the fused ops (docs/architecture.md section 4).

`auto` picks the fastest implemented backend that can run on the tensors' device;
a backend missing because the extension is not built (or Triton cannot run)
falls back to `reference` with one warning per op and device type. Asking for a
backend explicitly that cannot run raises an error that says why.
"""

from __future__ import annotations

import os
import sys
import warnings

import torch

from .. import _ext

BACKENDS = ("reference", "cpu", "cuda", "triton")

# Which backends implement each op; each op module registers its own (register_backend).
IMPLEMENTED: dict[str, tuple[str, ...]] = {}


def register_backend(op: str, backend: str) -> None:
    """Declare that `op` has an implementation for `backend` (called by the op modules)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    if backend not in IMPLEMENTED.get(op, ()):
        IMPLEMENTED[op] = IMPLEMENTED.get(op, ()) + (backend,)


# Preference order of `auto` per device type, fastest first.
_AUTO_ORDER = {"cuda": ("cuda", "triton", "reference"), "cpu": ("cpu", "reference")}


def triton_runnable() -> tuple[bool, str]:
    """Whether Triton kernels can run here: on a GPU, or on CPU under TRITON_INTERPRET=1."""
    try:
        import triton  # noqa: F401
    except ImportError as e:
        return False, f"triton is not importable ({e})"
    if torch.cuda.is_available():
        return True, "GPU"
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    # @triton.jit picks interpreter or compiler when the kernel module is imported, so the
    # variable as it was then counts, not as it is now
    kernels = sys.modules.get("msclr.kernels.graph_conv")
    if kernels is not None and bool(getattr(kernels, "_INTERPRET", interpret)) != interpret:
        return False, "TRITON_INTERPRET changed after msclr.kernels was imported; set it before importing msclr"
    if interpret:
        return True, "interpreter (TRITON_INTERPRET=1)"
    return False, "no GPU and TRITON_INTERPRET is not 1"


def why_unavailable(backend: str, device_type: str) -> str:
    """'' when `backend` can run on `device_type` here, else the reason."""
    if backend == "reference":
        return ""
    if backend == "cpu":
        if device_type != "cpu":
            return f"the cpu backend runs on CPU tensors, these are on {device_type}"
        return _ext.load_error()
    if backend == "cuda":
        if device_type != "cuda":
            return f"the cuda backend runs on CUDA tensors, these are on {device_type}"
        if _ext.load_error():
            return _ext.load_error()
        if not _ext.built_with_cuda():
            return "msclr._C was built without CUDA kernels (see `python -m msclr.info`)"
        return ""
    if backend == "triton":
        ok, why = triton_runnable()
        return "" if ok else why
    return f"unknown backend {backend!r}; choose one of {('auto',) + BACKENDS}"


_resolved: dict[tuple[str, str, str], str] = {}


# torch.compile runs this once while tracing and keeps the answer as a constant, instead
# of tracing through the extension loading and availability checks behind it.
@torch.compiler.assume_constant_result
def resolve(op: str, backend: str, device_type: str) -> str:
    """The backend that will run `op` for tensors on `device_type` (decided once, then cached)."""
    key = (op, backend, device_type)
    if key not in _resolved:
        _resolved[key] = _resolve(op, backend, device_type)
    return _resolved[key]


def _resolve(op: str, backend: str, device_type: str) -> str:
    implemented = IMPLEMENTED[op]
    if backend != "auto":
        reason = why_unavailable(backend, device_type)
        if not reason and backend not in implemented:
            reason = f"{op} has no {backend} implementation yet (implemented: {', '.join(implemented)})"
        if reason:
            raise RuntimeError(f"msclr.ops.{op}: backend {backend!r} is not available: {reason}")
        return backend
    skipped = []
    for cand in _AUTO_ORDER.get(device_type, ("reference",)):
        if cand not in implemented:
            continue
        reason = why_unavailable(cand, device_type)
        if not reason:
            if skipped:
                warnings.warn(
                    f"msclr.ops.{op}: using the {cand} backend on {device_type}: " + "; ".join(skipped),
                    RuntimeWarning,
                    stacklevel=3,
                )
            return cand
        skipped.append(f"{cand} unavailable ({reason})")
    raise AssertionError("reference is always available")  # pragma: no cover
