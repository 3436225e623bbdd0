"""Rendering: subjects, one class of samples into every convention, and `generate`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ... import skeletons
from .actions import ACTIONS, CLASS_NAMES, MAX_CLASSES, VIEW_YAW_DEG
from .body import PELVIS_HEIGHT, SEGMENT_INDEX, SEGMENTS, SITE_INDEX
from .joint_maps import _CONV_NOISE, JOINT_MAPS, SYNTHETIC_CONVENTIONS
from .kinematics import (
    _ARM,
    _LEG,
    _REST_BONE,
    _REST_SITE_OFFSET,
    _SHIN,
    _SITE_SEGMENT,
    _THIGH,
    _TORSO,
    _forward_kinematics,
    _local_rotations,
    _matmul3,
    _pelvis_drop,
    _ry,
)

# ----------------------------------------------------------------------------- generator


def _subjects(rng: np.random.Generator, num_subjects: int) -> dict[str, np.ndarray]:
    return dict(
        scale=rng.uniform(0.86, 1.11, num_subjects),  # body height / 1.75 m
        arm=rng.uniform(0.93, 1.07, num_subjects),
        leg=rng.uniform(0.94, 1.06, num_subjects),
        torso=rng.uniform(0.94, 1.06, num_subjects),
        width=rng.uniform(0.9, 1.12, num_subjects),
        tempo=rng.uniform(0.75, 1.25, num_subjects),  # >1: faster (shorter sequences)
        amp=rng.uniform(0.8, 1.2, num_subjects),
        noise=rng.uniform(0.002, 0.012, num_subjects),  # metres
    )


# Per-sample style (`style` > 0): the standard deviation, in radians at style=1, of the smooth
# random deviation added to each degree of freedom of the first actor. Real people do not
# execute a template: each repetition has its own posture, amplitude and timing per joint.
STYLE_DOF_SCALE = {
    "spine_bend": 0.12,
    "spine_lean": 0.08,
    "spine_twist": 0.12,
    "neck_nod": 0.15,
    "head_turn": 0.2,
    **{f"{s}_sh_flex": 0.35 for s in "lr"},
    **{f"{s}_sh_abd": 0.25 for s in "lr"},
    **{f"{s}_sh_hz": 0.25 for s in "lr"},
    **{f"{s}_elbow": 0.35 for s in "lr"},
    **{f"{s}_wrist": 0.3 for s in "lr"},
    **{f"{s}_hip_flex": 0.1 for s in "lr"},
    **{f"{s}_hip_abd": 0.05 for s in "lr"},
    **{f"{s}_knee": 0.12 for s in "lr"},
}
_NON_NEGATIVE = {f"{s}_{j}" for s in "lr" for j in ("elbow", "knee")}  # joints that cannot over-extend


def _smooth_noise(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    """(n, T) smooth random signals of unit-order amplitude over the phase s (n, T): an offset
    plus two sinusoids of 0.3-2 cycles per action, random phases."""
    n = s.shape[0]
    out = rng.normal(0.0, 0.6, (n, 1)) + np.zeros_like(s)
    for _ in range(2):
        freq, phase, amp = rng.uniform(0.3, 2.0, (n, 1)), rng.uniform(0, 2 * np.pi, (n, 1)), rng.normal(0, 0.55, (n, 1))
        out += amp * np.sin(2 * np.pi * freq * s + phase)
    return out


def _apply_style(rng: np.random.Generator, dof: dict[str, np.ndarray], s: np.ndarray, style: float) -> dict:
    """The actor-0 degrees of freedom with each sample's own smooth deviation (STYLE_DOF_SCALE)."""
    dof = dict(dof)
    for name, scale in STYLE_DOF_SCALE.items():
        value = np.broadcast_to(dof.get(name, 0.0), s.shape) + style * scale * _smooth_noise(rng, s)
        dof[name] = np.maximum(value, 0.0) if name in _NON_NEGATIVE else value
    return dof


