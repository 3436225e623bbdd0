"""python -m msclr.reproduce utd-mhad: a small, real test of the paper's claim on UTD-MHAD.

    python -m msclr.reproduce utd-mhad --raw ../shared/data/utd_mhad --out runs/utd_repro

Cross-subject split (subjects 1,3,5,7 train / 2,4,6,8 test). The Kinect v1 skeletons
(kinect_v1_20, ST-GCN pre-normalised unless --coordinates camera) plus two conventions
derived from them by documented joint maps (body15, coco13). With the same budget (epochs, batch, steps, seed):

* single-skeleton SkeletonCLR: both views from kinect_v1_20;
* multi-skeleton SkeletonCLR (MS-CLR): one random (query, key) convention pair per batch;
* the floor: the same encoder with random weights (BatchNorm statistics from the train part).

Pre-training uses the train part only; then linear evaluation and k-NN on kinect_v1_20 for
each, and the per-convention ensemble for the multi-skeleton and random encoders. Every stage
is resumable: run the command again and finished stages are skipped (an interrupted
pre-training continues from its checkpoint). The table goes to <out>/results.md.
Pre-training settings: configs/utd_mhad.yaml (epochs, batch, frames and queue from the flags).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

log = logging.getLogger("msclr.reproduce")
CONVENTIONS = ["kinect_v1_20", "body15", "coco13"]
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "utd_mhad.yaml"  # the pre-training settings


def _pretrain(name: str, store: Path, out: Path, args, conventions: list[str], pairing: str) -> tuple[Path, float]:
    from . import train

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
        f"optim.milestones=[{max(1, int(args.epochs * 0.8))}]",
    ]
    if ckpt.is_file():
        done = torch.load(ckpt, map_location="cpu", weights_only=False)
        if done["epoch"] >= args.epochs:
            log.info("%s: pre-training already finished (%s)", name, ckpt)
            return ckpt, done.get("minutes", float("nan"))
        argv += ["--resume", str(ckpt)]
    _, cfg = train.parse_args(argv)
    t0 = time.perf_counter()
    trainer = train.Trainer(cfg)
    log.info("%s: pre-training %d epochs of %d samples (%s)", name, args.epochs, len(trainer.dataset), pairing)
    path = trainer.run()
    if trainer.stop_signal is not None:
        raise KeyboardInterrupt(f"{name}: stopped by a signal; run the command again to continue")
    minutes = (time.perf_counter() - t0) / 60
    state = torch.load(path, map_location="cpu", weights_only=False)
    state["minutes"] = minutes  # kept for the table; resume reads the rest as usual
    train.save_checkpoint(path, state)
    return path, minutes


def _evaluate(protocol: str, ckpt: Path, out: Path, extra: list[str], plots: bool = True) -> dict:
    from .evaluate import __main__ as ev

    report = out / "report.json"
    if report.is_file():
        return json.loads(report.read_text())
    flags = [] if plots else ["--no-plots"]
    args = ev.parse_args([protocol, "--ckpt", str(ckpt), "--out", str(out), "--split", "xsub", *flags, *extra])
    return ev.run(args)


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
    runs = {
        "single": _pretrain("single", store, out, args, CONVENTIONS[:1], "single"),
        "multi": _pretrain("multi", store, out, args, CONVENTIONS, "batch"),
    }
    ev_out = out / "eval"
    ev_args = ["--epochs", str(args.linear_epochs), "--seed", str(args.seed)]
    rows = []
    for name, rand in [("random init", True), ("single-skeleton", False), ("multi-skeleton", False)]:
        ckpt = runs["single" if name == "single-skeleton" else "multi"][0]
        rnd = ["--random-init"] if rand else []
        tag = name.split()[0].split("-")[0]
        plots = not args.no_plots
        first = ["--convention", CONVENTIONS[0]]
        lin = _evaluate("linear", ckpt, ev_out / f"{tag}_linear", ev_args + rnd + first, plots)
        knn = _evaluate("knn", ckpt, ev_out / f"{tag}_knn", ["--seed", str(args.seed), *first, *rnd], plots=False)
        row = {
            "encoder": name,
            "pretrain_minutes": None if rand else runs["single" if tag == "single" else "multi"][1],
            "linear_top1": lin["result"]["top1"],
            "knn_top1": knn["result"]["top1"],
        }
        if tag != "single":  # the single-skeleton encoder never saw body15 / coco13
            ens = _evaluate("ensemble", runs["multi"][0], ev_out / f"{tag}_ensemble", ev_args + rnd, plots)
            row["ensemble_top1"] = ens["result"]["top1"]
            row["per_convention"] = {k: v["top1"] for k, v in ens["result"]["per_convention"].items()}
        rows.append(row)
    minutes = (time.perf_counter() - t_all) / 60
    table = _table(rows, args, minutes)
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(
        json.dumps({"rows": rows, "args": vars(args), "minutes": minutes}, indent=2, default=str)
    )
    print("\n" + table)
    return 0


def _table(rows: list[dict], args, minutes: float) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    lines = [
        f"UTD-MHAD cross-subject (432 train / 432 test), {args.coordinates} coordinates, SkeletonCLR, "
        f"{args.epochs} pre-training epochs, "
        f"batch {args.batch_size}, {args.frames} frames, seed {args.seed}; linear/ensemble {args.linear_epochs} "
        f"epochs; total {minutes:.1f} min",
        "",
        "| encoder | pre-training (min) | linear top-1, kinect_v1_20 | k-NN top-1, kinect_v1_20 | "
        "ensemble top-1 (kinect_v1_20 / body15 / coco13 alone) |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        ens = "-"
        if "ensemble_top1" in r:
            per = " / ".join(pct(r["per_convention"].get(c)) for c in CONVENTIONS)
            ens = f"{pct(r['ensemble_top1'])} ({per})"
        mins = "-" if r["pretrain_minutes"] is None else f"{r['pretrain_minutes']:.1f}"
        lines.append(f"| {r['encoder']} | {mins} | {pct(r['linear_top1'])} | {pct(r['knn_top1'])} | {ens} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    ap = argparse.ArgumentParser(prog="python -m msclr.reproduce", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("utd-mhad", help="single- vs multi-skeleton pre-training on UTD-MHAD")
    u.add_argument("--raw", required=True, type=Path, help="directory with the a*_s*_t*_skeleton.mat files")
    u.add_argument("--out", default="runs/utd_repro", type=Path)
    u.add_argument("--epochs", type=int, default=100, help="pre-training epochs (same for both encoders)")
    u.add_argument("--batch-size", type=int, default=32)
    u.add_argument("--frames", type=int, default=32)
    u.add_argument("--queue", type=int, default=1024, help="MoCo queue length")
    u.add_argument("--linear-epochs", type=int, default=100)
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--no-plots", action="store_true", help="skip confusion-matrix and t-SNE PNGs")
    u.add_argument(
        "--coordinates",
        choices=["normalized", "camera"],
        default="normalized",
        help="ST-GCN pre-normalised skeletons (default) or the files' camera-space coordinates",
    )
    args = ap.parse_args(argv)
    if not args.raw.is_dir():
        ap.error(f"--raw {args.raw}: no such directory")
    return utd_mhad(args)


if __name__ == "__main__":
    sys.exit(main())
