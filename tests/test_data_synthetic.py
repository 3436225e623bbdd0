"""Synthetic multi-skeleton data: one kinematic body rendered into every built-in convention."""

from __future__ import annotations

import numpy as np
import pytest

from msclr import skeletons
from msclr.data import open_store
from msclr.data.synthetic import (
    CLASS_NAMES,
    JOINT_MAPS,
    MAX_CLASSES,
    SITES,
    SYNTHETIC_CONVENTIONS,
    VIEW_YAW_DEG,
    generate,
    make_synthetic_store,
)

BUILTINS = ["ntu25", "kinect_v1_20", "smpl24", "smplx42", "berkeley_mhad43", "coco17", "h36m17", "openpose18"]
INTERACTIONS = [CLASS_NAMES.index("handshake"), CLASS_NAMES.index("push the other person")]


@pytest.fixture(scope="module")
def gen():
    return generate(num_samples=320, T=40, seed=3)


def test_every_builtin_convention_has_a_joint_map():
    assert sorted(SYNTHETIC_CONVENTIONS) == sorted(BUILTINS)
    for conv in BUILTINS:
        assert tuple(JOINT_MAPS[conv]) == skeletons.get(conv).joints  # every joint, in order
        assert all(site in SITES for site in JOINT_MAPS[conv].values())


def test_shapes_labels_lengths(gen):
    assert MAX_CLASSES >= 10 and len(CLASS_NAMES) == MAX_CLASSES
    n, T = 320, 40
    assert gen["labels"].shape == (n,) and set(gen["labels"].tolist()) == set(range(MAX_CLASSES))
    assert gen["lengths"].min() >= T // 3 and gen["lengths"].max() <= T
    assert len(set(gen["lengths"].tolist())) > 5  # speeds differ
    for conv in BUILTINS:
        d = gen["data"][conv]
        assert d.shape == (n, 3, T, skeletons.get(conv).num_joints, 2) and d.dtype == np.float32
        assert np.isfinite(d).all()
        for i in range(0, n, 7):  # zero after the valid part, non-zero inside
            L = gen["lengths"][i]
            assert not d[i, :, L:].any()
            assert (np.abs(d[i, :, :L, :, 0]).sum(axis=(0, 2)) > 0).all()


def test_second_person_only_in_interactions(gen):
    for conv in ("ntu25", "smplx42"):
        d = gen["data"][conv]
        inter = np.isin(gen["labels"], INTERACTIONS)
        assert not d[~inter, ..., 1].any()
        assert (np.abs(d[inter, ..., 1]).reshape(inter.sum(), -1).max(axis=1) > 0.1).all()


def test_deterministic_by_seed():
    a = generate(num_samples=40, T=24, seed=7, conventions=["coco17"])
    b = generate(num_samples=40, T=24, seed=7, conventions=["coco17"])
    c = generate(num_samples=40, T=24, seed=8, conventions=["coco17"])
    np.testing.assert_array_equal(a["data"]["coco17"], b["data"]["coco17"])
    assert not np.array_equal(a["data"]["coco17"], c["data"]["coco17"])


def _joint(gen, conv, name):
    return gen["data"][conv][:, :, :, skeletons.get(conv).index(name), 0]


def test_conventions_render_the_same_motion(gen):
    """A joint that several conventions share lands in the same place (up to sensor noise)."""
    valid = np.arange(40)[None, :] < gen["lengths"][:, None]
    pairs = [
        (("ntu25", "elbow_left"), ("coco17", "left_elbow")),
        (("ntu25", "knee_right"), ("smpl24", "right_knee")),
        (("smplx42", "nose"), ("coco17", "nose")),
        (("h36m17", "left_wrist"), ("openpose18", "left_wrist")),
        (("kinect_v1_20", "head"), ("ntu25", "head")),
        (("berkeley_mhad43", "left_heel"), ("smplx42", "left_heel")),
    ]
    for (c1, j1), (c2, j2) in pairs:
        diff = np.linalg.norm(_joint(gen, c1, j1) - _joint(gen, c2, j2), axis=1)[valid]
        assert np.median(diff) < 0.03, (c1, j1, c2, j2, np.median(diff))
    # ... while different anatomical definitions stay apart (Kinect palm centre vs SMPL wrist).
    d = np.linalg.norm(_joint(gen, "ntu25", "hand_left") - _joint(gen, "smpl24", "left_wrist"), axis=1)[valid]
    assert np.median(d) > 0.04


