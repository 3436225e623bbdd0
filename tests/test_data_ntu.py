"""NTU RGB+D: .skeleton parsers (C++ and the Python reference), body selection, ST-GCN
pre-normalisation, and `prepare ntu` end to end (skips, resume, splits, CLI)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import NTU_PARSER, needs_ntu_parser
from ntu_files import write_synthetic_skeleton_files

from msclr.data import ntu, open_store
from msclr.prepare import main as prepare_main

PARSERS = ["python"] + (["cpp"] if NTU_PARSER else [])


def joint_line(x, y, z, state=2):
    return f"{x} {y} {z} 250.1 200.2 900.3 500.4 0.9 0.1 0.2 0.3 {state}"


def body_block(body_id, offset=0.0, joints=25, state=2):
    lines = [f"{body_id} 0 1 1 1 1 0 0.01 -0.02 2", str(joints)]
    lines += [joint_line(0.01 * j + offset, 0.1 * j, 3.0 + offset, state) for j in range(joints)]
    return lines


def skeleton_text(frames, eol="\n"):
    """frames: list of lists of (body_id, offset)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, off in bodies:
            lines += body_block(body_id, off)
    return eol.join(lines) + eol


TWO_BODIES_WITH_EMPTY_FRAMES = skeleton_text(
    [[], [(72057594037931101, 0.0)], [], [(72057594037931101, 0.1), (72057594037931102, 1.0)]], eol="\r\n"
)


def parse(text: str | bytes, parser: str, name="snippet.skeleton"):
    data = text.encode() if isinstance(text, str) else text
    if parser == "python":
        return ntu.parse_skeleton_bytes_py(data, name)
    return ntu.parse_skeleton_bytes(data, name)


def assert_same(a, b):
    assert a["num_frames"] == b["num_frames"]
    for k in ("bodies_per_frame", "body_id", "body_info", "joints"):
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k  # bit for bit, -0.0 included


@pytest.mark.parametrize("parser", PARSERS)
def test_two_bodies_and_empty_frames(parser):
    p = parse(TWO_BODIES_WITH_EMPTY_FRAMES, parser)
    assert p["num_frames"] == 4
    assert p["bodies_per_frame"].tolist() == [0, 1, 0, 2]
    assert p["body_id"].tolist() == [72057594037931101, 72057594037931101, 72057594037931102]
    assert p["body_info"].shape == (3, 9) and p["body_info"][0].tolist() == [0, 1, 1, 1, 1, 0, 0.01, -0.02, 2]
    assert p["joints"].shape == (3, 25, 12) and p["joints"].dtype == np.float32
    assert p["joints"][2, 3, :3].tolist() == pytest.approx([1.03, 0.3, 4.0])
    assert p["joints"][0, 0, 11] == 2


@needs_ntu_parser
def test_parsers_agree_on_snippets(tmp_path):
    texts = [
        TWO_BODIES_WITH_EMPTY_FRAMES,
        skeleton_text([]),
        skeleton_text([[(5, 0.0)]] * 3) + "\n  \t\n",
        skeleton_text([[(5, -0.0)]]).replace("0.01 -0.02", "+1e-3 -.5e+2"),
        "1\n0",  # no final newline
    ]
    for text in texts:
        assert_same(parse(text, "cpp"), parse(text, "python"))
        f = tmp_path / "x.skeleton"
        f.write_bytes(text.encode())
        assert_same(ntu.parse_skeleton_file(f, parser="cpp"), ntu.parse_skeleton_file(f, parser="python"))


