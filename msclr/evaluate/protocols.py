"""Evaluation protocols: linear, KNN, semi-supervised, fine-tuning, transfer, ensemble, fusion.

Every protocol works on an `EvalContext` (checkpoint + store + split + conventions) and
returns a result dict that `__main__` writes as the JSON report. Hyper-parameters default
to SkeletonCLR/AimCLR's (docs/architecture.md section 7).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data.store import is_store, open_store
from ..skeletons import LayoutTable
from . import report
from .checkpoint import Pretrained, build_encoder, read_checkpoint
from .features import FeatureSet, cached_features, eval_dataset, extract, file_identity, split_indices
from .model import SkeletonModel
from .probes import (
    EvalError,
    choose_k,
    fit_linear,
    knn_scores,
    milestones_for,
    resolve_C,
    sgd_schedule,
    train_accuracy,
)

log = logging.getLogger("msclr.evaluate")
BN_STATS = ("checkpoint", "train")


@dataclass
class EvalContext:
    pre: Pretrained
    store: object  # msclr.data.Store
    split: str
    conventions: list[str]  # evaluated conventions, in layout order of `table`
    table: LayoutTable
    encoder: nn.Module
    new_conventions: list[str]  # conventions the checkpoint has never seen (transfer)
    device: torch.device
    out: Path
    batch_size: int = 128
    seed: int = 0
    random_init: bool = False
    plots: bool = True
    bn_stats: str = "checkpoint"  # BN_STATS: the BatchNorm statistics the encoder runs with

    @property
    def class_names(self) -> list[str]:
        names = self.store.class_names
        return list(names) if names else [str(i) for i in range(self.store.num_classes)]

    @property
    def frames(self) -> int:
        return int(self.pre.config.data.frames)

    @property
    def stream(self) -> str:
        return str(self.pre.config.data.stream)

    def dataset(self, part: str, train: bool = False, conventions: list[str] | None = None):
        return eval_dataset(
            self.store,
            self.table,
            conventions or self.conventions,
            T=self.frames,
            M=self.pre.persons,
            split=(self.split, part),
            train=train,
        )

    def features(self, part: str) -> FeatureSet:
        """Frozen-encoder features of a split part, cached beside the checkpoint (feature_cache/),
        so protocols evaluating the same checkpoint and data share them."""
        m = self.pre.config.model  # a random floor is defined by its seed and architecture
        floor = {"random_init": self.seed, "init": str(m.init), "input_norm": str(m.input_norm)}
        ident = floor if self.random_init else file_identity(self.pre.path)
        key = dict(
            ckpt=ident,
            store=str(Path(self.store.path).resolve()),
            split=self.split,
            part=part,
            T=self.frames,
            M=self.pre.persons,
            conventions=self.conventions,
            table=list(self.table.names),
            stream=self.stream,
            new=self.new_conventions,
            bn_stats=self.bn_stats,
        )
        return cached_features(
            self.pre.path.parent / "feature_cache",
            key,
            lambda: extract(
                self.encoder,
                self.dataset(part),
                self.table,
                self.stream,
                self.device,
                self.batch_size,
                desc=f"features ({part})",
            ),
        )


# ---------------------------------------------------------------------------- set-up
def default_output(ckpt: str | Path, protocol: str) -> Path:
    """Where an evaluation writes without --out: <checkpoint dir>/eval_<protocol>."""
    return Path(ckpt).parent / f"eval_{protocol}"


def default_store_path(pre: Pretrained) -> Path:
    """The store the checkpoint was trained on (synthetic runs: <run out>/synthetic)."""
    d = pre.config.data
    if d.store is not None:
        return Path(d.store)
    for cand in (pre.path.parent / "synthetic", Path(pre.config.run.out) / "synthetic"):
        if is_store(cand):
            return cand
    return pre.path.parent / "synthetic"


def open_eval_store(pre: Pretrained, data: str | Path | None):
    """--data, else the checkpoint's store (its synthetic data is regenerated when missing)."""
    from ..data.synthetic import synthetic_store_from_config

    if data is None and pre.converted_from:  # its config's synthetic section is msclr's default, not its data
        src = pre.converted_from
        raise EvalError(
            f"checkpoint {pre.path} was converted from {src.get('codebase')} ({src.get('path')}) and records "
            "no store to evaluate on: pass --data <a prepared store>"
        )
    path = Path(data) if data else default_store_path(pre)
    if data is None and pre.config.data.store is None and not is_store(path):
        syn = pre.config.data.synthetic  # regenerate the run's synthetic data (seeded)
        log.info("re-creating the synthetic data of the checkpoint in %s", path)
        return synthetic_store_from_config(path, syn)
    if not is_store(path):
        raise EvalError(f"--data {path}: not a prepared store (make one with python -m msclr.prepare)")
    return open_store(path)


