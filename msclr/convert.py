"""python -m msclr.convert: checkpoints of SkeletonCLR, AimCLR, CrosSCLR and ST-GCN -> msclr.

    python -m msclr.convert aimclr aimclr_xsub_joint.pt --out aimclr_xsub_joint_msclr.pt
    python -m msclr.convert crossclr crossclr_3views.pt --view motion --out crossclr_motion.pt
    python -m msclr.convert stgcn st_gcn.ntu-xsub.pt --out stgcn_xsub.pt

The result is an msclr pre-training checkpoint (`msclr.load`, `python -m msclr.evaluate ...
--ckpt`): the ST-GCN becomes an `STGCNEncoder` over one convention (default ntu25) with the
input BatchNorm of form "stgcn" (persons share it, as in those codebases). It computes the
same features as the source model: tests/test_convert.py and tests/test_models_faithful.py
hold it against an independent ST-GCN.

The converted encoder assumes the source was trained on msclr's graph of that convention:
`LayoutTable([convention], strategy="spatial").A[0]`, which for ntu25 is ST-GCN's layout
"ntu-rgb+d" with strategy "spatial". Where the file holds the graph (the `A` buffer of the
released code) it is compared with msclr's and a different one is an error.

Mapping (source names without the wrapper prefix; K partitions, V joints, C input channels):

    data_bn.*  (V*C,), feature v*C + c          -> data_bn.*  (1, 1, V, C)
    st_gcn_networks.i.gcn.conv.weight (K*Co, Ci, 1, 1), channel k*Co + o -> units.i.weight (K, Co, Ci)
    st_gcn_networks.i.gcn.conv.bias   (K*Co,)   -> units.i.bias (K, Co)
    st_gcn_networks.i.tcn.0 / tcn.2 / tcn.3     -> units.i.bn1 / tcn / bn2
    st_gcn_networks.i.residual.0 / residual.1   -> units.i.res_conv / res_bn
    edge_importance.i (K, V, V)                 -> units.i.importance (1, K, V, V)
    fc.0, fc.2 (the MLP projection head)        -> head_q.0, head_q.2 (and encoder_k -> head_k)
    queue (D, Q), queue_ptr                     -> queue (Q, D), queue_ptr, queue_count = Q

BatchNorm `num_batches_tracked` counters, the `A` buffer (checked) and classifiers (a plain
ST-GCN's `fcn`/`fc`, a linear evaluation's `fc`) are not carried over. A file without a key
encoder gets copies of the query encoder and head (MoCo's own initialisation). Errors name the
file and the key, and exit with status 2.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from . import checkpoint_io
from .models.encoder import UNITS

CODEBASES = ("aimclr", "skeletonclr", "crossclr", "stgcn")
VIEWS = ("joint", "motion", "bone")
NUM_UNITS = len(UNITS) + 1  # the last unit outputs hidden_dim
KERNEL_T = 9
_BN = ("weight", "bias", "running_mean", "running_var")


class ConvertError(ValueError):
    """The file cannot be converted (the message names the file and the key)."""


@dataclass(frozen=True)
class Arch:
    """The ST-GCN hyper-parameters read off a state dict's shapes."""

    in_channels: int
    hidden_channels: int
    hidden_dim: int
    partitions: int  # K
    joints: int  # V
    edge_importance: bool

    def unit_channels(self) -> list[tuple[int, int, int]]:
        """(c_in, c_out, stride) of the ten units."""
        chans = [self.hidden_channels * m for m, _ in UNITS] + [self.hidden_dim]
        strides = [s for _, s in UNITS] + [1]
        ins = [self.in_channels] + chans[:-1]
        return list(zip(ins, chans, strides))


def _need(sd: Mapping[str, Tensor], key: str, where: str) -> Tensor:
    if key not in sd:
        raise ConvertError(f"{where}: missing key {key}")
    t = sd[key]
    if not isinstance(t, Tensor):
        raise ConvertError(f"{where}: {key} is a {type(t).__name__}, not a tensor")
    return t


def _shaped(sd: Mapping[str, Tensor], key: str, shape: tuple[int, ...], where: str, why: str = "") -> Tensor:
    t = _need(sd, key, where)
    if tuple(t.shape) != tuple(shape):
        raise ConvertError(f"{where}: {key} has shape {tuple(t.shape)}, expected {tuple(shape)}{why}")
    return t


