"""The pre-training run: data, model, optimiser and augmentation built from a config, the loop,
its checkpoints and its signals (the CLI around it: msclr.train.cli)."""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import checkpoint_io
from .. import config as cfglib
from .. import distributed as dist_utils
from ..precision import amp_setup
from ..skeletons import LayoutTable
from ..views import make_pairs, to_stream
from .crop import _valid_lengths, describe_crop, pretraining_split, resolve_min_crop
from .errors import NonFiniteLoss, TrainError
from .state import RESUME_KEYS, EpochSampler, rng_state, save_checkpoint, set_rng_state

log = logging.getLogger("msclr.train")


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
        from ..data import open_store
        from ..data.synthetic import synthetic_store_from_config

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
        from ..data import MultiSkeletonDataset

        names = list(cfg.data.conventions or self.store.conventions)
        missing = [c for c in names if c not in self.store.conventions]
        if missing:
            where = f"the store {cfg.data.store}" if cfg.data.store else "the synthetic data"
            raise TrainError(f"data.conventions: {missing} are not in {where}, which has {self.store.conventions}")
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
        from ..models import STGCNEncoder
        from ..models.contrast import MoCo

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
            queue_dtype=getattr(torch, cfg.method.queue_dtype),
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
        from ..augment import AugmentError, AugmentParams, make_augment

        def augment(field: str):
            spec = str(cfg.aug[field])
            try:
                from_file = spec.endswith((".yaml", ".yml"))
                params = AugmentParams.from_yaml(spec) if from_file else AugmentParams.preset(spec)
                return make_augment(params, self.table, backend=cfg.aug.backend, device=self.device)
            except (AugmentError, OSError) as e:  # a bad preset name or settings file: one line, exit 2
                raise TrainError(f"aug.{field}={spec}: {e}") from None

        self.aug_normal = augment("normal")
        self.aug_extreme = augment("extreme") if cfg.method.name == "aimclr" else None

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
        if self.step >= total and self.is_main:  # a resumed run that has nothing left to do says so
            log.warning(
                "nothing to train: the run is at step %d and stops at step %d (--max-steps / --epochs to go on)",
                self.step,
                total,
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