def test_left_right_and_up_in_camera_space(gen):
    """Camera space as Kinect: y up; a person facing the camera has the left side at smaller x.

    Every flip pair of every convention is checked, so a swapped joint map would fail."""
    front = gen["cameras"] == 2  # 0 degrees yaw
    single = ~np.isin(gen["labels"], INTERACTIONS + [CLASS_NAMES.index("turn around")])
    rows = np.flatnonzero(front & single)
    assert VIEW_YAW_DEG[2] == 0.0 and rows.size > 10
    for conv in BUILTINS:
        c = skeletons.get(conv)
        d = gen["data"][conv][rows, :, 0, :, 0]  # first frame (idle lead-in), (n, 3, V)
        for v, f in enumerate(c.flip):
            if v != f and "left" in c.joints[v]:
                assert (d[:, 0, v] < d[:, 0, f]).mean() > 0.9, (conv, c.joints[v])
        head = [j for j in ("head", "nose", "head_top", "bmhad_head") if j in c.joints][0]
        foot = [j for j in ("left_ankle", "ankle_left", "left_foot") if j in c.joints][0]
        assert (d[:, 1, c.index(head)] > d[:, 1, c.index(foot)] + 1.0).all(), conv


def test_bones_are_rigid(gen):
    """The body is kinematic: a forearm keeps its length through the motion (up to noise)."""
    lab = gen["labels"]
    for conv, a, b in [("smpl24", "left_elbow", "left_wrist"), ("ntu25", "knee_right", "ankle_right")]:
        for i in np.flatnonzero(lab == 0)[:5]:
            L = gen["lengths"][i]
            seg = np.linalg.norm(_joint(gen, conv, a)[i, :, :L] - _joint(gen, conv, b)[i, :, :L], axis=0)
            assert seg.std() < 0.02 and 0.15 < seg.mean() < 0.5


def test_classes_are_clearly_different(gen):
    """Nearest neighbour on crude pose features already separates the classes across subjects."""
    d, L, lab = gen["data"]["ntu25"][..., 0], gen["lengths"], gen["labels"]
    feats = []
    for i in range(len(d)):
        x = d[i][:, np.linspace(0, L[i] - 1, 12).round().astype(int)]  # (3, 12, V)
        x = x - x.mean(axis=(1, 2), keepdims=True)
        radius = np.sqrt(x[0] ** 2 + x[2] ** 2)  # distance from the vertical axis: view-invariant
        feats.append(np.concatenate([x[1].ravel(), radius.ravel()]))
    f = np.array(feats)
    train = gen["subjects"] <= 7
    dist = ((f[~train][:, None] - f[train][None]) ** 2).sum(-1)
    acc = (lab[train][dist.argmin(1)] == lab[~train]).mean()
    assert acc > 0.9, acc


def test_store_splits_and_meta(tmp_path):
    s = make_synthetic_store(
        tmp_path / "syn", num_samples=60, T=24, seed=1, num_classes=10, conventions=["ntu25", "coco17"]
    )
    assert s is not None and open_store(tmp_path / "syn").conventions == ["ntu25", "coco17"]
    assert s.num_classes == 10 and s.class_names == CLASS_NAMES[:10]
    assert s.labels.max() == 9
    for name in ("xsub", "xview"):
        tr, te = s.split(name, "train"), s.split(name, "test")
        assert len(tr) + len(te) == 60 and not set(tr) & set(te)
    subj = s.sample_info["subject"]
    assert set(subj[s.split("xsub", "train")]) <= set(range(1, 8))
    assert set(s.sample_info["camera"][s.split("xview", "train")]) <= {2, 3}
    assert s.meta["generator"]["seed"] == 1
    assert s.info("coco17")["unit"] == "m"


@pytest.mark.parametrize("kw", [dict(num_classes=9), dict(num_classes=MAX_CLASSES + 1), dict(conventions=["nope"])])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        generate(num_samples=10, T=16, **kw)


def test_style_varies_the_motion_per_sample_and_zero_keeps_the_templates():
    base = generate(num_samples=48, T=32, seed=5, normalize=True)
    same = generate(num_samples=48, T=32, seed=5, normalize=True, style=0.0)
    styled = generate(num_samples=48, T=32, seed=5, normalize=True, style=1.0)
    again = generate(num_samples=48, T=32, seed=5, normalize=True, style=1.0)
    for conv in base["data"]:
        assert np.array_equal(base["data"][conv], same["data"][conv])  # style 0: the stream as before
        assert np.array_equal(styled["data"][conv], again["data"][conv])  # deterministic in the seed
        assert np.isfinite(styled["data"][conv]).all()
    x0, x1 = base["data"]["ntu25"][..., 0], styled["data"]["ntu25"][..., 0]
    valid = np.arange(32)[None, :] < base["lengths"][:, None]
    # every sample moves differently, by centimetres to decimetres, not metres
    per_sample = np.abs(x1 - x0).transpose(0, 2, 1, 3)[valid].reshape(-1).mean()
    assert 0.005 < per_sample < 0.2, per_sample
    # same class, same subject template: the styled samples of a class differ more among themselves
    spread0 = np.std(x0[base["labels"] == 0], axis=0).mean()
    spread1 = np.std(x1[styled["labels"] == 0], axis=0).mean()
    assert spread1 > spread0
    with pytest.raises(ValueError, match="style"):
        generate(num_samples=4, T=16, style=1.5)
