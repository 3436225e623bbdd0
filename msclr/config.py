"""Run configuration: defaults, YAML files and command-line overrides (OmegaConf).

Later sources win: defaults < each --config file in order < key=value overrides <
dedicated flags (--epochs, --batch-size, ...). Unknown keys are errors, so a typo in a
config never passes silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

DEFAULTS: dict[str, Any] = {
    "data": {
        "store": None,  # path of a prepared store; None = synthetic data
        "synthetic": {"num_samples": 480, "frames": 48, "seed": 0},
        "conventions": None,  # None = every convention of the store
        "split": None,  # e.g. xsub / xview / xset; None = all samples
        "frames": 50,
        "persons": 2,
        "stream": "joint",  # joint | motion | bone
        "workers": 0,
    },
    "model": {
        "hidden_channels": 16,
        "hidden_dim": 256,
        "dropout": 0.5,
        "feature_dim": 128,
        "edge_importance": True,
        "strategy": "spatial",
    },
    "method": {
        "name": "skeletonclr",  # skeletonclr | aimclr
        "pairing": "batch",  # single | batch | sample | all
        "single_convention": None,  # for pairing=single (default: the first convention)
        "queue_size": 32768,
        "momentum": 0.999,
        "tau": 0.07,
        "nn_epoch": 150,  # AimCLR: nearest-neighbour mining from this epoch
        "nn_topk": 1,
        "drop_keep_prob": 0.7,
    },
    "optim": {
        "epochs": 300,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "milestones": [250],
        "gamma": 0.1,
    },
    # presets of msclr.augment.AugmentParams (or a YAML file of settings); AimCLR's extreme
    # view is its own strong augmentation ("aimclr"); "extreme" adds joint and frame drop
    "aug": {"backend": "auto", "normal": "normal", "extreme": "aimclr"},
    "run": {
        "out": "runs/msclr",
        "seed": 0,
        "device": "auto",
        "amp": False,
        "cpu_bf16": "auto",  # --amp on CPU: auto (bf16 only with native CPU support) | on | off
        "compile": False,
        "compile_backend": "inductor",  # torch.compile backend (aot_eager: no code generation)
        "backend": "auto",
        "max_steps": None,
        "log_every": 10,
        "resume": None,
    },
}

METHODS = ("skeletonclr", "aimclr")
PAIRINGS = ("single", "batch", "sample", "all")
STREAMS = ("joint", "motion", "bone")


def load(config_files: list[str | Path] = (), overrides: list[str] = ()) -> DictConfig:
    cfg = OmegaConf.create(DEFAULTS)
    OmegaConf.set_struct(cfg, True)  # unknown keys raise
    for f in config_files:
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
        except Exception as e:
            raise ValueError(f"{path}: {e}") from e
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        except Exception as e:
            raise ValueError(f"command-line override: {e}") from e
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    def check(cond: bool, msg: str) -> None:
        if not cond:
            raise ValueError(f"config: {msg}")

    check(cfg.method.name in METHODS, f"method.name must be one of {METHODS}, got {cfg.method.name!r}")
    check(cfg.method.pairing in PAIRINGS, f"method.pairing must be one of {PAIRINGS}, got {cfg.method.pairing!r}")
    check(cfg.data.stream in STREAMS, f"data.stream must be one of {STREAMS}, got {cfg.data.stream!r}")
    check(cfg.optim.batch_size >= 2, "optim.batch_size must be >= 2")
    check(cfg.optim.epochs >= 1, "optim.epochs must be >= 1")
    check(cfg.method.queue_size >= cfg.optim.batch_size, "method.queue_size must be >= optim.batch_size")
    check(0 < cfg.method.tau, "method.tau must be > 0")
    check(0 <= cfg.method.momentum < 1, "method.momentum must be in [0, 1)")
    check(cfg.data.frames >= 4, "data.frames must be >= 4")
    check(cfg.run.cpu_bf16 in ("auto", "on", "off"), "run.cpu_bf16 must be auto, on or off")
