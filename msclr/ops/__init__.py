"""Public fused ops of msclr (docs/architecture.md sections 3 and 4).

Each op has a readable `reference` (msclr.ops.reference) beside its fused backends;
`backend="auto"` chooses per device (see msclr.ops.backends). One module per op holds its public
function, custom ops, fake and autograd registrations and backends: batch_norm.py
(masked_bn_stats, masked_bn_apply), enqueue.py, graph_conv.py (masked_graph_conv), infonce.py
(infonce_queue); their C++/CUDA kernels follow the same per-op layout in csrc/
(docs/architecture.md section 5.1).
"""

from __future__ import annotations

from .backends import BACKENDS, IMPLEMENTED, resolve, triton_runnable, why_unavailable
from .batch_norm import masked_bn_apply, masked_bn_stats
from .enqueue import enqueue
from .graph_conv import masked_graph_conv
from .infonce import InfoNCEOutput, infonce_queue

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
