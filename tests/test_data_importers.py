"""Importers: st-gcn/AimCLR, CTR-GCN .npz, PySKL .pkl, estimator outputs, bring-your-own folder.

Each format is written from synthetic data the way its tools write it, imported, and
compared value by value with the source."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from msclr import skeletons
from msclr.data import importers, open_store
from msclr.data.synthetic import generate, make_synthetic_store
from msclr.prepare import main as prepare_main


@pytest.fixture(scope="module")
def syn():
    return generate(num_samples=40, T=30, seed=11, conventions=["ntu25", "smplx42", "coco17"])


def test_stgcn(tmp_path, syn):
    data, L, lab = syn["data"]["ntu25"], syn["lengths"], syn["labels"]
    names = [f"S001C001P{i:03d}R001A{lab[i] + 1:03d}.skeleton" for i in range(40)]
    d = tmp_path / "xsub"
    d.mkdir()
    np.save(d / "train_data_joint.npy", data[:30])
    np.save(d / "val_data_joint.npy", data[30:])
    for part, sl in (("train", slice(0, 30)), ("val", slice(30, 40))):
        with open(d / f"{part}_label.pkl", "wb") as f:
            pickle.dump((names[sl], [int(v) for v in lab[sl]]), f)
    np.save(d / "val_num_frame.npy", L[30:])  # AimCLR style, for one part only
    rc = prepare_main(["stgcn", "--data-dir", str(d), "--out", str(tmp_path / "st"), "--derive", "kinect_v1_20"])
    assert rc == 0
    s = open_store(tmp_path / "st")
    assert s.conventions == ["ntu25", "kinect_v1_20"] and s.sample_ids[0] == names[0][: -len(".skeleton")]
    np.testing.assert_array_equal(s.array("ntu25"), data)
    np.testing.assert_array_equal(s.labels, lab)
    np.testing.assert_array_equal(s.lengths("ntu25"), L)  # from num_frame.npy and from the data
    assert s.split("xsub", "train").tolist() == list(range(30)) and s.split("xsub", "test").tolist() == list(
        range(30, 40)
    )


def test_stgcn_refuses_code_in_pickles(tmp_path, syn):
    d = tmp_path / "d"
    d.mkdir()
    np.save(d / "train_data.npy", syn["data"]["ntu25"][:2])

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(d / "train_label.pkl", "wb") as f:
        pickle.dump((["a", "b"], [0, Evil()]), f)
    with pytest.raises(ValueError, match="refusing to load posix.system|refusing to load os.system"):
        importers.import_stgcn(d, tmp_path / "st", parts=["train"])


def test_ctrgcn_npz_streamed_in_chunks(tmp_path, syn):
    data, L, lab = syn["data"]["ntu25"], syn["lengths"], syn["labels"]
    flat = data.transpose(0, 2, 4, 3, 1).reshape(40, 30, 150)  # (N, T, M*V*C), persons, joints, xyz
    onehot = np.eye(16, dtype=np.float32)[lab]
    npz = tmp_path / "NTU60_CS.npz"
    np.savez(npz, x_train=flat[:25], y_train=onehot[:25], x_test=flat[25:], y_test=onehot[25:])
    s = importers.import_ctrgcn(npz, tmp_path / "st", chunk=7)  # chunks that do not divide N
    assert list(s.splits) == ["xsub"] and s.num_classes == 16
    np.testing.assert_array_equal(s.array("ntu25"), data)
    np.testing.assert_array_equal(s.lengths("ntu25"), L)
    np.testing.assert_array_equal(s.labels, lab)
    assert s.sample_ids[25] == "test_000000"
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=flat[:2], y_train=onehot[:2])
    with pytest.raises(ValueError, match="no x_test array"):
        importers.import_ctrgcn(bad, tmp_path / "st2")


def test_pyskl_2d_with_scores(tmp_path, syn):
    coco, L, lab = syn["data"]["coco17"], syn["lengths"], syn["labels"]
    anns = []
    for i in range(40):
        kp = coco[i, :2, : L[i]].transpose(3, 1, 2, 0)  # (M, T, V, 2)
        score = np.full(kp.shape[:3], 0.9, np.float32)
        anns.append(
            dict(frame_dir=f"v{i:03d}", label=int(lab[i]), keypoint=kp, keypoint_score=score, total_frames=int(L[i]))
        )
    split = {"xsub_train": [f"v{i:03d}" for i in range(30)], "xsub_val": [f"v{i:03d}" for i in range(30, 40)]}
    pkl = tmp_path / "ann.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({"split": split, "annotations": anns}, f)
    s = importers.import_pyskl(pkl, tmp_path / "st")
    assert s.conventions == ["coco17"] and s.info("coco17")["channels"] == ["x", "y", "score"]
    a = s.array("coco17")
    assert a.shape == (40, 3, 30, 17, 2)
    np.testing.assert_array_equal(a[5, :2, : L[5]], coco[5, :2, : L[5]])
    assert (a[5, 2, : L[5]] == np.float32(0.9)).all()
    np.testing.assert_array_equal(s.lengths("coco17"), L)
    assert s.split("xsub", "test").tolist() == list(range(30, 40))


def test_estimator_outputs_matched_by_id_in_mm(tmp_path, syn):
    store = make_synthetic_store(tmp_path / "st", num_samples=12, T=20, conventions=["ntu25"], num_classes=10)
    out = tmp_path / "metrabs"
    out.mkdir()
    rng = np.random.default_rng(0)
    truth = {}
    for sid in store.sample_ids[:9]:  # three samples have no estimate
        T = int(rng.integers(10, 25))
        x = rng.normal(size=(T, 1, 42, 3)).astype(np.float32) * 1000  # (T, M, V, C) millimetres
        truth[sid] = x
        if sid.endswith("7"):
            np.savez(out / f"{sid}.npz", poses3d=x)
        else:
            np.save(out / f"{sid}.npy", x[:, 0])  # (T, V, C)
    np.save(out / "not_a_sample.npy", np.zeros((3, 42, 3)))
    log = []
    s = importers.import_estimator(store, out, "smplx42", unit="mm", log=log.append)
    assert s.conventions == ["ntu25", "smplx42"] and s.info("smplx42")["unit"] == "m"
    avail = s.available("smplx42")
    assert avail.sum() == 9 and not avail[9:].any()
    for sid, x in truth.items():
        i = s.sample_ids.index(sid)
        assert s.lengths("smplx42")[i] == x.shape[0]
        np.testing.assert_allclose(
            s.array("smplx42")[i, :, : x.shape[0], :, 0], x[:, 0].transpose(2, 0, 1) / 1000, rtol=1e-6
        )
    assert any("not_a_sample" in line for line in log)
    nan = tmp_path / "nan"
    nan.mkdir()
    bad = np.ones((4, 42, 3), np.float32)
    bad[1, 2, 0] = np.nan
    np.save(nan / f"{store.sample_ids[0]}.npy", bad)
    with pytest.raises(ValueError, match=f"NaN/inf values \\(sample '{store.sample_ids[0]}'\\)"):
        importers.import_estimator(tmp_path / "st", nan, "smplx42")
    with pytest.raises(ValueError, match="shape"):
        importers.import_estimator(tmp_path / "st", nan, "smpl24", nan="zero")
    s = importers.import_estimator(tmp_path / "st", nan, "smplx42", nan="zero", log=log.append)
    assert s.array("smplx42")[0, 0, 1, 2, 0] == 0 and s.available("smplx42").sum() == 1


def test_folder_bring_your_own(tmp_path):
    f = tmp_path / "mine"
    (f / "samples").mkdir(parents=True)
    conv = dict(name="unit_tripod", joints=["root", "a", "b", "c"], bones=[["a", "root"], ["b", "root"], ["c", "root"]],
                centre="root", flip_pairs=[["a", "b"]], unit="mm")  # fmt: skip
    (f / "convention.json").write_text(json.dumps(conv))
    (f / "classes.txt").write_text("sit\nstand\n")
    rows = ["sample_id,label,protocol", "x1,0,train", "x2,1,test", "x3,1,", "x4,0,train"]
    (f / "labels.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    arrays = {
        "x1": rng.normal(size=(5, 4, 3)),
        "x2": rng.normal(size=(7, 2, 4, 3)),
        "x3": rng.normal(size=(3, 4, 3)),
        "x4": rng.normal(size=(6, 1, 4, 3)),
    }
    for k, v in arrays.items():
        np.save(f / "samples" / f"{k}.npy", v)
    rc = prepare_main(["folder", "--folder", str(f), "--out", str(tmp_path / "st")])
    assert rc == 0
    s = open_store(tmp_path / "st")
    assert s.class_names == ["sit", "stand"] and s.labels.tolist() == [0, 1, 1, 0]
    assert s.split("protocol", "train").tolist() == [0, 3] and s.split("protocol", "test").tolist() == [1]
    assert s.convention("unit_tripod").flip == (0, 2, 1, 3)
    assert skeletons.get("unit_tripod").num_joints == 4
    a = s.array("unit_tripod")
    assert a.shape == (4, 3, 7, 4, 2) and s.info("unit_tripod")["unit"] == "m"
    np.testing.assert_allclose(a[1, :, :7, :, 1], arrays["x2"][:, 1].transpose(2, 0, 1) / 1000, rtol=1e-6)
    np.testing.assert_allclose(a[0, :, :5, :, 0], arrays["x1"].transpose(2, 0, 1) / 1000, rtol=1e-6)
    assert s.lengths("unit_tripod").tolist() == [5, 7, 3, 6]
    # errors name the file and line
    (f / "labels.csv").write_text("sample_id,label\nx1,zero\n")
    with pytest.raises(ValueError, match="labels.csv:2: label 'zero' is not an integer"):
        importers.import_folder(f, tmp_path / "st2")
    (f / "labels.csv").write_text("sample_id,label\nx9,0\n")
    with pytest.raises(FileNotFoundError, match="x9.npy is missing"):
        importers.import_folder(f, tmp_path / "st3")
