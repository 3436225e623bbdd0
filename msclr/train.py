"""python -m msclr.train: multi-skeleton contrastive pre-training (SkeletonCLR / AimCLR).

With no data argument it pre-trains on synthetic multi-skeleton data made on the fly
(configs/synthetic.yaml is the default config). Examples:

    python -m msclr.train --amp
    python -m msclr.train --config configs/data/ntu60_xsub.yaml --config configs/skeletons/multi.yaml --amp
    python -m msclr.train --resume runs/msclr/last.pt
    python -m msclr.train method.pairing=all optim.lr=0.05      # any config key

Config keys that decide what is learnt from (all keys: msclr/config.py):
    data.split=xsub|all          pre-train on this split's train part (default: the store's first split)
    data.p_interval=[0.5,1.0]    train crop: a share of each valid sequence ...
    data.min_crop=auto|64        ... and at least this many frames (auto: 64 capped by the data's lengths)
    optim.milestones=[0.8333]    lr steps; floats in (0, 1] are shares of optim.epochs
    method.queue_size=32768      keep it below the number of training sequences
    model.init=aimclr|torch      AimCLR's weights_init, or PyTorch's with the key encoder a copy

Checkpoints are written atomically, with a SHA-256 beside them, every epoch and on SIGINT/SIGTERM;
--resume continues exactly (model, momentum encoder, queue, optimiser, scheduler, scaler, RNG
states, step) in the checkpoint's own folder. A run never lands in a folder that holds another:
an --out with one is refused (--overwrite to replace it), the default goes to runs/msclr-2, -3, ...

Exit status: 0 done; 2 a bad argument or input (one line, nothing written); 1 the loss became
NaN/inf (its log.csv step is named, last.pt stays the last good checkpoint); 130 stopped by
SIGINT, 143 by SIGTERM (checkpoint saved).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from . import checkpoint_io
from . import config as cfglib
from . import distributed as dist_utils
from .precision import amp_setup
from .skeletons import LayoutTable
from .views import make_pairs, to_stream

log = logging.getLogger("msclr.train")


class TrainError(ValueError):
    """A bad argument, config value or input file: one line, exit status 2, nothing written."""


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or inf: the run stops, exit status 1, the last good checkpoint is kept."""


DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "synthetic.yaml"


# ---------------------------------------------------------------------------- pieces
class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch that can start mid-epoch (exact resume).

    With several ranks, global batch i is perm[i*B:(i+1)*B] and rank r reads its r-th
    slice of it, so the ranks together see exactly the batches of a single process.
    """

    def __init__(self, n: int, seed: int, batch_size: int, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise TrainError(f"batch size {batch_size} is not divisible by the {world} processes")
        self.n, self.seed, self.batch_size, self.rank, self.world = n, seed, batch_size, rank, world
        self.epoch, self.start_batch = 0, 0

    def set_position(self, epoch: int, start_batch: int) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 10_007 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        B, b = self.batch_size, self.batch_size // self.world
        batches = perm[: (self.n // B) * B].view(-1, B)[self.start_batch :]
        return iter(batches[:, self.rank * b : (self.rank + 1) * b].flatten().tolist())

    def __len__(self) -> int:
        return (self.n // self.batch_size - self.start_batch) * (self.batch_size // self.world)


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic, with its SHA-256 beside it (msclr.checkpoint_io)."""
    checkpoint_io.save(path, state)


