"""Multi-skeleton contrastive pre-training: ``python -m msclr.train`` (see its --help).

cli         the command line: arguments and config, the output folder, exit statuses (main)
trainer     the run: data, model, optimiser, augmentation, the loop, checkpoints, signals
state       what an exact resume needs: the mid-epoch sampler, RNG states, checkpoint saving
crop        what is read: the pre-training split and the random temporal crop
errors      TrainError (exit status 2) and NonFiniteLoss (exit status 1)
"""

from .cli import DEFAULT_CONFIG, main, parse_args
from .crop import describe_crop, pretraining_split, resolve_min_crop
from .errors import NonFiniteLoss, TrainError
from .state import RESUME_KEYS, EpochSampler, rng_state, save_checkpoint, set_rng_state
from .trainer import Trainer

__all__ = [
    "DEFAULT_CONFIG",
    "RESUME_KEYS",
    "EpochSampler",
    "NonFiniteLoss",
    "TrainError",
    "Trainer",
    "describe_crop",
    "main",
    "parse_args",
    "pretraining_split",
    "resolve_min_crop",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]
