"""Public fused ops of msclr (docs/architecture.md sections 3 and 4).

Each op has a readable `reference` (msclr.ops.reference) beside its fused backends;
`backend="auto"` chooses per device (see msclr.ops.backends).
"""

from __future__ import annotations

import torch

from .. import _ext
from .backends import BACKENDS, IMPLEMENTED, resolve, triton_runnable, why_unavailable
from .batch_norm import masked_bn_apply, masked_bn_stats
from .graph_conv import masked_graph_conv
from .infonce import InfoNCEOutput, enqueue, infonce_queue

__all__ = [
    "BACKENDS",
    "IMPLEMENTED",
    "InfoNCEOutput",
    "enqueue",
    "infonce_queue",
    "masked_bn_apply",
    "masked_bn_stats",
    "masked_graph_conv",
    "resolve",
    "triton_runnable",
    "why_unavailable",
]

if _ext.extension() is not None:
    # Shapes of the C++ ops for torch.compile / meta tensors; kernels come from csrc/.
    @torch.library.register_fake("msclr::enqueue_")
    def _(queue, ptr, keys):
        return None
