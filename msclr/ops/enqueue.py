"""enqueue: the public function, its custom ops, fake registration and backends.

The contract is in docs/architecture.md 3.4. The C++ op msclr::enqueue_ has its schema in
csrc/enqueue.cpp, its argument checks in csrc/enqueue.h and its kernels in
csrc/cpu/enqueue_kernel.cpp and csrc/cuda/enqueue_kernel.cu.
(`msclr.ops.enqueue` is the function, re-exported by msclr.ops; this module is
`sys.modules["msclr.ops.enqueue"]`, reachable as `from msclr.ops.enqueue import ...`.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _ext
from . import reference
from .backends import register_backend, resolve

# ---------------------------------------------------------------- reference backend as a custom op


@torch.library.custom_op("msclr::enqueue_ref_", mutates_args=("queue", "ptr"))
def _enqueue_ref(queue: Tensor, ptr: Tensor, keys: Tensor) -> None:
    reference.enqueue_(queue, ptr, keys)


@_enqueue_ref.register_fake
def _(queue, ptr, keys):
    return None


register_backend("enqueue", "reference")


# ---------------------------------------------------------------- C++ backends (cpu, cuda): msclr._C
# One schema, msclr::enqueue_, kernels per dispatch key; the shape (fake) function here. Both
# backends are declared whether or not the extension is built: backends.why_unavailable says why
# one cannot run.
if _ext.has_op("enqueue_"):

    @torch.library.register_fake("msclr::enqueue_")
    def _(queue, ptr, keys):
        return None


register_backend("enqueue", "cpu")  # csrc/cpu/enqueue_kernel.cpp
register_backend("enqueue", "cuda")  # csrc/cuda/enqueue_kernel.cu


def _enqueue_fused(queue: Tensor, ptr: Tensor, keys: Tensor) -> None:
    torch.ops.msclr.enqueue_(queue, ptr, keys)


def enqueue(queue: Tensor, ptr: Tensor, keys: Tensor, backend: str = "auto") -> None:
    """Write keys (B, D) into the ring buffer queue (Q, D) at ptr (int64, 1 element), in place.

    Rows ptr, ptr+1, ... (mod Q) receive the keys (cast to the queue's dtype) and ptr advances
    by B mod Q. Both tensors are mutated; the op is declared as mutating them so that
    torch.compile keeps it. B must not exceed Q; ptr outside [0, Q) is a RuntimeError on the
    reference and cpu backends alike (never wrapped). On cuda the pointer lives on the device and
    checking it would cost a host sync, so the kernel takes it modulo Q (floor, as Python's %):
    a corrupted pointer misplaces keys but never writes outside the queue.
    """
    if queue.dim() != 2 or keys.dim() != 2 or keys.shape[1] != queue.shape[1]:
        raise ValueError(
            f"enqueue: queue (Q, D) and keys (B, D) expected, got {tuple(queue.shape)} and {tuple(keys.shape)}"
        )
    if keys.shape[0] > queue.shape[0]:
        raise ValueError(f"enqueue: {keys.shape[0]} keys do not fit a queue of {queue.shape[0]}")
    if ptr.numel() != 1 or ptr.dtype != torch.int64 or ptr.device != queue.device:
        raise ValueError(f"enqueue: ptr must be a one-element int64 tensor on {queue.device}")
    if not queue.is_contiguous():
        raise ValueError("enqueue: the queue must be contiguous (it is written in place)")
    which = resolve("enqueue", backend, queue.device.type)
    keys = keys.to(queue.dtype).contiguous()
    if which == "reference":
        _enqueue_ref(queue, ptr, keys)
    else:  # resolve() only picks cpu/cuda when msclr._C (and so the C++ kernels) is loaded
        _enqueue_fused(queue, ptr, keys)
