"""Evaluation of pre-trained encoders (python -m msclr.evaluate) and the `msclr.load` API.

Protocols: linear, knn, semi, finetune, transfer, ensemble, fuse (see `protocols`); the
classifiers they fit on frozen features and the choice of their C and k: `probes`.
"""

from .checkpoint import CheckpointError, Pretrained, build_encoder, read_checkpoint
from .model import Predictions, SkeletonModel, load
from .probes import EvalError, choose_C, choose_k, fit_linear, fit_logreg, knn_scores
from .protocols import (
    EvalContext,
    ensemble,
    ensemble_logits,
    finetune,
    fuse,
    knn,
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
    "choose_C",
    "choose_k",
    "ensemble",
    "ensemble_logits",
    "finetune",
    "fit_linear",
    "fit_logreg",
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
