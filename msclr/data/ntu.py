"""NTU RGB+D 60/120 raw .skeleton files -> store, in one command.

Reading
    `parse_skeleton_file` uses the C++ parser of msclr._C (csrc/io/ntu_skeleton.cpp, GIL
    released, files in parallel threads) and falls back to `parse_skeleton_bytes_py`, the
    readable Python reference, which implements the same grammar and gives identical arrays
    (the grammar is documented in csrc/io/ntu_skeleton.h). A malformed file raises
    `SkeletonParseError` ("<file>:<line>: <what>"); `prepare` skips it and lists it.

Choosing up to two bodies (`select_bodies`): the denoising of the widely used NTU scripts
(SGN, Zhang et al. 2020, ``get_raw_denoised_data.py``, also used by CTR-GCN, InfoGCN ...):
    * frames with no body are dropped;
    * every body ID is a track; its frames get consecutive indices from the valid frame in
      which it first appears (as those scripts do, gaps included);
    * with several tracks: tracks of <= 11 frames are dropped (length rule); then, while more
      than one track is left, a track whose frames have x spread > 0.8 * y spread in
      >= 69.754 % of its frames is dropped, otherwise its motion becomes the lower of its
      motion and the motion of its good frames (spread rule); tracks are ranked by motion =
      sum over x, y, z of the variance of its joints (motion rule);
    * actor 1 = the track with the largest motion, joined by later tracks that do not overlap
      it in time; actor 2 = the next track that overlaps actor 1, joined likewise; frames in
      which both actors are missing are removed.
    Deviation: when the length rule drops every track (the scripts crash there), the longest
    track is kept.

Optional ST-GCN pre-normalisation (`pre_normalize`, 2s-AGCN/MS-G3D/AimCLR
``pre_normalization``): a person whose first frame is empty is shifted to start at frame 0;
a person who disappears is padded by repeating their frames from the start (up to the
sample's length); every person is centred on person 1's spine joint (joint 2, 1-based) frame
by frame; then the whole sample is rotated so that person 1's hip -> spine bone (joints 1->2)
of the first frame lies along +z, then rotated again so that the left -> right shoulder
vector (joints 5->9) lies along +x.

Samples that the dataset authors list as having missing skeletons (302 in NTU-60, 535 in
NTU-120; msclr/data/resources/) are skipped and listed in the store's meta.

Splits: NTU-60 ``xsub`` (20 training subjects) and ``xview`` (cameras 2, 3 train); NTU-120
``xsub`` (53 training subjects) and ``xset`` (even setup ids train).
"""

from __future__ import annotations

import hashlib
import json
import math
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

from .store import Store, StoreBuilder, atomic_write_json

NUM_JOINTS = 25
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientationW X Y Z trackingState
BODY_FIELDS = 9  # after the body id
MAX_BODIES_PER_FRAME = 64
MAX_FRAMES = 1_000_000
FLOAT32_MAX = float(np.finfo(np.float32).max)

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

# Denoising thresholds of the SGN/CTR-GCN NTU scripts.
NOISE_LEN_THRES = 11
NOISE_SPR_THRES1 = 0.8
NOISE_SPR_THRES2 = 0.69754


class SkeletonParseError(ValueError):
    """A malformed .skeleton file: the message is '<file>:<line>: <what>'."""


# ----------------------------------------------------------------------------- parsing


def _cpp():
    from .. import _ext

    mod = _ext.extension()
    if mod is None or not hasattr(mod, "parse_ntu_skeleton_file"):
        return None
    return mod


def cpp_parser_available() -> bool:
    return _cpp() is not None


_NUMBER = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNSIGNED = re.compile(rb"[0-9]+")
_SEPARATORS = re.compile(rb"[ \t]+")


def _quote(tok: bytes) -> str:
    out = ["'"]
    for c in tok[:40]:
        ch = chr(c)
        out.append(ch if 0x20 <= c < 0x7F and ch not in "'\\" else f"\\x{c:02x}")
    if len(tok) > 40:
        out.append("...")
    return "".join(out) + "'"


