"""NTU RGB+D 60/120 raw .skeleton files -> store, in one command (`prepare`).

Each file is read by msclr.data.ntu_skeleton (the C++ parser, or the Python reference; a
malformed file raises `SkeletonParseError`, and `prepare` skips it and lists it), its actors
are chosen by msclr.data.ntu_bodies (the SGN/CTR-GCN denoising) and, optionally, it is ST-GCN
pre-normalised by msclr.data.normalization. The names of those modules import from here too.

Samples that the dataset authors list as having missing skeletons (302 in NTU-60, 535 in
NTU-120; msclr/data/resources/) are skipped and listed in the store's meta.

Splits: NTU-60 ``xsub`` (20 training subjects) and ``xview`` (cameras 2, 3 train); NTU-120
``xsub`` (53 training subjects) and ``xset`` (even setup ids train).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .normalization import NORMALIZATION_ROLES, normalization_joints, pre_normalize, rotation_to
from .ntu_bodies import (
    NOISE_LEN_THRES,
    NOISE_SPR_THRES1,
    NOISE_SPR_THRES2,
    Track,
    denoise,
    select_bodies,
    tracks_from_parsed,
)
from .ntu_skeleton import (
    BODY_FIELDS,
    FLOAT32_MAX,
    JOINT_FIELDS,
    MAX_BODIES_PER_FRAME,
    MAX_FRAMES,
    NUM_JOINTS,
    SkeletonParseError,
    cpp_parser_available,
    parse_skeleton_bytes,
    parse_skeleton_bytes_py,
    parse_skeleton_file,
    parse_skeleton_file_py,
)
from .store import Store, StoreBuilder, atomic_write_json

__all__ = [  # this module's names and those of the modules it is built on (see the docstring)
    "BENCHMARKS",
    "BODY_FIELDS",
    "CLASS_NAMES",
    "FLOAT32_MAX",
    "JOINT_FIELDS",
    "MAX_BODIES_PER_FRAME",
    "MAX_FRAMES",
    "NAME",
    "NOISE_LEN_THRES",
    "NOISE_SPR_THRES1",
    "NOISE_SPR_THRES2",
    "NORMALIZATION_ROLES",
    "NTU120_XSUB_TRAIN",
    "NTU60_XSUB_TRAIN",
    "NTU60_XVIEW_TRAIN_CAMERAS",
    "NUM_JOINTS",
    "PrepareReport",
    "SampleName",
    "SkeletonParseError",
    "Track",
    "cpp_parser_available",
    "denoise",
    "missing_skeletons",
    "normalization_joints",
    "parse_skeleton_bytes",
    "parse_skeleton_bytes_py",
    "parse_skeleton_file",
    "parse_skeleton_file_py",
    "pre_normalize",
    "prepare",
    "process_file",
    "rotation_to",
    "select_bodies",
    "splits_for",
    "summary",
    "tracks_from_parsed",
]

NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91,
    92, 93, 94, 95, 97, 98, 100, 103,
)  # fmt: skip
NTU60_XVIEW_TRAIN_CAMERAS = (2, 3)

# The dataset authors' action names (github.com/shahroudy/NTURGB-D README), A1..A120.
CLASS_NAMES = [
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together", "cross hands in front (say stop)",
    "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
    "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles",
    "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
    "cheers and drink", "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
]  # fmt: skip

BENCHMARKS = {
    "ntu60": dict(max_setup=17, num_classes=60, missing="NTU_RGBD_samples_with_missing_skeletons.txt"),
    "ntu120": dict(max_setup=32, num_classes=120, missing="NTU_RGBD120_samples_with_missing_skeletons.txt"),
}


# ----------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class SampleName:
    name: str
    setup: int
    camera: int
    subject: int
    replication: int
    action: int

    @classmethod
    def parse(cls, stem: str) -> SampleName | None:
        m = NAME.match(stem)
        if not m:
            return None
        return cls(stem, *(int(g) for g in m.groups()))


def missing_skeletons(benchmark: str) -> set[str]:
    """The dataset authors' list of samples with missing skeletons for a benchmark."""
    path = Path(__file__).with_name("resources") / BENCHMARKS[benchmark]["missing"]
    return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}


