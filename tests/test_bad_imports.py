"""`python -m msclr.prepare folder` ("bring your own") trusts nothing in the folder.

One table, as tests/test_bad_inputs.py: each row breaks one thing of a valid folder and must
fail with exit status 2 and one line naming the file (and the sample id or field), before
anything is written and without reading outside the folder. Then what is accepted with a
warning (all-zero frames, persons cut on request, a split without test rows), convention.yaml,
--normalize, and derivation from a user-defined convention (by joint name, or a clear error).
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from msclr.data import ntu, open_store
from msclr.prepare import main as prepare_main

TRIPOD = dict(
    name="byo_tripod",
    joints=["root", "a", "b", "c"],
    bones=[["a", "root"], ["b", "root"], ["c", "root"]],
    centre="root",
    flip_pairs=[["a", "b"]],
    unit="m",
)
V = 4


def _seq(rng, T=6, M=None, C=3):
    shape = (T, V, C) if M is None else (T, M, V, C)
    return rng.normal(size=shape).astype(np.float32)


def make_folder(root, convention=TRIPOD, rows=None, arrays=None):
    """A valid folder: four samples, one split with train and test rows."""
    f = root / "mine"
    (f / "samples").mkdir(parents=True)
    if convention is not None:
        (f / "convention.json").write_text(json.dumps(convention))
    rows = rows or ["sample_id,label,xsub", "s0,0,train", "s1,1,train", "s2,1,test", "s3,0,test"]
    (f / "labels.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    arrays = arrays if arrays is not None else {f"s{i}": _seq(rng, T=5 + i, M=1 + i % 2) for i in range(4)}
    for sid, a in arrays.items():
        np.save(f / "samples" / f"{sid}.npy", a)
    return f


def _labels(f, *rows):
    (f / "labels.csv").write_text("\n".join(rows) + "\n")


def _sample(name):
    def put(f, value):
        path = f / "samples" / f"{name}.npy"
        path.unlink(missing_ok=True)
        if callable(value):
            value(path)
        else:
            np.save(path, value)

    return put


s1 = _sample("s1")
GOOD = np.ones((5, V, 3), np.float32)


def traversal(f):
    """A sample file outside the folder, at the place the id points to: it must not be read."""
    outside = f.parent / "x" / "samples"
    outside.mkdir(parents=True)
    np.save(outside / "s0.npy", GOOD)
    _labels(f, "sample_id,label", "../../x/samples/s0,0")


def absolute(f):
    _labels(f, "sample_id,label", f"{f.parent}/x/s0,0")


def symlink_out(f):
    np.save(f.parent / "elsewhere.npy", GOOD)
    (f / "samples" / "s1.npy").unlink()
    os.symlink(f.parent / "elsewhere.npy", f / "samples" / "s1.npy")


def truncated(path):
    np.save(path, np.ones((50, V, 3), np.float32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def pickled(path):
    with open(path, "wb") as fh:
        pickle.dump({"joints": [1, 2, 3]}, fh)


def object_dtype(path):
    np.save(path, np.array([np.ones((3, V, 3)), None], dtype=object), allow_pickle=True)


def npz_named_npy(path):
    with open(path, "wb") as fh:
        np.savez(fh, x=GOOD)


def two_convention_files(f):
    (f / "convention.yaml").write_text((f / "convention.json").read_text())


def bad_yaml(f):
    (f / "convention.json").unlink()
    (f / "convention.yaml").write_text("name: [unclosed\n")


def with_nan(path):
    a = GOOD.copy()
    a[2, 1, 0] = np.nan
    np.save(path, a)


def all_zero_frames_only(path):
    np.save(path, np.zeros((5, V, 3), np.float32))


# (id, what is done to a valid folder, extra arguments, message fragment, file the message names)
ROWS = [
    ("id-traversal", traversal, [], "is not a plain name", "labels.csv:2"),
    ("id-absolute", absolute, [], "is not a plain name", "labels.csv:2"),
    ("symlink-outside", symlink_out, [], "outside", "s1.npy"),
    ("complex", lambda f: s1(f, GOOD.astype(np.complex64)), [], "complex", "s1.npy"),
    ("strings", lambda f: s1(f, np.full((5, V, 3), "a")), [], "string", "s1.npy"),
    ("bool", lambda f: s1(f, GOOD > 0), [], "bool", "s1.npy"),
    ("object-dtype", lambda f: s1(f, object_dtype), [], "not a readable .npy array", "s1.npy"),
    ("pickled", lambda f: s1(f, pickled), [], "not a readable .npy array", "s1.npy"),
    ("truncated", lambda f: s1(f, truncated), [], "not a readable .npy array", "s1.npy"),
    ("npz-under-npy-name", lambda f: s1(f, npz_named_npy), [], ".npz archive", "s1.npy"),
    ("text-file", lambda f: s1(f, lambda p: p.write_text("1 2 3\n")), [], "not a readable .npy array", "s1.npy"),
    ("no-frames", lambda f: s1(f, np.zeros((0, V, 3), np.float32)), [], "no frames (T = 0)", "s1.npy"),
    ("no-persons", lambda f: s1(f, np.zeros((5, 0, V, 3), np.float32)), [], "M = 0", "s1.npy"),
    ("no-channels", lambda f: s1(f, np.zeros((5, V, 0), np.float32)), [], "C = 0", "s1.npy"),
    ("empty-1d", lambda f: s1(f, np.zeros((0,), np.float32)), [], "expected (T, V, C)", "s1.npy"),
    ("all-zero", lambda f: s1(f, all_zero_frames_only), [], "every value is 0", "s1.npy"),
    ("nan", lambda f: s1(f, with_nan), [], "NaN/inf", "s1.npy"),
    ("wrong-joints", lambda f: s1(f, np.ones((5, 5, 3), np.float32)), [], "V = 5 joints", "s1.npy"),
    ("other-channels", lambda f: s1(f, np.ones((5, V, 2), np.float32)), [], "C = 2 channels", "s1.npy"),
    (
        "more-persons-than-m",
        lambda f: s1(f, np.ones((5, 3, V, 3), np.float32)),
        [],
        "3 persons, more than --persons 2",
        "s1.npy",
    ),
    ("missing-sample", lambda f: (f / "samples" / "s1.npy").unlink(), [], "is missing", "s1.npy"),
    ("labels-header-only", lambda f: _labels(f, "sample_id,label,xsub"), [], "no sample rows", "labels.csv"),
    ("labels-empty", lambda f: (f / "labels.csv").write_text(""), [], "empty file", "labels.csv"),
    ("labels-bad-header", lambda f: _labels(f, "id,label", "s0,0"), [], "must start with", "labels.csv"),
    ("labels-not-int", lambda f: _labels(f, "sample_id,label", "s0,zero"), [], "not an integer", "labels.csv:2"),
    ("labels-negative", lambda f: _labels(f, "sample_id,label", "s0,-1"), [], "is negative", "labels.csv:2"),
    ("labels-duplicate", lambda f: _labels(f, "sample_id,label", "s0,0", "s0,1"), [], "repeats line 2", "labels.csv:3"),
    (
        "labels-columns",
        lambda f: _labels(f, "sample_id,label,xsub", "s0,0"),
        [],
        "2 columns, the header has 3",
        "labels.csv:2",
    ),
    (
        "split-without-train",
        lambda f: _labels(f, "sample_id,label,xsub", "s0,0,test", "s1,1,"),
        [],
        "split 'xsub' has no 'train' row",
        "labels.csv",
    ),
    ("split-value", lambda f: _labels(f, "sample_id,label,xsub", "s0,0,val"), [], "not train/test/empty", "labels.csv"),
    ("no-convention", lambda f: (f / "convention.json").unlink(), [], "no convention.json", "mine"),
    ("two-conventions", two_convention_files, [], "more than one convention file", "mine"),
    ("bad-yaml", bad_yaml, [], "cannot parse", "convention.yaml"),
    ("classes-short", lambda f: (f / "classes.txt").write_text("only\n"), [], "1 class names", "classes.txt"),
    ("normalize-no-spine", lambda f: None, ["--normalize"], "cannot be ST-GCN pre-normalised", "byo_tripod"),
    ("derive-impossible", lambda f: None, ["--derive", "body15"], "cannot derive 'body15'", "byo_tripod"),
    ("persons-zero", lambda f: None, ["--persons", "0"], "--persons must be >= 1", "--persons"),
    ("out-holds-a-store", lambda f: (f.parent / "store").mkdir(), [], "already holds a store", "store"),
]


@pytest.mark.parametrize(("breaks", "extra", "fragment", "names"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_folder_fails_in_one_line_and_writes_nothing(tmp_path, capsys, breaks, extra, fragment, names):
    f = make_folder(tmp_path)
    breaks(f)
    out = tmp_path / "store"
    if out.is_dir():  # the row wants a store there already
        (out / "meta.json").write_text('{"format": "msclr-store"}')
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    rc = prepare_main(["folder", "--folder", str(f), "--out", str(out), *extra])
    message = capsys.readouterr().err.strip()
    assert rc == 2, message
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message, message
    assert fragment in message and names in message, message
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before, "a failed import wrote files"


def test_the_help_describes_the_layout(capsys):
    with pytest.raises(SystemExit):
        prepare_main(["folder", "--help"])
    text = capsys.readouterr().out
    parts = ["labels.csv", "sample_id,label", "samples/<sample_id>.npy", "(T, V, C)", "(T, M, V, C)", "float"]
    parts += ["convention.json", "convention.yaml", "classes.txt", "'train'", "'test'", "--keep-first-persons"]
    for part in parts:
        assert part in text, part


# ---------------------------------------------------------------- accepted, with what is reported


def test_yaml_convention_persons_cut_on_request_and_warnings(tmp_path, capsys):
    rng = np.random.default_rng(1)
    three = _seq(rng, T=7, M=3)
    zero_frames = _seq(rng, T=8)
    zero_frames[[2, 5]] = 0
    f = make_folder(
        tmp_path,
        convention=None,
        rows=["sample_id,label,xsub,pretrain", "s0,0,train,train", "s1,1,train,train", "s2,1,test,train"],
        arrays={"s0": _seq(rng), "s1": three, "s2": zero_frames},
    )
    (f / "convention.yaml").write_text(json.dumps(TRIPOD))  # JSON is YAML
    out = tmp_path / "st"
    assert prepare_main(["folder", "--folder", str(f), "--out", str(out)]) == 2  # 3 persons > 2
    assert "3 persons" in capsys.readouterr().err and not out.exists()
    assert prepare_main(["folder", "--folder", str(f), "--out", str(out), "--keep-first-persons"]) == 0
    text = capsys.readouterr().out
    assert "1 sample(s) had more than 2 persons; kept the first 2 (e.g. 's1' had 3)" in text
    assert "2 all-zero frame(s) in 1 sample(s)" in text
    assert "split 'pretrain' has no 'test' row" in text
    s = open_store(out)
    a = s.array("byo_tripod")
    assert a.shape == (3, 3, 8, V, 2) and s.lengths("byo_tripod").tolist() == [6, 7, 8]
    np.testing.assert_array_equal(a[1, :, :7], three[:, :2].transpose(3, 0, 2, 1))
    np.testing.assert_array_equal(a[2, :, :8, :, 0], zero_frames.transpose(2, 0, 1))


def test_a_person_slot_without_data_is_not_a_person(tmp_path):
    rng = np.random.default_rng(2)
    padded = np.zeros((6, 3, V, 3), np.float32)
    padded[:, 0] = _seq(rng)
    f = make_folder(tmp_path, rows=["sample_id,label", "s0,0"], arrays={"s0": padded})
    assert prepare_main(["folder", "--folder", str(f), "--out", str(tmp_path / "st")]) == 0
    assert open_store(tmp_path / "st").array("byo_tripod").shape[-1] == 1  # nothing lost: the slots were empty


def test_normalize_reuses_the_ntu_pre_normalisation(tmp_path):
    rng = np.random.default_rng(3)
    seqs = {f"s{i}": (rng.normal(size=(9, 20, 3)) + [0.2, 0.1, 3.0]).astype(np.float32) for i in range(2)}
    f = make_folder(tmp_path, convention=None, rows=["sample_id,label", "s0,0", "s1,1"], arrays=seqs)
    out = tmp_path / "st"
    argv = ["folder", "--folder", str(f), "--out", str(out), "--convention", "kinect_v1_20", "--normalize"]
    assert prepare_main(argv) == 0
    got = open_store(out).array("kinect_v1_20")
    joints = ntu.normalization_joints("kinect_v1_20")
    for i, x in enumerate(seqs.values()):
        want = ntu.pre_normalize(x.transpose(2, 0, 1)[..., None], **joints)
        np.testing.assert_array_equal(got[i], want)
    assert np.abs(got[:, :, :, joints["centre"]]).max() < 1e-5  # spine-centred


# ---------------------------------------------------------------- derivation from a user-defined convention

LIMBS = ["shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
BODY = dict(
    name="byo_body",
    joints=["head", "neck", "pelvis", "chest"] + [f"{s}_{j}" for s in ("left", "right") for j in LIMBS],
    bones=[["head", "neck"], ["chest", "neck"], ["pelvis", "chest"]]
    + [[f"{s}_shoulder", "neck"] for s in ("left", "right")]
    + [[f"{s}_hip", "pelvis"] for s in ("left", "right")]
    + [[f"{s}_{b}", f"{s}_{a}"] for s in ("left", "right") for a, b in zip(LIMBS[:2], LIMBS[1:3])]
    + [[f"{s}_{b}", f"{s}_{a}"] for s in ("left", "right") for a, b in zip(LIMBS[3:5], LIMBS[4:6])],
    centre="neck",
    unit="m",
)


def test_user_convention_derives_by_joint_name(tmp_path, capsys):
    rng = np.random.default_rng(4)
    arrays = {f"s{i}": rng.normal(size=(6, 16, 3)).astype(np.float32) for i in range(3)}
    f = make_folder(tmp_path, convention=BODY, rows=["sample_id,label", "s0,0", "s1,1", "s2,0"], arrays=arrays)
    out = tmp_path / "st"
    assert prepare_main(["folder", "--folder", str(f), "--out", str(out), "--derive", "all"]) == 0
    s = open_store(out)
    assert s.conventions == ["byo_body", "body15", "coco13"]
    assert s.meta["derived"] == {"body15": "byo_body", "coco13": "byo_body"}
    assert "same name" in s.info("body15")["derivation"]["rule"]
    src, body = s.convention("byo_body"), s.convention("body15")
    for j in body.joints:  # joint for joint, by name
        np.testing.assert_array_equal(
            s.array("body15")[:, :, :, body.index(j)], s.array("byo_body")[:, :, :, src.index(j)]
        )
    np.testing.assert_array_equal(s.lengths("body15"), s.lengths("byo_body"))


def test_derive_from_a_user_convention_with_nothing_to_map_is_an_error(tmp_path, capsys):
    f = make_folder(tmp_path)
    out = tmp_path / "st"
    assert prepare_main(["folder", "--folder", str(f), "--out", str(out), "--derive", "all"]) == 0
    assert "note: nothing derived" in capsys.readouterr().out  # said, not silent
    meta = (out / "meta.json").read_bytes()
    assert prepare_main(["derive", "--store", str(out), "--from", "byo_tripod"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing to derive from 'byo_tripod'" in err and "body15 lacks" in err and "\n" not in err, err
    assert prepare_main(["derive", "--store", str(out), "--from", "byo_tripod", "--to", "coco13"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot derive 'coco13'" in err and "'head'" in err, err
    assert (out / "meta.json").read_bytes() == meta  # the store is untouched
