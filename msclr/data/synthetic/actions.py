"""The actions: phase -> joint-angle trajectories (degrees of freedom) of each class."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
