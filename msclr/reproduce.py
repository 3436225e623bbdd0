"""python -m msclr.reproduce: the README's learning claims, rerun with one command each.

    python -m msclr.reproduce utd-mhad --raw path/to/utd_mhad --out runs/utd_repro
    python -m msclr.reproduce quick-start --out runs/quickstart_repro [--validation]

quick-start: the default run (configs/synthetic.yaml, the embedded synthetic data) for each seed
of --seeds, its linear and k-NN probes, and the random-init floors of the same seed (same
architecture, random weights): BatchNorm as built (mean 0, variance 1: the network pre-training
starts from, evaluated in eval mode as SkeletonCLR/AimCLR do) and BatchNorm statistics from the
train part; the checkpoint is probed both ways too, so each floor has a pre-trained row with the
same treatment. results.md gives mean ± std and the paired pre-trained-minus-floor differences.
--validation runs it on the xsub_val split instead (subjects 5 and 6 of the 7 training subjects
held out, the test subjects unseen): the split the quick start's settings were chosen on.
Trailing key=value arguments override the config (e.g. method.name=skeletonclr aug.normal=normal to compare).

utd-mhad: a small, real test of the paper's claim on UTD-MHAD.

Cross-subject split (subjects 1,3,5,7 train / 2,4,6,8 test). The Kinect v1 skeletons
(kinect_v1_20, ST-GCN pre-normalised unless --coordinates camera) plus two conventions
derived from them by documented joint maps (body15, coco13). For each seed of --seeds
(default 0 1 2), with the same budget (epochs, batch, steps):

* single-skeleton SkeletonCLR: both views from kinect_v1_20;
* multi-skeleton SkeletonCLR (MS-CLR), one encoder per --pairings: `batch` (one random
  (query, key) convention pair per batch) and `all` (every other convention a positive);
* the floors: the single encoder's architecture with random weights, BatchNorm as built and
  with statistics from the train part (the single encoder is probed both ways too).

Pre-training uses the train part only; then linear evaluation and k-NN on kinect_v1_20 for
each, and the per-convention ensemble for the multi-skeleton encoders. Every stage is
resumable: run the command again and finished stages are skipped (an interrupted
pre-training continues from its checkpoint). <out>/results.md gives mean ± std over the
seeds with each seed's value and the paired multi-minus-single differences; results.json
the numbers; results.png the plot.
Pre-training settings: configs/utd_mhad.yaml (epochs, batch, frames and queue from the flags).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("msclr.reproduce")
CONVENTIONS = ["kinect_v1_20", "body15", "coco13"]
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "utd_mhad.yaml"  # the pre-training settings


def _pretrain(name: str, store: Path, out: Path, args, conventions: list[str], pairing: str) -> tuple[Path, float]:
    ckpt = out / name / "last.pt"
    argv = [
        "--config",
        str(CONFIG),
        "--data",
        str(store),
        "--out",
        str(out / name),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
        "--aug",
        "torch",
        f"data.conventions=[{','.join(conventions)}]",
        f"data.frames={args.frames}",
        f"method.pairing={pairing}",
        f"method.single_convention={conventions[0]}",
        f"method.queue_size={args.queue}",
    ]
    return _train_resumable(argv, ckpt, name)


def _train_resumable(argv: list[str], ckpt: Path, label: str) -> tuple[Path, float]:
    """Pre-train (`python -m msclr.train` arguments) into ckpt's folder: skipped when ckpt has run
    its epochs, resumed when it has not, started afresh when it is absent (a stage stopped before
    its first checkpoint). Returns the checkpoint and the minutes it took (kept in it)."""
    from . import checkpoint_io, train

    epochs = int(train.parse_args([*argv, "--overwrite"])[1].optim.epochs)  # parsing writes nothing
    if ckpt.is_file():
        done = checkpoint_io.load(ckpt)
        if done["epoch"] >= epochs:
            log.info("%s: pre-training already finished (%s)", label, ckpt)
            return ckpt, done.get("minutes", float("nan"))
        argv = [*argv, "--resume", str(ckpt)]
    else:
        argv = [*argv, "--overwrite"]
    _, cfg = train.parse_args(argv)
    t0 = time.perf_counter()
    trainer = train.Trainer(cfg)
    log.info("%s: pre-training %d epochs of %d samples (%s)", label, epochs, len(trainer.dataset), cfg.method.name)
    path = trainer.run()
    if trainer.stop_signal is not None:
        raise KeyboardInterrupt(f"{label}: stopped by a signal; run the command again to continue")
    minutes = (time.perf_counter() - t0) / 60
    state = checkpoint_io.load(path)
    state["minutes"] = minutes  # kept for the table; resume reads the rest as usual
    train.save_checkpoint(path, state)
    return path, minutes


def _evaluate(protocol: str, ckpt: Path, out: Path, extra: list[str], plots: bool = True, split: str = "xsub") -> dict:
    from .evaluate import __main__ as ev

    report = out / "report.json"
    flags = ["--overwrite"] + ([] if plots else ["--no-plots"])  # a stale or unfinished evaluation is redone
    args = ev.parse_args([protocol, "--ckpt", str(ckpt), "--out", str(out), "--split", split, *flags, *extra])
    if report.is_file():
        done = json.loads(report.read_text())
        if done.get("bn_stats", "train" if done.get("random_init") else "checkpoint") == args.bn_stats:
            return done  # finished; reports from before --bn-stats had floors with statistics from the train part
        log.info("%s: made with other BatchNorm statistics; evaluating again", report)
    return ev.run(args)


def _probe(ckpt: Path, folder: Path, name: str, extra: list[str], split: str = "xsub", plots: bool = True) -> dict:
    """Linear (top-1 and its train accuracy) and k-NN top-1 of one encoder, in <folder>/<name>_linear, _knn."""
    lin = _evaluate("linear", ckpt, folder / f"{name}_linear", extra, plots, split)
    knn = _evaluate("knn", ckpt, folder / f"{name}_knn", extra, False, split)
    return {
        "linear": lin["result"]["top1"],
        "linear_train": lin["result"].get("train_top1"),
        "knn": knn["result"]["top1"],
    }


def _pretraining_facts(ckpt: Path, minutes: float) -> dict:
    first, last = _loss_curve(ckpt)
    return {"minutes": minutes, "loss_first": first, "loss_last": last}


def _write_results(out: Path, table: str, per_seed: dict, args, minutes: float) -> None:
    """results.md (the table) and results.json (every number and the arguments), then the table."""
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(
        json.dumps({"per_seed": per_seed, "args": vars(args), "minutes": minutes}, indent=2, default=str)
    )
    print("\n" + table)


# The two floors, and the encoders evaluated both ways: BatchNorm statistics as they are (a fresh
# network's for the floor, as SkeletonCLR/AimCLR's linear evaluation runs it) and from the train part.
FLOORS = {"random": ["--random-init"], "random_bn_train": ["--random-init", "--bn-stats", "train"]}
BN_TRAIN = ["--bn-stats", "train"]

ENCODERS = {  # name -> (conventions, pairing); "random" is the floor (the single encoder's architecture)
    "single": (CONVENTIONS[:1], "single"),
    "multi_batch": (CONVENTIONS, "batch"),
    "multi_all": (CONVENTIONS, "all"),
}
LABELS = {
    "random": "random init (floor: BatchNorm as built)",
    "random_bn_train": "random init, BatchNorm statistics from the train part",
    "single": "single-skeleton (kinect_v1_20 only)",
    "single_bn_train": "single-skeleton, BatchNorm statistics from the train part",
    "multi_batch": "multi-skeleton, `batch` pairing",
    "multi_all": "multi-skeleton, `all` pairing",
}


def _loss_curve(ckpt: Path) -> tuple[float, float]:
    """Mean pre-training loss of the first and of the last epoch (log.csv beside the checkpoint)."""
    import csv

    by_epoch: dict[int, list[float]] = {}
    with open(ckpt.parent / "log.csv") as f:
        for r in csv.DictReader(f):
            by_epoch.setdefault(int(r["epoch"]), []).append(float(r["loss"]))
    first, last = by_epoch[min(by_epoch)], by_epoch[max(by_epoch)]
    return sum(first) / len(first), sum(last) / len(last)


def _one_seed(args, store: Path, seed: int) -> dict:
    """Pre-train every encoder of --pairings with one seed; evaluate them and the floor."""
    out = args.out / f"seed{seed}"
    sargs = argparse.Namespace(**{**vars(args), "seed": seed})
    names = ["single"] + [f"multi_{p}" for p in args.pairings]
    runs = {n: _pretrain(n, store, out, sargs, *ENCODERS[n]) for n in names}
    ev_out = out / "eval"
    first = ["--convention", CONVENTIONS[0]]
    res = {}
    plots = not args.no_plots
    for name, flags in {**FLOORS, "single_bn_train": BN_TRAIN}.items():  # on the single encoder's checkpoint
        res[name] = _probe(runs["single"][0], ev_out, name, ["--seed", str(seed), *flags, *first], plots=plots)
    for name in names:
        ckpt = runs[name][0]
        row = _probe(ckpt, ev_out, name, ["--seed", str(seed), *first], plots=plots)
        row.update(_pretraining_facts(ckpt, runs[name][1]))
        if name.startswith("multi"):  # the single-skeleton encoder never saw body15 / coco13
            ens = _evaluate("ensemble", ckpt, ev_out / f"{name}_ensemble", ["--seed", str(seed)], plots)
            row["ensemble"] = ens["result"]["top1"]
            row["per_convention"] = {k: v["top1"] for k, v in ens["result"]["per_convention"].items()}
        res[name] = row
    return res


def utd_mhad(args) -> int:
    from .data.store import is_store

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store"
    t_all = time.perf_counter()
    if not is_store(store):
        from .data import derive, utd_mhad

        utd_mhad.prepare(args.raw, store, overwrite=True, normalize=args.coordinates == "normalized", log=log.info)
        derive.derive(store, "kinect_v1_20", CONVENTIONS[1:])
    per_seed = {seed: _one_seed(args, store, seed) for seed in args.seeds}
    minutes = (time.perf_counter() - t_all) / 60
    _write_results(out, _table(per_seed, args, minutes), per_seed, args, minutes)  # saved before plotting
    if not args.no_plots:
        _plot(per_seed, out / "results.png")
    return 0


def _stats(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    import statistics

    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _cell(per_seed: dict[int, dict], name: str, key: str, scale: float = 100.0) -> str:
    """'**mean ± std** (seed values)' of one result over the seeds, '-' where a seed lacks it."""
    vals = [per_seed[s][name].get(key) for s in per_seed]
    if any(v is None for v in vals):
        return "-"
    m, sd = _stats([scale * v for v in vals])
    each = " / ".join(f"{scale * v:.1f}" for v in vals)
    return f"**{m:.1f} ± {sd:.1f}** ({each})"


def _paired(per_seed: dict[int, dict], name: str, base: str, key: str, label: str) -> str:
    """The paired difference name - base (same seed, data and budget) and whether its mean exceeds
    two standard errors of the seed spread."""
    diffs = [100 * (per_seed[s][name][key] - per_seed[s][base][key]) for s in per_seed]
    m, sd = _stats(diffs)
    verdict = "exceeds" if len(diffs) > 1 and abs(m) > 2 * sd / len(diffs) ** 0.5 else "is within"
    return (
        f"- {label}, {key}: {m:+.1f} ± {sd:.1f} points over {len(diffs)} seeds "
        f"(each: {', '.join(f'{d:+.1f}' for d in diffs)}); the mean {verdict} two standard errors of the seed spread"
    )


def _table(per_seed: dict[int, dict], args, minutes: float) -> str:
    seeds = list(per_seed)
    names = list(next(iter(per_seed.values())))

    def cell(name, key):
        return _cell(per_seed, name, key)

    lines = [
        f"UTD-MHAD cross-subject (432 train / 432 test), {args.coordinates} coordinates, SkeletonCLR, "
        f"{args.epochs} pre-training epochs, batch {args.batch_size}, {args.frames} frames, queue {args.queue}, "
        f"seeds {', '.join(map(str, seeds))} (mean ± sample std, then each seed); linear: logistic regression on "
        f"standardised features, C by 5-fold cross-validation on the train part; k-NN: k by leave-one-out on the "
        f"train part; total {minutes:.1f} min",
        "",
        "| encoder | linear top-1, kinect_v1_20 | k-NN top-1, kinect_v1_20 | ensemble top-1 (3 conventions) | "
        "loss, first -> last epoch | pre-training (min) |",
        "|---|---|---|---|---|---:|",
    ]
    for name in names:
        rows = [per_seed[s][name] for s in seeds]
        loss = "-"
        if "loss_first" in rows[0]:
            loss = " / ".join(f"{r['loss_first']:.2f} -> {r['loss_last']:.2f}" for r in rows)
        mins = "-" if "minutes" not in rows[0] else f"{_stats([r['minutes'] for r in rows])[0]:.1f}"
        lines.append(
            f"| {LABELS[name]} | {cell(name, 'linear')} | {cell(name, 'knn')} | {cell(name, 'ensemble')} | "
            f"{loss} | {mins} |"
        )
    lines.append("")
    lines += _floor_gains(per_seed, "single", "single-skeleton")
    for name in names:  # paired differences: the same seed, data and budget
        if not name.startswith("multi"):
            continue
        for key in ("linear", "knn"):
            lines.append(_paired(per_seed, name, "single", key, f"{LABELS[name]} minus single-skeleton"))
    return "\n".join(lines) + "\n"


def _floor_gains(per_seed: dict[int, dict], name: str, label: str) -> list[str]:
    """`name` minus each floor, paired by seed, with the same BatchNorm treatment on both sides."""
    return [
        _paired(per_seed, enc, floor, key, f"{label} minus floor ({how})")
        for enc, floor, how in ((name, "random", "BatchNorm as built / as trained"),
                                (f"{name}_bn_train", "random_bn_train", "BatchNorm statistics from the train part"))
        for key in ("linear", "knn")
    ]  # fmt: skip


# ------------------------------------------------------------------------------ quick start
QUICK_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "synthetic.yaml"
VALIDATION = {"source": "xsub", "name": "xsub_val", "fraction": 0.3, "seed": 0}  # holds out subjects 5 and 6


def _quick_store(out: Path, validation: bool) -> tuple[Path, str]:
    """The quick start's synthetic data (as the default run generates it), once for every seed;
    with `validation`, its xsub_val split added."""
    from . import config as cfglib
    from .data.store import add_validation_split, is_store
    from .data.synthetic import synthetic_store_from_config

    store = out / "store"
    if not is_store(store):
        synthetic_store_from_config(store, cfglib.load([QUICK_CONFIG]).data.synthetic)
    if not validation:
        return store, "xsub"
    from .data.store import open_store

    if VALIDATION["name"] not in open_store(store).splits:
        info = add_validation_split(store, **VALIDATION)
        log.info("validation split: %s", info["note"])
    return store, VALIDATION["name"]


def _quick_pretrain(out: Path, store: Path, split: str, seed: int, args) -> tuple[Path, float]:
    run = out / "pretrained"
    argv = ["--data", str(store), "--out", str(run), "--seed", str(seed), f"data.split={split}"]
    argv += (["--epochs", str(args.epochs)] if args.epochs else []) + (["--amp"] if not args.no_amp else [])
    return _train_resumable([*argv, *args.overrides], run / "last.pt", f"seed {seed}")


def quick_start(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    store, split = _quick_store(out, args.validation)
    per_seed: dict[int, dict] = {}
    for seed in args.seeds:
        sout = out / f"seed{seed}"
        ckpt, minutes = _quick_pretrain(sout, store, split, seed, args)
        probes = {**FLOORS, "pretrained": [], "pretrained_bn_train": BN_TRAIN}
        res = {
            name: _probe(ckpt, sout, name, ["--seed", str(seed), *extra], split, plots=False)
            for name, extra in probes.items()
        }
        res["pretrained"].update(_pretraining_facts(ckpt, minutes))
        per_seed[seed] = res
    minutes = (time.perf_counter() - t_all) / 60
    lines = [
        f"Quick start ({' '.join(['configs/synthetic.yaml', *args.overrides])}), "
        f"split {split} ({'validation: subjects 5, 6 held out of the train part' if args.validation else 'test'}), "
        f"seeds {', '.join(map(str, per_seed))} (mean ± sample std, then each seed); total {minutes:.1f} min",
        "",
        "| encoder | linear top-1 | k-NN top-1 | loss, first -> last epoch | pre-training (min) |",
        "|---|---|---|---|---:|",
        f"| {LABELS['random']} | {_cell(per_seed, 'random', 'linear')} | {_cell(per_seed, 'random', 'knn')} | - | - |",
        f"| {LABELS['random_bn_train']} | {_cell(per_seed, 'random_bn_train', 'linear')} | "
        f"{_cell(per_seed, 'random_bn_train', 'knn')} | - | - |",
    ]
    rows = [per_seed[s]["pretrained"] for s in per_seed]
    loss = " / ".join(f"{r['loss_first']:.2f} -> {r['loss_last']:.2f}" for r in rows)
    lines.append(
        f"| pre-trained | {_cell(per_seed, 'pretrained', 'linear')} | {_cell(per_seed, 'pretrained', 'knn')} | "
        f"{loss} | {_stats([r['minutes'] for r in rows])[0]:.1f} |"
    )
    lines.append(
        f"| pre-trained, BatchNorm statistics from the train part | {_cell(per_seed, 'pretrained_bn_train', 'linear')} "
        f"| {_cell(per_seed, 'pretrained_bn_train', 'knn')} | - | - |"
    )
    lines.append("")
    lines += _floor_gains(per_seed, "pretrained", "pre-trained")
    _write_results(out, "\n".join(lines) + "\n", per_seed, args, minutes)
    return 0


def _plot(per_seed: dict[int, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(next(iter(per_seed.values())))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.38
    for j, key in enumerate(("linear", "knn")):
        vals = np.array([[100 * per_seed[s][n][key] for s in per_seed] for n in names])
        x = np.arange(len(names)) + (j - 0.5) * width
        ax.bar(x, vals.mean(1), width, yerr=vals.std(1, ddof=1) if vals.shape[1] > 1 else None,
               capsize=3, label="linear" if key == "linear" else "k-NN")  # fmt: skip
        for i in range(len(names)):
            ax.plot([x[i]] * vals.shape[1], vals[i], "k.", ms=3)
    ax.set_xticks(np.arange(len(names)), [LABELS[n].split(" (")[0].replace(", ", "\n") for n in names], fontsize=8)
    ax.set_ylabel("top-1 (%), kinect_v1_20 test")
    ax.set_title(f"UTD-MHAD cross-subject, {len(per_seed)} seeds (bars: mean ± std, dots: seeds)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    ap = argparse.ArgumentParser(prog="python -m msclr.reproduce", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("utd-mhad", help="single- vs multi-skeleton pre-training on UTD-MHAD")
    u.add_argument("--raw", required=True, type=Path, help="directory with the a*_s*_t*_skeleton.mat files")
    u.add_argument("--out", default="runs/utd_repro", type=Path)
    u.add_argument("--epochs", type=int, default=100, help="pre-training epochs (same for every encoder)")
    u.add_argument("--batch-size", type=int, default=32)
    u.add_argument("--frames", type=int, default=32)
    u.add_argument("--queue", type=int, default=256, help="MoCo queue length (below the 432 training sequences)")
    u.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one full study per seed")
    u.add_argument(
        "--pairings", nargs="+", default=["batch", "all"], choices=["batch", "all"],
        help="multi-skeleton encoders to train (batch: one convention pair per batch; all: every other "
        "convention a positive)",
    )  # fmt: skip
    u.add_argument("--no-plots", action="store_true", help="skip confusion-matrix and t-SNE PNGs")
    u.add_argument(
        "--coordinates",
        choices=["normalized", "camera"],
        default="normalized",
        help="ST-GCN pre-normalised skeletons (default) or the files' camera-space coordinates",
    )
    q = sub.add_parser("quick-start", help="the default run and its random-init floors over seeds")
    q.add_argument("--out", default="runs/quickstart_repro", type=Path)
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one run and one floor per seed")
    q.add_argument("--epochs", type=int, default=None, help="pre-training epochs (default: the config's)")
    q.add_argument("--validation", action="store_true", help="on the xsub_val split (the settings' choice)")
    q.add_argument("--no-amp", action="store_true", help="train in float32 (the quick start uses --amp)")
    q.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. method.name=skeletonclr")
    args = ap.parse_args(argv)
    if args.cmd == "quick-start":
        return quick_start(args)
    if not args.raw.is_dir():
        ap.error(f"--raw {args.raw}: no such directory")
    return utd_mhad(args)


if __name__ == "__main__":
    sys.exit(main())
