"""The kinematic body: rigid segments and the sites (joints, markers) attached to them."""

from __future__ import annotations

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
