"""Reading checkpoints and rebuilding their encoder for any set of conventions.

Two kinds of file are understood:

* a pre-training checkpoint of `python -m msclr.train` (``last.pt``): the MoCo state, the run
  config and the conventions it was trained on;
* a classifier of `python -m msclr.evaluate` (``<out>/model.pt``): an encoder plus one linear
  head per convention and the class names.

The encoder's per-convention parameters (input BatchNorm, edge importance) are mapped by
convention *name*, so an encoder can be rebuilt for a subset of its conventions, for another
V_max, or with conventions it has never seen (transfer): those get fresh per-convention
parameters, everything shared is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig

from .. import config as cfglib
from ..checkpoint_io import CheckpointError
from ..checkpoint_io import load as load_file
from ..skeletons import Convention, LayoutTable
from ..skeletons import get as get_convention
from ..skeletons.convention import from_dict

__all__ = ["CheckpointError", "Pretrained", "build_encoder", "read_checkpoint"]
CLASSIFIER_FORMAT = "msclr-classifier/1"
# encoder entries with a leading layout dimension: (L, 1 or M, V, C) and (L, K, V, V)
_PER_LAYOUT = ("data_bn.weight", "data_bn.bias", "data_bn.running_mean", "data_bn.running_var")


@dataclass
class Pretrained:
    """What evaluation needs from a checkpoint."""

    path: Path
    config: DictConfig  # the pre-training run's config (model, data, method sections)
    conventions: list[Convention]  # in the checkpoint's layout order
    encoder_state: dict[str, torch.Tensor]  # STGCNEncoder state dict (query encoder)
    heads: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # convention -> fc state
    class_names: list[str] | None = None
    protocol: str | None = None  # for classifiers: the protocol that trained the heads
    converted_from: dict | None = None  # `python -m msclr.convert`: the released file (it records no store)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.conventions]

    @property
    def persons(self) -> int:
        return int(self.config.data.persons)


def _conventions(ck: dict, path: Path, store=None) -> list[Convention]:
    names = ck.get("conventions")
    if not isinstance(names, list) or not names:
        raise CheckpointError(f"{path}: no list of conventions in the checkpoint")
    specs = ck.get("convention_specs")
    if specs:  # written since the conventions travel with the checkpoint
        return [from_dict(s, where=f"{path}: convention {s.get('name')!r}") for s in specs]
    out = []
    for n in names:  # older checkpoints: built-ins, else the store's own definition
        if store is not None and n in store.conventions:
            out.append(store.convention(n))
        else:
            try:
                out.append(get_convention(n))
            except ValueError as e:
                raise CheckpointError(
                    f"{path}: convention {n!r} is not built in and the checkpoint does not define it; "
                    "pass --data with the store it was trained on"
                ) from e
    return out


def read_checkpoint(path: str | Path, store=None) -> Pretrained:
    """Read a pre-training checkpoint or an evaluation classifier; CheckpointError if neither."""
    path = Path(path)
    ck = load_file(path)
    if not isinstance(ck, dict) or "config" not in ck:
        raise CheckpointError(f"{path}: not an msclr checkpoint (no run config inside)")
    try:
        cfg = cfglib.from_checkpoint(ck["config"])  # keys added since: the values that reproduce its run
    except Exception as e:
        raise CheckpointError(f"{path}: its config does not match this version of msclr: {e}") from e
    conventions = _conventions(ck, path, store)
    if ck.get("format") == CLASSIFIER_FORMAT:
        return Pretrained(
            path,
            cfg,
            conventions,
            dict(ck["encoder"]),
            heads={k: dict(v) for k, v in ck["heads"].items()},
            class_names=ck.get("class_names"),
            protocol=ck.get("protocol"),
            converted_from=ck.get("converted_from"),
        )
    model = ck.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(f"{path}: no model state in the checkpoint")
    prefix = "encoder_q."
    enc = {k[len(prefix) :]: v for k, v in model.items() if k.startswith(prefix)}
    if not enc:
        raise CheckpointError(
            f"{path}: no query encoder (encoder_q.*) in the model state; a checkpoint of another architecture?"
        )
    return Pretrained(path, cfg, conventions, enc, converted_from=ck.get("converted_from"))


def build_encoder(pre: Pretrained, table: LayoutTable, backend: str = "auto", random_init: bool = False):
    """The checkpoint's STGCNEncoder over `table`'s conventions (any subset/superset, any V_max).

    Returns (encoder, new_conventions): conventions of `table` that the checkpoint does not
    know keep freshly initialised per-convention parameters. random_init: the same
    architecture without loading any weight (the floor of an evaluation).
    """
    from ..models import STGCNEncoder
    from ..models.encoder import init_weights_

    m = pre.config.model
    enc = STGCNEncoder(
        table,
        hidden_channels=int(m.hidden_channels),
        hidden_dim=int(m.hidden_dim),
        persons=pre.persons,
        dropout=float(m.dropout),
        edge_importance=bool(m.edge_importance),
        backend=backend,
        input_norm=str(m.input_norm),
    )
    new = [n for n in table.names if n not in pre.names]
    if random_init:  # the floor: initialised as the pre-training run was
        return init_weights_(enc, str(m.init)), list(table.names)
    target = enc.state_dict()
    src = pre.encoder_state
    missing = sorted(set(target) - set(src))
    unexpected = sorted(set(src) - set(target))
    if missing or unexpected:
        raise CheckpointError(
            f"{pre.path}: the encoder does not match the architecture of its config "
            f"(missing {missing[:4]}, unexpected {unexpected[:4]}); a checkpoint of another architecture?"
        )
    state = {}
    for key, want in target.items():
        have = src[key]
        per_layout = key in _PER_LAYOUT or key.endswith(".importance")
        if not per_layout:
            if have.shape != want.shape:
                raise CheckpointError(
                    f"{pre.path}: parameter {key} has shape {tuple(have.shape)}, the encoder of its config "
                    f"expects {tuple(want.shape)}; a checkpoint of another architecture?"
                )
            state[key] = have
            continue
        out = want.clone()
        for l, conv in enumerate(table.conventions):
            if conv.name not in pre.names:
                continue
            j, v = pre.names.index(conv.name), conv.num_joints
            if key.endswith(".importance"):  # (L, K, V, V)
                out[l, :, :v, :v] = have[j, :, :v, :v]
            else:  # (L, 1 or M, V, C)
                out[l, :, :v, :] = have[j, :, :v, :]
        state[key] = out
    enc.load_state_dict(state)
    return enc, new