def splits_for(benchmark: str, samples: Sequence[SampleName]) -> dict[str, dict[str, np.ndarray]]:
    subject = np.array([s.subject for s in samples])
    if benchmark == "ntu60":
        second, train2 = "xview", np.isin([s.camera for s in samples], NTU60_XVIEW_TRAIN_CAMERAS)
        train1 = np.isin(subject, NTU60_XSUB_TRAIN)
    else:
        second, train2 = "xset", np.array([s.setup % 2 == 0 for s in samples], bool)
        train1 = np.isin(subject, NTU120_XSUB_TRAIN)
    return {
        "xsub": {"train": np.flatnonzero(train1), "test": np.flatnonzero(~train1)},
        second: {"train": np.flatnonzero(train2), "test": np.flatnonzero(~train2)},
    }


def process_file(path: str | Path, normalize: bool = True, parser: str = "auto") -> tuple[np.ndarray, list[str]]:
    """One file -> ((3, T, 25, 2) float32, notes). Raises SkeletonParseError / ValueError / OSError."""
    parsed = parse_skeleton_file(path, NUM_JOINTS, parser)
    x, notes = select_bodies(parsed)
    if normalize:
        x = pre_normalize(x)
    return x, notes


# ----------------------------------------------------------------------------- prepare


@dataclass
class PrepareReport:
    samples: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"sample"/"file", "reason"}
    missing_listed: list[str] = field(default_factory=list)
    ignored: int = 0  # files outside the benchmark
    seconds: float = 0.0
    parser: str = ""
    resumed_chunks: int = 0
    up_to_date: bool = False  # the store was already prepared from these files

    @property
    def errors(self) -> list[dict]:
        return self.skipped


def _discover(raw: Sequence[Path]) -> tuple[list[tuple[SampleName, Path]], list[dict]]:
    found: dict[str, tuple[SampleName, Path]] = {}
    problems = []
    for d in raw:
        if not d.is_dir():
            raise FileNotFoundError(f"NTU skeleton directory {d} does not exist")
        for p in sorted(d.rglob("*.skeleton")):
            name = SampleName.parse(p.name[: -len(".skeleton")])
            if name is None:
                problems.append({"file": str(p), "reason": "not an NTU sample name (SsssCcccPpppRrrrAaaa.skeleton)"})
            elif name.name in found:
                problems.append({"file": str(p), "reason": f"duplicate of {found[name.name][1]}"})
            else:
                found[name.name] = (name, p)
    return [found[k] for k in sorted(found)], problems


