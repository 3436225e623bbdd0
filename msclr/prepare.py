"""python -m msclr.prepare: raw data -> a multi-skeleton store (see msclr.data.store).

Sub-commands:

  ntu        NTU RGB+D 60/120 raw .skeleton files (C++ parser, parallel, resumable)
  utd-mhad   UTD-MHAD .mat skeletons
  stgcn      st-gcn / AimCLR / CrosSCLR preprocessed {part}_data_joint.npy + {part}_label.pkl
  ctrgcn     CTR-GCN / SGN .npz (x_train, y_train, x_test, y_test)
  pyskl      PySKL / MMAction2 annotation .pkl ({'split': ..., 'annotations': [...]})
  estimator  add a convention from per-sample pose-estimator outputs to an existing store
  folder     "bring your own": one array per sample, labels.csv, a convention file (--help: the layout)
  derive     add derived conventions (e.g. kinect_v1_20, body15) to a store (user-defined: by joint name)
  split      add a validation split: whole subjects of a split's train part held out, to choose
             settings on (python -m msclr.prepare split --store S --from xsub -> xsub_val)
  synthetic  the synthetic multi-skeleton dataset

Each writes atomically; `python -m msclr.prepare <cmd> --help` lists the options.
Exit status: 0 on success (files that could not be read are skipped and listed), 1 when
--strict was given and something was skipped, 2 on usage errors or fatal errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _derive_targets(value: str | None, source):
    from .data import derive

    if value is None or value == "none":
        return []
    if value == "all":
        return derive.derivable(source)
    return [v for v in value.split(",") if v]


def _maybe_derive(store, source: str, value: str | None):
    from .data import derive

    targets = _derive_targets(value, source)
    if not targets:
        if value == "all":
            print(f"note: nothing derived: {derive.nothing_derivable(store.convention(source))}")
        return store

    store = derive.derive(store, source, targets)
    print(f"derived from {source}: {', '.join(targets)}")
    return store


def cmd_utd_mhad(args) -> int:
    from .data import utd_mhad

    store = utd_mhad.prepare(args.raw, args.out, strict=args.strict, overwrite=args.overwrite, normalize=args.normalize)
    store = _maybe_derive(store, "kinect_v1_20", args.derive)
    print(store)
    return 0


def cmd_ntu(args) -> int:
    from .data import ntu

    store, report = ntu.prepare(
        args.raw,
        args.out,
        benchmark=args.benchmark,
        normalize=not args.no_normalize,
        workers=args.workers,
        parser=args.parser,
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(ntu.summary(report))
    if store is not None:
        store = _maybe_derive(store, "ntu25", args.derive)
        print(store)
    return 1 if args.strict and report.skipped else 0


def _import(args, importer: str, source, **options) -> int:
    """The shared shape of the importers: import `source` into args.out, derive, print the store."""
    from .data import importers

    store = getattr(importers, importer)(source, args.out, overwrite=args.overwrite, **options)
    store = _maybe_derive(store, store.conventions[0], args.derive)
    print(store)
    return 0


def cmd_stgcn(args) -> int:
    return _import(
        args,
        "import_stgcn",
        args.data_dir,
        split=args.split,
        parts=args.parts,
        convention=args.convention,
        unit=args.unit,
        dataset=args.name,
        num_classes=args.num_classes,
    )


def cmd_ctrgcn(args) -> int:
    return _import(
        args,
        "import_ctrgcn",
        args.npz,
        split=args.split,
        convention=args.convention,
        persons=args.persons,
        unit=args.unit,
        dataset=args.name,
    )


def cmd_pyskl(args) -> int:
    return _import(
        args,
        "import_pyskl",
        args.pkl,
        convention=args.convention,
        max_persons=args.persons,
        unit=args.unit,
        dataset=args.name,
        num_classes=args.num_classes,
    )


def cmd_estimator(args) -> int:
    from .data import importers

    store = importers.import_estimator(
        args.store,
        args.outputs,
        args.convention,
        unit=args.unit,
        key=args.key,
        max_persons=args.persons,
        nan=args.nan,
    )
    print(store)
    return 0


def cmd_folder(args) -> int:
    from .data import derive, importers

    conv = importers.folder_convention(args.folder, args.convention)
    for target in _derive_targets(args.derive, conv):  # a bad --derive fails before anything is written
        derive.joint_matrix(conv, target)
    return _import(
        args,
        "import_folder",
        args.folder,
        convention=args.convention,
        unit=args.unit,
        max_persons=args.persons,
        dataset=args.name,
        keep_first_persons=args.keep_first_persons,
        normalize=args.normalize,
    )


def cmd_derive(args) -> int:
    from .data import derive, open_store

    store = open_store(args.store)
    store = derive.derive(store, args.source, args.to or None)
    targets = args.to or derive.derivable(store.convention(args.source))
    print(f"derived from {args.source}: {', '.join(targets)}")
    print(store)
    return 0


def cmd_synthetic(args) -> int:
    from .data.synthetic import make_synthetic_store

    t = time.perf_counter()
    store = make_synthetic_store(
        args.out,
        num_samples=args.num_samples,
        conventions=args.conventions.split(",") if args.conventions else None,
        T=args.frames,
        seed=args.seed,
        num_classes=args.num_classes,
        num_subjects=args.num_subjects,
        normalize=args.normalize,
        style=args.style,
    )
    print(f"{store} in {time.perf_counter() - t:.1f} s")
    return 0


def cmd_split(args) -> int:
    from .data.store import add_validation_split

    subjects = [int(v) for v in args.subjects.split(",") if v] if args.subjects else None
    info = add_validation_split(
        args.store, args.source, args.name, args.fraction, subjects, args.seed, overwrite=args.overwrite
    )
    print(f"split {info['name']}: train {info['train']} / test (validation) {info['test']} samples; {info['note']}")
    name = info["name"]
    print(f"use it: python -m msclr.train ... data.split={name}; python -m msclr.evaluate ... --split {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m msclr.prepare", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    derive_help = "derived conventions to add: 'all', 'none' or a comma-separated list (see msclr.data.derive)"

    n = sub.add_parser("ntu", help="NTU RGB+D raw .skeleton files")
    n.add_argument(
        "--raw", required=True, nargs="+", type=Path, help="directories with .skeleton files (searched recursively)"
    )
    n.add_argument("--out", required=True, type=Path, help="store directory to write")
    n.add_argument("--benchmark", choices=["ntu60", "ntu120"], default="ntu60")
    n.add_argument("--no-normalize", action="store_true", help="skip the ST-GCN pre-normalisation")
    n.add_argument("--workers", type=int, default=None, help="parser threads (default: all cores)")
    n.add_argument("--parser", choices=["auto", "cpp", "python"], default="auto")
    n.add_argument("--chunk-size", type=int, default=1000, help="files per resumable chunk")
    n.add_argument("--derive", default="none", help=derive_help)
    n.add_argument("--strict", action="store_true", help="exit 1 when a file could not be read")
    n.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    n.add_argument("--no-progress", action="store_true", help="no progress bar")
    n.set_defaults(func=cmd_ntu)

    u = sub.add_parser("utd-mhad", help="UTD-MHAD .mat skeletons")
    u.add_argument("--raw", required=True, type=Path, help="directory with a*_s*_t*_skeleton.mat")
    u.add_argument("--out", required=True, type=Path, help="store directory to write")
    u.add_argument("--derive", default="none", help=derive_help)
    u.add_argument("--strict", action="store_true", help="fail (exit 1) when a file cannot be read")
    u.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    u.add_argument(
        "--normalize", action="store_true", help="ST-GCN pre-normalisation (spine-centred, aligned), as for NTU"
    )
    u.set_defaults(func=cmd_utd_mhad)

    g = sub.add_parser("stgcn", help="st-gcn / AimCLR preprocessed .npy + .pkl")
    g.add_argument(
        "--data-dir", required=True, type=Path, help="directory with {part}_data_joint.npy, {part}_label.pkl"
    )
    g.add_argument("--out", required=True, type=Path)
    g.add_argument("--split", default="xsub", help="name of the split the parts form (e.g. xsub, xview)")
    g.add_argument("--parts", nargs="+", default=["train", "val"], help="file prefixes; the first trains")
    g.add_argument("--convention", default=None, help="skeleton convention (default: guessed from V)")
    g.add_argument("--unit", default=None, choices=["m", "mm", "px"])
    g.add_argument("--name", default=None, help="dataset name (default: the directory name)")
    g.add_argument("--num-classes", type=int, default=None)
    g.add_argument("--derive", default="none", help=derive_help)
    g.add_argument("--overwrite", action="store_true")
    g.set_defaults(func=cmd_stgcn)

    c = sub.add_parser("ctrgcn", help="CTR-GCN / SGN .npz")
    c.add_argument("--npz", required=True, type=Path)
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--split", default=None, help="split name (default: from the file name, e.g. NTU60_CS -> xsub)")
    c.add_argument("--convention", default="ntu25")
    c.add_argument("--persons", type=int, default=2)
    c.add_argument("--unit", default=None, choices=["m", "mm", "px"])
    c.add_argument("--name", default=None)
    c.add_argument("--derive", default="none", help=derive_help)
    c.add_argument("--overwrite", action="store_true")
    c.set_defaults(func=cmd_ctrgcn)

    k = sub.add_parser("pyskl", help="PySKL / MMAction2 annotation .pkl")
    k.add_argument("--pkl", required=True, type=Path)
    k.add_argument("--out", required=True, type=Path)
    k.add_argument("--convention", default=None, help="default: guessed from V (25 -> ntu25, 17 -> coco17)")
    k.add_argument("--persons", type=int, default=2, help="keep at most this many persons")
    k.add_argument("--unit", default=None, choices=["m", "mm", "px"])
    k.add_argument("--name", default=None)
    k.add_argument("--num-classes", type=int, default=None)
    k.add_argument("--derive", default="none", help=derive_help)
    k.add_argument("--overwrite", action="store_true")
    k.set_defaults(func=cmd_pyskl)

    e = sub.add_parser("estimator", help="add a convention from per-sample pose-estimator outputs")
    e.add_argument("--store", required=True, type=Path, help="existing store (samples matched by id)")
    e.add_argument("--outputs", required=True, type=Path, help="directory of <sample_id>.npy / .npz")
    e.add_argument("--convention", required=True, help="e.g. smplx42, berkeley_mhad43, smpl24")
    e.add_argument("--unit", default="mm", choices=["m", "mm", "px"], help="mm is scaled to metres (MeTRAbs)")
    e.add_argument("--key", default=None, help="array name inside .npz files (default: the first)")
    e.add_argument("--persons", type=int, default=2)
    e.add_argument("--nan", default="error", choices=["error", "zero"], help="NaN/inf: refuse, or set to 0")
    e.set_defaults(func=cmd_estimator)

    from .data.importers import FOLDER_LAYOUT

    f = sub.add_parser(
        "folder",
        help="bring your own: samples/<id>.npy, labels.csv, convention.json|yaml",
        description=FOLDER_LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    f.add_argument("--folder", required=True, type=Path, help="the folder described above")
    f.add_argument("--out", required=True, type=Path, help="store directory to write")
    f.add_argument("--convention", default=None, help="a built-in convention instead of the convention file")
    f.add_argument("--unit", default=None, choices=["m", "mm", "px"], help="default: the convention's unit")
    f.add_argument("--persons", type=int, default=2, help="M: the most persons a sample may hold (default 2)")
    f.add_argument(
        "--keep-first-persons", action="store_true", help="keep the first M persons of a sample with more (reported)"
    )
    f.add_argument("--normalize", action="store_true", help="ST-GCN pre-normalisation (spine-centred, aligned)")
    f.add_argument("--name", default=None, help="dataset name (default: the folder's name)")
    f.add_argument("--derive", default="none", help=derive_help + "; from a user-defined convention: by joint name")
    f.add_argument("--overwrite", action="store_true", help="replace an existing store at --out")
    f.set_defaults(func=cmd_folder)

    d = sub.add_parser("derive", help="add derived conventions to a store")
    d.add_argument("--store", required=True, type=Path)
    d.add_argument("--from", dest="source", required=True, help="source convention, e.g. ntu25")
    d.add_argument(
        "--to",
        nargs="*",
        help="target conventions (default: every one derivable from the source; from a user-defined "
        "convention: those whose joint names it all has). Nothing derivable is an error (exit 2)",
    )
    d.set_defaults(func=cmd_derive)

    v = sub.add_parser("split", help="add a validation split: hold subjects out of a split's train part")
    v.add_argument("--store", required=True, type=Path)
    v.add_argument("--from", dest="source", default="xsub", help="split whose train part is divided (default xsub)")
    v.add_argument("--name", default=None, help="new split's name (default: <from>_val)")
    v.add_argument("--fraction", type=float, default=0.2, help="share of the train subjects held out (default 0.2)")
    v.add_argument("--subjects", default=None, help="comma-separated subjects to hold out instead of --fraction")
    v.add_argument("--seed", type=int, default=0, help="draws the held-out subjects")
    v.add_argument("--overwrite", action="store_true", help="replace an existing split of that name")
    v.set_defaults(func=cmd_split)

    s = sub.add_parser("synthetic", help="the synthetic multi-skeleton dataset")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--num-samples", type=int, default=1000)
    s.add_argument("--frames", type=int, default=64, help="T_max (frames per sample)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--num-classes", type=int, default=16)
    s.add_argument("--num-subjects", type=int, default=10)
    s.add_argument("--normalize", action="store_true", help="ST-GCN pre-normalised coordinates (default: camera space)")
    s.add_argument(
        "--style", type=float, default=0.0, help="per-sample variation of the motion in [0, 1] (0: class templates)"
    )
    s.add_argument("--conventions", default=None, help="comma-separated (default: every built-in convention)")
    s.set_defaults(func=cmd_synthetic)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print("error: " + " ".join(str(message).split()), file=sys.stderr)  # one line
        return 1 if getattr(args, "strict", False) else 2


if __name__ == "__main__":
    sys.exit(main())