def _render_class(
    rng: np.random.Generator,
    label: int,
    subj: np.ndarray,
    cams: np.ndarray,
    subjects: dict[str, np.ndarray],
    T: int,
    out: dict[str, np.ndarray],
    normalize: bool = False,
    style: float = 0.0,
):
    """Render n samples of one class into out[conv] (n, 3, T, V, 2) views; returns lengths (n,).

    normalize: ST-GCN's pre-normalisation (as `prepare ntu` applies to NTU), computed from the
    body of actor 0 and applied to every convention alike (see `_normalization`).
    style: per-sample variation of the motion itself (0 = the class template with the
    subject's amplitude and tempo only): a smooth random deviation of every joint angle
    (`STYLE_DOF_SCALE` times style) and a non-uniform speed along the action."""
    name, fn, dur, actors = ACTIONS[label]
    n = len(subj)
    col = lambda v: np.asarray(v, dtype=np.float64)[:, None]  # noqa: E731
    tempo = subjects["tempo"][subj] * rng.uniform(0.92, 1.08, n)
    lengths = np.clip(np.round(T * dur / tempo * rng.uniform(0.9, 1.1, n)), max(8, T // 3), T).astype(np.int32)
    lead = rng.uniform(0.0, 0.12, n)
    tail = rng.uniform(0.0, 0.1, n)
    frame = np.arange(T)[None, :]
    u = frame / np.maximum(lengths[:, None] - 1, 1)
    s = np.clip((u - lead[:, None]) / (1.0 - lead[:, None] - tail[:, None]), 0.0, 1.0)
    style_rng = np.random.default_rng(rng.integers(2**63)) if style > 0 else None  # style=0: the stream as before
    if style_rng is not None:  # speed varies along the action: s + a sin(pi s) / pi, monotone for |a| < 1
        a = style_rng.uniform(-0.3, 0.3, (n, 1)) * style
        s = np.clip(s + a * np.sin(np.pi * s) / np.pi, 0.0, 1.0)
    params = dict(
        amp=col(subjects["amp"][subj] * rng.uniform(0.9, 1.1, n)),
        reps=col(rng.uniform(0.8, 1.25, n)),
        side=col(rng.choice([-1.0, 1.0], n)),
        phase=col(rng.uniform(-0.5, 0.5, n)),
    )
    dof_all = fn(s, params)
    if style_rng is not None:
        dof_all = _apply_style(style_rng, dof_all, s, style)
    shape = (n, T)

    views = np.deg2rad(np.array([VIEW_YAW_DEG[int(c)] for c in cams]) + rng.uniform(-6, 6, n))
    dist = rng.uniform(2.4, 3.6, n)
    lateral = rng.uniform(-0.35, 0.35, n)
    cam_height = rng.uniform(0.75, 1.25, n)

    for actor in range(actors):
        prefix = "" if actor == 0 else "b:"
        dof = {k[len(prefix) :]: v for k, v in dof_all.items() if k.startswith(prefix) and (actor or ":" not in k)}
        # Body of this actor: the subject for actor 0, a random other body for actor 1.
        if actor == 0:
            sc = dict((k, subjects[k][subj]) for k in ("scale", "arm", "leg", "torso", "width", "noise"))
        else:
            other = rng.integers(0, len(subjects["scale"]), n)
            sc = dict((k, subjects[k][other]) for k in ("scale", "arm", "leg", "torso", "width", "noise"))
        seg_scale = np.ones((n, len(SEGMENTS))) * (sc["scale"] * rng.uniform(0.98, 1.02, n))[:, None]
        seg_scale[:, _ARM] *= sc["arm"][:, None]
        seg_scale[:, _LEG] *= sc["leg"][:, None]
        seg_scale[:, _TORSO] *= sc["torso"][:, None]
        bones = _REST_BONE[None] * seg_scale[:, :, None]
        # shoulder and hip width
        for seg in ("l_collar", "r_collar", "l_shoulder", "r_shoulder", "l_hip", "r_hip"):
            bones[:, SEGMENT_INDEX[seg], 0] *= sc["width"]
        offsets = (_REST_SITE_OFFSET[None] * seg_scale[:, _SITE_SEGMENT, None]).astype(np.float32)
        leg_scale = (sc["scale"] * sc["leg"])[:, None]
        drop = _pelvis_drop(dof, shape, _THIGH * leg_scale, _SHIN * leg_scale)
        root = np.stack(
            [
                np.broadcast_to(dof.get("root_x", 0.0), shape),
                np.broadcast_to(dof.get("root_y", 0.0), shape) - drop,
                np.broadcast_to(dof.get("root_z", 0.0), shape),
            ],
            -1,
        )
        # Style: a little posture of its own (slouch, head tilt) for every sample.
        dof = dict(dof)
        dof["spine_bend"] = np.broadcast_to(dof.get("spine_bend", 0.0), shape) + col(rng.normal(0, 0.05, n))
        dof["neck_nod"] = np.broadcast_to(dof.get("neck_nod", 0.0), shape) + col(rng.normal(0, 0.08, n))
        R_local = _local_rotations(dof, shape)
        # One rigid transform (Rw, tw) per sample takes the body frame to camera space; it is
        # folded into the root of the kinematic chain.
        Rw = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        tw = np.zeros((n, 3))
        tw[:, 1] = PELVIS_HEIGHT * sc["scale"] * sc["leg"]  # floor at y = 0
        if actor == 1:
            # Face the first actor (yaw by 180 degrees), about 1.1 m in front of them.
            flip = np.diag([-1.0, 1.0, -1.0])
            Rw, tw = flip @ Rw, tw @ flip.T
            tw[:, 2] += rng.uniform(0.95, 1.25, n)
        if actors == 2:
            # Seen from the side, as NTU's two-person actions mostly are: yaw the pair by 90
            # degrees and centre it.
            quarter = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
            Rw, tw = quarter @ Rw, tw @ quarter.T
            tw[:, 0] -= 0.55
        # Camera: yaw by the view, face the camera (x -> -x, z -> -z), stand in front of it.
        to_cam = np.diag([-1.0, 1.0, -1.0]) @ _ry(views)  # (n, 3, 3)
        Rw = to_cam @ Rw
        tw = np.einsum("nij,nj->ni", to_cam, tw) + np.stack([lateral, -cam_height, dist], -1)
        R_local[:, :, 0] = _matmul3(Rw[:, None].astype(np.float32), R_local[:, :, 0])
        root = np.einsum("nij,ntj->nti", Rw, root) + tw[:, None]
        cam = _forward_kinematics(R_local, bones.astype(np.float32), offsets, root.astype(np.float32))
        if normalize:
            if actor == 0:  # one transform per sample, from the first actor, as ST-GCN does
                centre, R = _normalization(cam)
            cam = np.einsum("nij,njtv->nitv", R, cam - centre[..., None]).astype(np.float32)
        for conv, dst in out.items():
            joints = cam[..., _CONV_SITE_INDEX[conv]]  # (n, 3, T, V)
            # Sensor noise: uniform with standard deviation sigma (cheaper to draw than normal).
            sigma = (sc["noise"] * _CONV_NOISE[conv] * np.sqrt(12.0)).astype(np.float32)[:, None, None, None]
            noise = rng.random(joints.shape, dtype=np.float32)
            noise -= 0.5
            noise *= sigma
            joints += noise
            dst[..., actor] = joints
            for i, length in enumerate(lengths):  # frames after the valid part stay zero
                dst[i, :, length:, :, actor] = 0.0
    return lengths


def _normalization(cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ST-GCN pre-normalisation of rendered sites (n, 3, T, S), noise-free: the per-frame centre
    (n, 3, T) (the spine-mid site, NTU's centre joint) and the rotation (n, 3, 3) that takes
    spine base -> spine mid onto +z, then left -> right shoulder onto +x, in the first frame, as
    `msclr.data.ntu.pre_normalize` does with NTU's joints."""
    from ..ntu import rotation_to

    centre = cam[:, :, :, SITE_INDEX["kinect_spine_mid"]]
    base, mid = cam[:, :, 0, SITE_INDEX["kinect_spine_base"]], cam[:, :, 0, SITE_INDEX["kinect_spine_mid"]]
    right, left = cam[:, :, 0, SITE_INDEX["r_kinect_shoulder"]], cam[:, :, 0, SITE_INDEX["l_kinect_shoulder"]]
    R = np.empty((cam.shape[0], 3, 3))
    for i in range(cam.shape[0]):
        r1 = rotation_to((mid[i] - base[i]).astype(np.float64), np.array([0.0, 0.0, 1.0]))
        r2 = rotation_to(r1 @ (right[i] - left[i]).astype(np.float64), np.array([1.0, 0.0, 0.0]))
        R[i] = r2 @ r1
    return centre, R


_CONV_SITE_INDEX = {conv: np.array([SITE_INDEX[s] for s in sites.values()]) for conv, sites in JOINT_MAPS.items()}


def generate(
    num_samples: int = 1000,
    conventions: Sequence[str] | None = None,
    T: int = 64,
    seed: int = 0,
    num_classes: int = MAX_CLASSES,
    num_subjects: int = 10,
    normalize: bool = False,
    style: float = 0.0,
):
    """Generate the arrays of a synthetic dataset in memory (see `make_synthetic_store`).

    Returns a dict with "data" {conv: (N, 3, T, V, 2) float32}, "lengths" (N,) int32,
    "labels", "subjects", "cameras" (N,) int arrays and "class_names".
    """
    conventions = list(SYNTHETIC_CONVENTIONS if conventions is None else conventions)
    for conv in conventions:
        if conv not in JOINT_MAPS:
            raise ValueError(f"synthetic data has no joint map for convention {conv!r}; known: {list(JOINT_MAPS)}")
        if tuple(JOINT_MAPS[conv]) != skeletons.get(conv).joints:
            raise AssertionError(f"the joint map of {conv} does not list the convention's joints in order")
    if not 10 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in 10..{MAX_CLASSES}, got {num_classes}")
    if num_samples < 1 or T < 8:
        raise ValueError(f"need num_samples >= 1 and T >= 8, got {num_samples} and {T}")
    if num_subjects < 2:
        raise ValueError("need at least 2 subjects (one to train, one to test)")
    if not 0.0 <= style <= 1.0:
        raise ValueError(f"style must be in [0, 1], got {style}")
    rng = np.random.default_rng(seed)
    subjects = _subjects(rng, num_subjects)
    # Sample i has class i % num_classes: every class is a strided view of the output
    # arrays, rendered in place (a DataLoader shuffles anyway).
    labels = np.arange(num_samples) % num_classes
    subj = rng.integers(0, num_subjects, num_samples)
    cams = rng.integers(1, 4, num_samples)
    data = {conv: np.zeros((num_samples, 3, T, len(JOINT_MAPS[conv]), 2), np.float32) for conv in conventions}
    lengths = np.zeros(num_samples, np.int32)
    chunk = 128
    for label in range(num_classes):
        count = len(range(label, num_samples, num_classes))
        for start in range(0, count, chunk):
            rows = slice(label + start * num_classes, label + min(count, start + chunk) * num_classes, num_classes)
            views = {conv: data[conv][rows] for conv in conventions}
            lengths[rows] = _render_class(rng, label, subj[rows], cams[rows], subjects, T, views, normalize, style)
    return dict(
        data=data,
        lengths=lengths,
        labels=labels.astype(np.int64),
        subjects=(subj + 1).astype(np.int64),
        cameras=cams.astype(np.int64),
        class_names=CLASS_NAMES[:num_classes],
    )