class _Lines:
    """Lines of a file (one trailing '\\r' dropped), split into fields, with line numbers."""

    def __init__(self, data: bytes, name: str):
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # the text ends with '\n' (or is empty)
        self.lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        self.name = name
        self.line = 0  # 1-based number of the last line read
        self.what = ""

    def fail(self, message: str):
        raise SkeletonParseError(f"{self.name}:{self.line}: {message}")

    def fields(self, what: str, count: int) -> list[bytes]:
        self.what = what
        if self.line >= len(self.lines):
            self.line += 1  # the line that is missing
            self.fail(f"file ended early: expected {what}")
        tokens = [t for t in _SEPARATORS.split(self.lines[self.line]) if t]
        self.line += 1
        if len(tokens) != count:
            got = f"more than {JOINT_FIELDS + 1}" if len(tokens) > JOINT_FIELDS + 1 else str(len(tokens))
            self.fail(f"{what}: expected {count} {'field' if count == 1 else 'fields'}, got {got}")
        return tokens

    def integer(self, tok: bytes, field: int) -> int:
        digits = tok.lstrip(b"0") or b"0"  # leading zeros are fine; int() refuses > 4300 digits
        if not _UNSIGNED.fullmatch(tok) or len(digits) > 19 or int(digits) > 2**63 - 1:
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is not an unsigned integer")
        return int(digits)

    def number(self, tok: bytes, field: int) -> float:
        if not _NUMBER.fullmatch(tok):
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is not a number")
        v = float(tok)
        mantissa = re.split(rb"[eE]", tok)[0]
        if math.isinf(v) or (v == 0.0 and re.search(rb"[1-9]", mantissa)):
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is out of range")  # rounds to inf or 0
        return v

    def float32(self, tok: bytes, field: int) -> float:
        v = self.number(tok, field)
        if abs(v) > FLOAT32_MAX:
            self.fail(f"{self.what}: field {field} ({_quote(tok)}) is out of float32 range")
        return v


def parse_skeleton_bytes_py(data: bytes, name: str = "<bytes>", num_joints: int = NUM_JOINTS) -> dict:
    """The readable reference parser; same grammar and arrays as the C++ one.

    Returns {"num_frames": int, "bodies_per_frame": int32 (F,), "body_id": int64 (B,),
    "body_info": float64 (B, 9), "joints": float32 (B, J, 12)}.
    """
    src = _Lines(data, name)
    frames = src.integer(src.fields("the frame count", 1)[0], 1)
    if frames > MAX_FRAMES:
        src.fail(f"frame count {frames} exceeds {MAX_FRAMES}")
    bodies_per_frame, body_id, body_info, joints = [], [], [], []
    for f in range(1, frames + 1):
        count = src.integer(src.fields(f"the body count of frame {f}", 1)[0], 1)
        if count > MAX_BODIES_PER_FRAME:
            src.fail(f"{src.what}: {count} bodies (more than {MAX_BODIES_PER_FRAME})")
        bodies_per_frame.append(count)
        for b in range(1, count + 1):
            tok = src.fields(f"the body line of body {b} of frame {f}", 1 + BODY_FIELDS)
            body_id.append(src.integer(tok[0], 1))
            body_info.append([src.number(t, k + 2) for k, t in enumerate(tok[1:])])
            nj = src.integer(src.fields(f"the joint count of body {b} of frame {f}", 1)[0], 1)
            if nj != num_joints:
                src.fail(f"{src.what}: {nj} joints, expected {num_joints}")
            for j in range(1, nj + 1):
                tok = src.fields(f"joint {j} of body {b} of frame {f}", JOINT_FIELDS)
                joints.append([src.float32(t, k + 1) for k, t in enumerate(tok)])
    for k in range(src.line, len(src.lines)):  # only blank lines may follow
        if _SEPARATORS.sub(b"", src.lines[k]):
            src.line = k + 1
            src.fail("unexpected content after the last frame")
    return dict(
        num_frames=frames,
        bodies_per_frame=np.array(bodies_per_frame, np.int32),
        body_id=np.array(body_id, np.int64),
        body_info=np.array(body_info, np.float64).reshape(-1, BODY_FIELDS),
        joints=np.array(joints, np.float64).astype(np.float32).reshape(-1, num_joints, JOINT_FIELDS),
    )


def parse_skeleton_file_py(path: str | Path, num_joints: int = NUM_JOINTS) -> dict:
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    return parse_skeleton_bytes_py(data, path, num_joints)


def parse_skeleton_file(path: str | Path, num_joints: int = NUM_JOINTS, parser: str = "auto") -> dict:
    """Parse one .skeleton file with the C++ parser ('cpp'), the Python one ('python') or
    the C++ one when built ('auto')."""
    if parser not in ("auto", "cpp", "python"):
        raise ValueError(f"parser must be 'auto', 'cpp' or 'python', got {parser!r}")
    mod = _cpp() if parser != "python" else None
    if mod is None:
        if parser == "cpp":
            from .. import _ext

            raise RuntimeError(f"the C++ parser is not available: {_ext.load_error() or 'msclr._C lacks it'}")
        return parse_skeleton_file_py(path, num_joints)
    try:
        return mod.parse_ntu_skeleton_file(str(path), num_joints)
    except ValueError as e:  # msclr._C.SkeletonParseError
        raise SkeletonParseError(str(e)) from None