BAD = [
    # (text, line, message part)
    ("", 1, "file ended early: expected the frame count"),
    ("x\n", 1, "the frame count: field 1 ('x') is not an unsigned integer"),
    ("-1\n", 1, "is not an unsigned integer"),
    ("2\n0\n", 3, "file ended early: expected the body count of frame 2"),
    ("1\n1\n", 3, "expected the body line of body 1 of frame 1"),
    ("1\n1\n7 0 1 1 1 1 0 0.1\n", 3, "the body line of body 1 of frame 1: expected 10 fields, got 8"),
    ("1\n1\n7 0 1 1 1 1 0 0.1 abc 2\n", 3, "field 9 ('abc') is not a number"),
    ("1\n1\n7 0 1 1 1 1 0 0.1 nan 2\n", 3, "is not a number"),
    ("1\n1\n99999999999999999999 0 1 1 1 1 0 0.1 0.1 2\n", 3, "field 1 ('99999999999999999999') is not an unsigned"),
    ("1\n1\n7 0 1 1 1 1 0 0.1 0.1 2\n24\n", 4, "24 joints, expected 25"),
    ("1\n1\n7 0 1 1 1 1 0 0.1 0.1 2\n25\n1 2 3\n", 5, "joint 1 of body 1 of frame 1: expected 12 fields, got 3"),
    ("1\n65\n", 2, "65 bodies (more than 64)"),
    ("1000001\n", 1, "frame count 1000001 exceeds 1000000"),
    ("0\nextra\n", 2, "unexpected content after the last frame"),
    ("0\n\n\n3\n", 4, "unexpected content after the last frame"),
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("text, line, part", BAD, ids=[str(i) for i in range(len(BAD))])
def test_malformed_input_names_file_and_line(parser, text, line, part):
    with pytest.raises(ntu.SkeletonParseError) as err:
        parse(text, parser, name="bad.skeleton")
    msg = str(err.value)
    assert msg.startswith(f"bad.skeleton:{line}: "), msg
    assert part in msg, msg


@pytest.mark.parametrize("parser", PARSERS)
def test_truncated_file_and_bad_joint_value(parser):
    full = skeleton_text([[(1, 0.0)], [(1, 0.1)]])
    lines = full.splitlines()
    truncated = "\n".join(lines[:40]) + "\n"  # frame 2 stops after joint 8
    with pytest.raises(ntu.SkeletonParseError, match=r"^f:41: file ended early: expected joint 9 of body 1 of frame 2"):
        parse(truncated, parser, "f")
    lines[10] = lines[10].replace("250.1", "25O.1")  # letter O in a number
    with pytest.raises(ntu.SkeletonParseError, match=r"^f:11: joint 7 of body 1 of frame 1: field 4 \('25O.1'\)"):
        parse("\n".join(lines), parser, "f")
    lines = full.splitlines()
    lines[5] = lines[5].replace("0.9", "1e39")  # overflows float32
    with pytest.raises(ntu.SkeletonParseError, match="out of float32 range"):
        parse("\n".join(lines), parser, "f")
    lines = full.splitlines()
    lines[5] = lines[5].replace("0.9", "1e-999")  # underflows to zero
    with pytest.raises(ntu.SkeletonParseError, match="field 8 .* is out of range"):
        parse("\n".join(lines), parser, "f")


@needs_ntu_parser
def test_cpp_missing_file_is_oserror(tmp_path):
    with pytest.raises(OSError, match="cannot open"):
        ntu.parse_skeleton_file(tmp_path / "nope.skeleton", parser="cpp")


@needs_ntu_parser
def test_parsers_agree_on_generated_files(tmp_path):
    paths = write_synthetic_skeleton_files(tmp_path, 6, seed=2, T=24)
    for p in paths:
        assert_same(ntu.parse_skeleton_file(p, parser="cpp"), ntu.parse_skeleton_file(p, parser="python"))


# ----------------------------------------------------------------------------- bodies


def _parsed(frames):
    """frames: list of lists of (body_id, joints (25, 3))."""
    per_frame = [len(b) for b in frames]
    ids = [bid for b in frames for bid, _ in b]
    joints = np.zeros((len(ids), 25, 12), np.float32)
    rows = [j for b in frames for _, j in b]
    if rows:
        joints[:, :, :3] = np.stack(rows)
    return dict(
        num_frames=len(frames),
        bodies_per_frame=np.array(per_frame, np.int32),
        body_id=np.array(ids, np.int64),
        body_info=np.zeros((len(ids), 9)),
        joints=joints,
    )


def _person(rng, amplitude=0.1, width=0.3, height=1.5, z=3.0):
    base = np.stack(
        [rng.uniform(-width / 2, width / 2, 25), rng.uniform(-height / 2, height / 2, 25), np.full(25, z)], 1
    )
    return lambda t: (base + amplitude * np.sin(0.3 * t + np.arange(25))[:, None]).astype(np.float32)


def test_single_body_keeps_every_valid_frame():
    rng = np.random.default_rng(0)
    p = _person(rng)
    x, notes = ntu.select_bodies(_parsed([[]] + [[(7, p(t))] for t in range(5)] + [[]]))
    assert x.shape == (3, 5, 25, 2) and not x[..., 1].any() and notes == []
    np.testing.assert_array_equal(x[:, 2, :, 0], p(2).T)


def test_length_rule_spread_rule_and_motion_ranking():
    rng = np.random.default_rng(1)
    calm, busy = _person(rng, amplitude=0.02), _person(rng, amplitude=0.3)
    wide = _person(rng, width=2.0, height=0.3)  # wider than tall in every frame: a table
    frames = []
    for t in range(30):
        bodies = [(1, calm(t)), (2, busy(t)), (3, wide(t))]
        if t < 5:
            bodies.append((4, busy(t + 1)))  # only 5 frames: dropped by the length rule
        frames.append(bodies)
    x, notes = ntu.select_bodies(_parsed(frames))
    assert x.shape == (3, 30, 25, 2)
    np.testing.assert_array_equal(x[:, 7, :, 0], busy(7).T)  # the larger motion is actor 1
    np.testing.assert_array_equal(x[:, 7, :, 1], calm(7).T)
    assert any("body 4" in n and "length rule" in n for n in notes)
    assert any("body 3" in n and "spread rule" in n for n in notes)


def test_tracks_that_follow_each_other_join_actor_one():
    """Motion ranks a (largest) > b > c. b starts after a ends, so it continues actor 1;
    c overlaps actor 1 and becomes actor 2 (frames 30..44)."""
    a, b, c = (_person(np.random.default_rng(9), amp) for amp in (0.3, 0.2, 0.1))
    frames = [[(1, a(t))] for t in range(15)] + [[(2, b(t))] for t in range(15)]
    frames += [[(2, b(t)), (3, c(t))] for t in range(15, 30)]
    x, _ = ntu.select_bodies(_parsed(frames))
    assert x.shape == (3, 45, 25, 2)
    np.testing.assert_array_equal(x[:, 3, :, 0], a(3).T)
    np.testing.assert_array_equal(x[:, 20, :, 0], b(5).T)
    np.testing.assert_array_equal(x[:, 30, :, 1], c(15).T)
    assert not x[:, :30, :, 1].any()


def test_frames_without_either_actor_are_removed():
    """Track frame indices are consecutive from the first appearance (the scripts' quirk), so
    a track that leaves and comes back ends early; frames no actor reaches are removed."""
    a, b, c = (_person(np.random.default_rng(9), amp) for amp in (0.3, 0.2, 0.1))
    frames = []
    for t in range(30):
        bodies = []
        if t < 20:
            bodies.append((1, a(t)))
        if t < 15 or t >= 25:
            bodies.append((2, b(t)))
        if 20 <= t < 25:
            bodies.append((3, c(t)))  # 5 frames: dropped by the length rule
        frames.append(bodies)
    x, notes = ntu.select_bodies(_parsed(frames))
    assert x.shape == (3, 20, 25, 2)
    assert "10 frame(s) without either actor removed" in notes
    np.testing.assert_array_equal(x[:, 16, :, 1], b(26).T)  # b's 17th appearance sits at index 16


def test_every_body_short_keeps_the_longest():
    rng = np.random.default_rng(3)
    a, b = _person(rng), _person(rng)
    frames = [[(1, a(t)), (2, b(t))] for t in range(4)] + [[(2, b(t))] for t in range(4, 8)]
    x, notes = ntu.select_bodies(_parsed(frames))
    np.testing.assert_array_equal(x[:, 5, :, 0], b(5).T)
    assert "kept the longest" in notes[-1]
    with pytest.raises(ValueError, match="no body in any frame"):
        ntu.select_bodies(_parsed([[], []]))


# ----------------------------------------------------------------------------- normalisation


def _reference_rotation(axis, theta):
    """Euler-Rodrigues rotation matrix, the form the ST-GCN scripts use (written independently)."""
    if np.abs(axis).sum() < 1e-6 or abs(theta) < 1e-6:
        return np.eye(3)
    axis = np.asarray(axis, float) / math.sqrt(np.dot(axis, axis))
    a = math.cos(theta / 2.0)
    b, c, d = -axis * math.sin(theta / 2.0)
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c + a * d), 2 * (b * d - a * c)],
            [2 * (b * c - a * d), a * a + c * c - b * b - d * d, 2 * (c * d + a * b)],
            [2 * (b * d + a * c), 2 * (c * d - a * b), a * a + d * d - b * b - c * c],
        ]
    )


