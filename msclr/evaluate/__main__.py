"""python -m msclr.evaluate: evaluate a pre-trained encoder.

    python -m msclr.evaluate linear   --ckpt runs/msclr/last.pt            # frozen encoder + fc
    python -m msclr.evaluate knn      --ckpt runs/msclr/last.pt            # k by leave-one-subject-out
    python -m msclr.evaluate semi     --ckpt runs/msclr/last.pt            # 1 % and 10 % labels
    python -m msclr.evaluate finetune --ckpt runs/msclr/last.pt
    python -m msclr.evaluate ensemble --ckpt runs/msclr/last.pt            # one fc per convention
    python -m msclr.evaluate transfer --ckpt runs/msclr/last.pt --data stores/utd_mhad
    python -m msclr.evaluate fuse --scores joint.npz motion.npz bone.npz --weights 0.6 0.6 0.4

--data defaults to the store the checkpoint was trained on and --split to its split (or the
store's first one). Outputs in --out (default <ckpt dir>/eval_<protocol>): report.json,
scores_*.npz (for `fuse`), confusion_*.png, tsne.png, model.pt (for msclr.load(...).predict).
--random-init evaluates the same architecture with random weights (the floor); --bn-stats train
recomputes every BatchNorm statistic from the train part (default: as stored, as AimCLR does).
The probes' one hyper-parameter is chosen on the train features only: logreg's C by 5-fold
cross-validation (--C auto), the k-NN's k by leave-one-subject-out (leave-one-out when the store
records no subjects; --k auto); give a number to fix it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint_io
from . import protocols, report
from .checkpoint import CheckpointError

log = logging.getLogger("msclr.evaluate")
PROTOCOLS = ("linear", "knn", "semi", "finetune", "transfer", "ensemble", "fuse")


def _positive(kind):
    """argparse type: a number of `kind` above 0 (a k of 0 or a negative C would run and score chance)."""

    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _auto_or(kind):
    """argparse type: the word auto, or a number of `kind` above 0."""
    number = _positive(kind)

    def parse(text: str):
        return "auto" if text == "auto" else number(text)

    parse.__name__ = f"auto or positive {kind.__name__}"
    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m msclr.evaluate",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    sub = ap.add_subparsers(dest="protocol", required=True, metavar="{" + ",".join(PROTOCOLS) + "}")

    def common(p, train_epochs: int | None, lr: float | None, wd: float | None):
        p.add_argument("--ckpt", required=True, help="pre-training checkpoint (last.pt) or an evaluation's model.pt")
        p.add_argument("--data", help="prepared store (default: the checkpoint's)")
        p.add_argument("--split", help="split with train/test parts (default: the checkpoint's or the store's first)")
        p.add_argument(
            "--out", help="output directory (default: <ckpt dir>/eval_<protocol>, -2, -3, ... if it is taken)"
        )
        p.add_argument("--overwrite", action="store_true", help="replace the evaluation in --out")
        p.add_argument("--conventions", nargs="+", help="conventions to evaluate (default: the checkpoint's)")
        p.add_argument("--convention", help="convention of single-convention protocols (default: the first)")
        p.add_argument("--device", default="auto")
        p.add_argument("--backend", default="auto", choices=["auto", "reference", "cpu", "cuda", "triton"])
        p.add_argument("--batch-size", type=_positive(int), default=128)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--random-init", action="store_true", help="random weights of the same architecture")
        p.add_argument(
            "--bn-stats",
            choices=protocols.BN_STATS,
            default="checkpoint",
            help="BatchNorm statistics: checkpoint (default) = as stored, and a fresh network's (mean 0, "
            "variance 1) with --random-init, as SkeletonCLR/AimCLR evaluate; train = recomputed from the "
            "train part, for checkpoint and floor alike",
        )
        p.add_argument("--no-plots", action="store_true", help="skip the confusion-matrix and t-SNE PNGs")
        if train_epochs is not None:
            p.add_argument("--epochs", type=_positive(int), default=train_epochs)
            p.add_argument("--lr", type=_positive(float), default=lr)
            p.add_argument("--weight-decay", type=float, default=wd)
            p.add_argument("--milestones", type=int, nargs="*", help="lr x0.1 at these epochs (default: 80%%)")
        return p

    def probe(p):
        p.add_argument(
            "--probe",
            default="logreg",
            choices=["logreg", "sgd"],
            help="logreg: L2 logistic regression on standardised features, L-BFGS (default; deterministic); "
            "sgd: SkeletonCLR/AimCLR's published protocol on raw features (--epochs --lr --milestones)",
        )
        p.add_argument(
            "--C",
            type=_auto_or(float),
            default="auto",
            help="inverse L2 strength of logreg (scikit-learn's C); auto (default): chosen by 5-fold "
            "cross-validation on the train features",
        )
        return p

    probe(common(sub.add_parser("linear", help="frozen encoder, linear classifier"), 100, 3.0, 0.0))
    k = common(sub.add_parser("knn", help="cosine k-NN on frozen features"), None, None, None)
    k.add_argument(
        "--k",
        type=_auto_or(int),
        default="auto",
        help="neighbours; auto (default): leave-one-(subject-)out on the train features",
    )
    k.add_argument("--tau", type=_positive(float), default=0.07, help="temperature of the similarity weights")
    s = common(sub.add_parser("semi", help="fine-tuning on 1%% / 10%% labelled subsets"), 100, 0.1, 1e-4)
    s.add_argument("--fractions", type=_fraction, nargs="+", default=[0.01, 0.1])
    s.add_argument("--amp", action="store_true")
    f = common(sub.add_parser("finetune", help="full fine-tuning"), 100, 0.1, 1e-4)
    f.add_argument("--amp", action="store_true")
    t = common(
        sub.add_parser("transfer", help="evaluate on another store (other conventions allowed)"), 100, None, None
    )
    t.add_argument("--protocol", dest="transfer_protocol", default="linear", choices=["linear", "finetune"])
    t.add_argument("--amp", action="store_true")
    probe(t)
    probe(common(sub.add_parser("ensemble", help="one linear classifier per convention, soft voting"), 100, 3.0, 0.0))
    fu = sub.add_parser("fuse", help="weighted fusion of score files (joint/motion/bone)")
    fu.add_argument("--scores", nargs="+", required=True, help="scores_*.npz files of the same test samples")
    fu.add_argument("--weights", type=float, nargs="+", help="default 0.6 0.6 0.4 for three files, else equal")
    fu.add_argument("--out", default="fused", help="output directory (default: ./fused)")
    fu.add_argument("--no-plots", action="store_true")
    fu.add_argument("--overwrite", action="store_true", help="replace the evaluation in --out")
    args = ap.parse_args(argv)
    if args.protocol == "transfer":
        if not args.data:
            ap.error("transfer needs --data (the store to transfer to)")
        ft = args.transfer_protocol == "finetune"
        args.lr = args.lr if args.lr is not None else (0.1 if ft else 3.0)
        args.weight_decay = args.weight_decay if args.weight_decay is not None else (1e-4 if ft else 0.0)
    return args


def _print_summary(protocol: str, res: dict, out: Path, path: Path) -> None:
    def line(name, r):
        train = f"   train top-1 {100 * r['train_top1']:6.2f}%" if "train_top1" in r else ""
        return (
            f"  {name:<28} top-1 {100 * r['top1']:6.2f}%   top-5 {100 * r['top5']:6.2f}%   "
            f"({r['num_samples']} samples){train}"
        )

    rows = []
    if protocol == "semi":
        rows = [line(f"semi {k}", v) for k, v in res.items()]
    else:
        rows.append(line(protocol, res))
        for name, r in res.get("per_convention", {}).items():
            rows.append(line(f"  {name}", r))
    print(f"\n{protocol} evaluation\n" + "\n".join(rows) + f"\nReport: {path}\nOutputs: {out}")


def _output_folder(args: argparse.Namespace) -> Path:
    """--out, refused if it holds an evaluation (report.json) unless --overwrite; by default
    <ckpt dir>/eval_<protocol>, or the first of eval_<protocol>-2, -3, ... that holds none."""
    if args.protocol == "fuse" or args.out:
        out = Path(args.out)
        if (out / "report.json").exists() and not args.overwrite:
            raise protocols.EvalError(
                f"--out {out} holds an evaluation (report.json); choose another or pass --overwrite"
            )
        return out
    default = protocols.default_output(args.ckpt, args.protocol + ("_random" if args.random_init else ""))
    if args.overwrite:
        return default
    folder = checkpoint_io.fresh_folder(default, lambda f: (f / "report.json").exists())
    if folder != default:
        log.warning("%s holds an evaluation: writing to %s (--out to choose a folder)", default, folder)
    return folder


def run(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    args.out = str(_output_folder(args))
    if args.protocol == "fuse":
        out = Path(args.out)
        m, fused = protocols.fuse(args.scores, args.weights)
        report.save_scores(out / "scores_fused.npz", fused["sample_ids"], fused["scores"], fused["labels"],
                           fused["class_names"], weights=args.weights)  # fmt: skip
        if not args.no_plots:
            report.plot_confusion(
                np.asarray(m["confusion"]),
                fused["class_names"],
                out / "confusion_fused.png",
                f"fused: top-1 {100 * m['top1']:.1f}%",
            )
        doc = {"protocol": "fuse", "result": m, "minutes": (time.perf_counter() - t0) / 60}
        path = report.write_json(out / "report.json", doc)
        _print_summary("fuse", m, out, path)
        return doc

    conventions = args.conventions
    if conventions is None and args.convention and args.protocol != "ensemble":
        conventions = [args.convention]  # one-convention protocols encode only that one
    ctx = protocols.make_context(
        args.ckpt,
        data=args.data,
        split=args.split,
        conventions=conventions,
        out=args.out,
        device=args.device,
        backend=args.backend,
        batch_size=args.batch_size,
        seed=args.seed,
        random_init=args.random_init,
        allow_new=args.protocol == "transfer",
        plots=not args.no_plots,
        bn_stats=args.bn_stats,
    )
    log.info(
        "%s | checkpoint %s%s | store %s, split %s | conventions %s | device %s",
        args.protocol,
        ctx.pre.path,
        " (random init)" if args.random_init else "",
        ctx.store.path,
        ctx.split,
        ", ".join(ctx.conventions),
        ctx.device,
    )
    train_kw = {}
    if hasattr(args, "epochs"):
        train_kw = dict(epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay, milestones=args.milestones)
    probe_kw = dict(probe=args.probe, C=args.C) if hasattr(args, "probe") else {}
    if args.protocol == "linear":
        res = protocols.linear(ctx, args.convention, **train_kw, **probe_kw)
    elif args.protocol == "knn":
        res = protocols.knn(ctx, args.convention, k=args.k, tau=args.tau)
    elif args.protocol == "ensemble":
        res = protocols.ensemble(ctx, **train_kw, **probe_kw)
    elif args.protocol == "finetune":
        res = protocols.finetune(ctx, args.convention, amp=args.amp, **train_kw)
    elif args.protocol == "semi":
        res = protocols.semi(ctx, fractions=args.fractions, convention=args.convention, amp=args.amp, **train_kw)
    else:  # transfer
        if args.transfer_protocol == "finetune":
            train_kw["amp"] = args.amp
        else:
            train_kw.update(probe_kw)
        res = protocols.transfer(ctx, args.transfer_protocol, convention=args.convention, **train_kw)
    doc = {
        "protocol": args.protocol,
        "checkpoint": str(ctx.pre.path),
        "random_init": ctx.random_init,
        "bn_stats": ctx.bn_stats,
        "store": str(ctx.store.path),
        "split": ctx.split,
        "conventions": ctx.conventions,
        "new_conventions": ctx.new_conventions,
        "stream": ctx.stream,
        "device": str(ctx.device),
        "seed": ctx.seed,
        "torch": torch.__version__,
        "minutes": (time.perf_counter() - t0) / 60,
        "command": "python -m msclr.evaluate " + " ".join(sys.argv[1:]),
        "result": res,
    }
    path = report.write_json(ctx.out / "report.json", doc)
    _print_summary(args.protocol, res, ctx.out, path)
    return doc


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    try:
        run(args)
    except (CheckpointError, protocols.EvalError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
