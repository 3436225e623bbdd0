"""Rotations and forward kinematics of the body (numpy, batched over samples and frames)."""

from __future__ import annotations

import numpy as np

from .body import SEGMENT_INDEX, SEGMENTS, SITE_NAMES, SITES

# ----------------------------------------------------------------------------- rotations


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(a.shape + (3, 3))


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(a.shape + (3, 3))


# ----------------------------------------------------------------------------- kinematics


def _local_rotations(dof: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(n, T, S, 3, 3) local rotation of every segment from the DOF arrays."""

    def g(name):
        v = dof.get(name)
        return np.zeros(shape, np.float32) if v is None else np.broadcast_to(v, shape).astype(np.float32)

    R = np.broadcast_to(np.eye(3, dtype=np.float32), shape + (len(SEGMENTS), 3, 3)).copy()
    si = SEGMENT_INDEX
    R[:, :, si["pelvis"]] = _matmul3(_ry(g("root_yaw")), _rx(g("root_pitch")))
    bend, lean, twist = g("spine_bend") / 3, g("spine_lean") / 3, g("spine_twist") / 3
    spine = _matmul3(_matmul3(_rx(bend), _rz(-lean)), _ry(twist))
    for seg in ("spine1", "spine2", "spine3"):
        R[:, :, si[seg]] = spine
    R[:, :, si["neck"]] = _rx(0.5 * g("neck_nod"))
    R[:, :, si["head"]] = _matmul3(_rx(0.5 * g("neck_nod")), _ry(g("head_turn")))
    for side, sign in (("l", 1.0), ("r", -1.0)):
        # Shoulder: forward flexion first, then abduction in the frontal plane, then the
        # horizontal swing about the vertical (outward positive on both sides).
        R[:, :, si[f"{side}_shoulder"]] = _matmul3(
            _matmul3(_ry(sign * g(f"{side}_sh_hz")), _rz(sign * g(f"{side}_sh_abd"))), _rx(-g(f"{side}_sh_flex"))
        )
        R[:, :, si[f"{side}_elbow"]] = _rx(-g(f"{side}_elbow"))
        R[:, :, si[f"{side}_wrist"]] = _rx(-g(f"{side}_wrist"))
        hip, knee = g(f"{side}_hip_flex"), g(f"{side}_knee")
        R[:, :, si[f"{side}_hip"]] = _matmul3(_rz(sign * g(f"{side}_hip_abd")), _rx(-hip))
        R[:, :, si[f"{side}_knee"]] = _rx(knee)
        R[:, :, si[f"{side}_ankle"]] = _rx(hip - knee)  # keeps the foot level
    return R


def _pelvis_drop(dof, shape, thigh, shin):
    """How far the pelvis sinks: from the straighter (supporting) leg's vertical extent."""

    def g(name):
        v = dof.get(name)
        return np.zeros(shape) if v is None else np.broadcast_to(v, shape)

    ext = []
    for side in ("l", "r"):
        h, k = g(f"{side}_hip_flex"), g(f"{side}_knee")
        ext.append(thigh * np.cos(h) + shin * np.cos(k - h))
    return (thigh + shin) - np.maximum(ext[0], ext[1])


def _matmul3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched 3x3 @ 3x3 (or 3x3 @ 3-vector when b has one axis less) by broadcasting.

    Faster than np.matmul/einsum for millions of tiny matrices."""
    if b.ndim == a.ndim - 1:
        return a[..., 0] * b[..., 0:1] + a[..., 1] * b[..., 1:2] + a[..., 2] * b[..., 2:3]
    return a[..., :, 0:1] * b[..., 0:1, :] + a[..., :, 1:2] * b[..., 1:2, :] + a[..., :, 2:3] * b[..., 2:3, :]


def _forward_kinematics(R_local, bones, site_offsets, root_pos):
    """Sites (n, T, S_sites, 3) from local rotations (n, T, S, 3, 3), per-sample bone vectors
    (n, S, 3) (joint minus parent joint at rest), per-sample site offsets (n, S_sites, 3)
    (site minus its segment's joint at rest) and the root position (n, T, 3)."""
    n, t = R_local.shape[:2]
    nseg = len(SEGMENTS)
    Rg = np.empty_like(R_local)
    Pg = np.empty((n, t, nseg, 3), R_local.dtype)
    for j, (_, parent, _) in enumerate(SEGMENTS):
        if parent is None:
            Rg[:, :, j] = R_local[:, :, j]
            Pg[:, :, j] = root_pos
        else:
            p = SEGMENT_INDEX[parent]
            Rg[:, :, j] = _matmul3(Rg[:, :, p], R_local[:, :, j])
            Pg[:, :, j] = Pg[:, :, p] + _matmul3(Rg[:, :, p], bones[:, None, j])
    # Sites, channel first (n, 3, T, S_sites): the layout of the store.
    out = np.empty((n, 3, t, len(SITE_NAMES)), R_local.dtype)
    for j in range(nseg):
        idx = _SITES_OF_SEGMENT[j]
        if idx.size:
            k = idx.size
            rot = np.ascontiguousarray(Rg[:, :, j].transpose(0, 2, 1, 3)).reshape(n, 3 * t, 3)  # (n, 3T, 3)
            moved = np.matmul(rot, site_offsets[:, idx].transpose(0, 2, 1)).reshape(n, 3, t, k)
            moved += Pg[:, :, j].transpose(0, 2, 1)[..., None]
            out[..., idx[0] : idx[-1] + 1] = moved
    return out


_SITE_SEGMENT = np.array([SEGMENT_INDEX[SITES[s][0]] for s in SITE_NAMES])
_SITES_OF_SEGMENT = [np.flatnonzero(_SITE_SEGMENT == j) for j in range(len(SEGMENTS))]
_REST_JOINT = np.array([pos for _, _, pos in SEGMENTS])
_REST_BONE = np.array(
    [pos if par is None else np.subtract(pos, _REST_JOINT[SEGMENT_INDEX[par]]) for _, par, pos in SEGMENTS]
)
_REST_SITE_OFFSET = np.array(
    [np.subtract(SITES[s][1], _REST_JOINT[_SITE_SEGMENT[i]]) for i, s in enumerate(SITE_NAMES)]
)
# Segments whose length a "limb proportion" factor scales: arms, legs, torso.
_ARM = [SEGMENT_INDEX[f"{s}_{j}"] for s in "lr" for j in ("elbow", "wrist")]
_LEG = [SEGMENT_INDEX[f"{s}_{j}"] for s in "lr" for j in ("knee", "ankle")]
_TORSO = [SEGMENT_INDEX[j] for j in ("spine1", "spine2", "spine3", "neck")]
_THIGH = float(np.linalg.norm(_REST_BONE[SEGMENT_INDEX["l_knee"]]))
_SHIN = float(np.linalg.norm(_REST_BONE[SEGMENT_INDEX["l_ankle"]]))
