"""Synthetic multi-skeleton action data: one body motion, every built-in convention.

`make_synthetic_store` writes a store of labelled action sequences in seconds; it is the
embedded default data of ``python -m msclr.train``.

How a sample is made
--------------------
1. **One kinematic body.** `SEGMENTS` is a tree of 21 rigid segments (pelvis, three spine
   segments, neck, head, clavicles, upper arms, forearms, hands, thighs, shins, feet) with
   rest joint positions of a 1.75 m adult in metres, in the body frame
   (x = the person's left, y = up, z = the person's forward; pelvis at the origin).
2. **Subject.** Each of `num_subjects` subjects has a body scale (about 1.50 to 1.95 m), limb
   proportions, a tempo (speed), a movement amplitude (style) and a sensor noise level; each
   sample adds its own small jitter to these.
3. **Action.** `ACTIONS` maps a phase s in [0, 1] (the valid part of the sequence, with a
   random idle lead-in and tail) to joint angles: spine bend/lean/twist, neck nod, head
   turn, per arm shoulder flexion/abduction/horizontal swing, elbow and wrist flexion, per
   leg hip flexion/abduction, knee flexion, root translation, yaw and pitch. The pelvis height
   follows the supporting leg (so squats go down and feet stay on the floor); ankles keep
   the feet level.
4. **Forward kinematics** gives every segment's pose per frame; every *site* (`SITES`: the
   anatomical joints of each convention and the surface markers of Berkeley MHAD) is a point
   rigidly attached to one segment.
5. **Camera.** The body is placed 2.4 to 3.6 m in front of a Kinect-like camera (camera
   space: x = the camera's left, y = up, z = away from the camera, metres) seen from one of
   three views (-45, 0, +45 degrees yaw, like NTU's three cameras), with a camera height.
6. **Conventions.** `JOINT_MAPS[conv]` maps every joint of a convention, in the
   convention's joint order, to the site it is rendered from. Each convention gets its own
   independent per-frame noise (as different sensors/estimators would), scaled by the
   subject's noise level.

All conventions are stored as 3-D metres in camera space, including coco17 and openpose18
(which are 2-D image keypoints in the wild) and smpl24/smplx42/berkeley_mhad43/h36m17
(millimetres in MeTRAbs output): the store meta says so per convention.

Two actions are interactions (``handshake``, ``push``) with a second actor in person slot 1;
every other sample has M=2 with the second person all zeros, as NTU single-person samples.
Splits: ``xsub`` (subjects 1..7 train, 8..10 test by default) and ``xview`` (cameras 2, 3
train, camera 1 test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import skeletons
from .store import Store, StoreBuilder

# ----------------------------------------------------------------------------- the body

# (segment, parent, rest position of its joint), body frame, metres, 1.75 m adult.
# "l_" = the person's left side (+x); right-side segments are the mirror images (x -> -x).
_LEFT_SEGMENTS = [
    ("l_collar", "spine3", (0.035, 0.46, -0.01)),
    ("l_shoulder", "l_collar", (0.175, 0.47, -0.02)),
    ("l_elbow", "l_shoulder", (0.185, 0.185, -0.03)),
    ("l_wrist", "l_elbow", (0.195, -0.06, 0.0)),
    ("l_hip", "pelvis", (0.09, -0.06, 0.0)),
    ("l_knee", "l_hip", (0.095, -0.49, 0.01)),
    ("l_ankle", "l_knee", (0.095, -0.89, -0.03)),
]
SEGMENTS: list[tuple[str, str | None, tuple[float, float, float]]] = [
    ("pelvis", None, (0.0, 0.0, 0.0)),
    ("spine1", "pelvis", (0.0, 0.10, -0.01)),
    ("spine2", "spine1", (0.0, 0.23, -0.015)),
    ("spine3", "spine2", (0.0, 0.36, -0.015)),
    ("neck", "spine3", (0.0, 0.545, -0.01)),
    ("head", "neck", (0.0, 0.635, 0.01)),
]
for _name, _par, (_x, _y, _z) in _LEFT_SEGMENTS:
    SEGMENTS.append((_name, _par, (_x, _y, _z)))
    _rpar = "r" + _par[1:] if _par.startswith("l_") else _par
    SEGMENTS.append(("r" + _name[1:], _rpar, (-_x, _y, _z)))

SEGMENT_INDEX = {name: i for i, (name, _, _) in enumerate(SEGMENTS)}
# Height of the pelvis above the floor in the rest pose (ankle height 0.06 m below the ankle joint).
PELVIS_HEIGHT = 0.95

# Sites: name -> (segment, rest position). Midline sites have x = 0; "l_*" sites are
# mirrored into "r_*" sites. Anatomical joints of the different conventions are deliberately
# *different* points where the conventions define them differently (Kinect v2 hand = palm
# centre, SMPL hand = knuckles; Kinect spine_shoulder vs SMPL neck; ...).
_MID_SITES = {
    # pelvis / hips
    "pelvis": ("pelvis", (0.0, 0.0, 0.0)),  # SMPL pelvis, H36M pelvis
    "kinect_spine_base": ("pelvis", (0.0, -0.025, -0.02)),  # Kinect v2 SpineBase / v1 HipCenter
    "bmhad_belly": ("spine1", (0.0, 0.09, 0.115)),  # 'bell' marker, front of the belly
    "bmhad_backl": ("spine1", (0.0, 0.06, -0.115)),  # lower back marker
    # spine
    "spine1": ("spine1", (0.0, 0.10, -0.01)),
    "spine2": ("spine2", (0.0, 0.23, -0.015)),
    "kinect_spine_mid": ("spine2", (0.0, 0.245, -0.03)),  # Kinect v2 SpineMid / v1 Spine
    "spine3": ("spine3", (0.0, 0.36, -0.015)),
    "bmhad_chest": ("spine3", (0.0, 0.40, 0.11)),  # sternum marker
    "bmhad_backt": ("spine3", (0.0, 0.42, -0.12)),  # upper back marker
    "kinect_spine_shoulder": ("spine3", (0.0, 0.475, -0.025)),  # Kinect v2 SpineShoulder / v1 ShoulderCenter
    "thorax": ("spine3", (0.0, 0.49, -0.01)),  # H36M thorax, OpenPose neck
    # neck / head
    "neck": ("neck", (0.0, 0.545, -0.01)),  # SMPL neck joint
    "kinect_neck": ("neck", (0.0, 0.585, 0.0)),  # Kinect v2 Neck
    "neck_nose": ("neck", (0.0, 0.62, 0.04)),  # H36M 'neck/nose'
    "head": ("head", (0.0, 0.635, 0.01)),  # SMPL head joint (skull base)
    "jaw": ("head", (0.0, 0.625, 0.06)),
    "kinect_head": ("head", (0.0, 0.70, 0.015)),  # Kinect head (centre of the head)
    "head_top": ("head", (0.0, 0.80, 0.0)),  # H36M head (top)
    "bmhad_head": ("head", (0.0, 0.795, 0.045)),  # head marker (front top)
    "nose": ("head", (0.0, 0.69, 0.105)),
}
_LEFT_SITES = {
    # shoulder girdle
    "l_collar": ("l_collar", (0.035, 0.46, -0.01)),
    "l_bmhad_sho1": ("l_collar", (0.15, 0.52, -0.03)),  # top of the shoulder
    "l_bmhad_sho2": ("l_collar", (0.19, 0.47, 0.045)),  # front of the shoulder
    "l_bmhad_back": ("spine3", (0.09, 0.40, -0.11)),  # shoulder-blade marker
    "l_bmhad_side": ("spine1", (0.145, 0.06, 0.0)),  # waist side marker
    # arm
    "l_shoulder": ("l_shoulder", (0.175, 0.47, -0.02)),  # SMPL shoulder
    "l_kinect_shoulder": ("l_shoulder", (0.185, 0.465, -0.025)),
    "l_bmhad_arm": ("l_shoulder", (0.215, 0.33, -0.03)),  # upper-arm marker
    "l_elbow": ("l_elbow", (0.185, 0.185, -0.03)),
    "l_bmhad_elbow": ("l_elbow", (0.19, 0.185, -0.075)),  # olecranon marker
    "l_wrist": ("l_wrist", (0.195, -0.06, 0.0)),
    "l_bmhad_wrist": ("l_wrist", (0.21, -0.06, -0.02)),
    "l_kinect_hand": ("l_wrist", (0.20, -0.125, 0.01)),  # palm centre
    "l_smpl_hand": ("l_wrist", (0.20, -0.14, 0.01)),  # SMPL hand joint (knuckles)
    "l_middle1": ("l_wrist", (0.20, -0.15, 0.012)),  # base of the middle finger
    "l_hand_tip": ("l_wrist", (0.20, -0.235, 0.012)),  # Kinect HandTip = middle finger tip
    "l_kinect_thumb": ("l_wrist", (0.19, -0.115, 0.06)),
    "l_thumb_tip": ("l_wrist", (0.19, -0.145, 0.075)),
    "l_bmhad_hand1": ("l_wrist", (0.22, -0.12, -0.005)),
    "l_bmhad_hand2": ("l_wrist", (0.185, -0.12, 0.045)),
    "l_bmhad_hand3": ("l_wrist", (0.205, -0.17, -0.01)),
    # face
    "l_eye": ("head", (0.033, 0.72, 0.085)),  # surface eye (COCO/OpenPose/SMPL-X eye)
    "l_eyeball": ("head", (0.033, 0.72, 0.065)),  # SMPL-X eyeball centre ('left_eye_smplhf')
    "l_ear": ("head", (0.075, 0.70, 0.0)),
    "l_bmhad_head": ("head", (0.085, 0.745, 0.02)),
    # leg
    "l_hip": ("l_hip", (0.09, -0.06, 0.0)),
    "l_kinect_hip": ("l_hip", (0.085, -0.07, -0.01)),
    "l_bmhad_hipf": ("pelvis", (0.11, -0.01, 0.095)),  # front of the hip (ASIS)
    "l_bmhad_hipl": ("pelvis", (0.17, -0.08, 0.0)),  # lateral hip (trochanter)
    "l_bmhad_hipb": ("pelvis", (0.085, -0.01, -0.115)),  # back of the hip (PSIS)
    "l_bmhad_leg": ("l_hip", (0.14, -0.27, 0.04)),  # thigh marker
    "l_knee": ("l_knee", (0.095, -0.49, 0.01)),
    "l_bmhad_knee": ("l_knee", (0.12, -0.49, 0.05)),
    "l_ankle": ("l_ankle", (0.095, -0.89, -0.03)),
    "l_bmhad_ankle": ("l_ankle", (0.125, -0.885, -0.03)),  # lateral malleolus
    "l_heel": ("l_ankle", (0.095, -0.94, -0.085)),
    "l_kinect_foot": ("l_ankle", (0.095, -0.935, 0.075)),
    "l_smpl_foot": ("l_ankle", (0.095, -0.94, 0.09)),
    "l_bmhad_foot": ("l_ankle", (0.095, -0.93, 0.13)),
    "l_big_toe": ("l_ankle", (0.07, -0.95, 0.155)),
    "l_small_toe": ("l_ankle", (0.13, -0.95, 0.125)),
}


def _mirror_segment(seg: str) -> str:
    return "r" + seg[1:] if seg.startswith("l_") else seg


SITES: dict[str, tuple[str, tuple[float, float, float]]] = dict(_MID_SITES)
for _name, (_seg, (_x, _y, _z)) in _LEFT_SITES.items():
    SITES[_name] = (_seg, (_x, _y, _z))
    SITES["r" + _name[1:]] = (_mirror_segment(_seg), (-_x, _y, _z))
# Sorted by segment so that the sites of one segment are contiguous (forward kinematics
# writes them as one slice).
SITE_NAMES = sorted(SITES, key=lambda name: SEGMENT_INDEX[SITES[name][0]])
SITE_INDEX = {name: i for i, name in enumerate(SITE_NAMES)}

# Joint maps: every joint of a convention (in the convention's order, msclr/skeletons/builtin.py)
# -> the site of the body it is rendered from.
JOINT_MAPS: dict[str, dict[str, str]] = {
    "ntu25": {
        "spine_base": "kinect_spine_base",
        "spine_mid": "kinect_spine_mid",
        "neck": "kinect_neck",
        "head": "kinect_head",
        "shoulder_left": "l_kinect_shoulder",
        "elbow_left": "l_elbow",
        "wrist_left": "l_wrist",
        "hand_left": "l_kinect_hand",
        "shoulder_right": "r_kinect_shoulder",
        "elbow_right": "r_elbow",
        "wrist_right": "r_wrist",
        "hand_right": "r_kinect_hand",
        "hip_left": "l_kinect_hip",
        "knee_left": "l_knee",
        "ankle_left": "l_ankle",
        "foot_left": "l_kinect_foot",
        "hip_right": "r_kinect_hip",
        "knee_right": "r_knee",
        "ankle_right": "r_ankle",
        "foot_right": "r_kinect_foot",
        "spine_shoulder": "kinect_spine_shoulder",
        "hand_tip_left": "l_hand_tip",
        "thumb_left": "l_kinect_thumb",
        "hand_tip_right": "r_hand_tip",
        "thumb_right": "r_kinect_thumb",
    },
    "kinect_v1_20": {
        "head": "kinect_head",
        "shoulder_center": "kinect_spine_shoulder",
        "spine": "kinect_spine_mid",
        "hip_center": "kinect_spine_base",
        "left_shoulder": "l_kinect_shoulder",
        "left_elbow": "l_elbow",
        "left_wrist": "l_wrist",
        "left_hand": "l_kinect_hand",
        "right_shoulder": "r_kinect_shoulder",
        "right_elbow": "r_elbow",
        "right_wrist": "r_wrist",
        "right_hand": "r_kinect_hand",
        "left_hip": "l_kinect_hip",
        "left_knee": "l_knee",
        "left_ankle": "l_ankle",
        "left_foot": "l_kinect_foot",
        "right_hip": "r_kinect_hip",
        "right_knee": "r_knee",
        "right_ankle": "r_ankle",
        "right_foot": "r_kinect_foot",
    },
    "smpl24": {
        "pelvis": "pelvis",
        "left_hip": "l_hip",
        "right_hip": "r_hip",
        "spine1": "spine1",
        "left_knee": "l_knee",
        "right_knee": "r_knee",
        "spine2": "spine2",
        "left_ankle": "l_ankle",
        "right_ankle": "r_ankle",
        "spine3": "spine3",
        "left_foot": "l_smpl_foot",
        "right_foot": "r_smpl_foot",
        "neck": "neck",
        "left_collar": "l_collar",
        "right_collar": "r_collar",
        "head": "head",
        "left_shoulder": "l_shoulder",
        "right_shoulder": "r_shoulder",
        "left_elbow": "l_elbow",
        "right_elbow": "r_elbow",
        "left_wrist": "l_wrist",
        "right_wrist": "r_wrist",
        "left_hand": "l_smpl_hand",
        "right_hand": "r_smpl_hand",
    },
    "smplx42": {
        "pelvis": "pelvis",
        "left_hip": "l_hip",
        "right_hip": "r_hip",
        "spine1": "spine1",
        "left_knee": "l_knee",
        "right_knee": "r_knee",
        "spine2": "spine2",
        "left_ankle": "l_ankle",
        "right_ankle": "r_ankle",
        "spine3": "spine3",
        "left_foot": "l_smpl_foot",
        "right_foot": "r_smpl_foot",
        "neck": "neck",
        "left_collar": "l_collar",
        "right_collar": "r_collar",
        "head": "head",
        "left_shoulder": "l_shoulder",
        "right_shoulder": "r_shoulder",
        "left_elbow": "l_elbow",
        "right_elbow": "r_elbow",
        "left_wrist": "l_wrist",
        "right_wrist": "r_wrist",
        "jaw": "jaw",
        "left_eye_smplhf": "l_eyeball",
        "right_eye_smplhf": "r_eyeball",
        "left_middle1": "l_middle1",
        "right_middle1": "r_middle1",
        "nose": "nose",
        "right_eye": "r_eye",
        "left_eye": "l_eye",
        "right_ear": "r_ear",
        "left_ear": "l_ear",
        "left_big_toe": "l_big_toe",
        "left_small_toe": "l_small_toe",
        "left_heel": "l_heel",
        "right_big_toe": "r_big_toe",
        "right_small_toe": "r_small_toe",
        "right_heel": "r_heel",
        "left_thumb_tip": "l_thumb_tip",
        "left_middle_tip": "l_hand_tip",
        "right_thumb_tip": "r_thumb_tip",
        "right_middle_tip": "r_hand_tip",
    },
    "berkeley_mhad43": {
        "head": "bmhad_head",
        "left_head": "l_bmhad_head",
        "right_head": "r_bmhad_head",
        "right_back": "r_bmhad_back",
        "backl": "bmhad_backl",
        "backt": "bmhad_backt",
        "left_back": "l_bmhad_back",
        "left_side": "l_bmhad_side",
        "belly": "bmhad_belly",
        "chest": "bmhad_chest",
        "right_side": "r_bmhad_side",
        "left_shoulder_1": "l_bmhad_sho1",
        "left_shoulder_2": "l_bmhad_sho2",
        "left_arm": "l_bmhad_arm",
        "left_elbow": "l_bmhad_elbow",
        "left_wrist": "l_bmhad_wrist",
        "left_hand_1": "l_bmhad_hand1",
        "left_hand_2": "l_bmhad_hand2",
        "left_hand_3": "l_bmhad_hand3",
        "right_shoulder_1": "r_bmhad_sho1",
        "right_shoulder_2": "r_bmhad_sho2",
        "right_arm": "r_bmhad_arm",
        "right_elbow": "r_bmhad_elbow",
        "right_wrist": "r_bmhad_wrist",
        "right_hand_1": "r_bmhad_hand1",
        "right_hand_2": "r_bmhad_hand2",
        "right_hand_3": "r_bmhad_hand3",
        "left_hip_back": "l_bmhad_hipb",
        "left_hip_front": "l_bmhad_hipf",
        "left_hip_lateral": "l_bmhad_hipl",
        "left_leg": "l_bmhad_leg",
        "left_knee": "l_bmhad_knee",
        "left_ankle": "l_bmhad_ankle",
        "left_heel": "l_heel",
        "left_foot": "l_bmhad_foot",
        "right_hip_back": "r_bmhad_hipb",
        "right_hip_front": "r_bmhad_hipf",
        "right_hip_lateral": "r_bmhad_hipl",
        "right_leg": "r_bmhad_leg",
        "right_knee": "r_bmhad_knee",
        "right_ankle": "r_bmhad_ankle",
        "right_heel": "r_heel",
        "right_foot": "r_bmhad_foot",
    },
    "coco17": {
        "nose": "nose",
        "left_eye": "l_eye",
        "right_eye": "r_eye",
        "left_ear": "l_ear",
        "right_ear": "r_ear",
        "left_shoulder": "l_shoulder",
        "right_shoulder": "r_shoulder",
        "left_elbow": "l_elbow",
        "right_elbow": "r_elbow",
        "left_wrist": "l_wrist",
        "right_wrist": "r_wrist",
        "left_hip": "l_hip",
        "right_hip": "r_hip",
        "left_knee": "l_knee",
        "right_knee": "r_knee",
        "left_ankle": "l_ankle",
        "right_ankle": "r_ankle",
    },
    "h36m17": {
        "pelvis": "pelvis",
        "right_hip": "r_hip",
        "right_knee": "r_knee",
        "right_ankle": "r_ankle",
        "left_hip": "l_hip",
        "left_knee": "l_knee",
        "left_ankle": "l_ankle",
        "spine": "spine2",
        "thorax": "thorax",
        "neck_nose": "neck_nose",
        "head": "head_top",
        "left_shoulder": "l_shoulder",
        "left_elbow": "l_elbow",
        "left_wrist": "l_wrist",
        "right_shoulder": "r_shoulder",
        "right_elbow": "r_elbow",
        "right_wrist": "r_wrist",
    },
    "openpose18": {
        "nose": "nose",
        "neck": "thorax",
        "right_shoulder": "r_shoulder",
        "right_elbow": "r_elbow",
        "right_wrist": "r_wrist",
        "left_shoulder": "l_shoulder",
        "left_elbow": "l_elbow",
        "left_wrist": "l_wrist",
        "right_hip": "r_hip",
        "right_knee": "r_knee",
        "right_ankle": "r_ankle",
        "left_hip": "l_hip",
        "left_knee": "l_knee",
        "left_ankle": "l_ankle",
        "right_eye": "r_eye",
        "left_eye": "l_eye",
        "right_ear": "r_ear",
        "left_ear": "l_ear",
    },
}
SYNTHETIC_CONVENTIONS = list(JOINT_MAPS)
# Per-convention sensor noise relative to the subject's noise level (Kinect noisier than mocap).
_CONV_NOISE = {
    "ntu25": 1.0,
    "kinect_v1_20": 1.2,
    "smpl24": 0.6,
    "smplx42": 0.6,
    "berkeley_mhad43": 0.25,
    "coco17": 0.8,
    "h36m17": 0.6,
    "openpose18": 0.8,
}

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


# ----------------------------------------------------------------------------- actions
#
# An action maps (s, p, rng) -> dict of DOF arrays, where s is the (n, T) phase in [0, 1]
# and p holds per-sample parameters of shape (n, 1): "amp" (style amplitude), "reps"
# (repetition count), "side" (+1/-1, e.g. turning direction), "phase" (random offset).
# DOF names (radians / metres):
#   spine_bend (forward), spine_lean (to the person's left), spine_twist, neck_nod, head_turn,
#   {l,r}_sh_flex (arm forward/up), {l,r}_sh_abd (arm out to the side), {l,r}_sh_hz
#   (arm swing outward about the vertical), {l,r}_elbow, {l,r}_wrist,
#   {l,r}_hip_flex, {l,r}_hip_abd, {l,r}_knee, root_x/root_y/root_z (body frame),
#   root_yaw, root_pitch.
# Second actor DOFs (interactions) use the prefix "b:".


def _bump(s, a=0.0, b=1.0):
    """0 outside [a, b], a smooth hump (sin^2) peaking at the middle."""
    u = np.clip((s - a) / (b - a), 0.0, 1.0)
    return np.sin(np.pi * u) ** 2


def _ramp(s, a=0.0, b=1.0):
    """Smooth step from 0 (s <= a) to 1 (s >= b)."""
    u = np.clip((s - a) / (b - a), 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _osc(s, p, base_reps):
    return np.sin(2 * np.pi * base_reps * p["reps"] * s + p["phase"])


def _wave(s, p):
    env = _ramp(s, 0, 0.15) * (1 - _ramp(s, 0.85, 1))
    return {
        "r_sh_flex": env * (2.5 + 0.15 * p["amp"]),
        "r_sh_abd": env * (0.35 + 0.35 * p["amp"] * _osc(s, p, 3)),
        "r_elbow": env * (0.45 + 0.3 * p["amp"] * _osc(s, p, 3)),
        "head_turn": 0.1 * env,
    }


def _clap(s, p):
    env = _ramp(s, 0, 0.15) * (1 - _ramp(s, 0.85, 1))
    open_ = 0.5 * (1 + _osc(s, p, 4))
    hz = env * (-0.34 + 0.75 * p["amp"] * open_)  # -0.34: the hands meet at the midline
    return {
        "l_sh_flex": env * 1.25,
        "r_sh_flex": env * 1.25,
        "l_sh_hz": hz,
        "r_sh_hz": hz,
        "l_elbow": env * 0.7,
        "r_elbow": env * 0.7,
    }


def _punch(s, p):
    env = _ramp(s, 0, 0.1) * (1 - _ramp(s, 0.9, 1))
    k = 2 * np.pi * 2 * p["reps"] * s + p["phase"]
    ext_r = np.clip(np.sin(k), 0, None) ** 2 * p["amp"]
    ext_l = np.clip(-np.sin(k), 0, None) ** 2 * p["amp"]
    guard = 0.35
    return {
        "r_sh_flex": env * (guard + 1.15 * ext_r),
        "l_sh_flex": env * (guard + 1.15 * ext_l),
        "r_elbow": env * (2.1 * (1 - ext_r) + 0.05),
        "l_elbow": env * (2.1 * (1 - ext_l) + 0.05),
        "r_sh_hz": -0.15 * env,
        "l_sh_hz": -0.15 * env,
        "spine_twist": env * 0.25 * (ext_l - ext_r),
    }


def _kick(s, p):
    n = np.maximum(1.0, np.round(p["reps"]))
    u = (s * n) % 1.0
    lift = _bump(u, 0.1, 0.9)
    ext = _bump(u, 0.35, 0.75)
    return {
        "r_hip_flex": 1.35 * p["amp"] * lift,
        "r_knee": 1.3 * lift * (1 - ext) + 0.1 * lift,
        "l_sh_abd": 0.35 * lift,
        "r_sh_abd": 0.35 * lift,
        "spine_bend": -0.12 * lift,
    }


def _squat(s, p):
    n = np.maximum(1.0, np.round(p["reps"] * 0.8))
    d = _bump((s * n) % 1.0, 0.05, 0.95) * p["amp"]
    return {
        "l_hip_flex": 1.5 * d,
        "r_hip_flex": 1.5 * d,
        "l_knee": 1.95 * d,
        "r_knee": 1.95 * d,
        "spine_bend": 0.45 * d,
        "l_sh_flex": 1.45 * d,
        "r_sh_flex": 1.45 * d,
    }


def _jump(s, p):
    n = np.maximum(1.0, np.round(p["reps"] * 1.5))
    u = (s * n) % 1.0
    air = _bump(u, 0.35, 0.75)
    crouch = _bump(u, 0.05, 0.4) + _bump(u, 0.7, 1.0)
    return {
        "root_y": 0.22 * p["amp"] * air,
        "l_hip_flex": 0.7 * crouch + 0.15 * air,
        "r_hip_flex": 0.7 * crouch + 0.15 * air,
        "l_knee": 1.1 * crouch + 0.35 * air,
        "r_knee": 1.1 * crouch + 0.35 * air,
        "l_sh_flex": 2.2 * air - 0.4 * crouch,
        "r_sh_flex": 2.2 * air - 0.4 * crouch,
        "spine_bend": 0.25 * crouch,
    }


def _march(s, p):
    env = _ramp(s, 0, 0.1) * (1 - _ramp(s, 0.9, 1))
    o = _osc(s, p, 2.5)
    lift_l = np.clip(o, 0, None) * env * p["amp"]
    lift_r = np.clip(-o, 0, None) * env * p["amp"]
    return {
        "l_hip_flex": 0.9 * lift_l,
        "r_hip_flex": 0.9 * lift_r,
        "l_knee": 1.5 * lift_l,
        "r_knee": 1.5 * lift_r,
        "l_sh_flex": 0.6 * o * env,
        "r_sh_flex": -0.6 * o * env,
        "l_elbow": 0.5 * env,
        "r_elbow": 0.5 * env,
    }


def _arms_up(s, p):
    n = np.maximum(1.0, np.round(p["reps"]))
    up = _bump((s * n) % 1.0, 0.05, 0.95) * p["amp"]
    return {"l_sh_abd": 2.75 * up, "r_sh_abd": 2.75 * up, "l_elbow": 0.1 * up, "r_elbow": 0.1 * up}


def _bow(s, p):
    d = _bump(s, 0.1, 0.9) * p["amp"]
    return {"spine_bend": 0.75 * d, "root_pitch": 0.35 * d, "neck_nod": 0.4 * d, "l_sh_flex": 0.2 * d}


def _turn(s, p):
    env = _ramp(s, 0.05, 0.95)
    step = _bump(s, 0.05, 0.95) * _osc(s, p, 3)
    return {
        "root_yaw": p["side"] * (2.6 + 0.6 * p["amp"]) * env,
        "l_hip_flex": 0.35 * np.clip(step, 0, None),
        "r_hip_flex": 0.35 * np.clip(-step, 0, None),
        "l_knee": 0.6 * np.clip(step, 0, None),
        "r_knee": 0.6 * np.clip(-step, 0, None),
        "head_turn": 0.3 * p["side"] * _bump(s, 0.0, 0.6),
    }


def _side_bend(s, p):
    env = _ramp(s, 0, 0.1) * (1 - _ramp(s, 0.9, 1))
    o = _osc(s, p, 1.5) * env * p["amp"]
    return {
        "spine_lean": 0.5 * o,
        "r_sh_abd": 2.6 * np.clip(o, 0, None) + 0.2 * env,
        "l_sh_abd": 2.6 * np.clip(-o, 0, None) + 0.2 * env,
    }


def _circle(s, p):
    env = _ramp(s, 0, 0.12) * (1 - _ramp(s, 0.88, 1))
    k = 2 * np.pi * 2.5 * p["reps"] * s + p["phase"]
    r = 0.42 * p["amp"]
    return {
        "r_sh_flex": env * (1.35 + r * np.sin(k)),
        "r_sh_abd": env * (0.25 + r * np.cos(k)),
        "r_elbow": env * 0.15,
    }


def _sit_down(s, p):
    d = _ramp(s, 0.1, 0.75)
    lean = _bump(s, 0.1, 0.9)
    return {
        "l_hip_flex": 1.45 * d,
        "r_hip_flex": 1.45 * d,
        "l_knee": 1.5 * d,
        "r_knee": 1.5 * d,
        "root_z": -0.28 * d,
        "spine_bend": 0.35 * lean * p["amp"],
        "l_sh_flex": 0.4 * lean,
        "r_sh_flex": 0.4 * lean,
    }


def _pick_up(s, p):
    d = _bump(s, 0.1, 0.9) * p["amp"]
    return {
        "spine_bend": 1.1 * d,
        "root_pitch": 0.25 * d,
        "l_hip_flex": 0.35 * d,
        "r_hip_flex": 0.35 * d,
        "l_knee": 0.7 * d,
        "r_knee": 0.7 * d,
        "r_sh_flex": 0.9 * d,
        "r_elbow": 0.2 * d,
        "neck_nod": 0.3 * d,
    }


def _handshake(s, p):
    reach = _bump(s, 0.05, 0.95)
    pump = reach * 0.13 * _osc(s, p, 4)
    out = {}
    for pre in ("", "b:"):
        out[pre + "r_sh_flex"] = reach * 1.0 + pump
        out[pre + "r_sh_hz"] = -0.33 * reach  # inward, so the two right hands meet
        out[pre + "r_elbow"] = reach * 0.55
        out[pre + "spine_bend"] = 0.1 * reach
        out[pre + "root_z"] = 0.1 * reach  # both step in
    return out


def _push(s, p):
    reach = _bump(s, 0.05, 0.75)
    shove = _ramp(s, 0.35, 0.5) * (1 - _ramp(s, 0.7, 0.95))
    back = _ramp(s, 0.42, 0.7)
    return {
        "l_sh_flex": 1.35 * reach,
        "r_sh_flex": 1.35 * reach,
        "l_elbow": 1.4 * reach * (1 - shove),
        "r_elbow": 1.4 * reach * (1 - shove),
        "spine_bend": 0.2 * shove,
        "root_z": 0.15 * shove,
        "b:root_z": 0.3 - 0.4 * back * p["amp"],  # starts 0.3 m closer than a handshake
        "b:spine_bend": -0.25 * _bump(s, 0.42, 0.85),
        "b:l_sh_abd": 0.5 * _bump(s, 0.42, 0.9),
        "b:r_sh_abd": 0.5 * _bump(s, 0.42, 0.9),
        "b:l_hip_flex": 0.4 * _bump(s, 0.45, 0.75),
        "b:l_knee": 0.6 * _bump(s, 0.45, 0.75),
    }


# (name, function, typical duration as a fraction of T, number of actors)
ACTIONS: list[tuple[str, Callable, float, int]] = [
    ("wave right hand", _wave, 0.85, 1),
    ("clap hands", _clap, 0.75, 1),
    ("punch forward", _punch, 0.8, 1),
    ("kick with right leg", _kick, 0.7, 1),
    ("squat", _squat, 0.9, 1),
    ("jump in place", _jump, 0.8, 1),
    ("march in place", _march, 0.9, 1),
    ("raise both arms sideways", _arms_up, 0.8, 1),
    ("bow", _bow, 0.8, 1),
    ("turn around", _turn, 0.95, 1),
    ("side bend", _side_bend, 0.85, 1),
    ("draw a circle with the right hand", _circle, 0.85, 1),
    ("sit down", _sit_down, 0.8, 1),
    ("pick up from the floor", _pick_up, 0.85, 1),
    ("handshake", _handshake, 0.85, 2),
    ("push the other person", _push, 0.8, 2),
]
CLASS_NAMES = [a[0] for a in ACTIONS]
MAX_CLASSES = len(ACTIONS)
VIEW_YAW_DEG = {1: -45.0, 2: 0.0, 3: 45.0}

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


def _render_class(
    rng: np.random.Generator,
    label: int,
    subj: np.ndarray,
    cams: np.ndarray,
    subjects: dict[str, np.ndarray],
    T: int,
    out: dict[str, np.ndarray],
    normalize: bool = False,
):
    """Render n samples of one class into out[conv] (n, 3, T, V, 2) views; returns lengths (n,).

    normalize: ST-GCN's pre-normalisation (as `prepare ntu` applies to NTU), computed from the
    body of actor 0 and applied to every convention alike (see `_normalization`)."""
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
    params = dict(
        amp=col(subjects["amp"][subj] * rng.uniform(0.9, 1.1, n)),
        reps=col(rng.uniform(0.8, 1.25, n)),
        side=col(rng.choice([-1.0, 1.0], n)),
        phase=col(rng.uniform(-0.5, 0.5, n)),
    )
    dof_all = fn(s, params)
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
    from .ntu import rotation_to

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
            lengths[rows] = _render_class(rng, label, subj[rows], cams[rows], subjects, T, views, normalize)
    return dict(
        data=data,
        lengths=lengths,
        labels=labels.astype(np.int64),
        subjects=(subj + 1).astype(np.int64),
        cameras=cams.astype(np.int64),
        class_names=CLASS_NAMES[:num_classes],
    )


def make_synthetic_store(
    out_dir: str | Path,
    num_samples: int = 1000,
    conventions: Sequence[str] | None = None,
    T: int = 64,
    seed: int = 0,
    num_classes: int = MAX_CLASSES,
    num_subjects: int = 10,
    train_subjects: Sequence[int] | None = None,
    overwrite: bool = True,
    durable: bool = False,
    normalize: bool = False,
) -> Store:
    """Write a synthetic multi-skeleton store to `out_dir` and open it.

    conventions: None = every built-in convention. T: frames per sample (T_max; the valid
    length of each sample varies with its speed). Subjects are numbered 1..num_subjects;
    `train_subjects` (default: the first 70 %) train in the ``xsub`` split.
    durable=False skips fsync (the data can be regenerated from the seed); files are still
    replaced atomically. normalize: ST-GCN pre-normalised coordinates (as NTU after `prepare
    ntu`) instead of camera space.
    """
    g = generate(num_samples, conventions, T, seed, num_classes, num_subjects, normalize)
    if train_subjects is None:
        train_subjects = list(range(1, max(1, round(0.7 * num_subjects)) + 1))
    train_subjects = set(int(s) for s in train_subjects)
    sub_train = np.isin(g["subjects"], list(train_subjects))
    view_train = np.isin(g["cameras"], [2, 3])
    splits = {
        "xsub": {"train": np.flatnonzero(sub_train), "test": np.flatnonzero(~sub_train)},
        "xview": {"train": np.flatnonzero(view_train), "test": np.flatnonzero(~view_train)},
    }
    ids = [
        f"syn{i:06d}_s{s:02d}_c{c}_a{a:02d}"
        for i, (s, c, a) in enumerate(zip(g["subjects"], g["cameras"], g["labels"]))
    ]
    builder = StoreBuilder.create(
        out_dir,
        dataset="synthetic",
        sample_ids=ids,
        labels=g["labels"],
        num_classes=num_classes,
        class_names=g["class_names"],
        splits=splits,
        sample_info={"subject": g["subjects"], "camera": g["cameras"]},
        extra=dict(
            generator=dict(
                module="msclr.data.synthetic",
                num_samples=num_samples,
                T=T,
                seed=seed,
                num_classes=num_classes,
                num_subjects=num_subjects,
                train_subjects=sorted(train_subjects),
                normalize=normalize,
            ),
            coordinates="metres, ST-GCN pre-normalised (spine-centred per frame, spine +z, shoulders +x)"
            if normalize
            else "camera space, metres (x = camera's left, y = up, z = away from the camera)",
        ),
        overwrite=overwrite,
        durable=durable,
    )
    for conv, arr in g["data"].items():
        builder.add(
            conv,
            arr,
            g["lengths"],
            np.ones(num_samples, bool),
            unit="m",
            note="synthetic: rendered from one kinematic body through msclr.data.synthetic.JOINT_MAPS",
        )
    return builder.finish()
