"""ST-GCN pre-normalisation of one sample (2s-AGCN/MS-G3D/AimCLR ``pre_normalization``).

`pre_normalize`: a person whose first frame is empty is shifted to start at frame 0;
a person who disappears is padded by repeating their frames from the start (up to the
sample's length); every person is centred on person 1's spine joint (joint 2, 1-based) frame
by frame; then the whole sample is rotated so that person 1's hip -> spine bone (joints 1->2)
of the first frame lies along +z, then rotated again so that the left -> right shoulder
vector (joints 5->9) lies along +x. `normalization_joints` finds the joints that play these
roles in another convention, by name (NORMALIZATION_ROLES).
"""

from __future__ import annotations

import math

import numpy as np


def rotation_to(v: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation that turns direction v onto target (about their common normal), as the
    ST-GCN scripts build it (identity when v or the angle is ~0)."""
    v = np.asarray(v, np.float64)
    target = np.asarray(target, np.float64)
    axis = np.cross(v, target)
    if np.abs(v).sum() < 1e-6 or np.abs(target).sum() < 1e-6:
        return np.eye(3)
    angle = np.arccos(np.clip(np.dot(v / np.linalg.norm(v), target / np.linalg.norm(target)), -1.0, 1.0))
    if np.abs(axis).sum() < 1e-6 or abs(angle) < 1e-6:
        return np.eye(3)
    k = axis / np.linalg.norm(axis)
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)  # Rodrigues


# The joints that play NTU's roles in pre_normalize, by name: hip -> spine along +z, right ->
# left shoulder along +x, every frame centred on the spine (NTU: spine_base, spine_mid,
# shoulder_right, shoulder_left; Kinect v1: hip_center, spine, right/left_shoulder).
NORMALIZATION_ROLES = {
    "hip": ("spine_base", "hip_center"),
    "spine": ("spine_mid", "spine"),
    "right_shoulder": ("shoulder_right", "right_shoulder"),
    "left_shoulder": ("shoulder_left", "left_shoulder"),
}


def normalization_joints(convention) -> dict[str, object]:
    """pre_normalize's joint arguments for a convention, found by joint name (NORMALIZATION_ROLES).

    ValueError naming the missing roles when the convention lacks them (then it cannot be
    pre-normalised the way NTU is)."""
    from ..skeletons import get

    conv = get(convention)
    found, missing = {}, []
    for role, names in NORMALIZATION_ROLES.items():
        hit = next((n for n in names if n in conv.joints), None)
        if hit is None:
            missing.append(f"{role} ({' or '.join(names)})")
        else:
            found[role] = conv.index(hit)
    if missing:
        raise ValueError(
            f"convention {conv.name!r} cannot be ST-GCN pre-normalised: it has no joint named {'; '.join(missing)}"
        )
    return dict(
        zaxis=(found["hip"], found["spine"]),
        xaxis=(found["right_shoulder"], found["left_shoulder"]),
        centre=found["spine"],
    )


def pre_normalize(x: np.ndarray, zaxis=(0, 1), xaxis=(8, 4), centre: int = 1) -> np.ndarray:
    """ST-GCN pre-normalisation of one (3, T, V, M) sample (see the module docstring)."""
    s = x.transpose(3, 1, 2, 0).astype(np.float32)  # (M, T, V, C), a copy
    if s.sum() == 0:
        return x.astype(np.float32)
    T = s.shape[1]
    for p in range(s.shape[0]):
        person = s[p]
        if person.sum() == 0:
            continue
        if person[0].sum() == 0:  # shift the person's frames to the start
            nonempty = person.sum(-1).sum(-1) != 0
            tmp = person[nonempty].copy()
            person[:] = 0
            person[: len(tmp)] = tmp
        frame_sums = person.sum(-1).sum(-1)
        for f in np.flatnonzero(frame_sums == 0):
            if person[f:].sum() == 0:  # gone for good: repeat the frames so far
                reps = int(np.ceil((T - f) / f))
                person[f:] = np.concatenate([person[:f]] * reps, 0)[: T - f]
                break
    centre_track = s[0][:, centre : centre + 1, :].copy()  # (T, 1, C)
    for p in range(s.shape[0]):
        if s[p].sum() == 0:
            continue
        mask = (s[p].sum(-1) != 0)[..., None]
        s[p] = (s[p] - centre_track) * mask
    # As in the original: z from joint zaxis[0] to zaxis[1] (hip -> spine), x from joint
    # xaxis[1] to xaxis[0] (left shoulder -> right shoulder).
    for v, target in (
        (lambda: s[0, 0, zaxis[1]] - s[0, 0, zaxis[0]], (0.0, 0.0, 1.0)),
        (lambda: s[0, 0, xaxis[0]] - s[0, 0, xaxis[1]], (1.0, 0.0, 0.0)),
    ):
        R = rotation_to(v(), np.array(target))
        for p in range(s.shape[0]):
            if s[p].sum() == 0:
                continue
            frames = s[p].sum(-1).sum(-1) != 0
            s[p][frames] = (s[p][frames].astype(np.float64) @ R.T).astype(np.float32)
    return s.transpose(3, 1, 2, 0).copy()
