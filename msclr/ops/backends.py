"""Backend choice for the fused ops (docs/architecture.md section 4).

`auto` picks the fastest implemented backend that can run on the tensors' device;
a backend missing because the extension is not built (or Triton cannot run)
falls back to `reference` with one warning per op and device type. Asking for a
backend explicitly that cannot run raises an error that says why.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings
from pathlib import Path

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


# The shipped preference order of `auto`, fastest first, per device type and input dtype. On a
# GPU the Triton kernels are the ones whose dots run on tensor cores in float16/bfloat16 (tl.dot),
# so low precision prefers them; float32 prefers the CUDA kernels. Not yet measured on a GPU:
# `python -m msclr.tune` measures this machine and its table (tuned_table_path()) overrides these.
DEFAULT_ORDER: dict[str, dict[str, tuple[str, ...]]] = {
    "cuda": {
        "float32": ("cuda", "triton", "reference"),
        "float16": ("triton", "cuda", "reference"),
        "bfloat16": ("triton", "cuda", "reference"),
        "float64": ("cuda", "reference"),
    },
    "cpu": {"float32": ("cpu", "reference")},
}


TUNED_FORMAT = 1  # of the file python -m msclr.tune writes


def tuned_table_path() -> Path:
    """Where `python -m msclr.tune` writes, and `auto` reads, the measured preference table:
    $MSCLR_TUNED_TABLE, else $XDG_CACHE_HOME/msclr/tuned_backends.json (~/.cache by default)."""
    env = os.environ.get("MSCLR_TUNED_TABLE")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "msclr" / "tuned_backends.json"


def machine_key(device_type: str) -> str:
    """What a tuned table is valid for: the GPU model, or the CPU model and thread count."""
    if device_type == "cuda":
        return f"cuda:{torch.cuda.get_device_name()}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu:{model}:{torch.get_num_threads()} threads"


def _tuned_orders() -> dict:
    """The machines of the tuned table ({} when there is none); a damaged table is ignored with a warning."""
    path = tuned_table_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != TUNED_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {TUNED_FORMAT}")
        return dict(data["machines"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        warnings.warn(f"msclr: ignoring the tuned backend table {path}: {e}", RuntimeWarning, stacklevel=4)
        return {}


def auto_order(op: str, device_type: str, dtype: str = "float32") -> tuple[tuple[str, ...], str]:
    """(preference order of `auto`, where it comes from) for `op` on `device_type` tensors of `dtype`."""
    entry = _tuned_orders().get(machine_key(device_type), {}).get("ops", {}).get(op, {}).get(dtype)
    if entry and entry.get("order"):
        return tuple(entry["order"]) + ("reference",), f"measured ({tuned_table_path()})"
    table = DEFAULT_ORDER.get(device_type, {})
    return table.get(dtype, table.get("float32", ("reference",))), "shipped default"


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
def resolve(op: str, backend: str, device_type: str, dtype: str = "float32") -> str:
    """The backend that will run `op` for `dtype` tensors on `device_type` (decided once, then cached)."""
    key = (op, backend, device_type, dtype)
    if key not in _resolved:
        _resolved[key] = _resolve(op, backend, device_type, dtype)
    return _resolved[key]


def dtype_name(t: torch.Tensor) -> str:
    """The dtype key of the preference tables: 'float32', 'bfloat16', ..."""
    return str(t.dtype).removeprefix("torch.")


def _resolve(op: str, backend: str, device_type: str, dtype: str) -> str:
    implemented = IMPLEMENTED[op]
    if backend != "auto":
        reason = why_unavailable(backend, device_type)
        if not reason and backend not in implemented:
            reason = f"{op} has no {backend} implementation yet (implemented: {', '.join(implemented)})"
        if reason:
            raise RuntimeError(f"msclr.ops.{op}: backend {backend!r} is not available: {reason}")
        return backend
    skipped = []
    order, _ = auto_order(op, device_type, dtype)
    for cand in dict.fromkeys(order):  # in order, once each
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
