"""Triton kernels of msclr, installed as the subpackage `msclr.kernels`.

Each kernel module sits beside the torch reference in msclr/ops/reference.py and is
launched from inside an opaque `torch.library.custom_op` (not `triton_op`, which
cannot compile on CPU), so torch.compile treats it as one node. Kernels run on a
GPU, or on CPU under TRITON_INTERPRET=1 (how the tests exercise them without one).
"""

from __future__ import annotations

import contextlib
import functools
import os

# Whether @triton.jit kernels run in the interpreter: fixed when they are defined, so read once,
# when this package is imported (msclr.ops.backends.triton_runnable compares it with the variable).
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def require_runnable(device, name: str) -> None:
    """Triton kernels run on a GPU, or on CPU tensors only under the interpreter."""
    if device.type != "cuda" and not INTERPRET:
        raise RuntimeError(f"{name} (triton): CPU tensors need TRITON_INTERPRET=1")


def on_tensor_device(fn):
    """Run a launcher with the current CUDA device set to its first tensor argument's device.

    Triton launches on the *current* device: a tensor on cuda:1 while cuda:0 is current would
    be read from the wrong GPU (an illegal address or silent garbage)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        dev = next(a.device for a in args if isinstance(a, torch.Tensor))
        with torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext():
            return fn(*args, **kwargs)

    return wrapper