def _reference_pre_normalize(x):
    """Frame-by-frame loops, the way the ST-GCN pre_normalization reads."""
    s = x.transpose(3, 1, 2, 0).copy()  # M, T, V, C
    T = s.shape[1]
    for p in range(s.shape[0]):
        person = s[p]
        if person.sum() == 0:
            continue
        if person[0].sum() == 0:
            idx = person.sum(-1).sum(-1) != 0
            tmp = person[idx].copy()
            person *= 0
            person[: len(tmp)] = tmp
        for f in range(T):
            if person[f].sum() == 0 and person[f:].sum() == 0:
                rest = T - f
                pad = np.concatenate([person[0:f] for _ in range(int(np.ceil(rest / f)))], 0)[:rest]
                s[p, f:] = pad
                break
    centre = s[0][:, 1:2, :].copy()
    for p in range(s.shape[0]):
        if s[p].sum() == 0:
            continue
        mask = (s[p].sum(-1) != 0).reshape(T, -1, 1)
        s[p] = (s[p] - centre) * mask
    for (top, bottom), target in (((1, 0), [0, 0, 1]), ((8, 4), [1, 0, 0])):  # hip->spine, left->right shoulder
        v = s[0, 0, top] - s[0, 0, bottom]
        axis = np.cross(v, target)
        cosang = np.dot(v / np.linalg.norm(v), np.array(target) / np.linalg.norm(target))
        R = _reference_rotation(axis, np.arccos(np.clip(cosang, -1, 1)))
        for p in range(s.shape[0]):
            if s[p].sum() == 0:
                continue
            for f in range(T):
                if s[p, f].sum() == 0:
                    continue
                for v_ in range(s.shape[2]):
                    s[p, f, v_] = np.dot(R, s[p, f, v_])
    return s.transpose(3, 1, 2, 0)


