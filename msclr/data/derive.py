"""Derived conventions: other skeletons computed from the joints a dataset has.

Only what can honestly be derived is offered: every joint of the target is a joint of the
source with the same anatomical meaning, or the mean of two or more source joints where
the target joint lies between them (e.g. COCO has no neck: the neck of `body15` is the
midpoint of the shoulders). Nothing is extrapolated: Kinect v1 (20 joints) cannot give
Kinect v2's hand tips and thumbs, so there is no kinect_v1_20 -> ntu25 map, and Kinect has
no eyes or ears, so NTU gives the COCO-like `coco13` body, not coco17.

A derived convention is stored like any other (same samples, lengths and availability as
its source) and marked in the store: ``meta["conventions"][name]["derived_from"]`` is the
source and ``["derivation"]`` the joint map, ``meta["derived"][name]`` the source.

Targets that are not built-in conventions (`body15`, `coco13`) are defined here and stored
as convention JSON inside the store, which `open_store` registers.

A user-defined source convention (a "bring your own" folder's) has no hand-written map: it
is mapped by joint name. A target is derivable when every one of its joints is a joint of
the source with the same name, which is then taken to mean what the target's joint means
(see the target's description); nothing is averaged or guessed. When no target matches,
`derive` says which joints each candidate lacks instead of doing nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import skeletons
from ..skeletons import Convention
from .store import Store, StoreBuilder, open_store

# ----------------------------------------------------------------------------- targets

_LIMBS = ["shoulder", "elbow", "wrist", "hip", "knee", "ankle"]

BODY15 = skeletons.make_convention(
    name="body15",
    description="Coarse 15-joint body: head, neck, pelvis and the 12 main limb joints",
    source=(
        "msclr: the common denominator of Kinect v1/v2, SMPL/SMPL-X, H36M, COCO and OpenPose "
        "bodies, for multi-skeleton training on single-convention datasets. 'neck' is the base "
        "of the neck between the shoulders, 'pelvis' the centre of the hips, 'head' the centre "
        "of the head."
    ),
    unit="m",
    joints=["head", "neck", "pelvis"] + [f"{s}_{j}" for s in ("left", "right") for j in _LIMBS],
    bones=[
        ("head", "neck"),
        ("pelvis", "neck"),
        ("left_shoulder", "neck"),
        ("right_shoulder", "neck"),
        ("left_elbow", "left_shoulder"),
        ("right_elbow", "right_shoulder"),
        ("left_wrist", "left_elbow"),
        ("right_wrist", "right_elbow"),
        ("left_hip", "pelvis"),
        ("right_hip", "pelvis"),
        ("left_knee", "left_hip"),
        ("right_knee", "right_hip"),
        ("left_ankle", "left_knee"),
        ("right_ankle", "right_knee"),
    ],
    centre="neck",  # chest level, like ntu25's spine_shoulder
    flip_pairs=[(f"left_{j}", f"right_{j}") for j in _LIMBS],
)

COCO13 = skeletons.make_convention(
    name="coco13",
    description="COCO-17 body without the four face keypoints; 'head' stands where COCO has the nose",
    source=(
        "msclr: the COCO-17 keypoints (MS-COCO) that a Kinect skeleton has, in COCO order, with "
        "the Kinect head joint (centre of the head) in place of nose/eyes/ears. Bones and centre "
        "as msclr's coco17 (PYSKL/MMAction2 'coco' tree without the face edges)."
    ),
    unit="m",
    joints=["head"]
    + [f"{s}_{j}" for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle") for s in ("left", "right")],
    bones=[
        ("left_ankle", "left_knee"),
        ("left_knee", "left_hip"),
        ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"),
        ("left_hip", "left_shoulder"),
        ("right_hip", "right_shoulder"),
        ("left_wrist", "left_elbow"),
        ("left_elbow", "left_shoulder"),
        ("right_wrist", "right_elbow"),
        ("right_elbow", "right_shoulder"),
        ("left_shoulder", "head"),
        ("right_shoulder", "head"),
    ],
    centre="head",  # coco17's centre is the nose
    flip_pairs=[(f"left_{j}", f"right_{j}") for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")],
)

EXTRA_CONVENTIONS: dict[str, Convention] = {c.name: c for c in (BODY15, COCO13)}

# ----------------------------------------------------------------------------- joint maps
# target joint -> source joint, or a tuple of source joints to average.


def _same(names, prefix_map=lambda n: n):
    return {n: prefix_map(n) for n in names}


_SIDES = ("left", "right")
_LIMB_JOINTS = [f"{s}_{j}" for s in _SIDES for j in _LIMBS]


def _ntu_limb(name: str) -> str:  # 'left_elbow' -> 'elbow_left' (ntu25 names put the side last)
    side, joint = name.split("_", 1)
    return f"{joint}_{side}"


_NTU_TO_V1 = {
    "head": "head",
    "shoulder_center": "spine_shoulder",  # Kinect SDK v1 ShoulderCenter -> v2 SpineShoulder
    "spine": "spine_mid",  # v1 Spine -> v2 SpineMid
    "hip_center": "spine_base",  # v1 HipCenter -> v2 SpineBase
}
for _s in _SIDES:
    for _j in ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot"):
        _NTU_TO_V1[f"{_s}_{_j}"] = f"{_j}_{_s}"

JOINT_MAPS: dict[tuple[str, str], dict[str, str | tuple[str, ...]]] = {
    # Kinect v2 -> Kinect v1: the SDK's own joint correspondence; every v1 joint exists in v2.
    ("ntu25", "kinect_v1_20"): _NTU_TO_V1,
    ("ntu25", "body15"): {"head": "head", "neck": "spine_shoulder", "pelvis": "spine_base"}
    | {n: _ntu_limb(n) for n in _LIMB_JOINTS},
    ("ntu25", "coco13"): {"head": "head"} | {n: _ntu_limb(n) for n in _LIMB_JOINTS},
    ("kinect_v1_20", "body15"): {"head": "head", "neck": "shoulder_center", "pelvis": "hip_center"}
    | _same(_LIMB_JOINTS),
    ("kinect_v1_20", "coco13"): {"head": "head"} | _same(_LIMB_JOINTS),
    # SMPL / SMPL-X: 'neck' is the SMPL neck joint (base of the neck), 'head' the SMPL head joint.
    ("smpl24", "body15"): {"head": "head", "neck": "neck", "pelvis": "pelvis"} | _same(_LIMB_JOINTS),
    ("smplx42", "body15"): {"head": "head", "neck": "neck", "pelvis": "pelvis"} | _same(_LIMB_JOINTS),
    # SMPL-X has COCO's face keypoints (nose, eyes, ears) as joints of its own.
    ("smplx42", "coco17"): _same(skeletons.get("coco17").joints),
    # H36M: 'head' is the top of the head and 'neck_nose' the nose level; their midpoint is
    # the centre of the head. The thorax is the base of the neck.
    ("h36m17", "body15"): {"head": ("neck_nose", "head"), "neck": "thorax", "pelvis": "pelvis"} | _same(_LIMB_JOINTS),
    # COCO / OpenPose: the centre of the head is between the ears; no neck / pelvis joints in
    # COCO: midpoints of the shoulders / hips.
    ("coco17", "body15"): {
        "head": ("left_ear", "right_ear"),
        "neck": ("left_shoulder", "right_shoulder"),
        "pelvis": ("left_hip", "right_hip"),
    }
    | _same(_LIMB_JOINTS),
    ("coco17", "coco13"): {"head": ("left_ear", "right_ear")} | _same(_LIMB_JOINTS),
    ("openpose18", "body15"): {
        "head": ("left_ear", "right_ear"),
        "neck": "neck",
        "pelvis": ("left_hip", "right_hip"),
    }
    | _same(_LIMB_JOINTS),
}


def target_convention(name: str) -> Convention:
    return EXTRA_CONVENTIONS[name] if name in EXTRA_CONVENTIONS else skeletons.get(name)


def _is_user_defined(name: str) -> bool:
    from ..skeletons.builtin import BUILTIN_SPECS

    return name not in BUILTIN_SPECS and name not in EXTRA_CONVENTIONS


def _by_name_targets() -> list[str]:
    from ..skeletons.builtin import BUILTIN_SPECS

    return sorted(BUILTIN_SPECS) + sorted(EXTRA_CONVENTIONS)


def _missing_by_name(src: Convention, target: str) -> list[str]:
    return [j for j in target_convention(target).joints if j not in src.joints]


def joint_map(source: str | Convention, target: str) -> dict[str, str | tuple[str, ...]]:
    """target joint -> source joint (or joints to average); ValueError saying why there is none."""
    src = skeletons.get(source)
    if (src.name, target) in JOINT_MAPS:
        return JOINT_MAPS[(src.name, target)]
    if _is_user_defined(src.name) and target != src.name:
        if target not in _by_name_targets():
            raise ValueError(f"unknown target convention {target!r}; by-name targets: {_by_name_targets()}")
        missing = _missing_by_name(src, target)
        if not missing:
            return {j: j for j in target_convention(target).joints}
        raise ValueError(
            f"cannot derive {target!r} from the user-defined convention {src.name!r} by joint name: it has no "
            f"joint named {missing} (derivable: {derivable(src) or 'none'})"
        )
    raise ValueError(
        f"no honest joint map from {src.name!r} to {target!r}; from {src.name!r} msclr derives {derivable(src)}"
    )


def derivable(source: str | Convention) -> list[str]:
    """Conventions that can be derived from `source` (by joint name for a user-defined one)."""
    name = source.name if isinstance(source, Convention) else str(source)
    curated = [dst for (src, dst) in JOINT_MAPS if src == name]
    if curated or not _is_user_defined(name):
        return curated
    src = skeletons.get(source)
    return [t for t in _by_name_targets() if t != name and not _missing_by_name(src, t)]


def nothing_derivable(source: str | Convention) -> str:
    """Why nothing can be derived from `source` (for messages), naming the closest targets."""
    src = skeletons.get(source)
    if not _is_user_defined(src.name):
        return f"msclr has no joint map from the built-in convention {src.name!r}"
    lacks = sorted((len(_missing_by_name(src, t)), t) for t in _by_name_targets() if t != src.name)
    closest = "; ".join(f"{t} lacks {_missing_by_name(src, t)}" for _, t in lacks[:2])
    return (
        f"{src.name!r} is user-defined and no convention has all its joint names among {src.name!r}'s "
        f"(maps are by joint name; closest: {closest})"
    )


def joint_matrix(source: str | Convention, target: str) -> np.ndarray:
    """(V_target, V_source) float32 weights: target joint = weighted sum of source joints."""
    mapping = joint_map(source, target)
    src, dst = skeletons.get(source), target_convention(target)
    if set(mapping) != set(dst.joints):
        raise AssertionError(f"joint map {src.name}->{target} does not cover {sorted(set(dst.joints) - set(mapping))}")
    W = np.zeros((dst.num_joints, src.num_joints), np.float32)
    for joint, ref in mapping.items():
        refs = (ref,) if isinstance(ref, str) else ref
        for r in refs:
            W[dst.index(joint), src.index(r)] += 1.0 / len(refs)
    return W


def apply_joint_map(data: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(N, C, T, V_src, M) -> (N, C, T, V_dst, M)."""
    return np.einsum("vw,nctwm->nctvm", W, data, optimize=True).astype(np.float32)