def parse_skeleton_bytes(data: bytes, name: str = "<bytes>", num_joints: int = NUM_JOINTS) -> dict:
    """The C++ parser on bytes in memory (tests, fuzzing)."""
    mod = _cpp()
    if mod is None:
        raise RuntimeError("the C++ parser is not available (msclr._C is not built)")
    try:
        return mod.parse_ntu_skeleton_bytes(data, name, num_joints)
    except ValueError as e:
        raise SkeletonParseError(str(e)) from None


# ----------------------------------------------------------------------------- bodies


@dataclass
class Track:
    """All appearances of one body ID: joints (n, 25, 3) and the frame indices the NTU
    scripts give it (consecutive from its first valid frame)."""

    body_id: int
    joints: np.ndarray
    start: int
    motion: float = 0.0

    @property
    def length(self) -> int:
        return self.joints.shape[0]

    @property
    def end(self) -> int:
        return self.start + self.length - 1


def tracks_from_parsed(parsed: dict) -> tuple[list[Track], int]:
    """Tracks in order of first appearance, and the number of frames that have a body."""
    per_frame = parsed["bodies_per_frame"]
    if per_frame.size == 0 or not (per_frame > 0).any():
        return [], 0
    has_body = per_frame > 0
    valid_index = np.cumsum(has_body) - 1  # index among frames with a body
    frame_of_body = np.repeat(np.arange(per_frame.size), per_frame)
    ids = parsed["body_id"]
    xyz = parsed["joints"][:, :, :3]
    _, first = np.unique(ids, return_index=True)
    tracks = []
    for i in np.sort(first):
        rows = np.flatnonzero(ids == ids[i])
        tracks.append(Track(int(ids[i]), xyz[rows], int(valid_index[frame_of_body[rows[0]]])))
    if len(tracks) > 1:
        for t in tracks:
            t.motion = float(np.sum(np.var(t.joints.reshape(-1, 3), axis=0)))
    return tracks, int(has_body.sum())


def _spread_valid(joints: np.ndarray) -> np.ndarray:
    x, y = joints[:, :, 0], joints[:, :, 1]
    return (x.max(1) - x.min(1)) <= NOISE_SPR_THRES1 * (y.max(1) - y.min(1))


def denoise(tracks: list[Track]) -> tuple[list[Track], list[str]]:
    """The length, spread and motion rules; returns tracks ranked by motion, and notes."""
    notes = []
    if len(tracks) <= 1:
        return list(tracks), notes
    kept = [t for t in tracks if t.length > NOISE_LEN_THRES]
    for t in tracks:
        if t.length <= NOISE_LEN_THRES:
            notes.append(f"body {t.body_id}: dropped, {t.length} frames (length rule)")
    if not kept:
        longest = max(tracks, key=lambda t: t.length)
        notes.append(f"every body has <= {NOISE_LEN_THRES} frames: kept the longest, {longest.body_id}")
        return [longest], notes
    if len(kept) == 1:
        return kept, notes
    survivors = list(kept)
    for t in kept:
        if len(survivors) == 1:
            break
        good = _spread_valid(t.joints)
        noisy = t.length - int(good.sum())
        if noisy == 0:
            continue
        if noisy / t.length >= NOISE_SPR_THRES2:
            survivors.remove(t)
            notes.append(f"body {t.body_id}: dropped, {noisy}/{t.length} frames wider than tall (spread rule)")
        else:
            t.motion = min(t.motion, float(np.sum(np.var(t.joints[good].reshape(-1, 3), axis=0))))
    return sorted(survivors, key=lambda t: t.motion, reverse=True), notes  # stable: ties keep order


def select_bodies(parsed: dict, max_bodies: int = 2) -> tuple[np.ndarray, list[str]]:
    """(3, T, 25, max_bodies) float32 of the chosen actors (see the module docstring)."""
    if max_bodies != 2:
        raise ValueError("the NTU body selection chooses 2 actors")
    tracks, num_frames = tracks_from_parsed(parsed)
    if not tracks:
        raise ValueError("no body in any frame")
    out = np.zeros((num_frames, 2, NUM_JOINTS, 3), np.float32)
    if len(tracks) == 1:
        t = tracks[0]
        out[t.start : t.end + 1, 0] = t.joints
        return out.transpose(3, 0, 2, 1).copy(), []
    ranked, notes = denoise(tracks)
    actor1 = ranked[0]
    out[actor1.start : actor1.end + 1, 0] = actor1.joints
    if len(ranked) > 1:
        s1, e1 = actor1.start, actor1.end
        s2, e2 = 0, 0  # the scripts' initial (virtual) interval of actor 2
        for t in ranked[1:]:
            if min(e1, t.end) - max(s1, t.start) <= 0:  # no overlap with actor 1: joins actor 1
                out[t.start : t.end + 1, 0] = t.joints
                s1, e1 = min(t.start, s1), max(t.end, e1)
            elif min(e2, t.end) - max(s2, t.start) <= 0:  # joins actor 2
                out[t.start : t.end + 1, 1] = t.joints
                s2, e2 = min(t.start, s2), max(t.end, e2)
            else:
                notes.append(f"body {t.body_id}: dropped, overlaps both actors")
    # frames in which both actors are missing
    keep = out.reshape(num_frames, -1).sum(axis=1) != 0
    if not keep.all():
        notes.append(f"{int((~keep).sum())} frame(s) without either actor removed")
        out = out[keep]
    if out.shape[0] == 0:
        raise ValueError("no frame left after denoising")
    return out.transpose(3, 0, 2, 1).copy(), notes