def test_pre_normalize_matches_the_reference_loops():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 12, 25, 2)).astype(np.float32)
    x[:, :, :, 0] += np.array([0.2, 0.5, 3.0], np.float32)[:, None, None]
    x[:, :3, :, 1] = 0  # second person appears late (shifted to the start)
    x[:, 9:, :, 1] = 0  # ... and leaves (padded by repetition)
    got = ntu.pre_normalize(x)
    want = _reference_pre_normalize(x.astype(np.float64))
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert np.isfinite(got).all() and got.dtype == np.float32


def test_pre_normalize_on_a_body():
    """Person 1, frame 1: spine at the origin, left -> right shoulder along +x, hip -> spine
    along +z (up to the small tilt the second rotation adds when the shoulders are not
    exactly perpendicular to the spine, as in the original)."""
    from msclr.data.synthetic import generate

    g = generate(num_samples=16, T=20, seed=2, conventions=["ntu25"])
    for i in range(16):
        x = ntu.pre_normalize(g["data"]["ntu25"][i, :, : g["lengths"][i]])
        p = x[:, 0, :, 0].T
        np.testing.assert_allclose(p[1], 0, atol=1e-6)
        shoulders = p[8] - p[4]
        np.testing.assert_allclose(shoulders[1:], 0, atol=1e-5)
        assert shoulders[0] > 0
        up = (p[1] - p[0]) / np.linalg.norm(p[1] - p[0])
        assert up[2] > np.cos(np.deg2rad(15))


def test_rotation_to_matches_euler_rodrigues():
    rng = np.random.default_rng(5)
    for _ in range(20):
        v, t = rng.normal(size=3), rng.normal(size=3)
        ang = np.arccos(np.clip(np.dot(v, t) / np.linalg.norm(v) / np.linalg.norm(t), -1, 1))
        np.testing.assert_allclose(ntu.rotation_to(v, t), _reference_rotation(np.cross(v, t), ang), atol=1e-12)


# ----------------------------------------------------------------------------- prepare


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ntu_raw")
    write_synthetic_skeleton_files(d, 60, seed=0, T=32)
    # a corrupt file, a file listed as missing by the authors, a foreign name, NTU-120 only
    (d / "S002C001P003R002A013.skeleton").write_text("3\n1\n123 0 1 1 1 1 0 0.1 0.1 2\n25\n1 2 3\n")
    (d / "S001C002P005R002A008.skeleton").write_text(TWO_BODIES_WITH_EMPTY_FRAMES)
    (d / "notes.skeleton").write_text("0\n")
    (d / "S018C001P050R001A061.skeleton").write_text(TWO_BODIES_WITH_EMPTY_FRAMES)
    return d