def derive(store: Store | str | Path, source: str, targets: list[str] | None = None, chunk: int = 512) -> Store:
    """Add derived conventions to a store (all that `source` can give when targets is None)."""
    store = store if isinstance(store, Store) else open_store(store)
    if source not in store.conventions:
        raise ValueError(f"store {store.path} has no convention {source!r} to derive from ({store.conventions})")
    src_conv = store.convention(source)
    targets = derivable(src_conv) if targets is None else list(targets)
    if not targets:
        raise ValueError(f"store {store.path}: nothing to derive from {source!r}: {nothing_derivable(src_conv)}")
    own = [t for t in targets if t in store.conventions and not store.is_derived(t)]
    if own:
        raise ValueError(f"store {store.path}: {own} are stored conventions of their own, not derived ones")
    matrices = {target: joint_matrix(src_conv, target) for target in targets}  # every map checked before writing
    builder = StoreBuilder.extend(store.path)
    src = store.array(source)
    for target in targets:
        W = matrices[target]
        conv = target_convention(target)
        n, c, t, _, m = src.shape
        out = builder.allocate(conv, (n, c, t, conv.num_joints, m))
        for start in range(0, n, chunk):  # chunks: NTU arrays do not fit in memory
            out[start : start + chunk] = apply_joint_map(np.asarray(src[start : start + chunk]), W)
        mapping = {j: list(r) if isinstance(r, tuple) else r for j, r in joint_map(src_conv, target).items()}
        by_name = (source, target) not in JOINT_MAPS
        builder.commit(
            conv,
            store.lengths(source),
            store.available(source),
            unit=store.info(source)["unit"],
            derived_from=source,
            derivation={
                "joint_map": mapping,
                "rule": "target joint = the source joint of the same name (user-defined source)"
                if by_name
                else "target joint = source joint, or the mean of the listed ones",
            },
            channels=store.info(source).get("channels"),
        )
    return builder.finish()