def rng_state() -> dict:
    """The global RNG states as tensors and plain numbers, so that checkpoints load with
    weights_only=True (no numpy arrays, no pickled tuples of Python objects)."""
    # the legacy global numpy RNG is saved because third-party code may draw from it
    name, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, mt, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(gauss),
        },
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss_next": gauss_next},
    }


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    n, p = s["numpy"], s["python"]
    if isinstance(n, dict):
        n = (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(n)  # noqa: NPY002
    if isinstance(p, dict):
        p = (p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"])
    random.setstate(p)  # a checkpoint of an older msclr holds the tuples themselves


def pretraining_split(store, split: str | None) -> str | None:
    """The split whose train part pre-training reads: the given one, else the store's first
    (never the test subjects by accident); "all" (or a store without splits): every sample."""
    if split == "all":
        return None
    splits = list(store.splits)
    if split is None:
        return splits[0] if splits else None
    if split not in splits:
        raise TrainError(f"data.split={split!r}: store {store.path} has splits {splits or 'none'} (or use all)")
    return split


def _valid_lengths(store, names, split) -> np.ndarray:
    """Per sample, the longest valid length over the run's conventions (what the crop is drawn on)."""
    idx = np.arange(len(store)) if split is None else store.split(*split)
    lengths = np.max([np.where(store.available(n), store.lengths(n), 0) for n in names], axis=0)[idx]
    return lengths[lengths > 0]


def resolve_min_crop(lengths: np.ndarray, min_crop, p_low: float) -> int:
    """data.min_crop in frames; auto: AimCLR's 64 (NTU), capped at p_low x the median of the
    valid `lengths`, so that the crop ratio still acts on short sequences."""
    if min_crop != "auto":
        return int(min_crop)
    median = float(np.median(lengths)) if lengths.size else 64.0
    return max(1, min(64, int(math.floor(p_low * median))))


def describe_crop(lengths: np.ndarray, p_interval, min_crop: int) -> str:
    """One line: what the random temporal crop does on sequences of these valid lengths."""
    if not lengths.size:
        return "no sequences"
    lo, hi = p_interval
    med = int(np.median(lengths))
    short = float(np.mean(lengths <= min_crop))
    return (
        f"{lo:g}-{hi:g} of each sequence, at least {min_crop} frames; sequences have "
        f"{int(lengths.min())}-{int(lengths.max())} frames (median {med}: crops of "
        f"{min(max(int(lo * med), min_crop), med)}-{med} frames); {100 * short:.0f}% are <= {min_crop} frames "
        "and never cropped"
    )


# ---------------------------------------------------------------------------- the run
RESUME_KEYS = ("model", "optimizer", "scheduler", "epoch", "step", "step_in_epoch", "rng", "config", "conventions")


class Trainer:
    def __init__(self, cfg: DictConfig):
        self.out = Path(cfg.run.out).resolve()
        created = not self.out.exists()
        try:
            self._build(cfg)
        except Exception:
            if created:  # a failed start leaves nothing behind (the folder was made by this call)
                shutil.rmtree(self.out, ignore_errors=True)
            raise

    def _build(self, cfg: DictConfig) -> None:
        """Set up a run in named steps: run folder and seeds, data, model, optimiser, augmentation."""
        self.cfg = cfg
        # paths inside checkpoints are absolute, so a resumed or evaluated run finds them from anywhere
        cfg.run.out = str(self.out)
        if cfg.data.store is not None:
            cfg.data.store = str(Path(cfg.data.store).resolve())
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = dist_utils.setup(cfg.run.device)
        self.rank, self.world = dist_utils.rank(), dist_utils.world_size()
        self.is_main = self.rank == 0
        seed = int(cfg.run.seed)
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        random.seed(seed)

        self._open_store(cfg)
        names = self._build_data(cfg)
        self._build_model(cfg, names)
        self._build_optimizer(cfg)
        self._build_augment(cfg)
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        self.stop_signal: int | None = None
        if cfg.run.resume:
            self.load(Path(cfg.run.resume))

    def _open_store(self, cfg: DictConfig) -> None:
        """The store to pre-train on: the configured one, or synthetic data made into the run folder."""
        from .data import open_store
        from .data.synthetic import synthetic_store_from_config

        if cfg.data.store is None:
            syn = cfg.data.synthetic
            store_dir = self.out / "synthetic"
            t0 = time.perf_counter()
            if self.is_main:  # one rank writes, the others open what it wrote
                synthetic_store_from_config(store_dir, syn)
            if self.world > 1:
                torch.distributed.barrier()
            self.store = open_store(store_dir)
            log.info("synthetic data: %d samples in %s (%.1f s)", len(self.store), store_dir, time.perf_counter() - t0)
        else:
            self.store = open_store(cfg.data.store)

    def _build_data(self, cfg: DictConfig) -> list[str]:
        """The layout table, the dataset of the pre-training split and its loader; returns the conventions."""
        from .data import MultiSkeletonDataset

        names = list(cfg.data.conventions or self.store.conventions)
        missing = [c for c in names if c not in self.store.conventions]
        if missing:
            raise TrainError(
                f"data.conventions: {missing} are not in the store {cfg.data.store} ({self.store.conventions})"
            )
        self.table = LayoutTable([self.store.convention(c) for c in names], strategy=cfg.model.strategy)
        self.split = pretraining_split(self.store, cfg.data.split)
        split = (self.split, "train") if self.split else None
        p_interval = tuple(float(v) for v in cfg.data.p_interval)
        lengths = _valid_lengths(self.store, names, split)  # read once: the crop floor and its log line
        min_crop = resolve_min_crop(lengths, cfg.data.min_crop, p_interval[0])
        self.dataset = MultiSkeletonDataset(
            self.store,
            names,
            self.table,
            T=int(cfg.data.frames),
            M=int(cfg.data.persons),
            split=split,
            train=True,
            p_interval=p_interval,
            min_crop=min_crop,
        )
        bs = int(cfg.optim.batch_size)
        if len(self.dataset) < bs:
            raise TrainError(f"the training split has {len(self.dataset)} samples, fewer than a batch ({bs})")
        if self.is_main:
            log.info(
                "pre-training data: %d sequences (%s) of %s",
                len(self.dataset),
                f"split {self.split}, train part" if self.split else "every sample: no split",
                self.store.path,
            )
            log.info("temporal crop: %s", describe_crop(lengths, p_interval, min_crop))
            queue = int(cfg.method.queue_size)
            if queue > len(self.dataset):
                log.warning(
                    "method.queue_size %d exceeds the %d training sequences: after the first epoch the queue "
                    "holds older keys of each query's own sequence as negatives (use a queue below the number "
                    "of sequences, as SkeletonCLR's 32768 of NTU-60's 40k)",
                    queue,
                    len(self.dataset),
                )
        self.sampler = EpochSampler(len(self.dataset), int(cfg.run.seed), bs)
        self.loader = DataLoader(
            self.dataset,
            batch_size=bs,
            sampler=self.sampler,
            drop_last=True,
            num_workers=int(cfg.data.workers),
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        self.steps_per_epoch = len(self.dataset) // bs
        return names

    def _build_model(self, cfg: DictConfig, names: list[str]) -> None:
        """The encoder inside MoCo (SkeletonCLR/AimCLR), wrapped for DDP and torch.compile as configured."""
        from .models import STGCNEncoder
        from .models.contrast import MoCo

        single = cfg.method.single_convention or names[0]
        self.single = names.index(single)
        encoder = STGCNEncoder(
            self.table,
            hidden_channels=cfg.model.hidden_channels,
            hidden_dim=cfg.model.hidden_dim,
            persons=int(cfg.data.persons),
            dropout=cfg.model.dropout,
            edge_importance=cfg.model.edge_importance,
            backend=cfg.run.backend,
            input_norm=cfg.model.input_norm,
        )
        self.model = MoCo(
            encoder,
            feature_dim=cfg.model.feature_dim,
            queue_size=cfg.method.queue_size,
            momentum=cfg.method.momentum,
            tau=cfg.method.tau,
            backend=cfg.run.backend,
            aimclr=cfg.method.name == "aimclr",
            drop_keep_prob=cfg.method.drop_keep_prob,
            nn_topk=cfg.method.nn_topk,
            drop_mode=cfg.method.drop_mode,
            init=cfg.model.init,
        ).to(self.device)
        step_module = self.model
        if self.world > 1:
            # the queue and key encoder stay identical across ranks by construction (gathered keys,
            # synchronised BN), so buffers are not broadcast every step
            step_module = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        self.step_fn = (
            torch.compile(step_module, fullgraph=self.world == 1, backend=cfg.run.compile_backend)
            if cfg.run.compile
            else step_module
        )

    def _build_optimizer(self, cfg: DictConfig) -> None:
        """SGD, the step schedule (milestones as epochs or shares of the run) and mixed precision."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            params, lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay, nesterov=False
        )
        epochs = int(cfg.optim.epochs)
        self.milestones = sorted(cfglib.epoch_of(m, epochs) for m in cfg.optim.milestones)
        self.nn_epoch = cfglib.epoch_of(cfg.method.nn_epoch, epochs)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=self.milestones, gamma=cfg.optim.gamma
        )
        self.autocast, self.scaler, self.amp_name = amp_setup(cfg.run.amp, self.device, cfg.run.cpu_bf16)

    def _build_augment(self, cfg: DictConfig) -> None:
        """The normal view's augmentation, and AimCLR's extreme view."""
        from .augment import AugmentParams, make_augment

        def augment(spec: str):
            params = AugmentParams.from_yaml(spec) if spec.endswith((".yaml", ".yml")) else AugmentParams.preset(spec)
            return make_augment(params, self.table, backend=cfg.aug.backend, device=self.device)

        self.aug_normal = augment(cfg.aug.normal)
        self.aug_extreme = augment(cfg.aug.extreme) if cfg.method.name == "aimclr" else None

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "epoch": self.epoch,
            "step": self.step,
            "step_in_epoch": self.step_in_epoch,
            "rng": rng_state(),
            "config": OmegaConf.to_container(self.cfg),
            "conventions": list(self.table.names),
            # the definitions travel with the weights, so user conventions load without their files
            "convention_specs": [c.to_dict() for c in self.table.conventions],
        }

    def load(self, path: Path) -> None:
        ck = checkpoint_io.load(path, map_location=self.device)
        missing = [k for k in RESUME_KEYS if k not in ck] if isinstance(ck, dict) else list(RESUME_KEYS)
        if missing:
            raise TrainError(f"--resume {path}: not a resumable msclr pre-training checkpoint (no {missing[0]})")
        if ck.get("conventions") != list(self.table.names):
            raise TrainError(
                f"{path}: trained on conventions {ck.get('conventions')}, this run uses {self.table.names}"
            )
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        if self.scaler and ck["scaler"]:
            self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.step, self.step_in_epoch = ck["epoch"], ck["step"], ck["step_in_epoch"]
        set_rng_state(ck["rng"])
        log.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step)

    def checkpoint(self) -> Path:
        path = self.out / "last.pt"
        if self.is_main:  # every rank holds the same state
            save_checkpoint(path, self.state())
        return path

    # ------------------------------------------------------------------ step
    def train_step(self, batch: dict) -> dict:
        cfg = self.cfg
        # Every random draw of a step depends on (seed, step) only, so a resumed run draws
        # exactly what an uninterrupted one does.
        torch.manual_seed(int(cfg.run.seed) * 1_000_033 + self.step)
        gen = torch.Generator().manual_seed(int(cfg.run.seed) * 1_000_003 + self.step)
        x = batch["x"].to(self.device, non_blocking=True)
        xq, lq, xk, lk = make_pairs(x, batch["available"], cfg.method.pairing, self.single, gen)
        lq, lk = lq.to(self.device), lk.to(self.device)
        n, p = lk.shape
        aug_gen = torch.Generator(device=self.device).manual_seed(int(cfg.run.seed) * 7_919 + self.step)
        stream = cfg.data.stream
        xe = None
        if self.aug_extreme is not None:
            xe = to_stream(self.aug_extreme(xq, lq, generator=aug_gen), lq, stream, self.table)
        xq = to_stream(self.aug_normal(xq, lq, generator=aug_gen), lq, stream, self.table)
        xk = self.aug_normal(xk.flatten(0, 1), lk.flatten(), generator=aug_gen)
        xk = to_stream(xk, lk.flatten(), stream, self.table).view(n, p, *xk.shape[1:])
        nn_mining = cfg.method.name == "aimclr" and self.epoch >= self.nn_epoch
        self.model.train()
        with self.autocast():
            out = self.step_fn(
                xq,
                lq,
                xk,
                lk,
                x_extreme=xe,
                nn_mining=nn_mining,
                gather=dist_utils.gather_keys if self.world > 1 else None,
            )
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(out.loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            out.loss.backward()
            self.optimizer.step()
        # the dataset's crops for the next batch, drawn from the global RNG, likewise
        torch.manual_seed(int(cfg.run.seed) * 1_000_037 + self.step)
        loss = float(out.loss.detach())  # the loop logs it, then stops the run if it is not finite
        return {"loss": loss, "info_nce": float(out.info_nce), **{k: float(v) for k, v in out.extra.items()}}

    # ------------------------------------------------------------------ loop
    def run(self) -> Path:
        cfg = self.cfg
        epochs, max_steps = int(cfg.optim.epochs), cfg.run.max_steps
        csv_path = self.out / "log.csv" if self.is_main else Path(os.devnull)
        new_csv = not csv_path.exists() or self.step == 0
        csv_file = open(csv_path, "w" if new_csv else "a", newline="")
        writer = csv.writer(csv_file)
        if new_csv:
            writer.writerow(["step", "epoch", "loss", "info_nce", "lr", "seq_per_s"])
        tb = _tensorboard(self.out / "tb") if self.is_main else None
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        total = (
            epochs * self.steps_per_epoch if max_steps is None else min(int(max_steps), epochs * self.steps_per_epoch)
        )
        bar = tqdm(
            total=total,
            initial=min(self.step, total),
            desc="pre-training",
            unit="step",
            dynamic_ncols=True,
            disable=None,
        )
        seen, t_start = 0, time.perf_counter()
        epoch_losses: list[float] = []
        path = None
        try:
            while self.epoch < epochs and (max_steps is None or self.step < int(max_steps)):
                self.sampler.set_position(self.epoch, self.step_in_epoch)
                batches = iter(self.loader)
                # A DataLoader iterator draws its base seed from the global RNG when it starts (at an
                # epoch start, and again on resume mid-epoch): reseed after it, so the random crops of
                # the next batch depend on (seed, step) only, as after every step (train_step)
                torch.manual_seed(int(cfg.run.seed) * 1_000_037 + self.step - 1)
                for batch in batches:
                    t0 = time.perf_counter()
                    stats = self.train_step(batch)
                    epoch_losses.append(stats["info_nce"])
                    self.step += 1
                    self.step_in_epoch += 1
                    n = batch["x"].shape[0] * self.world
                    seen += n
                    rate = seen / (time.perf_counter() - t_start)
                    lr = self.optimizer.param_groups[0]["lr"]
                    writer.writerow(
                        [
                            self.step,
                            self.epoch,
                            f"{stats['loss']:.6f}",
                            f"{stats['info_nce']:.6f}",
                            f"{lr:.6g}",
                            f"{rate:.2f}",
                        ]
                    )
                    if not math.isfinite(stats["loss"]):
                        self._non_finite(stats["loss"])
                    if tb is not None:
                        for k, v in stats.items():
                            tb.add_scalar(f"train/{k}", v, self.step)
                        tb.add_scalar("train/lr", lr, self.step)
                        tb.add_scalar("train/seq_per_s", n / (time.perf_counter() - t0), self.step)
                    bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.3g}", seq_s=f"{rate:.1f}")
                    bar.update(1)
                    if self.stop_signal is not None or (max_steps is not None and self.step >= int(max_steps)):
                        break
                else:  # epoch finished
                    self._check_chance(epoch_losses)
                    epoch_losses.clear()
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.scheduler.step()
                    path = self.checkpoint()
                    csv_file.flush()
                    continue
                break  # a signal or max_steps stopped the epoch early
            path = self.checkpoint()
        finally:
            bar.close()
            csv_file.close()
            if tb is not None:
                tb.close()
            for s, h in handlers.items():
                signal.signal(s, h)
        self.seq_per_s = seen / max(time.perf_counter() - t_start, 1e-9)
        if self.stop_signal is not None:
            log.warning(
                "stopped by signal %d; checkpoint saved: %s (resume with --resume %s)", self.stop_signal, path, path
            )
        return path

    def _non_finite(self, loss: float) -> None:
        """Stop on a NaN/inf loss. The step is the one of its log.csv row; the weights already took the
        bad update, so nothing is saved and last.pt stays the last good (end of epoch) checkpoint."""
        last = self.out / "last.pt"
        kept = f"the last good checkpoint {last} is kept" if last.is_file() else "no checkpoint was written"
        raise NonFiniteLoss(
            f"loss is {loss} at step {self.step} (epoch {self.epoch}, log.csv row step={self.step}); {kept} "
            "(lower optim.lr, or try without --amp)"
        )

    def _check_chance(self, losses: list[float]) -> None:
        """Warn when an epoch's InfoNCE sat at chance, ln(1 + queue): every key looked alike to
        every query (collapsed features; e.g. AimCLR's init on a short run, model.init=torch)."""
        chance = math.log(1 + int(self.cfg.method.queue_size))
        if self.is_main and losses and all(abs(v - chance) < 1e-3 for v in losses[len(losses) // 2 :]):
            log.warning(
                "epoch %d: the InfoNCE loss sat at chance level ln(1 + queue) = %.3f: queries cannot tell "
                "their key from the queue (collapsed features); nothing is being learnt",
                self.epoch,
                chance,
            )

    def _on_signal(self, signum, frame):
        if self.stop_signal is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.stop_signal = signum
        log.warning("signal %d: finishing this step, then saving a checkpoint", signum)


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: CSV logs only
        return None
    return SummaryWriter(str(path))


# ---------------------------------------------------------------------------- CLI
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block; main turns it into exit status 2
        raise TrainError(message)


def _holds_run(folder: Path) -> bool:
    return (folder / "last.pt").exists() or (folder / "log.csv").exists()


def _fresh_folder(out: Path) -> Path:
    """out itself if it holds no run, else the first of out-2, out-3, ... that holds none."""
    folder, i = out, 2
    while _holds_run(folder):
        folder, i = out.with_name(f"{out.name}-{i}"), i + 1
    return folder


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, DictConfig]:
    """The run's config, checked before anything is written; TrainError (one line) if it is unusable."""
    ap = _Parser(
        prog="python -m msclr.train",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    ap.add_argument("--config", action="append", default=None, help="YAML config (repeatable; later ones win)")
    ap.add_argument("--data", help="a prepared store directory (default: synthetic data)")
    ap.add_argument("--out", help="output directory (checkpoints, logs; default runs/msclr, or runs/msclr-2, ...)")
    ap.add_argument("--overwrite", action="store_true", help="start a new run in an --out that holds one")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--amp", action="store_true", help="mixed precision (bf16 where supported, else fp16 + scaler)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model step")
    ap.add_argument("--backend", choices=["auto", "reference", "cpu", "cuda", "triton"])
    ap.add_argument("--aug", choices=["auto", "torch", "dali"], help="augmentation implementation")
    ap.add_argument("--device", help="auto, cpu, cuda, cuda:1, ...")
    ap.add_argument("--resume", help="checkpoint to resume from (e.g. <out>/last.pt); continues in its folder")
    ap.add_argument("--seed", type=int)
    ap.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. method.pairing=all")
    args = ap.parse_intermixed_args(argv)  # overrides may come before or after the flags
    resume = Path(args.resume).resolve() if args.resume else None
    if resume is not None:
        ck = checkpoint_io.load(resume)
        missing = [k for k in RESUME_KEYS if k not in ck] if isinstance(ck, dict) else list(RESUME_KEYS)
        if missing:
            raise TrainError(f"--resume {resume}: not a resumable msclr pre-training checkpoint (no {missing[0]})")
    if resume is not None and not args.config:
        try:  # the run's own configuration unless one is given; keys added since reproduce its run
            base = cfglib.from_checkpoint(ck["config"])
        except Exception as e:
            raise TrainError(f"--resume {resume}: its config does not match this version of msclr: {e}") from None
    else:
        try:
            base = cfglib.load(args.config or [DEFAULT_CONFIG])
        except (OSError, ValueError) as e:
            raise TrainError(str(e)) from None
    flags = {
        "data.store": args.data,
        "run.out": args.out,
        "optim.epochs": args.epochs,
        "run.max_steps": args.max_steps,
        "optim.batch_size": args.batch_size,
        "run.backend": args.backend,
        "aug.backend": args.aug,
        "run.device": args.device,
        "run.resume": resume,
        "run.seed": args.seed,
    }
    dot = list(args.overrides) + [f"{k}={v}" for k, v in flags.items() if v is not None]
    if args.amp:
        dot.append("run.amp=true")
    if args.compile:
        dot.append("run.compile=true")
    try:
        cfg = OmegaConf.merge(base, OmegaConf.from_dotlist(dot))
        cfglib.validate(cfg)
    except Exception as e:
        raise TrainError(str(e).strip().splitlines()[0]) from None
    _check_devices(cfg)
    _check_store(cfg, "--data" if args.data else "data.store")
    cfg.run.out = str(_output_folder(args, cfg, resume))
    return args, cfg


def _check_devices(cfg: DictConfig) -> None:
    if torch.cuda.is_available():
        return
    if cfg.run.backend in ("cuda", "triton"):
        raise TrainError(f"run.backend={cfg.run.backend} needs a GPU and none is visible (use auto, cpu or reference)")
    if str(cfg.run.device).startswith("cuda"):
        raise TrainError(f"run.device={cfg.run.device} needs a GPU and none is visible (use auto or cpu)")


def _check_store(cfg: DictConfig, flag: str) -> None:
    """The store exists and has the run's conventions (synthetic data is made by the run)."""
    if cfg.data.store is None:
        return
    from .data.store import StoreError, open_store

    path = Path(cfg.data.store).resolve()
    if not path.is_dir():
        raise TrainError(f"{flag} {path}: no such directory")
    try:
        store = open_store(path)
    except StoreError as e:
        raise TrainError(f"{flag}: {e}") from None
    missing = [c for c in cfg.data.conventions or [] if c not in store.conventions]
    if missing:
        raise TrainError(f"data.conventions: {missing} are not in the store {path} ({store.conventions})")
    cfg.data.store = str(path)


def _output_folder(args: argparse.Namespace, cfg: DictConfig, resume: Path | None) -> Path:
    """Where the run writes: --out (refused if it holds another run, unless --overwrite), else the
    resumed checkpoint's own folder, else the default, or a fresh runs/msclr-2, -3, ... beside it."""
    explicit = args.out is not None or any(o.startswith("run.out=") for o in args.overrides)
    if resume is not None and not explicit:
        return resume.parent  # never the folder recorded inside the checkpoint: it may be another run's
    out = Path(cfg.run.out).resolve()
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out}: a file, not a folder")
    if (resume is not None and out == resume.parent) or args.overwrite or not _holds_run(out):
        return out
    if explicit:
        raise TrainError(
            f"--out {out} already holds a run (last.pt or log.csv); pass --overwrite to replace it, "
            f"--resume {out}/last.pt to continue it, or choose another --out"
        )
    fresh = _fresh_folder(out)
    log.warning("%s already holds a run: writing to %s (--out to choose a folder)", out, fresh)
    return fresh


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 2 a bad argument or input (one line, nothing written), 1 the loss became
    NaN/inf (the last good checkpoint is kept), 130 stopped by SIGINT, 143 by SIGTERM (checkpoint saved)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    t0 = time.perf_counter()
    try:
        _, cfg = parse_args(argv)
        trainer = Trainer(cfg)
    except (TrainError, checkpoint_io.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    OmegaConf.save(cfg, trainer.out / "config.yaml")
    log.info(
        "device %s | amp %s | compile %s | ops backend %s | augmentation %s | conventions %s | pairing %s | %s",
        trainer.device,
        trainer.amp_name,
        cfg.run.compile,
        cfg.run.backend,
        trainer.aug_normal.name,
        ", ".join(trainer.table.names),
        cfg.method.pairing,
        cfg.method.name,
    )
    try:
        path = trainer.run()
    except NonFiniteLoss as e:
        dist_utils.cleanup()
        print(f"error: {e}", file=sys.stderr)
        return 1
    dist_utils.cleanup()
    status = 128 + trainer.stop_signal if trainer.stop_signal else 0  # the shell's convention for signals
    if not trainer.is_main:
        return status
    minutes = (time.perf_counter() - t0) / 60
    print(
        f"\nPre-training {'stopped' if trainer.stop_signal else 'finished'}: {trainer.step} steps, "
        f"{trainer.epoch} epochs in {minutes:.1f} min ({trainer.seq_per_s:.1f} sequences/s) on "
        f"{len(trainer.dataset)} sequences ({f'{trainer.split} train part' if trainer.split else 'all samples'}).\n"
        f"Checkpoint: {path}\nLogs: {trainer.out / 'log.csv'}"
        + (f", TensorBoard: tensorboard --logdir {trainer.out / 'tb'}" if (trainer.out / "tb").exists() else "")
        + f"\nResume: python -m msclr.train --resume {path}\n"
        f"Evaluate: python -m msclr.evaluate linear --ckpt {path}   (also knn, semi, finetune, ensemble, transfer)"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
