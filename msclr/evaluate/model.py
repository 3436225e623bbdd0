"""A trained encoder with optional per-convention classifier heads, and `msclr.load`.

    import msclr
    model = msclr.load("runs/msclr/last.pt")            # a pre-training checkpoint
    feats = model.embed(seq, convention="ntu25")       # seq: (T, V, C) array -> (256,) features
    feats = model.embed(store.array("ntu25"), convention="ntu25", layout="NCTVM")  # -> (N, 256)
    clf = msclr.load("runs/msclr/eval_linear/model.pt")  # an evaluation's classifier
    pred = clf.predict(batch, convention="ntu25")      # batch: (N, T, V, C) -> Predictions

`layout=` names the input axes (N batch, M persons, T, V, C); without it the number of axes
decides (see `SkeletonModel.embed`) and a shape that does not fit, or is ambiguous, is an error.
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
        from ..views import to_stream

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
    def _batch(self, sequences, convention: str | None, layout: str | None = None) -> tuple[Tensor, Tensor, bool]:
        name = convention or self.table.names[0]
        if name not in self.table.names:
            raise ValueError(f"convention {name!r} is not one of this model's {list(self.table.names)}")
        conv = self.table.conventions[self.table.layout_id(name)]
        c_in = self.encoder.data_bn.weight.shape[-1]
        v, c = conv.num_joints, c_in
        where = f"(expected V = {v} joints of {name!r}, C = {c} channels)"
        single = False
        if isinstance(sequences, (list, tuple)):
            if layout is not None and "N" in _parse_layout(layout):
                raise ValueError(f"layout {layout!r}: a list holds one sequence per item, so no N axis")
            seqs = []
            for i, item in enumerate(sequences):
                arr = np.asarray(item, np.float32)
                lay = _pick_layout(arr.shape, layout, _ITEM_DEFAULT, _ITEM_KNOWN, v, c, f"sequence {i} {where}")
                seqs.append(_to_mtvc(arr, lay))
        else:
            arr = np.asarray(sequences, np.float32)
            lay = _pick_layout(arr.shape, layout, _DEFAULT, _KNOWN, v, c, f"sequences {where}")
            if "N" in lay:
                n = lay.index("N")
                item = lay.replace("N", "")
                seqs = [_to_mtvc(a, item) for a in np.moveaxis(arr, n, 0)]
            else:
                seqs, single = [_to_mtvc(arr, lay)], True
        if not seqs:
            raise ValueError("no sequences: an empty list or batch (N = 0)")
        out = np.zeros((len(seqs), c_in, self.frames, self.table.v_max, self.persons), np.float32)
        for i, s in enumerate(seqs):
            if s.shape[1] == 0:
                raise ValueError(f"sequence {i}: no frames (T = 0), shape {s.shape} as (M, T, V, C)")
            if s.shape[0] == 0:
                raise ValueError(f"sequence {i}: no persons (M = 0), shape {s.shape} as (M, T, V, C)")
            if not np.isfinite(s).all():
                raise ValueError(f"sequence {i}: NaN or inf values")
            x = s.transpose(3, 1, 2, 0)  # (C, T, V, M)
            nonzero = np.flatnonzero(np.abs(x).sum((0, 2, 3)) > 0)
            length = int(nonzero[-1]) + 1 if nonzero.size else x.shape[1]  # trailing zero frames are padding
            pos = np.clip(resample_positions(*eval_crop(length), self.frames), 0, length - 1)
            frames = gather_frames(x[:, :length], pos)
            m = min(self.persons, frames.shape[3])
            out[i, :, :, : conv.num_joints, :m] = frames[..., :m]
        ids = torch.full((len(seqs),), self.table.layout_id(name), dtype=torch.long)
        return torch.from_numpy(out), ids, single

    @torch.no_grad()
    def embed(
        self, sequences, convention: str | None = None, batch_size: int = 256, layout: str | None = None
    ) -> Tensor:
        """Encoder features of raw sequences: one sequence -> (D,), a batch or a list -> (N, D).

        layout: the axes of `sequences`, a string of N (batch), M (persons), T (frames), V (joints)
        and C (channels), e.g. "NCTVM" (a store array), "NTVC", "TMVC" (a folder sample), "MTVC".
        For a list it describes each item (no N). Without it: a 3-D array is (T, V, C), a 4-D one a
        batch (N, T, V, C), a 5-D one (N, M, T, V, C), list items (T, V, C) or (M, T, V, C); so one
        sequence with persons needs layout="MTVC"/"TMVC" (or a list). A shape that does not fit,
        or fits another layout as well, is a ValueError that names the layouts it fits; so are
        T = 0, M = 0, an empty list or batch, and NaN/inf. convention: default the first."""
        self.eval()
        x, ids, single = self._batch(sequences, convention, layout)
        dev = self.device
        feats = torch.cat(
            [
                self.features(x[i : i + batch_size].to(dev), ids[i : i + batch_size].to(dev)).float().cpu()
                for i in range(0, x.shape[0], batch_size)
            ]
        )
        return feats[0] if single else feats

    @torch.no_grad()
    def predict(
        self, sequences, convention: str | None = None, batch_size: int = 256, layout: str | None = None
    ) -> Predictions:
        """Class predictions of raw sequences (same inputs and `layout` as `embed`); needs a classifier
        checkpoint. One sequence gives N = 1."""
        if not len(self.heads):
            raise RuntimeError(
                f"{self.pre.path} has no classifier: train one with `python -m msclr.evaluate linear --ckpt ...` "
                "and load its model.pt"
            )
        self.eval()
        x, ids, _ = self._batch(sequences, convention or next(iter(self.heads)), layout)
        dev = self.device
        scores = torch.cat(
            [
                self(x[i : i + batch_size].to(dev), ids[i : i + batch_size].to(dev)).float().cpu()
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
        if self.pre.converted_from:
            state["converted_from"] = self.pre.converted_from
        return checkpoint_io.save(path, state)


# ------------------------------------------------------------------ input layouts
# The defaults by number of axes, and the layouts a shape is checked against (a shape that fits
# a layout other than the default, by where its V and C axes are, is ambiguous).
_DEFAULT = {3: "TVC", 4: "NTVC", 5: "NMTVC"}
_KNOWN = {3: ("TVC",), 4: ("NTVC", "MTVC", "TMVC", "CTVM"), 5: ("NMTVC", "NTMVC", "NCTVM")}
_ITEM_DEFAULT = {3: "TVC", 4: "MTVC"}
_ITEM_KNOWN = {3: ("TVC",), 4: ("MTVC", "TMVC", "CTVM")}


def _parse_layout(layout: str) -> str:
    lay = str(layout).upper()
    if len(set(lay)) != len(lay) or not set(lay) <= set("NMTVC") or not set("TVC") <= set(lay):
        raise ValueError(
            f"layout {layout!r}: use each of N (batch), M (persons), T, V, C at most once, with T, V and C, "
            "e.g. 'NCTVM', 'NTVC', 'TMVC'"
        )
    return lay


def _fits(lay: str, shape: tuple[int, ...], v: int, c: int) -> bool:
    return shape[lay.index("V")] == v and shape[lay.index("C")] == c


def _pick_layout(shape, layout, defaults, known, v: int, c: int, what: str) -> str:
    shape = tuple(shape)
    if layout is not None:
        lay = _parse_layout(layout)
        if len(lay) != len(shape):
            raise ValueError(f"{what}: layout {lay!r} has {len(lay)} axes, the array {len(shape)} (shape {shape})")
        if not _fits(lay, shape, v, c):
            raise ValueError(
                f"{what}: shape {shape} read as {lay!r} has V = {shape[lay.index('V')]}, C = {shape[lay.index('C')]}"
            )
        return lay
    if len(shape) not in defaults:
        axes = " or ".join(f"{k}-D ({', '.join(d)})" for k, d in defaults.items())
        raise ValueError(f"{what}: shape {shape}; expected {axes}, or pass layout=")
    default = defaults[len(shape)]
    fit = [lay for lay in known[len(shape)] if _fits(lay, shape, v, c)]
    if default not in fit:
        hint = f"; it fits {fit}: pass layout={fit[0]!r}" if fit else ""
        raise ValueError(f"{what}: shape {shape} does not fit the default layout {default!r}{hint}")
    axes = (default.index("V"), default.index("C"))
    others = [lay for lay in fit if (lay.index("V"), lay.index("C")) != axes]
    if others:
        raise ValueError(f"{what}: shape {shape} is ambiguous, it fits {[default, *others]}: pass layout=")
    return default


def _to_mtvc(arr: np.ndarray, lay: str) -> np.ndarray:
    """An array with axes `lay` (no N) -> (M, T, V, C)."""
    if "M" not in lay:
        arr, lay = arr[None], "M" + lay
    return arr.transpose([lay.index(a) for a in "MTVC"])


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
