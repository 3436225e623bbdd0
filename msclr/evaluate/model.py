"""A trained encoder with optional per-convention classifier heads, and `msclr.load`.

    import msclr
    model = msclr.load("runs/msclr/last.pt")            # a pre-training checkpoint
    feats = model.embed(seq, convention="ntu25")       # seq: (T, V, C) array -> (256,) features
    clf = msclr.load("runs/msclr/eval_linear/model.pt")  # an evaluation's classifier
    pred = clf.predict(batch, convention="ntu25")      # batch: (N, T, V, C) -> Predictions
    pred.names[:3], pred.probs.shape

Sequences are cropped and resampled as in evaluation (the centred 95 % of the valid frames,
linearly resampled to the checkpoint's frame count) and turned into its stream (joint,
motion, bone). Coordinates must be in the frame the training data used (for NTU stores:
after the store's pre-normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from .. import checkpoint_io
from ..data.dataset import eval_crop, gather_frames, resample_positions
from ..skeletons import LayoutTable
from .checkpoint import CLASSIFIER_FORMAT, Pretrained, build_encoder, read_checkpoint


@dataclass
class Predictions:
    labels: np.ndarray  # (N,) class index
    names: list[str]  # (N,) class name
    probs: np.ndarray  # (N, num_classes) softmax probabilities


class SkeletonModel(nn.Module):
    """Encoder + one linear head per convention (heads may be empty: an embedding model)."""

    def __init__(
        self,
        pre: Pretrained,
        table: LayoutTable,
        encoder: nn.Module,
        heads: dict[str, nn.Linear] | None = None,
        class_names: list[str] | None = None,
    ):
        super().__init__()
        self.pre, self.table, self.encoder = pre, table, encoder
        self.heads = nn.ModuleDict(heads or {})
        self.class_names = list(class_names) if class_names else None
        cfg = pre.config
        self.stream, self.frames, self.persons = str(cfg.data.stream), int(cfg.data.frames), pre.persons

    @property
    def conventions(self) -> list[str]:
        return list(self.table.names)

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    # ------------------------------------------------------------------ tensors in
    def features(self, x: Tensor, layout: Tensor) -> Tensor:
        """(N, hidden_dim) features of padded sequences (N, C, T, V_max, M) in the checkpoint's stream."""
        from ..train import to_stream

        return self.encoder(to_stream(x, layout, self.stream, self.table), layout)

    def forward(self, x: Tensor, layout: Tensor) -> Tensor:
        """Class scores (N, num_classes): each sample through the head of its convention."""
        if not len(self.heads):
            raise RuntimeError("this model has no classifier head (a pre-training checkpoint): use embed()")
        f = self.features(x, layout)
        return self.classify(f, layout)

    def classify(self, f: Tensor, layout: Tensor) -> Tensor:
        """Scores of features f (N, D): row i through the head of convention layout[i]."""
        present = [self.table.names[l] for l in layout.unique().tolist()]
        missing = [n for n in present if n not in self.heads]
        if missing:
            raise ValueError(f"no classifier head for convention(s) {missing}; heads: {list(self.heads)}")
        out = None
        for name in present:
            s = self.heads[name](f)
            out = s if out is None else torch.where((layout == self.table.layout_id(name))[:, None], s, out)
        return out

    # ------------------------------------------------------------------ arrays in
    def _batch(self, sequences, convention: str | None) -> tuple[Tensor, Tensor, bool]:
        name = convention or self.table.names[0]
        if name not in self.table.names:
            raise ValueError(f"convention {name!r} is not one of this model's {list(self.table.names)}")
        conv = self.table.conventions[self.table.layout_id(name)]
        single = False
        if isinstance(sequences, (list, tuple)):
            seqs = [np.asarray(s, np.float32) for s in sequences]
            seqs = [s[None] if s.ndim == 3 else s for s in seqs]  # (T, V, C) -> one person
        else:
            arr = np.asarray(sequences, np.float32)
            if arr.ndim == 3:
                seqs, single = [arr[None]], True
            elif arr.ndim == 4:
                seqs = [a[None] for a in arr]
            elif arr.ndim == 5:
                seqs = list(arr)
            else:
                raise ValueError(
                    f"sequences: expected (T, V, C), (N, T, V, C), (N, M, T, V, C) or a list, got shape {arr.shape}"
                )
        c_in = self.encoder.data_bn.weight.shape[-1]
        out = np.zeros((len(seqs), c_in, self.frames, self.table.v_max, self.persons), np.float32)
        for i, s in enumerate(seqs):
            if s.ndim != 4 or s.shape[2] != conv.num_joints or s.shape[3] != c_in:
                raise ValueError(
                    f"sequence {i}: shape {s.shape[1:]} per person, expected (T, {conv.num_joints}, {c_in}) "
                    f"for convention {name!r}"
                )
            if not np.isfinite(s).all():
                raise ValueError(f"sequence {i}: NaN or inf values")
            x = s.transpose(3, 1, 2, 0)  # (C, T, V, M)
            nonzero = np.flatnonzero(np.abs(x).sum((0, 2, 3)) > 0)
            length = int(nonzero[-1]) + 1 if nonzero.size else x.shape[1]  # trailing zero frames are padding
            pos = np.clip(resample_positions(*eval_crop(length), self.frames), 0, length - 1)
            frames = gather_frames(x[:, :length], pos)
            m = min(self.persons, frames.shape[3])
            out[i, :, :, : conv.num_joints, :m] = frames[..., :m]
        layout = torch.full((len(seqs),), self.table.layout_id(name), dtype=torch.long)
        return torch.from_numpy(out), layout, single

    @torch.no_grad()
    def embed(self, sequences, convention: str | None = None, batch_size: int = 256) -> Tensor:
        """Encoder features of raw sequences: (T, V, C) -> (D,); (N, T, V, C), (N, M, T, V, C) or a
        list of (T_i, V, C) / (M, T_i, V, C) arrays -> (N, D). convention: default the first."""
        self.eval()
        x, layout, single = self._batch(sequences, convention)
        dev = self.device
        feats = torch.cat(
            [
                self.features(x[i : i + batch_size].to(dev), layout[i : i + batch_size].to(dev)).float().cpu()
                for i in range(0, x.shape[0], batch_size)
            ]
        )
        return feats[0] if single else feats

    @torch.no_grad()
    def predict(self, sequences, convention: str | None = None, batch_size: int = 256) -> Predictions:
        """Class predictions of raw sequences (same inputs as `embed`); needs a classifier checkpoint."""
        if not len(self.heads):
            raise RuntimeError(
                f"{self.pre.path} has no classifier: train one with `python -m msclr.evaluate linear --ckpt ...` "
                "and load its model.pt"
            )
        self.eval()
        x, layout, _ = self._batch(sequences, convention or next(iter(self.heads)))
        dev = self.device
        scores = torch.cat(
            [
                self(x[i : i + batch_size].to(dev), layout[i : i + batch_size].to(dev)).float().cpu()
                for i in range(0, x.shape[0], batch_size)
            ]
        )
        probs = scores.softmax(1).numpy()
        labels = probs.argmax(1)
        names = [self.class_names[i] if self.class_names else str(i) for i in labels]
        return Predictions(labels, names, probs)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, protocol: str) -> Path:
        """Write a classifier checkpoint (atomic) that `msclr.load` and `evaluate --ckpt` read."""
        path = Path(path)
        state = {
            "format": CLASSIFIER_FORMAT,
            "protocol": protocol,
            "config": OmegaConf.to_container(self.pre.config),
            "conventions": list(self.table.names),
            "convention_specs": [c.to_dict() for c in self.table.conventions],
            "encoder": {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()},
            "heads": {k: {n: t.detach().cpu() for n, t in h.state_dict().items()} for k, h in self.heads.items()},
            "class_names": self.class_names,
        }
        return checkpoint_io.save(path, state)


def load(ckpt: str | Path, device: str | torch.device = "cpu", backend: str = "auto") -> SkeletonModel:
    """A pre-training checkpoint (embed only) or an evaluation classifier (embed and predict)."""
    pre = read_checkpoint(ckpt)
    table = LayoutTable(pre.conventions, strategy=str(pre.config.model.strategy))
    encoder, _ = build_encoder(pre, table, backend=backend)
    heads = {}
    for name, state in pre.heads.items():
        w = state["weight"]
        heads[name] = nn.Linear(w.shape[1], w.shape[0])
        heads[name].load_state_dict(state)
    model = SkeletonModel(pre, table, encoder, heads, pre.class_names)
    return model.to(device).eval()
