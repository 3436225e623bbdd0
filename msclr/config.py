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
        # normalize: ST-GCN pre-normalised coordinates (as NTU is prepared), else camera space
        # style: per-sample variation of the motion in [0, 1] (0 = each class's template)
        "synthetic": {"num_samples": 480, "frames": 48, "seed": 0, "normalize": False, "style": 0.0},
        "conventions": None,  # None = every convention of the store
        # pre-train on the train part of this split (xsub / xview / xset); None = the store's
        # first split if it has one (no test-subject leakage), "all" = every sample
        "split": None,
        "frames": 50,
        # train-time temporal crop: a ratio p ~ U(p_interval) of each valid sequence, at least
        # min_crop frames; "auto" = 64 (AimCLR's NTU constant) capped at p_interval[0] x the median
        # sequence length of the store, so short sequences (Kinect v1: 30-60 frames) are cropped too
        "p_interval": [0.5, 1.0],
        "min_crop": "auto",
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
        "input_norm": "stgcn",  # stgcn: persons share the input BatchNorm (ST-GCN/AimCLR); per_person
        # aimclr: SkeletonCLR/AimCLR's weights_init (N(0, 0.02), key encoder drawn apart); torch: defaults
        "init": "aimclr",
    },
    "method": {
        "name": "skeletonclr",  # skeletonclr | aimclr
        "pairing": "batch",  # single | batch | sample | all
        "single_convention": None,  # for pairing=single (default: the first convention)
        "queue_size": 32768,
        "momentum": 0.999,
        "tau": 0.07,
        "nn_epoch": 0.5,  # AimCLR: nearest-neighbour mining from this epoch (float <= 1: share of the run)
        "nn_topk": 1,
        "drop_keep_prob": 0.7,
        # AimCLR's attention drop: aimclr (as its released code computes: keeps everything),
        # threshold (as the paper describes it), random (proportional to attention)
        "drop_mode": "aimclr",
        # the queue's storage dtype: float32 (MoCo/SkeletonCLR/AimCLR); bfloat16/float16 store it in
        # 16 bits and give InfoNCE 16-bit queries too, so on a GPU its dots run on tensor cores
        # (the Triton kernel's wgmma path; an fp32 queue takes the 3xTF32 path). Gradients stay fp32.
        "queue_dtype": "float32",
    },
    "optim": {
        "epochs": 300,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "milestones": [0.8333],  # lr x gamma at these epochs (floats <= 1: shares of optim.epochs)
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
INPUT_NORMS = ("stgcn", "per_person")
DROP_MODES = ("aimclr", "threshold", "random")
INIT_SCHEMES = ("aimclr", "torch")
PAIRINGS = ("single", "batch", "sample", "all")
QUEUE_DTYPES = ("float32", "bfloat16", "float16")
STREAMS = ("joint", "motion", "bone")


def error_line(e: Exception) -> str:
    """An OmegaConf error in one line, naming the whole key (its message names only the last part:
    optim.lrr -> 'lrr', with the full key on a line of its own)."""
    message, key = str(e).strip().splitlines()[0], getattr(e, "full_key", None)
    return f"{key}: {message}" if key and key not in message else message


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
            raise ValueError(f"{path}: {error_line(e)}") from e
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        except Exception as e:
            raise ValueError(f"command-line override: {error_line(e)}") from e
    validate(cfg)
    return cfg


def from_checkpoint(raw: Any) -> DictConfig:
    """A checkpoint's run config on this version's defaults, for resuming and evaluating it.

    Keys added after the checkpoint was written take the value that reproduces its run: first the
    mapping of older formats below, then DEFAULTS (whose new keys default to the old behaviour,
    e.g. data.synthetic.style 0). Keys this version does not know raise ValueError.
    """
    if not isinstance(raw, dict):
        raise ValueError(f"the run config is a {type(raw).__name__}, not a mapping")
    if isinstance(raw.get("model"), dict) and "input_norm" not in raw["model"]:
        # written before model.input_norm / model.init existed: one input BatchNorm per person and
        # PyTorch's default initialisation (today's defaults are ST-GCN's shared norm and AimCLR's init)
        raw = {**raw, "model": {"init": "torch", **raw["model"], "input_norm": "per_person"}}
    try:
        cfg = OmegaConf.merge(load(), OmegaConf.create(raw))  # load(): DEFAULTS, unknown keys refused
    except Exception as e:  # an unknown key: a checkpoint of a newer msclr, or not of msclr
        raise ValueError(str(e).strip().splitlines()[0]) from None
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    def check(cond: bool, msg: str) -> None:
        if not cond:
            raise ValueError(f"config: {msg}")

    _check_types(DEFAULTS, cfg, "")
    ms = cfg.run.max_steps
    check(
        ms is None or (type(ms) is int and ms >= 1),
        f"run.max_steps (--max-steps) must be a whole number >= 1 (or null: the whole run), got {ms!r}",
    )
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
    check(cfg.model.input_norm in INPUT_NORMS, f"model.input_norm must be one of {INPUT_NORMS}")
    check(cfg.model.init in INIT_SCHEMES, f"model.init must be one of {INIT_SCHEMES}")
    check(cfg.method.drop_mode in DROP_MODES, f"method.drop_mode must be one of {DROP_MODES}")
    check(cfg.method.queue_dtype in QUEUE_DTYPES, f"method.queue_dtype must be one of {QUEUE_DTYPES}")
    lo, hi = (float(v) for v in cfg.data.p_interval)
    check(0 < lo <= hi <= 1, f"data.p_interval must satisfy 0 < low <= high <= 1, got {list(cfg.data.p_interval)}")
    mc = cfg.data.min_crop
    check(mc == "auto" or (isinstance(mc, int) and mc >= 1), f"data.min_crop must be auto or frames >= 1, got {mc!r}")
    conv = cfg.data.conventions
    check(conv is None or len(conv) > 0, "data.conventions must name at least one convention (or be null: all)")
    for m in cfg.optim.milestones:
        check(isinstance(m, (int, float)) and m > 0, f"optim.milestones must be positive numbers, got {m!r}")
    check(cfg.method.nn_epoch >= 0, "method.nn_epoch must be >= 0")


def _check_types(defaults: dict, node, prefix: str) -> None:
    """Numbers and switches hold values of their type: optim.lr=abc fails here, not deep in a run."""
    for key, default in defaults.items():
        name, value = f"{prefix}{key}", node.get(key)
        if isinstance(default, dict):
            if value is not None:
                _check_types(default, value, name + ".")
            continue
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = type(value) is int, "a whole number"
        elif isinstance(default, float):
            ok, kind = type(value) in (int, float), "a number"
        else:
            continue
        if not ok:
            raise ValueError(f"config: {name} must be {kind}, got {value!r}")


def epoch_of(value: float | int, epochs: int) -> int:
    """A schedule point: a float in (0, 1] is that share of the run's epochs (so --epochs scales
    it), anything else an epoch number."""
    if isinstance(value, float) and 0 < value <= 1:
        return int(round(value * epochs))
    return int(value)
