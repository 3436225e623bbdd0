"""Evaluation of pre-trained encoders (python -m msclr.evaluate) and the `msclr.load` API.

Protocols: linear, knn, semi, finetune, transfer, ensemble, fuse (see `protocols`).
"""

from .checkpoint import CheckpointError, Pretrained, build_encoder, read_checkpoint
from .model import Predictions, SkeletonModel, load
from .protocols import (
    EvalContext,
    EvalError,
    ensemble,
    ensemble_logits,
    finetune,
    fit_linear,
    fuse,
    knn,
    knn_scores,
    linear,
    make_context,
    semi,
    transfer,
)

__all__ = [
    "CheckpointError",
    "EvalContext",
    "EvalError",
    "Predictions",
    "Pretrained",
    "SkeletonModel",
    "build_encoder",
    "ensemble",
    "ensemble_logits",
    "finetune",
    "fit_linear",
    "fuse",
    "knn",
    "knn_scores",
    "linear",
    "load",
    "make_context",
    "read_checkpoint",
    "semi",
    "transfer",
]