def _evaluated_conventions(pre: Pretrained, store, conventions: list[str] | None, allow_new: bool) -> list[str]:
    """The conventions asked for (each in the store; new to the checkpoint only with allow_new), else
    the store's (allow_new) or the checkpoint's found in the store; a convention known to both must have
    as many joints in each."""
    if conventions:
        absent = [c for c in conventions if c not in store.conventions]
        if absent:
            raise EvalError(f"store {store.path} has no convention {absent} (it has {store.conventions})")
        unknown = [c for c in conventions if c not in pre.names]
        if unknown and not allow_new:
            raise EvalError(
                f"checkpoint {pre.path} was not trained on {unknown} (it knows {pre.names}); "
                "use `evaluate transfer` to evaluate on other conventions"
            )
        names = list(conventions)
    elif allow_new:
        names = list(store.conventions)
    else:
        names = [c for c in pre.names if c in store.conventions]
        if not names:
            raise EvalError(
                f"store {store.path} has none of the checkpoint's conventions {pre.names} "
                f"(it has {store.conventions}); use `evaluate transfer` for other conventions"
            )
        skipped = [c for c in pre.names if c not in store.conventions]
        if skipped:
            log.warning("store %s lacks the checkpoint's conventions %s; evaluating %s", store.path, skipped, names)
    for c in names:  # a store and a checkpoint may define a convention of the same name differently
        if c in pre.names:
            mine = pre.conventions[pre.names.index(c)]
            if mine.num_joints != store.convention(c).num_joints:
                raise EvalError(
                    f"convention {c!r}: {mine.num_joints} joints in checkpoint {pre.path}, "
                    f"{store.convention(c).num_joints} in store {store.path}"
                )
    return names