def infer_arch(sd: Mapping[str, Tensor], where: str = "state dict", prefix: str = "", partitions: int = 3) -> Arch:
    """ST-GCN hyper-parameters from the shapes of a SkeletonCLR/AimCLR ST-GCN state dict (keys under
    `prefix`). `partitions`: K of the graph the encoder will use (3 for strategy "spatial")."""
    p = prefix
    w0 = _need(sd, f"{p}st_gcn_networks.0.gcn.conv.weight", where)
    w9 = _need(sd, f"{p}st_gcn_networks.{NUM_UNITS - 1}.gcn.conv.weight", where)
    extra = f"{p}st_gcn_networks.{NUM_UNITS}.gcn.conv.weight"
    if extra in sd:
        raise ConvertError(f"{where}: unexpected key {extra}: more than {NUM_UNITS} units, not the SkeletonCLR ST-GCN")
    k = partitions
    for key, w in ((f"{p}st_gcn_networks.0.gcn.conv.weight", w0), (f"{p}st_gcn_networks.9.gcn.conv.weight", w9)):
        if w.dim() != 4 or w.shape[2:] != (1, 1) or w.shape[0] % k:
            raise ConvertError(
                f"{where}: {key} has shape {tuple(w.shape)}, expected (K*C_out, C_in, 1, 1) with K={k} partitions"
            )
    c_in = int(w0.shape[1])
    bn = _need(sd, f"{p}data_bn.weight", where)
    if bn.dim() != 1 or bn.shape[0] % c_in:
        raise ConvertError(f"{where}: {p}data_bn.weight has shape {tuple(bn.shape)}, expected (V*{c_in},)")
    v = int(bn.shape[0]) // c_in
    importance = f"{p}edge_importance.0" in sd
    for key in (f"{p}A", f"{p}edge_importance.0"):
        if key in sd and tuple(sd[key].shape) != (k, v, v):
            raise ConvertError(
                f"{where}: {key} has shape {tuple(sd[key].shape)}, expected ({k}, {v}, {v}): "
                f"a graph of {k} partitions over {v} joints (strategy spatial)"
            )
    return Arch(c_in, int(w0.shape[0]) // k, int(w9.shape[0]) // k, k, v, importance)


def convert_stgcn_state(
    sd: Mapping[str, Tensor], arch: Arch | None = None, where: str = "state dict", prefix: str = ""
) -> tuple[dict[str, Tensor], Arch, set[str]]:
    """Map a SkeletonCLR/AimCLR/ST-GCN state dict (keys under `prefix`) onto msclr's STGCNEncoder
    over one convention (L = 1, V_max = V, input norm "stgcn").

    Returns (encoder state dict, the architecture, the source keys consumed). Raises ConvertError
    naming the key on a missing key or an unexpected shape.
    """
    arch = arch or infer_arch(sd, where, prefix)
    p, k, v, c = prefix, arch.partitions, arch.joints, arch.in_channels
    used: set[str] = set()
    out: dict[str, Tensor] = {}

    def take(key: str, shape: tuple[int, ...], why: str = "") -> Tensor:
        used.add(p + key)
        return _shaped(sd, p + key, shape, where, why).detach().clone()

    def bn(src: str, dst: str, ch: int) -> None:
        for name in _BN:
            out[f"{dst}.{name}"] = take(f"{src}.{name}", (ch,))
        used.add(f"{p}{src}.num_batches_tracked")  # msclr's BatchNorm keeps no counter

    for name in _BN:  # feature v*C + c of BatchNorm1d(V*C) over (N*M, V*C, T)
        out[f"data_bn.{name}"] = take(f"data_bn.{name}", (v * c,)).view(1, 1, v, c)
    used.add(f"{p}data_bn.num_batches_tracked")

    for i, (ci, co, stride) in enumerate(arch.unit_channels()):
        src, dst = f"st_gcn_networks.{i}", f"units.{i}"
        why = f" (unit {i}: C_in={ci}, C_out={co}, K={k})"
        # conv output channel k*C_out + o is partition k, channel o (ConvTemporalGraphical's view)
        out[f"{dst}.weight"] = take(f"{src}.gcn.conv.weight", (k * co, ci, 1, 1), why).view(k, co, ci)
        out[f"{dst}.bias"] = take(f"{src}.gcn.conv.bias", (k * co,), why).view(k, co)
        if arch.edge_importance:
            out[f"{dst}.importance"] = take(f"edge_importance.{i}", (k, v, v))[None]
        bn(f"{src}.tcn.0", f"{dst}.bn1", co)
        out[f"{dst}.tcn.weight"] = take(f"{src}.tcn.2.weight", (co, co, KERNEL_T, 1), why)
        out[f"{dst}.tcn.bias"] = take(f"{src}.tcn.2.bias", (co,), why)
        bn(f"{src}.tcn.3", f"{dst}.bn2", co)
        if i > 0 and (ci != co or stride != 1):
            out[f"{dst}.res_conv.weight"] = take(f"{src}.residual.0.weight", (co, ci, 1, 1), why)
            out[f"{dst}.res_conv.bias"] = take(f"{src}.residual.0.bias", (co,), why)
            bn(f"{src}.residual.1", f"{dst}.res_bn", co)
    # a key of the ST-GCN itself that the mapping did not take: another architecture
    for key in sd:
        rest = key[len(p) :] if key.startswith(p) else None
        if (
            rest is not None
            and key not in used
            and rest.startswith(("st_gcn_networks.", "edge_importance.", "data_bn."))
        ):
            raise ConvertError(f"{where}: unexpected key {key}: not the SkeletonCLR/AimCLR ST-GCN")
    return out, arch, used & set(sd)


# --------------------------------------------------------------------------------------- files
def read_state(path: Path) -> dict[str, Tensor]:
    """The state dict of a released checkpoint: a bare state dict, or one under "state_dict" / "model";
    a DataParallel `module.` prefix is removed."""
    if not path.is_file():
        raise ConvertError(f"{path}: no such file")
    try:
        obj = checkpoint_io.load(path)
    except checkpoint_io.CheckpointError as e:
        raise ConvertError(str(e)) from e
    if isinstance(obj, Mapping) and "config" in obj and "conventions" in obj:
        raise ConvertError(f"{path}: already an msclr checkpoint")
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not any(isinstance(t, Tensor) for t in obj.values()):
        raise ConvertError(f"{path}: not a checkpoint (no state dict of tensors inside, found {type(obj).__name__})")
    return {re.sub(r"^module\.", "", str(k)): t for k, t in obj.items()}


@dataclass
class Converted:
    checkpoint: dict
    report: list[str]


def _prefixes(codebase: str, view: str) -> tuple[str, str, str]:
    """(query prefix, key prefix, queue suffix) of the chosen codebase and view."""
    if codebase == "stgcn":
        return "", "", ""
    suffix = "" if codebase != "crossclr" or view == "joint" else f"_{view}"
    return f"encoder_q{suffix}.", f"encoder_k{suffix}.", suffix


def _check_options(codebase: str, view: str, persons: int) -> None:
    if codebase not in CODEBASES:
        raise ConvertError(f"unknown codebase {codebase!r}; choose one of {CODEBASES}")
    if view not in VIEWS:
        raise ConvertError(f"unknown view {view!r}; choose one of {VIEWS}")
    if view != "joint" and codebase != "crossclr":
        raise ConvertError(f"--view {view}: only CrosSCLR checkpoints hold several views")
    if persons < 1:
        raise ConvertError(f"--persons must be >= 1, got {persons}")


def _check_wrapping(sd: dict[str, Tensor], codebase: str, q: str, path: Path) -> None:
    """The ST-GCN is wrapped (encoder_q.*) or not, as the codebase named says."""
    if codebase == "stgcn" and "data_bn.weight" not in sd and "encoder_q.data_bn.weight" in sd:
        raise ConvertError(f"{path}: the ST-GCN is wrapped as encoder_q.*: convert it as aimclr or skeletonclr")
    if codebase != "stgcn" and f"{q}data_bn.weight" not in sd and "data_bn.weight" in sd:
        raise ConvertError(f"{path}: missing key {q}data_bn.weight (a plain ST-GCN? convert it as stgcn)")


def _check_arch(sd, arch: Arch, table, conv, q: str, path: Path, hidden_channels, hidden_dim) -> None:
    """The weights fit the convention, msclr's 3 input channels, the sizes asked for and msclr's graph."""
    if arch.joints != conv.num_joints:
        raise ConvertError(
            f"{path}: {q}data_bn.weight holds V={arch.joints} joints, convention {conv.name!r} has "
            f"{conv.num_joints}; pass --convention with the skeleton the model was trained on"
        )
    if arch.in_channels != 3:
        raise ConvertError(
            f"{path}: {q}st_gcn_networks.0.gcn.conv.weight takes {arch.in_channels} input channels, msclr's encoder 3"
        )
    for flag, want, have in (
        ("--hidden-channels", hidden_channels, arch.hidden_channels),
        ("--hidden-dim", hidden_dim, arch.hidden_dim),
    ):
        if want is not None and want != have:
            raise ConvertError(f"{path}: {flag} {want}, but the weights ({q}st_gcn_networks.*) have {have}")
    if f"{q}A" in sd:  # the released code saves its graph: it must be msclr's
        ref = table.A[0]
        got = sd[f"{q}A"].float()
        if not torch.allclose(got, ref, atol=1e-6):
            raise ConvertError(
                f"{path}: {q}A (the model's graph) differs from msclr's {conv.name} graph (strategy spatial) by up to "
                f"{(got - ref).abs().max().item():.3g}; the converted encoder would not compute the same features"
            )


def _convert_encoders(sd, arch: Arch, path: Path, codebase: str, q: str, kp: str, conv, report: list[str]):
    """(query encoder, key encoder, keys used): the key encoder is the file's, else a copy of the query's."""
    enc_q, _, used = convert_stgcn_state(sd, arch, str(path), q)
    report.append(
        f"  encoder {q or '(no prefix)'}*: {len(enc_q)} tensors -> encoder_q.*; "
        f"hidden_channels={arch.hidden_channels} hidden_dim={arch.hidden_dim} K={arch.partitions} V={arch.joints} "
        f"edge_importance={arch.edge_importance}"
    )
    if f"{q}A" in sd:
        used.add(f"{q}A")
        report.append(f"  {q}A: equal to msclr's {conv.name} graph (strategy spatial); not stored (msclr builds it)")
    if codebase != "stgcn" and f"{kp}data_bn.weight" in sd:
        enc_k, _, used_k = convert_stgcn_state(sd, arch, str(path), kp)
        used |= used_k | ({f"{kp}A"} & set(sd))
        report.append(f"  key encoder {kp}*: {len(enc_k)} tensors -> encoder_k.*")
    else:
        enc_k = {n: t.clone() for n, t in enc_q.items()}
        report.append("  no key encoder in the file: encoder_k.* = a copy of encoder_q.* (MoCo's initialisation)")
    return enc_q, enc_k, used


def _convert_head(sd, d: int, path: Path, codebase: str, view: str, q: str, kp: str, used: set, report: list[str]):
    """(msclr's head_q/head_k tensors, feature_dim or None) of the MLP projection head: fc.0 Linear(D, D),
    ReLU, fc.2 Linear(D, F), as msclr's head_q.0 / head_q.2."""
    feature_dim = None
    head = {}
    if codebase != "stgcn" and f"{q}fc.2.weight" in sd:
        for src, dst in ((q, "head_q"), (kp, "head_k")):
            if f"{src}fc.0.weight" not in sd:
                continue
            w2 = _need(sd, f"{src}fc.2.weight", str(path))
            if w2.dim() != 2:
                raise ConvertError(f"{path}: {src}fc.2.weight has shape {tuple(w2.shape)}, expected (feature_dim, {d})")
            fdim = int(w2.shape[0])
            head[f"{dst}.0.weight"] = _shaped(sd, f"{src}fc.0.weight", (d, d), str(path)).clone()
            head[f"{dst}.0.bias"] = _shaped(sd, f"{src}fc.0.bias", (d,), str(path)).clone()
            head[f"{dst}.2.weight"] = _shaped(sd, f"{src}fc.2.weight", (fdim, d), str(path)).clone()
            head[f"{dst}.2.bias"] = _shaped(sd, f"{src}fc.2.bias", (fdim,), str(path)).clone()
            used |= {f"{src}fc.{i}.{n}" for i in (0, 2) for n in ("weight", "bias")}
            feature_dim = feature_dim or fdim
        if "head_k.0.weight" not in head:
            head.update({"head_k" + n[len("head_q") :]: t.clone() for n, t in head.items() if n.startswith("head_q")})
        report.append(f"  projection head {q}fc.0/.2 -> head_q.0/.2, feature_dim={feature_dim}; key head -> head_k")
    elif codebase != "stgcn" and f"{q}fc.2.0.weight" in sd:
        # CrosSCLR's motion/bone heads wrap the joint head (fc.2 is encoder_q.fc): three layers
        report.append(f"  {q}fc.*: CrosSCLR's {view} head nests the joint head (3 layers); msclr's has 2: not carried")
    else:
        report.append("  no projection head (fc.0/fc.2) in the file: the checkpoint has none (evaluation only)")
    return head, feature_dim


def _convert_queue(sd, model: dict, feature_dim, path: Path, codebase: str, suffix: str, used: set, report: list[str]):
    """The MoCo queue (queue, queue_ptr, queue_count) into `model`; returns feature_dim, from the queue if unknown."""
    queue_key = f"queue{suffix}"
    if codebase != "stgcn" and queue_key in sd:
        queue = sd[queue_key]
        if queue.dim() != 2 or (feature_dim is not None and queue.shape[0] != feature_dim):
            dim = "feature_dim" if feature_dim is None else str(feature_dim)
            raise ConvertError(f"{path}: {queue_key} has shape {tuple(queue.shape)}, expected ({dim}, queue size)")
        feature_dim = feature_dim or int(queue.shape[0])
        ptr = sd.get(f"queue_ptr{suffix}", torch.zeros(1, dtype=torch.int64))
        model["queue"] = queue.t().contiguous().clone()
        model["queue_ptr"] = ptr.to(torch.int64).reshape(1).clone()
        model["queue_count"] = torch.tensor(queue.shape[1], dtype=torch.int64)  # a MoCo queue starts full
        used |= {queue_key, f"queue_ptr{suffix}"} & set(sd)
        report.append(f"  {queue_key} {tuple(queue.shape)} -> queue {tuple(model['queue'].shape)}; queue_ptr")
    return feature_dim


def _report_unused(sd, used: set, q: str, kp: str, report: list[str]) -> None:
    """What the file holds that was not converted: BatchNorm counters, classifiers, other views."""
    counters = [k for k in sd if k.endswith("num_batches_tracked")]
    if counters:
        report.append(f"  dropped: {len(counters)} BatchNorm num_batches_tracked counters (msclr keeps none)")
    groups: dict[str, int] = {}
    for key in sorted(set(sd) - used - set(counters)):
        parts = key.split(".")
        # keys left under a mapped encoder are its classifier (fc / fcn): name them one level deeper
        name = ".".join(parts[:2]) if parts[0] + "." in (q, kp) and len(parts) > 2 else parts[0]
        groups[name] = groups.get(name, 0) + 1
    if groups:
        shown = ", ".join(f"{g}.* ({n})" if n > 1 else g for g, n in groups.items())
        report.append(f"  ignored (classifiers, other views, other buffers): {shown}")
    else:
        report.append("  ignored: nothing else")


def _run_config(arch: Arch, conv, codebase: str, persons: int, stream, view: str, feature_dim, model, path) -> dict:
    """The run config of the converted checkpoint (msclr's defaults with the model's sizes), validated."""
    from omegaconf import OmegaConf

    from . import config as cfglib

    cfg = copy.deepcopy(cfglib.DEFAULTS)
    cfg["model"].update(
        hidden_channels=arch.hidden_channels,
        hidden_dim=arch.hidden_dim,
        feature_dim=feature_dim or cfg["model"]["feature_dim"],
        edge_importance=arch.edge_importance,
        strategy="spatial",
        input_norm="stgcn",
    )
    cfg["data"].update(persons=int(persons), conventions=[conv.name], store=None, stream=stream or view)
    cfg["method"]["name"] = "aimclr" if codebase == "aimclr" else "skeletonclr"
    if "queue" in model:
        cfg["method"]["queue_size"] = int(model["queue"].shape[0])
    try:
        cfglib.validate(OmegaConf.merge(OmegaConf.create(cfglib.DEFAULTS), OmegaConf.create(cfg)))
    except ValueError as e:
        raise ConvertError(f"{path}: the converted run config is not valid: {e}") from e
    return cfg


def _check_loads(table, arch: Arch, persons: int, enc_q, model, feature_dim, path: Path) -> None:
    """The final check: the state loads, strictly, into the encoder its config describes."""
    from .models import STGCNEncoder
    from .models.contrast import projection_head

    enc = STGCNEncoder(
        table,
        hidden_channels=arch.hidden_channels,
        hidden_dim=arch.hidden_dim,
        persons=int(persons),
        edge_importance=arch.edge_importance,
        input_norm="stgcn",
    )
    try:
        enc.load_state_dict(enc_q)
        if "head_q.0.weight" in model:
            projection_head(arch.hidden_dim, feature_dim).load_state_dict(
                {n[len("head_q.") :]: t for n, t in model.items() if n.startswith("head_q.")}
            )
    except RuntimeError as e:
        raise ConvertError(f"{path}: the mapped weights do not fit msclr's encoder: {str(e).splitlines()[0]}") from e


def convert(
    codebase: str,
    path: str | Path,
    convention: str = "ntu25",
    persons: int = 2,
    view: str = "joint",
    stream: str | None = None,
    hidden_channels: int | None = None,
    hidden_dim: int | None = None,
) -> Converted:
    """The msclr checkpoint (a dict for torch.save) of a released checkpoint, and what was done."""
    from .skeletons import LayoutTable
    from .skeletons import get as get_convention

    path = Path(path)
    _check_options(codebase, view, persons)
    try:
        conv = get_convention(convention)
    except ValueError as e:
        raise ConvertError(str(e)) from e
    sd = read_state(path)
    q, kp, suffix = _prefixes(codebase, view)
    _check_wrapping(sd, codebase, q, path)

    table = LayoutTable([conv], strategy="spatial")
    arch = infer_arch(sd, str(path), q, partitions=table.num_partitions)
    _check_arch(sd, arch, table, conv, q, path, hidden_channels, hidden_dim)

    view_note = f", view {view}" if codebase == "crossclr" else ""
    report = [f"{codebase} checkpoint {path}{view_note}; input stream {stream or view}, convention {conv.name}"]
    enc_q, enc_k, used = _convert_encoders(sd, arch, path, codebase, q, kp, conv, report)
    model: dict[str, Tensor] = {f"encoder_q.{n}": t for n, t in enc_q.items()}
    model.update({f"encoder_k.{n}": t for n, t in enc_k.items()})
    head, feature_dim = _convert_head(sd, arch.hidden_dim, path, codebase, view, q, kp, used, report)
    model.update(head)
    feature_dim = _convert_queue(sd, model, feature_dim, path, codebase, suffix, used, report)
    _report_unused(sd, used, q, kp, report)
    model = {n: t.float() if t.is_floating_point() else t for n, t in model.items()}

    cfg = _run_config(arch, conv, codebase, persons, stream, view, feature_dim, model, path)
    _check_loads(table, arch, persons, enc_q, model, feature_dim, path)
    ck = {
        "model": model,
        "config": cfg,
        "conventions": [conv.name],
        "convention_specs": [conv.to_dict()],
        "converted_from": {
            "codebase": codebase,
            "path": str(path),
            "sha256": checkpoint_io.sha256_of(path),
            "view": view,
        },
        "epoch": 0,  # no msclr training: not resumable (no optimizer state)
        "step": 0,
    }
    return Converted(ck, report)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m msclr.convert",
        description="Convert a SkeletonCLR / AimCLR / CrosSCLR / ST-GCN checkpoint into an msclr checkpoint.",
    )
    ap.add_argument("codebase", choices=CODEBASES, help="the codebase that wrote the checkpoint")
    ap.add_argument("ckpt", help="the released checkpoint (.pt / .pth)")
    ap.add_argument("--out", required=True, help="the msclr checkpoint to write (a new file; see --overwrite)")
    ap.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    ap.add_argument("--convention", default="ntu25", help="the skeleton the model was trained on (default ntu25)")
    ap.add_argument("--persons", type=int, default=2, help="person slots of the input (default 2)")
    ap.add_argument("--view", choices=VIEWS, default="joint", help="CrosSCLR: which view's encoder (default joint)")
    ap.add_argument(
        "--stream", choices=VIEWS, default=None, help="the input stream it was trained on (default: the view, joint)"
    )
    ap.add_argument("--hidden-channels", type=int, default=None, help="check: the expected hidden_channels")
    ap.add_argument("--hidden-dim", type=int, default=None, help="check: the expected hidden_dim")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:  # it may be a training run's last.pt: never replaced silently
        print(f"error: --out {out} exists; choose a new file or pass --overwrite", file=sys.stderr)
        return 2
    try:
        res = convert(
            args.codebase,
            args.ckpt,
            convention=args.convention,
            persons=args.persons,
            view=args.view,
            stream=args.stream,
            hidden_channels=args.hidden_channels,
            hidden_dim=args.hidden_dim,
        )
        out = checkpoint_io.save(args.out, res.checkpoint)
    except (ConvertError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(res.report))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
