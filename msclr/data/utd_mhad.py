"""UTD-MHAD skeletons (Chen, Jafari, Kehtarnavaz, ICIP 2015) -> store.

864 files ``a{A}_s{S}_t{R}_skeleton.mat`` (action 1..27, subject 1..8, repetition 1..4),
each with a float64 variable ``d_skel`` of shape (20, 3, T): Kinect v1 joints in the
`kinect_v1_20` order x (x, y, z) in metres x frames. Stored as convention kinect_v1_20
with one person (M=1; the Dataset pads persons). Split ``xsub``: subjects 1, 3, 5, 7 train,
2, 4, 6, 8 test (the dataset's standard protocol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ntu import normalization_joints as ntu_normalization_joints
from .ntu import pre_normalize
from .store import Store, StoreBuilder

CLASS_NAMES = [
    "right arm swipe to the left",
    "right arm swipe to the right",
    "right hand wave",
    "two hand front clap",
    "right arm throw",
    "cross arms in the chest",
    "basketball shoot",
    "right hand draw x",
    "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)",
    "draw triangle",
    "bowling (right hand)",
    "front boxing",
    "baseball swing from right",
    "tennis right hand forehand swing",
    "arm curl (two arms)",
    "tennis serve",
    "two hand push",
    "right hand knock on door",
    "right hand catch an object",
    "right hand pick up and throw",
    "jogging in place",
    "walking in place",
    "sit to stand",
    "stand to sit",
    "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
]
TRAIN_SUBJECTS = (1, 3, 5, 7)
EXPECTED_FILES = 27 * 8 * 4
# The public archive names one file "a8_s1_t4_skeleton .mat" (with a space): accept that.
NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\s*\.mat$")


@dataclass
class ReadReport:
    read: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    missing: int = 0


def read_file(path: str | Path) -> np.ndarray:
    """(3, T, 20) float32 from one .mat file; ValueError naming the file when malformed."""
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"{path}: cannot read the .mat file: {e}") from e
    if "d_skel" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: no variable 'd_skel' (found {keys})")
    d = np.asarray(mat["d_skel"])
    if d.ndim != 3 or d.shape[0] != 20 or d.shape[1] != 3 or d.shape[2] < 1:
        raise ValueError(f"{path}: 'd_skel' has shape {d.shape}, expected (20, 3, T)")
    if not np.issubdtype(d.dtype, np.number):
        raise ValueError(f"{path}: 'd_skel' has dtype {d.dtype}, expected numbers")
    if not np.isfinite(d).all():
        raise ValueError(f"{path}: 'd_skel' holds NaN/inf values")
    return d.transpose(1, 2, 0).astype(np.float32)


# ST-GCN pre-normalisation with the Kinect v1 joints that play NTU's roles: every frame
# centred on the spine, hip_center -> spine along +z and right -> left shoulder along +x in the
# first frame (msclr.data.ntu.pre_normalize; 2s-AGCN/AimCLR do this for NTU).
def normalization_joints() -> dict[str, object]:
    """pre_normalize's joint arguments, looked up by name in kinect_v1_20."""
    return ntu_normalization_joints("kinect_v1_20")


def prepare(
    raw: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False, normalize: bool = False, log=print
) -> Store:
    """Read every UTD-MHAD file under `raw` into a store at `out`.

    Malformed files are skipped and listed (ValueError with --strict semantics when strict).
    normalize: apply ST-GCN's pre-normalisation (normalization_joints) instead of keeping the
    camera-space coordinates of the files.
    """
    raw = Path(raw)
    if not raw.is_dir():
        raise FileNotFoundError(f"UTD-MHAD directory {raw} does not exist")
    files = sorted(p for p in raw.iterdir() if NAME.match(p.name))
    if not files:
        raise FileNotFoundError(f"no a*_s*_t*_skeleton.mat files in {raw}")
    report = ReadReport()
    samples = []
    for path in files:
        a, s, t = (int(g) for g in NAME.match(path.name).groups())
        if not (1 <= a <= len(CLASS_NAMES)):
            report.skipped.append((str(path), f"action {a} outside 1..{len(CLASS_NAMES)}"))
            continue
        try:
            samples.append((f"a{a}_s{s}_t{t}", a, s, t, read_file(path)))
        except ValueError as e:
            report.skipped.append((str(path), str(e)))
    ids = [sid for sid, *_ in samples]
    if len(set(ids)) != len(ids):
        dup = sorted({x for x in ids if ids.count(x) > 1})
        raise ValueError(f"{raw}: more than one file for sample(s) {dup}")
    report.read = len(samples)
    report.missing = max(0, EXPECTED_FILES - len(files))
    for f, why in report.skipped:
        log(f"skipped {f}: {why}")
    if report.missing:
        log(f"note: {len(files)} files found, UTD-MHAD has {EXPECTED_FILES}")
    if strict and report.skipped:
        raise ValueError(f"{len(report.skipped)} file(s) could not be read (first: {report.skipped[0][1]})")
    if not samples:
        raise ValueError(f"no readable UTD-MHAD file in {raw}")

    n = len(samples)
    t_max = max(x.shape[1] for *_, x in samples)
    data = np.zeros((n, 3, t_max, 20, 1), np.float32)
    lengths = np.zeros(n, np.int32)
    joints = normalization_joints() if normalize else None
    for i, (*_, x) in enumerate(samples):
        data[i, :, : x.shape[1], :, 0] = x
        lengths[i] = x.shape[1]
        if joints:
            data[i, :, : x.shape[1]] = pre_normalize(data[i, :, : x.shape[1]], **joints)
    subjects = np.array([s for _, _, s, _, _ in samples])
    train = np.isin(subjects, TRAIN_SUBJECTS)
    builder = StoreBuilder.create(
        out,
        dataset="utd_mhad",
        sample_ids=[sid for sid, *_ in samples],
        labels=np.array([a - 1 for _, a, _, _, _ in samples]),
        class_names=CLASS_NAMES,
        splits={"xsub": {"train": np.flatnonzero(train), "test": np.flatnonzero(~train)}},
        sample_info={"subject": subjects, "trial": np.array([t for *_, t, _ in samples])},
        extra=dict(
            source=str(raw.resolve()),
            coordinates="metres, ST-GCN pre-normalised (spine-centred per frame, hip->spine +z, shoulders +x)"
            if normalize
            else "Kinect v1 camera space, metres",
            skipped=[{"file": f, "reason": r} for f, r in report.skipped],
        ),
        overwrite=overwrite,
    )
    builder.add("kinect_v1_20", data, lengths, unit="m", note="UTD-MHAD d_skel, joints in the file's order")
    store = builder.finish()
    log(f"UTD-MHAD: {n} sequences ({int(train.sum())} train / {int((~train).sum())} test), T_max={t_max} -> {out}")
    return store
