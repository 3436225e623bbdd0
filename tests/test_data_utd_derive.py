"""UTD-MHAD importer (the real dataset when present, docs/architecture.md section 8; hand-made .mat files always),
derived conventions, and the prepare CLI for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from msclr import skeletons
from msclr.data import derive, open_store, utd_mhad
from msclr.data.synthetic import generate, make_synthetic_store
from msclr.prepare import main as prepare_main


def _find_utd() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    for base in [root, *root.parents]:
        cand = base / "shared" / "data" / "utd_mhad"
        if cand.is_dir():
            return cand
    return None


UTD = _find_utd()


def _write_mat(path: Path, T=30, seed=0, **override):
    d = np.random.default_rng(seed).normal(size=(20, 3, T))
    scipy.io.savemat(path, override or {"d_skel": d})
    return d


@pytest.mark.skipif(UTD is None, reason="the UTD-MHAD data (docs/architecture.md section 8) is not present")
def test_real_utd_mhad(tmp_path):
    rc = prepare_main(["utd-mhad", "--raw", str(UTD), "--out", str(tmp_path / "utd"), "--derive", "all", "--strict"])
    assert rc == 0
    s = open_store(tmp_path / "utd")
    assert len(s) == 864 and s.num_classes == 27 and len(s.class_names) == 27
    assert np.bincount(s.labels).tolist() == [32] * 27
    tr, te = s.split("xsub", "train"), s.split("xsub", "test")
    assert len(tr) == len(te) == 432
    assert set(s.sample_info["subject"][tr]) == {1, 3, 5, 7}
    L = s.lengths("kinect_v1_20")
    assert L.min() == 41 and L.max() == 125 and abs(L.mean() - 67.78) < 0.01
    # values are the file's, joint-for-joint
    i = s.sample_ids.index("a10_s2_t3")
    d = scipy.io.loadmat(UTD / "a10_s2_t3_skeleton.mat")["d_skel"]
    np.testing.assert_array_equal(
        s.array("kinect_v1_20")[i, :, : d.shape[2], :, 0], d.transpose(1, 2, 0).astype(np.float32)
    )
    assert "a8_s1_t4" in s.sample_ids  # the file named "a8_s1_t4_skeleton .mat"
    assert s.conventions == ["kinect_v1_20", "body15", "coco13"]
    assert s.meta["derived"] == {"body15": "kinect_v1_20", "coco13": "kinect_v1_20"}
    # Kinect v1: left shoulder at smaller x than the right one (camera space) for most frames
    k = s.array("kinect_v1_20")
    conv = s.convention("kinect_v1_20")
    left, right = conv.index("left_shoulder"), conv.index("right_shoulder")
    assert (k[:, 0, 0, left, 0] < k[:, 0, 0, right, 0]).mean() > 0.95
    # the order of the other joints (the kinect_v1_20 description cites these checks): in the first
    # frame the head is the highest joint (y up) and a foot or ankle the lowest
    y = k[:, 1, 0, :, 0]  # (N, V)
    assert (y.argmax(1) == conv.index("head")).mean() > 0.95
    feet = [conv.index(j) for j in ("left_foot", "right_foot", "left_ankle", "right_ankle")]
    assert np.isin(y.argmin(1), feet).mean() > 0.95


def test_utd_normalize_centres_and_aligns(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    d = _write_mat(raw / "a1_s1_t1_skeleton.mat", T=25) + np.array([0.3, -0.2, 2.5])[None, :, None]
    scipy.io.savemat(raw / "a1_s1_t1_skeleton.mat", {"d_skel": d})
    s = utd_mhad.prepare(raw, tmp_path / "st", normalize=True, log=lambda *_: None)
    x = s.array("kinect_v1_20")[0, :, :25, :, 0]  # (3, T, V)
    conv = s.convention("kinect_v1_20")
    spine, ls, rs = (conv.index(j) for j in ("spine", "left_shoulder", "right_shoulder"))
    np.testing.assert_allclose(x[:, :, spine], 0.0, atol=1e-5)  # every frame centred on the spine
    # as in ST-GCN: the last rotation puts the first frame's shoulder line on the x axis (the
    # hip -> spine alignment before it is exact only for shoulders square to the spine)
    across = x[:, 0, rs] - x[:, 0, ls]
    np.testing.assert_allclose(across / np.linalg.norm(across), [1, 0, 0], atol=1e-5)
    # distances between joints are kept (a rigid motion per frame)
    raw_x = d.transpose(1, 2, 0).astype(np.float32)
    np.testing.assert_allclose(
        np.linalg.norm(x[:, 3, 0] - x[:, 3, 5]), np.linalg.norm(raw_x[:, 3, 0] - raw_x[:, 3, 5]), rtol=1e-4
    )
    assert "pre-normalised" in s.meta["coordinates"]


def test_utd_importer_skips_bad_files(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = _write_mat(raw / "a1_s1_t1_skeleton.mat", T=30)
    _write_mat(raw / "a2_s2_t1_skeleton .mat", T=12, seed=1)  # the archive's odd file name
    _write_mat(raw / "a3_s3_t1_skeleton.mat", d_skel=np.zeros((19, 3, 5)))
    bad = np.ones((20, 3, 4))
    bad[0, 0, 0] = np.nan
    _write_mat(raw / "a4_s4_t1_skeleton.mat", d_skel=bad)
    (raw / "a5_s1_t2_skeleton.mat").write_bytes(b"not a mat file")
    (raw / "notes.txt").write_text("ignored")
    lines = []
    s = utd_mhad.prepare(raw, tmp_path / "st", log=lines.append)
    assert s.sample_ids == ["a1_s1_t1", "a2_s2_t1"]
    assert s.labels.tolist() == [0, 1] and s.lengths("kinect_v1_20").tolist() == [30, 12]
    np.testing.assert_allclose(s.array("kinect_v1_20")[0, :, :, :, 0], good.transpose(1, 2, 0), rtol=1e-6)
    text = "\n".join(lines)
    assert "a3_s3_t1_skeleton.mat" in text and "shape (19, 3, 5)" in text
    assert "a4_s4_t1_skeleton.mat" in text and "NaN" in text
    assert "a5_s1_t2_skeleton.mat" in text
    assert [r["file"].rsplit("/", 1)[1] for r in s.meta["skipped"]] == [
        "a3_s3_t1_skeleton.mat",
        "a4_s4_t1_skeleton.mat",
        "a5_s1_t2_skeleton.mat",
    ]
    with pytest.raises(ValueError, match="3 file"):
        utd_mhad.prepare(raw, tmp_path / "st2", strict=True, log=lines.append)
    assert prepare_main(["utd-mhad", "--raw", str(raw), "--out", str(tmp_path / "st3"), "--strict"]) == 1
    assert prepare_main(["utd-mhad", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "st4")]) == 2


def test_joint_matrices_are_honest_maps():
    for src, dst in derive.JOINT_MAPS:
        W = derive.joint_matrix(src, dst)
        assert W.shape == (derive.target_convention(dst).num_joints, skeletons.get(src).num_joints)
        np.testing.assert_allclose(W.sum(1), 1.0)  # every target joint: one joint or a mean
        assert (W >= 0).all()
    with pytest.raises(ValueError, match="no honest joint map from 'kinect_v1_20' to 'ntu25'"):
        derive.joint_matrix("kinect_v1_20", "ntu25")
    assert set(derive.derivable("ntu25")) == {"kinect_v1_20", "body15", "coco13"}


def test_derived_conventions_flip_like_their_source():
    """Left/right maps onto left/right: flipping commutes with deriving."""
    for src, dst in derive.JOINT_MAPS:
        W = derive.joint_matrix(src, dst)
        s_flip = np.array(skeletons.get(src).flip)
        d_flip = np.array(derive.target_convention(dst).flip)
        np.testing.assert_array_equal(W[d_flip][:, s_flip], W, err_msg=f"{src}->{dst}")


def test_derive_matches_direct_rendering():
    """On synthetic data (all conventions rendered from one body), ntu25 -> kinect_v1_20
    gives what the generator rendered for kinect_v1_20 (same anatomical points) up to
    the sensor noise, and every path to body15 agrees within a few centimetres."""
    g = generate(num_samples=48, T=24, seed=5)
    valid = np.arange(24)[None, :] < g["lengths"][:, None]
    d = derive.apply_joint_map(g["data"]["ntu25"], derive.joint_matrix("ntu25", "kinect_v1_20"))
    err = np.linalg.norm(d - g["data"]["kinect_v1_20"], axis=1)[..., 0]  # (N, T, V)
    assert np.median(err[valid]) < 0.035  # two independent sensor noises (up to 1.4 cm each per axis)
    swapped = derive.apply_joint_map(g["data"]["ntu25"], derive.joint_matrix("ntu25", "kinect_v1_20")[::-1])
    assert np.median(np.linalg.norm(swapped - g["data"]["kinect_v1_20"], axis=1)[..., 0][valid]) > 0.3
    bodies = {
        src: derive.apply_joint_map(g["data"][src], derive.joint_matrix(src, "body15"))
        for src in ("ntu25", "kinect_v1_20", "smpl24", "smplx42", "h36m17", "coco17", "openpose18")
    }
    for src, b in bodies.items():
        err = np.linalg.norm(b - bodies["smpl24"], axis=1)[..., 0][valid]  # (samples*frames, 15)
        assert np.median(err) < 0.06, (src, np.median(err, axis=0))


def test_derive_into_store_and_cli(tmp_path):
    s = make_synthetic_store(tmp_path / "syn", num_samples=20, T=16, conventions=["ntu25", "smplx42"], num_classes=10)
    assert prepare_main(["derive", "--store", str(tmp_path / "syn"), "--from", "ntu25", "--to", "body15"]) == 0
    s = derive.derive(s, "smplx42", ["coco17"])
    s = open_store(tmp_path / "syn")
    assert s.conventions == ["ntu25", "smplx42", "body15", "coco17"]
    assert s.meta["derived"] == {"body15": "ntu25", "coco17": "smplx42"}
    info = s.info("body15")
    assert info["derived_from"] == "ntu25" and info["derivation"]["joint_map"]["neck"] == "spine_shoulder"
    assert info["convention_file"] == "conventions/body15.json"
    assert s.convention("body15").num_joints == 15
    np.testing.assert_array_equal(s.lengths("body15"), s.lengths("ntu25"))
    W = derive.joint_matrix("ntu25", "body15")
    np.testing.assert_allclose(s.array("body15")[3], derive.apply_joint_map(s.array("ntu25")[3:4], W)[0], atol=1e-6)
    with pytest.raises(ValueError, match="no convention 'kinect_v1_20' to derive from"):
        derive.derive(s, "kinect_v1_20")


def test_synthetic_cli(tmp_path, capsys):
    rc = prepare_main(
        ["synthetic", "--out", str(tmp_path / "s"), "--num-samples", "30", "--frames", "16", "--conventions", "coco17"]
    )
    assert rc == 0 and "Store(" in capsys.readouterr().out
    assert open_store(tmp_path / "s").conventions == ["coco17"]
