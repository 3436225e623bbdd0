"""NTU RGB+D `.skeleton` files written from synthetic actions: fixtures for the NTU reader's
tests (tests/test_data_ntu.py, tests/test_data_ntu_fuzz.py) and benchmarks (bench/bench_data.py).

The format is the one `msclr.data.ntu` reads (its module docstring): a frame count; per frame
a body count; per body an info line and 25 joint lines of 12 numbers; CR LF line ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from msclr.data.ntu import BODY_FIELDS, JOINT_FIELDS, NUM_JOINTS
from msclr.data.synthetic import generate

_JOINT_LINE = " ".join(["%.7g"] * JOINT_FIELDS)
_BODY_LINE = "%d " + " ".join(["%.7g"] * BODY_FIELDS)


def format_skeleton(frames: Iterable[Sequence[tuple[int, np.ndarray, np.ndarray]]]) -> str:
    """Text of a .skeleton file (lines end with CR LF, as in the NTU release). Each frame is a
    list of bodies (body_id, info (9,), joints (J, 12)); numbers get 7 significant digits."""
    frames = list(frames)
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, info, joints in bodies:
            out.append(_BODY_LINE % (int(body_id), *np.asarray(info, np.float64).tolist()))
            joints = np.asarray(joints, np.float64)
            out.append(str(len(joints)))
            block = "\r\n".join([_JOINT_LINE] * len(joints))
            out.append(block % tuple(joints.ravel().tolist()))
    return "\r\n".join(out) + "\r\n"


def _project(xyz: np.ndarray) -> np.ndarray:
    """Approximate Kinect v2 depth (512x424) and colour (1920x1080) pixel coordinates."""
    z = np.maximum(xyz[..., 2], 0.1)
    depth = np.stack([256 + 365 * xyz[..., 0] / z, 212 - 365 * xyz[..., 1] / z], -1)
    colour = np.stack([960 + 1060 * xyz[..., 0] / z, 540 - 1060 * xyz[..., 1] / z], -1)
    return np.concatenate([depth, colour], -1)


def _kinect_joints(xyz: np.ndarray, tracking: float = 2.0) -> np.ndarray:
    """(V, 3) positions -> (V, 12) joint records (orientation: identity quaternion)."""
    v = xyz.shape[0]
    return np.concatenate([xyz, _project(xyz), np.tile([1.0, 0.0, 0.0, 0.0], (v, 1)), np.full((v, 1), tracking)], -1)


def write_synthetic_skeleton_files(
    out_dir: str | Path, num_files: int, seed: int = 0, T: int = 80, setups: Sequence[int] = range(1, 18)
) -> list[Path]:
    """NTU-format .skeleton files of synthetic actions (msclr.data.synthetic), for tests and
    benchmarks: empty frames at the start (Kinect starts tracking late), a second actor in
    the interaction classes, and in about a third of the files a short-lived noise body (a
    chair seen as a body, removed by the length rule). Names follow NTU's
    SsssCcccPpppRrrrAaaa with the synthetic subject as performer and class + 1 as action."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = generate(num_samples=num_files, T=T, seed=seed, conventions=["ntu25"])
    rng = np.random.default_rng(seed + 1)
    data, lengths = g["data"]["ntu25"], g["lengths"]
    setups = list(setups)
    used: set[str] = set()
    paths = []
    for i in range(num_files):
        x = data[i, :, : lengths[i]].transpose(3, 1, 2, 0).astype(np.float64)  # (M, T, V, 3)
        actors = [m for m in range(2) if np.abs(x[m]).sum() > 0]
        ids = rng.integers(72057594037927936, 72057594037990000, 3)
        noise_at = int(rng.integers(0, max(1, lengths[i] - 6))) if rng.random() < 0.3 else -1
        frames = [[] for _ in range(int(rng.integers(0, 4)))]
        for t in range(lengths[i]):
            bodies = []
            for m in actors:
                info = np.array([0, 1, 1, 1, 1, 0, rng.normal(0, 0.1), rng.normal(0, 0.1), 2])
                bodies.append((ids[m], info, _kinect_joints(x[m, t])))
            if noise_at <= t < noise_at + 5:
                flat = np.stack(
                    [
                        rng.uniform(-1, 1, NUM_JOINTS),
                        rng.uniform(-0.5, -0.4, NUM_JOINTS),
                        rng.uniform(2, 4, NUM_JOINTS),
                    ],
                    -1,
                )
                bodies.append((ids[2], np.array([0, 0, 0, 0, 0, 0, 0, 0, 1.0]), _kinect_joints(flat, 1.0)))
            frames.append(bodies)
        name = _unique_name(i, g, setups, used)
        path = out_dir / f"{name}.skeleton"
        path.write_text(format_skeleton(frames), newline="")
        paths.append(path)
    return paths


def _unique_name(i: int, g: dict, setups: Sequence[int], used: set[str]) -> str:
    camera, subject, action = int(g["cameras"][i]), int(g["subjects"][i]), int(g["labels"][i]) + 1
    for k in range(10_000):
        setup = setups[(i + k) % len(setups)]
        replication = 1 + (k // len(setups)) % 2
        performer = subject + 40 * (k // (2 * len(setups)))
        name = f"S{setup:03d}C{camera:03d}P{performer:03d}R{replication:03d}A{action:03d}"
        if name not in used and performer < 1000:
            used.add(name)
            return name
    raise ValueError("too many synthetic files for unique NTU names")
