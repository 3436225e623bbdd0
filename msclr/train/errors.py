"""The errors of a pre-training run; main turns them into exit statuses 2 and 1."""

from __future__ import annotations


class TrainError(ValueError):
    """A bad argument, config value or input file: one line, exit status 2, nothing written."""


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or inf: the run stops, exit status 1, the last good checkpoint is kept."""