def make_context(
    ckpt: str | Path,
    data: str | Path | None = None,
    split: str | None = None,
    conventions: list[str] | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    backend: str = "auto",
    batch_size: int = 128,
    seed: int = 0,
    random_init: bool = False,
    allow_new: bool = False,
    plots: bool = True,
    protocol: str = "eval",
    bn_stats: str = "checkpoint",
) -> EvalContext:
    """Open checkpoint and store, check that they fit, and rebuild the encoder on the device.

    conventions: evaluated conventions (default: those of the checkpoint found in the store;
    with allow_new (transfer), every convention of the store).
    bn_stats: "checkpoint" (default) runs every BatchNorm with the statistics it has: a
    checkpoint's running statistics, and for random_init those of a freshly built network
    (mean 0, variance 1), as SkeletonCLR/AimCLR's linear evaluation runs its frozen encoder in
    eval mode; "train" recomputes all of them from the train part first (the same for a
    checkpoint and its floor, so the two stay comparable). Conventions new to a checkpoint
    (transfer) get input-BatchNorm statistics from the train part in either case.
    """
    if bn_stats not in BN_STATS:
        raise EvalError(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EvalError("--device cuda was asked for but no GPU is visible")
    if backend != "auto":  # before any output: a backend that cannot run fails here, not after the set-up
        from ..ops.backends import why_unavailable

        reason = why_unavailable(backend, dev.type)
        if reason:
            raise EvalError(f"--backend {backend} cannot run on {dev.type}: {reason}")
    if data and is_store(data):  # it also defines the user conventions of older checkpoints
        store = open_store(data)
        pre = read_checkpoint(ckpt, store=store)
    else:
        pre = read_checkpoint(ckpt)
        store = open_eval_store(pre, data)
    names = _evaluated_conventions(pre, store, conventions, allow_new)
    splits = list(store.splits)
    if split is None:
        split = pre.config.data.split or (splits[0] if splits else None)
    if split is None or split not in splits:
        raise EvalError(
            f"store {store.path}: no split {split!r} (it has {splits or 'none'}); evaluation needs train and "
            "test parts: pass --split or prepare the store with one"
        )
    for part in ("train", "test"):
        idx = store.splits[split].get(part)
        if idx is None or idx.size == 0:
            raise EvalError(
                f"store {store.path}: split {split!r} has {'no' if idx is None else 'an empty'} {part} part; "
                f"evaluation needs samples in both train and test (pass --split with another split)"
            )
    table = LayoutTable([store.convention(c) for c in names], strategy=str(pre.config.model.strategy))
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # a random-init floor is the same network every time
        encoder, new = build_encoder(pre, table, backend=backend, random_init=random_init)
    out = Path(out) if out else default_output(pre.path, protocol)
    out.mkdir(parents=True, exist_ok=True)
    ctx = EvalContext(
        pre, store, split, names, table, encoder.to(dev), new, dev, out, batch_size, seed, random_init, plots, bn_stats
    )
    if bn_stats == "train":
        recalibrate_bn(ctx, only_input=False, layouts=None)
    elif new and not random_init:  # a convention the checkpoint never saw has no input statistics
        recalibrate_bn(ctx, only_input=True, layouts=new)
    return ctx


@torch.no_grad()
def recalibrate_bn(ctx: EvalContext, only_input: bool, layouts: list[str] | None) -> None:
    """BatchNorm running statistics from the train part (eval-mode crops, no weight change).

    Used with bn_stats="train" (all BN layers, for a checkpoint and its random-init floor alike)
    and for conventions new to a checkpoint (their input BatchNorm only, so the shared layers
    keep their pre-trained statistics).
    """
    from ..models import LayoutInputNorm, MaskedBatchNorm
    from ..views import to_stream

    enc = ctx.encoder
    if only_input:
        mods = [enc.data_bn]
    else:
        mods = [m for m in enc.modules() if isinstance(m, (MaskedBatchNorm, LayoutInputNorm))]
    names = layouts or ctx.conventions
    ds = ctx.dataset("train", conventions=names)
    loader = torch.utils.data.DataLoader(ds, batch_size=ctx.batch_size, shuffle=False)
    saved = {id(m): m.momentum for m in mods}
    enc.eval()
    calls = 0
    try:
        for batch in tqdm(loader, desc="BN statistics", unit="batch", leave=False, disable=None):
            for name in names:
                l = ctx.table.layout_id(name)
                rows = batch["available"][:, l].nonzero().flatten()
                if rows.numel() == 0:
                    continue
                calls += 1
                for m in mods:  # running average of the batch statistics seen so far
                    m.momentum = 1.0 / calls
                    m.train()
                x = batch["x"][rows, l].to(ctx.device)
                layout = torch.full((rows.numel(),), l, dtype=torch.long, device=ctx.device)
                x = to_stream(x, layout, ctx.stream, ctx.table)
                if only_input:
                    enc.data_bn(x, layout, enc.joint_mask[layout])
                else:
                    enc(x, layout)
                for m in mods:
                    m.eval()
    finally:
        for m in mods:
            m.momentum = saved[id(m)]
        enc.eval()
    log.info("BatchNorm statistics of %s recomputed from %d train batches", names, calls)


# ---------------------------------------------------------------------------- helpers
def _finish(ctx: EvalContext, name: str, scores, labels, ids, extra: dict) -> dict:
    """Metrics, confusion matrix PNG and score file of one set of test scores."""
    m = report.metrics(scores, labels, ctx.class_names)
    files = {"scores": str(report.save_scores(ctx.out / f"scores_{name}.npz", ids, scores, labels, ctx.class_names))}
    if ctx.plots:
        title = f"{name}: top-1 {100 * m['top1']:.1f}% ({Path(ctx.store.path).name}, {ctx.split} test)"
        files["confusion"] = str(report.plot_confusion(np.asarray(m["confusion"]), ctx.class_names,
                                                      ctx.out / f"confusion_{name}.png", title))  # fmt: skip
    return {**m, **extra, "files": files}


def _tsne(ctx: EvalContext, fs: FeatureSet, title: str) -> str | None:
    if not ctx.plots:
        return None
    rows, conv = fs.available.nonzero(as_tuple=True)
    path = report.plot_tsne(
        fs.features[rows, conv],
        fs.labels[rows],
        [fs.conventions[c] for c in conv.tolist()],
        ctx.class_names,
        ctx.out / "tsne.png",
        title,
        seed=ctx.seed,
    )
    return str(path) if path else None


def _pick(ctx: EvalContext, convention: str | None) -> str:
    name = convention or ctx.conventions[0]
    if name not in ctx.conventions:
        raise EvalError(f"convention {name!r} is not evaluated here (available: {ctx.conventions})")
    return name


def _heads_model(ctx: EvalContext, heads: dict[str, nn.Linear], encoder=None) -> SkeletonModel:
    return SkeletonModel(ctx.pre, ctx.table, encoder or ctx.encoder, heads, ctx.class_names)


def subject_groups(ctx: EvalContext, sample_ids: list[str]) -> torch.Tensor | None:
    """The subject of each sample (an integer code) when the store records subjects, else None:
    the groups of the probes' cross-validation."""
    subjects = getattr(ctx.store, "sample_info", {}).get("subject")
    if subjects is None or not sample_ids:
        return None
    _, codes = np.unique(np.asarray(subjects)[ctx.store.index_of(sample_ids)], return_inverse=True)
    return torch.as_tensor(codes.reshape(-1), dtype=torch.long)


# ---------------------------------------------------------------------------- protocols
def linear(
    ctx: EvalContext,
    convention=None,
    epochs=100,
    lr=3.0,
    milestones=(80,),
    weight_decay=0.0,
    probe="logreg",
    C: float | str = "auto",
) -> dict:
    """Frozen encoder, a linear classifier on cached features of one convention."""
    name = _pick(ctx, convention)
    train, test = ctx.features("train"), ctx.features("test")
    xtr, ytr, ids_tr = train.of(name)
    nc = len(ctx.class_names)
    if probe == "logreg" and ytr.numel():
        C, cv = resolve_C(xtr, ytr, nc, C, f"linear ({name})", subject_groups(ctx, ids_tr))
    else:
        cv = None
    fc = fit_linear(xtr, ytr, nc, epochs, lr, 0.9, weight_decay, milestones, ctx.batch_size, ctx.seed, probe=probe, C=C)
    train_top1 = train_accuracy(fc, xtr, ytr, nc, f"linear ({name})")
    xte, yte, ids = test.of(name)
    with torch.no_grad():
        scores = fc(xte)
    extra = {"convention": name, "train_samples": int(ytr.numel()), "train_top1": train_top1}
    res = _finish(ctx, f"linear_{name}", scores, yte, ids, extra)
    res["files"]["model"] = str(_heads_model(ctx, {name: fc}).save(ctx.out / "model.pt", "linear"))
    res["files"]["tsne"] = _tsne(ctx, test, f"t-SNE of test features ({name} linear)")
    res["hyper"] = _probe_hyper(probe, C, epochs, lr, milestones, weight_decay, cv)
    return res


def _probe_hyper(probe, C, epochs, lr, milestones, weight_decay, cv=None) -> dict:
    if probe == "logreg":
        hyper = dict(probe="logreg", C=C, solver="L-BFGS, standardised features")
        if cv is not None:  # C chosen on the train features: the table it was chosen from
            hyper["C_cv_accuracy"] = {f"{c:g}": a for c, a in cv.items()}
        return hyper
    return dict(
        probe="sgd", epochs=epochs, lr=lr, milestones=milestones_for(epochs, milestones),
        weight_decay=weight_decay, momentum=0.9,
    )  # fmt: skip


def knn(ctx: EvalContext, convention=None, k: int | str = "auto", tau: float = 0.07) -> dict:
    """Cosine k-NN on frozen features of one convention; k="auto" chooses k by leave-one-out on
    the train features (`choose_k`)."""
    name = _pick(ctx, convention)
    train, test = ctx.features("train"), ctx.features("test")
    xtr, ytr, ids_tr = train.of(name)
    xte, yte, ids = test.of(name)
    nc = len(ctx.class_names)
    extra = {"convention": name, "tau": tau}
    if k == "auto":
        groups = subject_groups(ctx, ids_tr)
        k, loo = choose_k(xtr, ytr, nc, tau, groups)
        table = ", ".join(f"{kk}: {100 * a:.1f}" for kk, a in loo.items())
        how = "leave-one-subject-out" if groups is not None else "leave-one-out"
        log.info("knn (%s): k=%d by %s on the train features (accuracy %%: %s)", name, k, how, table)
        extra["k_loo_accuracy"] = {str(kk): a for kk, a in loo.items()}
    extra["k"] = int(k)
    scores = knn_scores(xtr, ytr, xte, nc, int(k), tau)
    res = _finish(ctx, f"knn{k}_{name}", scores, yte, ids, extra)
    res["files"]["tsne"] = _tsne(ctx, test, f"t-SNE of test features ({name})")
    return res


def ensemble(
    ctx: EvalContext, epochs=100, lr=3.0, milestones=(80,), weight_decay=0.0, probe="logreg", C: float | str = "auto"
) -> dict:
    """One linear classifier per convention on the shared frozen encoder; test logits of the
    conventions a sample has are averaged (soft voting). Reports each convention too."""
    train, test = ctx.features("train"), ctx.features("test")
    nc = len(ctx.class_names)
    heads, per_conv = {}, {}
    logits = torch.zeros(test.labels.numel(), len(ctx.table), nc)
    for name in ctx.conventions:
        l = test.conventions.index(name)
        xtr, ytr, ids_tr = train.of(name)
        if ytr.numel() == 0:
            log.warning("ensemble: no train sample has %s; left out", name)
            continue
        c = resolve_C(xtr, ytr, nc, C, f"ensemble ({name})", subject_groups(ctx, ids_tr))[0] if probe == "logreg" else C
        fc = fit_linear(xtr, ytr, nc, epochs, lr, 0.9, weight_decay, milestones, ctx.batch_size, ctx.seed,
                        f"ensemble ({name})", probe=probe, C=c)  # fmt: skip
        train_accuracy(fc, xtr, ytr, nc, f"ensemble ({name})")
        heads[name] = fc
        with torch.no_grad():
            logits[:, l] = fc(test.features[:, l])
        rows = test.available[:, l]
        per_conv[name] = {
            k: v
            for k, v in report.metrics(logits[rows, l], test.labels[rows], ctx.class_names).items()
            if k in ("top1", "top5", "num_samples")
        }
    used = torch.tensor([n in heads for n in test.conventions])
    avail = (test.available & used).float()
    scores = ensemble_logits(logits, avail)
    keep = avail.sum(1) > 0
    ids = [s for s, r in zip(test.sample_ids, keep.tolist()) if r]
    res = _finish(ctx, "ensemble", scores[keep], test.labels[keep], ids, {"per_convention": per_conv})
    res["files"]["model"] = str(_heads_model(ctx, heads).save(ctx.out / "model.pt", "ensemble"))
    res["files"]["tsne"] = _tsne(ctx, test, "t-SNE of test features (all conventions)")
    res["hyper"] = _probe_hyper(probe, C, epochs, lr, milestones, weight_decay)
    return res


def ensemble_logits(logits: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Soft voting: the mean of the logits (N, L, C) over the conventions each sample has (N, L)."""
    w = available.float()
    return (logits * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1.0)


def finetune(
    ctx: EvalContext,
    convention=None,
    fraction: float = 1.0,
    epochs: int = 100,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
    milestones=None,
    amp: bool = False,
    name: str | None = None,
) -> dict:
    """Fine-tune encoder + linear head on (a class-balanced fraction of) the labelled train part."""
    from ..precision import amp_setup

    conv = _pick(ctx, convention)
    l = ctx.table.layout_id(conv)
    tag = name or ("finetune" if fraction >= 1 else f"semi{fraction * 100:g}pct")
    train_ds = ctx.dataset("train", train=True, conventions=[conv])
    labels = np.asarray(train_ds.labels)
    subset = np.arange(labels.size) if fraction >= 1 else split_indices(labels, fraction, ctx.seed)
    if subset.size == 0:
        raise EvalError(f"{tag}: no labelled training sample")
    encoder = copy.deepcopy(ctx.encoder)
    fc = nn.Linear(encoder.hidden_dim, len(ctx.class_names))
    model = _heads_model(ctx, {conv: fc}, encoder).to(ctx.device)
    opt, sched = sgd_schedule(model.parameters(), lr, 0.9, weight_decay, epochs, milestones)
    autocast, scaler, _ = amp_setup(amp, ctx.device)
    bs = min(ctx.batch_size, subset.size)
    g = torch.Generator().manual_seed(ctx.seed)
    torch.manual_seed(ctx.seed)  # the dataset's random crops
    steps = epochs * math.ceil(subset.size / bs)
    bar = tqdm(total=steps, desc=tag, unit="step", leave=False, disable=None)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = subset[torch.randperm(subset.size, generator=g).numpy()]
        for i in range(0, perm.size, bs):
            batch = torch.utils.data.default_collate([train_ds[int(j)] for j in perm[i : i + bs]])
            x = batch["x"][:, l].to(ctx.device)
            y = batch["label"].to(ctx.device)
            layout = torch.full((x.shape[0],), l, dtype=torch.long, device=ctx.device)
            with autocast():
                loss = F.cross_entropy(model(x, layout).float(), y)
            opt.zero_grad(set_to_none=True)
            if scaler:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        sched.step()
    bar.close()
    model.eval()
    test = extract(model.encoder, ctx.dataset("test", conventions=[conv]), ctx.table, ctx.stream, ctx.device,
                   ctx.batch_size, desc="features (test)")  # fmt: skip
    xte, yte, ids = test.of(conv)
    with torch.no_grad():
        scores = fc(xte.to(ctx.device)).float().cpu()
    res = _finish(
        ctx,
        f"{tag}_{conv}",
        scores,
        yte,
        ids,
        {
            "convention": conv,
            "labelled_fraction": fraction,
            "train_samples": int(subset.size),
            "train_minutes": (time.perf_counter() - t0) / 60,
        },
    )
    res["files"]["model"] = str(model.save(ctx.out / f"model_{tag}.pt", tag))
    res["hyper"] = dict(
        epochs=epochs,
        lr=lr,
        milestones=milestones_for(epochs, milestones),
        weight_decay=weight_decay,
        batch_size=bs,
        amp=amp,
    )
    return res


def semi(ctx: EvalContext, fractions=(0.01, 0.1), **kw) -> dict:
    """Semi-supervised: fine-tuning on class-balanced, seeded 1 % and 10 % labelled subsets."""
    return {f"{f * 100:g}%": finetune(ctx, fraction=f, **kw) for f in fractions}


def fuse(score_files: list[str | Path], weights: list[float] | None = None) -> tuple[dict, dict]:
    """Weighted sum of class scores from several runs (e.g. joint/motion/bone streams), aligned
    by sample id. Returns (metrics, fused score dict)."""
    if len(score_files) < 2:
        raise EvalError("fuse needs at least two score files")
    weights = list(weights) if weights else ([0.6, 0.6, 0.4] if len(score_files) == 3 else [1.0] * len(score_files))
    if len(weights) != len(score_files):
        raise EvalError(f"{len(weights)} weights for {len(score_files)} score files")
    runs = [report.load_scores(f) for f in score_files]
    base = runs[0]
    ids = [str(s) for s in base["sample_ids"]]
    names = [str(c) for c in base["class_names"]]
    total = torch.zeros(len(ids), len(names))
    for f, run, w in zip(score_files, runs, weights):
        if [str(c) for c in run["class_names"]] != names:
            raise EvalError(f"{f}: its classes differ from those of {score_files[0]}")
        pos = {str(s): i for i, s in enumerate(run["sample_ids"])}
        lacking = [s for s in ids if s not in pos]
        if lacking:
            raise EvalError(f"{f}: no scores for {len(lacking)} sample(s) of {score_files[0]}, e.g. {lacking[:3]}")
        rows = [pos[s] for s in ids]
        if not np.array_equal(run["labels"][rows], base["labels"]):
            raise EvalError(f"{f}: labels differ from those of {score_files[0]} for the same sample ids")
        total += w * torch.from_numpy(run["scores"][rows]).float()
    labels = torch.from_numpy(base["labels"]).long()
    m = report.metrics(total, labels, names)
    m["inputs"] = {
        str(f): {
            "weight": w,
            "top1": report.topk_accuracy(torch.from_numpy(r["scores"]), torch.from_numpy(r["labels"]), 1),
        }
        for f, r, w in zip(score_files, runs, weights)
    }
    return m, {"sample_ids": ids, "scores": total, "labels": labels, "class_names": names}


def transfer(ctx: EvalContext, protocol: str = "linear", **kw) -> dict:
    """Pre-trained on one store, evaluated on another (ctx built with allow_new=True): the
    target's conventions may be new to the checkpoint (fresh per-convention parameters, input
    BatchNorm statistics from the target's train part); then linear evaluation or fine-tuning."""
    if protocol not in ("linear", "finetune"):
        raise EvalError(f"transfer --protocol must be linear or finetune, got {protocol!r}")
    res = (linear if protocol == "linear" else finetune)(ctx, **kw)
    res["transfer"] = {
        "source_store": str(default_store_path(ctx.pre)),
        "target_store": str(ctx.store.path),
        "protocol": protocol,
        "new_conventions": ctx.new_conventions,
    }
    return res