# ----------------------------------------------------------------------------- normalisation


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
    use = parser
    if parser == "auto":
        use = "cpp" if cpp_parser_available() else "python"
        if use == "python":
            from .. import _ext

            warnings.warn(f"msclr: the C++ .skeleton parser is unavailable ({_ext.load_error()}); using the Python one")
    report.parser = use

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

    key = _config_key(benchmark, normalize, files)
    partial = out / ".partial"
    if (out / "meta.json").exists() and not overwrite:
        from .store import open_store

        store = open_store(out)
        if store.meta.get("ntu", {}).get("config_key") == key:
            log(f"{out}: already prepared from these files; nothing to do")
            report.up_to_date, report.samples = True, len(store)
            report.skipped = list(store.meta.get("skipped", []))
            report.seconds = time.perf_counter() - t0
            return store, report
        raise ValueError(f"{out} already holds another store; use --overwrite to replace it")
    partial.mkdir(parents=True, exist_ok=True)
    cfg_file = partial / "config.json"
    if cfg_file.exists() and json.loads(cfg_file.read_text()).get("key") != key:
        log("the inputs or options changed since the interrupted run: starting over")
        shutil.rmtree(partial)
        partial.mkdir(parents=True)
    atomic_write_json(cfg_file, {"key": key, "benchmark": benchmark, "normalize": normalize})

    chunks = [files[i : i + chunk_size] for i in range(0, len(files), chunk_size)]
    done = {i for i in range(len(chunks)) if (partial / f"chunk_{i:05d}.npz").exists()}
    report.resumed_chunks = len(done)
    if done:
        log(f"resuming: {len(done)} of {len(chunks)} chunk(s) already done")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), initial=sum(len(chunks[i]) for i in done), unit="file", desc=f"NTU {benchmark}")
    workers = workers or min(32, os.cpu_count() or 1)
    lock = threading.Lock()

    def work(item):
        index, (name, path) = item
        try:
            x, notes = process_file(path, normalize, use)
            result = (index, x, "; ".join(notes))
        except (ValueError, OSError) as e:  # SkeletonParseError is a ValueError
            result = (index, None, str(e) if isinstance(e, SkeletonParseError) else f"{path}: {e}")
        if bar is not None:
            with lock:
                bar.update(1)
        return result

    processed = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for ci, chunk in enumerate(chunks):
            if ci in done:
                continue
            if stop_after_chunks is not None and processed >= stop_after_chunks:
                if bar is not None:
                    bar.close()
                report.seconds = time.perf_counter() - t0
                return None, report
            base = ci * chunk_size
            results = list(pool.map(work, enumerate(chunk, start=base)))
            _save_chunk(partial / f"chunk_{ci:05d}.npz", results)
            processed += 1
    if bar is not None:
        bar.close()

    # Assemble the store from the chunks.
    metas, lengths_all = [], {}
    for ci in range(len(chunks)):
        _, meta = _load_chunk(partial / f"chunk_{ci:05d}.npz")
        metas.append(meta)
        for m in meta:
            if m["ok"]:
                lengths_all[m["index"]] = m["length"]
            else:
                report.skipped.append({"sample": files[m["index"]][0].name, "reason": m["text"]})
    good = sorted(lengths_all)
    if not good:
        raise ValueError(f"none of the {len(files)} files could be read (first error: {report.skipped[0]['reason']})")
    row_of = {g: r for r, g in enumerate(good)}
    names = [files[g][0] for g in good]
    t_max = max(300, max(lengths_all.values()))
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
                parser=use,
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
    for ci in range(len(chunks)):
        data, meta = _load_chunk(partial / f"chunk_{ci:05d}.npz")
        offset = 0
        for m in meta:
            if not m["ok"]:
                continue
            r, n = row_of[m["index"]], m["length"]
            arr[r, :, :n] = data[:, offset : offset + n]
            lengths[r] = n
            offset += n
    builder.commit("ntu25", lengths, unit="m", note="NTU RGB+D Kinect v2 joints")
    store = builder.finish()
    shutil.rmtree(partial, ignore_errors=True)
    report.samples = len(good)
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
