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

from .actions import ACTIONS, CLASS_NAMES, MAX_CLASSES, VIEW_YAW_DEG
from .body import SEGMENTS, SITE_INDEX, SITE_NAMES, SITES
from .joint_maps import JOINT_MAPS, SYNTHETIC_CONVENTIONS
from .render import generate
from .write import make_synthetic_store, synthetic_store_from_config

__all__ = [
    "ACTIONS",
    "CLASS_NAMES",
    "JOINT_MAPS",
    "MAX_CLASSES",
    "SEGMENTS",
    "SITES",
    "SITE_INDEX",
    "SITE_NAMES",
    "SYNTHETIC_CONVENTIONS",
    "VIEW_YAW_DEG",
    "generate",
    "make_synthetic_store",
    "synthetic_store_from_config",
]
