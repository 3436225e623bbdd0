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
import logging
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from .. import checkpoint_io
from .. import config as cfglib
from .. import distributed as dist_utils
from .errors import NonFiniteLoss, TrainError
from .state import RESUME_KEYS
from .trainer import Trainer

log = logging.getLogger("msclr.train")

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synthetic.yaml"


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block; main turns it into exit status 2
        raise TrainError(message)


def _holds_run(folder: Path) -> bool:
    return (folder / "last.pt").exists() or (folder / "log.csv").exists()


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
        raise TrainError(cfglib.error_line(e)) from None
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
    from ..data.store import StoreError, open_store

    path = Path(cfg.data.store).resolve()
    if not path.is_dir():
        raise TrainError(f"{flag} {path}: no such directory")
    try:
        store = open_store(path)
    except StoreError as e:
        raise TrainError(f"{flag}: {e}") from None
    missing = [c for c in cfg.data.conventions or [] if c not in store.conventions]
    if missing:
        raise TrainError(
            f"data.conventions: {missing} are not in the store {path}, which has {store.conventions}: "
            f"pass data.conventions=[{','.join(store.conventions)}] (or null: all of them), or a config written "
            "for this data (--config)"
        )
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
    fresh = checkpoint_io.fresh_folder(out, _holds_run)
    log.warning("%s already holds a run: writing to %s (--out to choose a folder)", out, fresh)
    return fresh


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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
        f"\nPre-training {'stopped' if trainer.stop_signal else 'finished'}: {_count(trainer.step, 'step')}, "
        f"{_count(trainer.epoch, 'epoch')} in {minutes:.1f} min ({trainer.seq_per_s:.1f} sequences/s) on "
        f"{len(trainer.dataset)} sequences ({f'{trainer.split} train part' if trainer.split else 'all samples'}).\n"
        f"Checkpoint: {path}\nLogs: {trainer.out / 'log.csv'}"
        + (f", TensorBoard: tensorboard --logdir {trainer.out / 'tb'}" if (trainer.out / "tb").exists() else "")
        + f"\nResume: python -m msclr.train --resume {path}\n"
        f"Evaluate: python -m msclr.evaluate linear --ckpt {path}   (also knn, semi, finetune, ensemble, transfer)"
    )
    return status