def _config_key(benchmark, normalize, files) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([benchmark, bool(normalize), 1]).encode())
    for name, path in files:
        st = path.stat()
        h.update(f"{name.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _save_chunk(path: Path, results: list) -> None:
    """results: (global index, array or None, notes or error)."""
    ok = [(i, x) for i, x, _ in results if x is not None]
    data = np.concatenate([x for _, x in ok], axis=1) if ok else np.zeros((3, 0, NUM_JOINTS, 2), np.float32)
    meta = [{"index": int(i), "ok": x is not None, "text": info, "length": int(x.shape[1]) if x is not None else 0}
            for i, x, info in results]  # fmt: skip
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, data=data, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    os.replace(tmp, path)


def _load_chunk(path: Path):
    with np.load(path) as z:
        return z["data"], json.loads(z["meta"].tobytes().decode())


def _chunk_file(partial: Path, ci: int) -> Path:
    return partial / f"chunk_{ci:05d}.npz"


def _resolve_parser(parser: str) -> str:
    """'auto': the C++ parser when it is built, else the Python one (with a warning)."""
    if parser != "auto":
        return parser
    if cpp_parser_available():
        return "cpp"
    from .. import _ext

    warnings.warn(f"msclr: the C++ .skeleton parser is unavailable ({_ext.load_error()}); using the Python one")
    return "python"


def _benchmark_files(raws: list[Path], benchmark: str, report: PrepareReport) -> list[tuple[SampleName, Path]]:
    """The benchmark's .skeleton files under `raws`, less the listed missing skeletons; the
    report gets the files skipped, ignored (outside the benchmark) and listed."""
    found, problems = _discover(raws)
    report.skipped += problems
    cfg = BENCHMARKS[benchmark]
    in_bench = [(n, p) for n, p in found if n.setup <= cfg["max_setup"] and 1 <= n.action <= cfg["num_classes"]]
    report.ignored = len(found) - len(in_bench)
    listed = missing_skeletons(benchmark)
    report.missing_listed = sorted(n.name for n, _ in in_bench if n.name in listed)
    files = [(n, p) for n, p in in_bench if n.name not in listed]
    if not files:
        raise FileNotFoundError(f"no {benchmark} .skeleton files under {', '.join(map(str, raws))}")
    return files


def _prepared_store(out: Path, key: str, report: PrepareReport, log: Callable[[str], None]) -> Store:
    """The store already at `out` when it was prepared from the same files; ValueError otherwise."""
    from .store import open_store

    store = open_store(out)
    if store.meta.get("ntu", {}).get("config_key") != key:
        raise ValueError(f"{out} already holds another store; use --overwrite to replace it")
    log(f"{out}: already prepared from these files; nothing to do")
    report.up_to_date, report.samples = True, len(store)
    report.skipped = list(store.meta.get("skipped", []))
    return store


def _partial_folder(out: Path, key: str, benchmark: str, normalize: bool, log: Callable[[str], None]) -> Path:
    """out/.partial, emptied when it holds the chunks of other inputs or options."""
    partial = out / ".partial"
    partial.mkdir(parents=True, exist_ok=True)
    cfg_file = partial / "config.json"
    if cfg_file.exists() and json.loads(cfg_file.read_text()).get("key") != key:
        log("the inputs or options changed since the interrupted run: starting over")
        shutil.rmtree(partial)
        partial.mkdir(parents=True)
    atomic_write_json(cfg_file, {"key": key, "benchmark": benchmark, "normalize": normalize})
    return partial


def _process_chunks(
    chunks: list[list[tuple[SampleName, Path]]],
    done: set[int],
    partial: Path,
    *,
    chunk_size: int,
    normalize: bool,
    parser: str,
    workers: int | None,
    progress: str | None,
    stop_after_chunks: int | None,
) -> bool:
    """Read the chunks not done yet (files in parallel threads) and save each under `partial`;
    False when `stop_after_chunks` stopped it early. progress: the bar's name, None for none."""
    bar = None
    if progress is not None:
        from tqdm import tqdm

        total = sum(len(c) for c in chunks)
        bar = tqdm(total=total, initial=sum(len(chunks[i]) for i in done), unit="file", desc=progress)
    lock = threading.Lock()

    def work(item):
        index, (name, path) = item
        try:
            x, notes = process_file(path, normalize, parser)
            result = (index, x, "; ".join(notes))
        except (ValueError, OSError) as e:  # SkeletonParseError is a ValueError
            result = (index, None, str(e) if isinstance(e, SkeletonParseError) else f"{path}: {e}")
        if bar is not None:
            with lock:
                bar.update(1)
        return result

    processed = 0
    with ThreadPoolExecutor(max_workers=workers or min(32, os.cpu_count() or 1)) as pool:
        for ci, chunk in enumerate(chunks):
            if ci in done:
                continue
            if stop_after_chunks is not None and processed >= stop_after_chunks:
                if bar is not None:
                    bar.close()
                return False
            base = ci * chunk_size
            results = list(pool.map(work, enumerate(chunk, start=base)))
            _save_chunk(_chunk_file(partial, ci), results)
            processed += 1
    if bar is not None:
        bar.close()
    return True


def _chunk_results(partial: Path, num_chunks: int, files, report: PrepareReport) -> tuple[list[list[dict]], dict]:
    """The saved chunks' metadata, and the length of every file read ({file index: frames});
    the files that could not be read go to report.skipped."""
    metas, lengths_all = [], {}
    for ci in range(num_chunks):
        _, meta = _load_chunk(_chunk_file(partial, ci))
        metas.append(meta)
        for m in meta:
            if m["ok"]:
                lengths_all[m["index"]] = m["length"]
            else:
                report.skipped.append({"sample": files[m["index"]][0].name, "reason": m["text"]})
    return metas, lengths_all


def _assemble(
    out: Path, partial: Path, num_chunks: int, files, report: PrepareReport, *, benchmark, key, normalize, parser
) -> Store:
    """The store from the saved chunks: the files read, in sample-name order."""
    metas, lengths_all = _chunk_results(partial, num_chunks, files, report)
    good = sorted(lengths_all)
    if not good:
        raise ValueError(f"none of the {len(files)} files could be read (first error: {report.skipped[0]['reason']})")
    row_of = {g: r for r, g in enumerate(good)}
    names = [files[g][0] for g in good]
    t_max = max(300, max(lengths_all.values()))
    cfg = BENCHMARKS[benchmark]
    builder = StoreBuilder.create(
        out,
        dataset=benchmark,
        sample_ids=[n.name for n in names],
        labels=np.array([n.action - 1 for n in names]),
        num_classes=cfg["num_classes"],
        class_names=CLASS_NAMES[: cfg["num_classes"]],
        splits=splits_for(benchmark, names),
        sample_info={
            "setup": np.array([n.setup for n in names]),
            "camera": np.array([n.camera for n in names]),
            "subject": np.array([n.subject for n in names]),
            "replication": np.array([n.replication for n in names]),
        },
        extra=dict(
            ntu=dict(
                benchmark=benchmark,
                config_key=key,
                normalized=bool(normalize),
                body_selection="SGN/CTR-GCN denoising (length <= 11, spread 0.8 / 0.69754, motion ranking), 2 actors",
                normalization="ST-GCN pre_normalization (centre joint 2, hip-spine to +z, shoulders to +x)"
                if normalize
                else None,
                parser=parser,
                missing_skeletons_skipped=report.missing_listed,
                notes={files[m["index"]][0].name: m["text"] for meta in metas for m in meta if m["ok"] and m["text"]},
            ),
            coordinates="Kinect v2 camera space, metres" + ("; ST-GCN pre-normalised" if normalize else ""),
            skipped=report.skipped,
        ),
        overwrite=True,
    )
    arr = builder.allocate("ntu25", (len(good), 3, t_max, NUM_JOINTS, 2))
    lengths = np.zeros(len(good), np.int32)
    for ci in range(num_chunks):
        data, meta = _load_chunk(_chunk_file(partial, ci))
        offset = 0
        for m in meta:
            if not m["ok"]:
                continue
            r, n = row_of[m["index"]], m["length"]
            arr[r, :, :n] = data[:, offset : offset + n]
            lengths[r] = n
            offset += n
    builder.commit("ntu25", lengths, unit="m", note="NTU RGB+D Kinect v2 joints")
    return builder.finish()


def prepare(
    raw: str | Path | Sequence[str | Path],
    out: str | Path,
    benchmark: str = "ntu60",
    normalize: bool = True,
    workers: int | None = None,
    parser: str = "auto",
    chunk_size: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    stop_after_chunks: int | None = None,
) -> tuple[Store | None, PrepareReport]:
    """Raw NTU .skeleton files -> store at `out`; returns (store, report).

    Resumable: every chunk of `chunk_size` files is saved under out/.partial/ once done, and a
    second run with the same inputs continues from there. `stop_after_chunks` (tests) stops
    early, as an interrupted run would, and returns (None, report).
    """
    t0 = time.perf_counter()
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {sorted(BENCHMARKS)}, got {benchmark!r}")
    raws = [Path(raw)] if isinstance(raw, (str, Path)) else [Path(r) for r in raw]
    out = Path(out)
    report = PrepareReport()
    use = report.parser = _resolve_parser(parser)
    files = _benchmark_files(raws, benchmark, report)

    key = _config_key(benchmark, normalize, files)
    if (out / "meta.json").exists() and not overwrite:
        store = _prepared_store(out, key, report, log)
        report.seconds = time.perf_counter() - t0
        return store, report
    partial = _partial_folder(out, key, benchmark, normalize, log)

    chunks = [files[i : i + chunk_size] for i in range(0, len(files), chunk_size)]
    done = {i for i in range(len(chunks)) if _chunk_file(partial, i).exists()}
    report.resumed_chunks = len(done)
    if done:
        log(f"resuming: {len(done)} of {len(chunks)} chunk(s) already done")
    finished = _process_chunks(
        chunks,
        done,
        partial,
        chunk_size=chunk_size,
        normalize=normalize,
        parser=use,
        workers=workers,
        progress=f"NTU {benchmark}" if progress else None,
        stop_after_chunks=stop_after_chunks,
    )
    if not finished:
        report.seconds = time.perf_counter() - t0
        return None, report

    store = _assemble(
        out, partial, len(chunks), files, report, benchmark=benchmark, key=key, normalize=normalize, parser=use
    )
    shutil.rmtree(partial, ignore_errors=True)
    report.samples = len(store)
    report.seconds = time.perf_counter() - t0
    return store, report


def summary(report: PrepareReport) -> str:
    done = "already prepared" if report.up_to_date else f"written ({report.parser} parser, {report.seconds:.1f} s)"
    lines = [
        f"{report.samples} samples {done}",
        f"{len(report.missing_listed)} sample(s) skipped: listed by the dataset authors as missing skeletons",
    ]
    if report.ignored:
        lines.append(f"{report.ignored} file(s) outside the benchmark ignored")
    if report.skipped:
        lines.append(f"{len(report.skipped)} file(s) skipped:")
        for s in report.skipped:
            lines.append(f"  {s.get('sample') or s.get('file')}: {s['reason']}")
    return "\n".join(lines)
