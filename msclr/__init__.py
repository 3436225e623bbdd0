"""msclr: Multi-Skeleton Contrastive Learning for skeleton-based action recognition."""

__version__ = "0.1.0"


def load(ckpt, device="cpu", backend="auto"):
    """A trained model from a pre-training checkpoint or an evaluation's model.pt, with
    `.embed(sequences, convention=...)` and, for classifiers, `.predict(...)`
    (see msclr.evaluate.model)."""
    from .evaluate.model import load as _load

    return _load(ckpt, device=device, backend=backend)