def test_prepare_end_to_end(raw_dir, tmp_path):
    store, rep = ntu.prepare(raw_dir, tmp_path / "st", chunk_size=16, progress=False, workers=2)
    assert rep.missing_listed == ["S001C002P005R002A008"]
    assert rep.ignored == 1  # the NTU-120 setup
    reasons = {s.get("sample") or s.get("file"): s["reason"] for s in rep.skipped}
    assert "S002C001P003R002A013.skeleton:5: joint 1 of body 1 of frame 1" in reasons["S002C001P003R002A013"]
    assert "not an NTU sample name" in reasons[str(raw_dir / "notes.skeleton")]
    assert len(store) == 60 and store.num_classes == 60 and store.meta["dataset"] == "ntu60"
    assert store.conventions == ["ntu25"]
    a = store.array("ntu25")
    assert a.shape == (60, 3, 300, 25, 2)
    L = store.lengths("ntu25")
    assert L.min() > 5 and L.max() <= 35
    assert np.isfinite(a).all()
    for part in ("xsub", "xview"):
        tr, te = store.split(part, "train"), store.split(part, "test")
        assert sorted(np.concatenate([tr, te]).tolist()) == list(range(60))
    subj = store.sample_info["subject"]
    assert set(subj[store.split("xsub", "train")]) <= set(ntu.NTU60_XSUB_TRAIN)
    assert set(store.sample_info["camera"][store.split("xview", "train")]) <= {2, 3}
    assert store.labels.tolist() == [int(s[-3:]) - 1 for s in store.sample_ids]
    assert store.meta["ntu"]["missing_skeletons_skipped"] == ["S001C002P005R002A008"]
    assert store.meta["ntu"]["normalized"] is True
    # pre-normalised: spine of person 1, frame 1 at the origin
    np.testing.assert_allclose(a[:, :, 0, 1, 0], 0, atol=1e-6)
    assert not (tmp_path / "st" / ".partial").exists()
    text = ntu.summary(rep)
    assert "60 samples written" in text and "S002C001P003R002A013" in text


def test_prepare_without_normalisation_matches_process_file(raw_dir, tmp_path):
    store, _ = ntu.prepare(raw_dir, tmp_path / "st", normalize=False, parser="python", progress=False, workers=1)
    i = 7
    x, _ = ntu.process_file(raw_dir / f"{store.sample_ids[i]}.skeleton", normalize=False)
    L = store.lengths("ntu25")[i]
    assert L == x.shape[1]
    np.testing.assert_array_equal(store.array("ntu25")[i, :, :L], x)
    # raw Kinect coordinates: people stand 2.4 to 3.6 m in front of the camera
    assert 2.0 < np.median(store.array("ntu25")[i, 2, :L, :, 0]) < 4.0


def test_prepare_resumes_after_interruption(raw_dir, tmp_path):
    out = tmp_path / "st"
    store, rep = ntu.prepare(raw_dir, out, chunk_size=16, progress=False, stop_after_chunks=2)
    assert store is None and len(list((out / ".partial").glob("chunk_*.npz"))) == 2
    store, rep = ntu.prepare(raw_dir, out, chunk_size=16, progress=False)
    assert rep.resumed_chunks == 2 and len(store) == 60
    fresh, _ = ntu.prepare(raw_dir, tmp_path / "fresh", chunk_size=16, progress=False)
    np.testing.assert_array_equal(store.array("ntu25"), fresh.array("ntu25"))
    # a finished store: running again does nothing
    again, rep = ntu.prepare(raw_dir, out, chunk_size=16, progress=False)
    assert len(again) == 60 and rep.up_to_date and "60 samples already prepared" in ntu.summary(rep)


def test_prepare_cli(raw_dir, tmp_path, capsys):
    out = tmp_path / "st"
    rc = prepare_main(["ntu", "--raw", str(raw_dir), "--out", str(out), "--workers", "2", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "60 samples written" in printed and "S002C001P003R002A013" in printed
    assert open_store(out).meta["ntu"]["benchmark"] == "ntu60"
    rc = prepare_main(["ntu", "--raw", str(raw_dir), "--out", str(tmp_path / "s2"), "--strict", "--no-progress"])
    assert rc == 1  # the corrupt file
    rc = prepare_main(
        ["ntu", "--raw", str(raw_dir), "--out", str(tmp_path / "s3"), "--benchmark", "ntu120", "--no-progress"]
    )
    s3 = open_store(tmp_path / "s3")
    assert rc == 0 and s3.num_classes == 120 and set(s3.splits) == {"xsub", "xset"}
    assert "S018C001P050R001A061" in s3.sample_ids
