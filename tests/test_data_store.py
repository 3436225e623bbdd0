"""The multi-skeleton store: round trip, memory mapping, custom conventions, atomicity, errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from msclr import skeletons
from msclr.data import StoreBuilder, StoreError, is_store, open_store
from msclr.data.store import valid_lengths


def _data(n, t, v, m=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, t, v, m)).astype(np.float32)


def _builder(path, n=6, **kw):
    ids = [f"s{i}" for i in range(n)]
    return StoreBuilder.create(
        path,
        dataset="unit",
        sample_ids=ids,
        labels=np.arange(n) % 3,
        class_names=["a", "b", "c"],
        splits={"xsub": {"train": [0, 1, 2, 3], "test": [4, 5]}},
        sample_info={"subject": np.arange(n) + 1},
        **kw,
    )


def test_round_trip(tmp_path):
    b = _builder(tmp_path / "st")
    ntu = _data(6, 10, 25)
    k1 = _data(6, 7, 20, seed=1)
    lengths = np.array([10, 9, 8, 7, 6, 5])
    b.add("ntu25", ntu, lengths)
    avail = np.array([True, False, True, True, False, True])
    b.add("kinect_v1_20", k1, np.full(6, 7), avail, derived_from="ntu25", derivation={"doc": "test"})
    store = b.finish()
    assert is_store(tmp_path / "st")
    again = open_store(tmp_path / "st")
    for s in (store, again):
        assert s.sample_ids == [f"s{i}" for i in range(6)]
        assert s.labels.dtype == np.int64 and s.labels.tolist() == [0, 1, 2, 0, 1, 2]
        assert s.conventions == ["ntu25", "kinect_v1_20"]
        assert s.num_classes == 3 and s.class_names == ["a", "b", "c"]
        arr = s.array("ntu25")
        assert isinstance(arr, np.memmap) and arr.dtype == np.float32 and not arr.flags.writeable
        np.testing.assert_array_equal(arr, ntu)
        np.testing.assert_array_equal(s.array("kinect_v1_20"), k1)
        assert s.lengths("ntu25").tolist() == lengths.tolist()
        assert s.available("kinect_v1_20").tolist() == avail.tolist()
        assert s.available("ntu25").all()
        assert s.splits["xsub"]["train"].tolist() == [0, 1, 2, 3]
        assert s.split("xsub", "test").tolist() == [4, 5]
        assert s.sample_info["subject"].tolist() == [1, 2, 3, 4, 5, 6]
        assert s.convention("ntu25") is skeletons.get("ntu25")
        assert s.is_derived("kinect_v1_20") and not s.is_derived("ntu25")
        assert s.meta["derived"] == {"kinect_v1_20": "ntu25"}
        assert s.meta["format_version"] == 1 and s.meta["dataset"] == "unit"
        assert s.index_of(["s3", "s0"]).tolist() == [3, 0]
    # no temporary files are left behind
    assert not [p.name for p in (tmp_path / "st").iterdir() if p.name.endswith(".tmp")]


def test_unknown_names_are_clear_errors(tmp_path):
    b = _builder(tmp_path / "st")
    b.add("ntu25", _data(6, 4, 25), np.full(6, 4))
    s = b.finish()
    with pytest.raises(KeyError, match="no convention 'smpl24'"):
        s.array("smpl24")
    with pytest.raises(KeyError, match="no split xview/train"):
        s.split("xview", "train")
    with pytest.raises(StoreError, match="not a msclr store"):
        open_store(tmp_path / "nothing")


def test_custom_convention_is_stored_and_registered(tmp_path):
    spec = dict(
        name="unit_stick3",
        joints=["a", "b", "c"],
        bones=[["b", "a"], ["c", "b"]],
        centre="b",
        flip_pairs=[["a", "c"]],
        description="three joints",
    )
    conv = skeletons.from_dict(spec)
    b = _builder(tmp_path / "st")
    b.add(conv, _data(6, 5, 3), np.full(6, 5))
    b.finish()
    assert json.loads((tmp_path / "st" / "conventions" / "unit_stick3.json").read_text())["joints"] == ["a", "b", "c"]
    s = open_store(tmp_path / "st")
    assert "unit_stick3" in skeletons.available()
    assert skeletons.get("unit_stick3").joints == ("a", "b", "c")
    assert s.convention("unit_stick3").flip == (2, 1, 0)
    # A second store with a *different* convention under the same name is refused.
    other = dict(spec, joints=["x", "y", "z"], bones=[["y", "x"], ["z", "y"]], centre="y", flip_pairs=[])
    b2 = _builder(tmp_path / "st2")
    with pytest.raises(skeletons.ConventionError, match="unit_stick3"):
        b2.add(skeletons.make_convention(**other), _data(6, 5, 3), np.full(6, 5))
        b2.finish()


def test_builtin_name_with_other_joints_is_refused(tmp_path):
    fake = skeletons.make_convention(name="coco17", joints=["a", "b"], bones=[("a", "b")], centre="a")
    b = _builder(tmp_path / "st")
    with pytest.raises(skeletons.ConventionError, match="built-in name"):
        b.add(fake, _data(6, 5, 2), np.full(6, 5))


def test_unfinished_store_is_not_a_store(tmp_path):
    b = _builder(tmp_path / "st")
    b.add("ntu25", _data(6, 4, 25), np.full(6, 4))
    # finish() never ran: no meta.json, the directory is not opened as a store
    with pytest.raises(StoreError, match="no meta.json"):
        open_store(tmp_path / "st")


def test_overwrite_and_extend(tmp_path):
    b = _builder(tmp_path / "st")
    b.add("ntu25", _data(6, 4, 25), np.full(6, 4))
    b.finish()
    with pytest.raises(StoreError, match="already holds a store"):
        _builder(tmp_path / "st")
    ext = StoreBuilder.extend(tmp_path / "st")
    extra = _data(6, 8, 17, seed=3)
    ext.add("coco17", extra, np.full(6, 8), unit="m")
    s = ext.finish()
    assert s.conventions == ["ntu25", "coco17"]
    np.testing.assert_array_equal(s.array("coco17"), extra)
    assert s.array("ntu25").shape == (6, 3, 4, 25, 2)


def test_allocate_commit_memmap(tmp_path):
    b = _builder(tmp_path / "st")
    arr = b.allocate("ntu25", (6, 3, 12, 25, 2))
    arr[2, :, :5] = 1.5
    b.commit("ntu25", np.full(6, 12))
    s = b.finish()
    got = s.array("ntu25")
    assert got[2, :, :5].min() == 1.5 and got[2, :, 5:].max() == 0 and got[0].max() == 0


def test_allocated_but_uncommitted_is_an_error(tmp_path):
    b = _builder(tmp_path / "st")
    b.allocate("ntu25", (6, 3, 12, 25, 2))
    with pytest.raises(StoreError, match="never committed"):
        b.finish()
    assert not [p for p in (tmp_path / "st").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sample_ids=["a", "a"], labels=[0, 1]), "duplicate sample id 'a'"),
        (dict(sample_ids=["a", "b"], labels=[0, 5], num_classes=3), "label 5 of sample 'b'"),
        (dict(sample_ids=["a", "b"], labels=[0, 1, 1]), "3 entries for 2 samples"),
        (dict(sample_ids=["a", "b"], labels=[0, 1], splits={"x": {"train": [0, 2]}}), "outside 0..1"),
        (dict(sample_ids=["a", "b"], labels=[0.5, 1]), "integer"),
    ],
)
def test_create_validation(tmp_path, kwargs, match):
    with pytest.raises(StoreError, match=match):
        StoreBuilder.create(tmp_path / "st", dataset="unit", **kwargs)


def test_add_validation(tmp_path):
    b = _builder(tmp_path / "st")
    with pytest.raises(StoreError, match="expected \\(N=6"):
        b.add("ntu25", _data(5, 4, 25), np.full(5, 4))
    with pytest.raises(StoreError, match="24 joints, convention 25"):
        b.add("ntu25", _data(6, 4, 24), np.full(6, 4))
    with pytest.raises(StoreError, match="lengths must lie in 0..T_max=4"):
        b.add("ntu25", _data(6, 4, 25), np.full(6, 5))


def test_pickled_store_reopens_its_memmaps(tmp_path):
    b = _builder(tmp_path / "st")
    data = _data(6, 4, 25)
    b.add("ntu25", data, np.full(6, 4))
    s = b.finish()
    s.array("ntu25")  # opened in this process
    clone = pickle.loads(pickle.dumps(s))
    assert clone._cache == {}
    np.testing.assert_array_equal(clone.array("ntu25"), data)


def test_valid_lengths():
    d = np.zeros((3, 3, 6, 2, 2), np.float32)
    d[0, :, :4] = 1
    d[1, 0, 2, 1, 1] = 1  # a single value in frame 2, second person
    assert valid_lengths(d).tolist() == [4, 3, 0]


def _store_with_subjects(path, subjects):
    n = len(subjects)
    b = StoreBuilder.create(
        path,
        dataset="unit",
        sample_ids=[f"s{i}" for i in range(n)],
        labels=np.arange(n) % 3,
        class_names=["a", "b", "c"],
        splits={"xsub": {"train": list(range(n - 2)), "test": [n - 2, n - 1]}},
        sample_info={"subject": np.asarray(subjects)},
    )
    b.add("ntu25", _data(n, 4, 25), np.full(n, 4))
    return b.finish()


def test_validation_split_holds_whole_subjects_out(tmp_path):
    from msclr.data.store import add_validation_split

    subjects = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 9, 9]  # subject 9 is the test part
    _store_with_subjects(tmp_path / "s", subjects)
    info = add_validation_split(tmp_path / "s", "xsub", fraction=0.4, seed=3)
    s = open_store(tmp_path / "s")
    train, val = s.split("xsub_val", "train"), s.split("xsub_val", "test")
    held = info["held_out_subjects"]
    assert len(held) == 2 and info["name"] == "xsub_val"
    assert sorted(train.tolist() + val.tolist()) == list(range(10))  # the source train part, divided
    assert set(s.sample_info["subject"][val].tolist()) == set(held)
    assert not set(s.sample_info["subject"][train].tolist()) & set(held)
    assert s.split("xsub", "test").tolist() == [10, 11]  # the source split is untouched
    assert "xsub_val" in s.meta["split_notes"]
    # the same seed draws the same subjects; explicit subjects are taken as given
    info2 = add_validation_split(tmp_path / "s", "xsub", name="again", fraction=0.4, seed=3)
    assert info2["held_out_subjects"] == held
    info3 = add_validation_split(tmp_path / "s", "xsub", name="two", subjects=[2])
    assert open_store(tmp_path / "s").split("two", "test").tolist() == [2, 3] and info3["train"] == 8


def test_validation_split_refuses_what_would_lose_or_leak(tmp_path):
    from msclr.data.store import add_validation_split

    _store_with_subjects(tmp_path / "s", [1, 1, 2, 2, 3, 3, 9, 9])
    add_validation_split(tmp_path / "s", "xsub")
    with pytest.raises(ValueError, match="exists"):
        add_validation_split(tmp_path / "s", "xsub")  # no silent overwrite
    with pytest.raises(ValueError, match=r"subjects \[9\] are not in the train part"):
        add_validation_split(tmp_path / "s", "xsub", name="bad", subjects=[9])  # a test subject
    with pytest.raises(ValueError, match="nothing to train on"):
        add_validation_split(tmp_path / "s", "xsub", name="bad", subjects=[1, 2, 3])
    with pytest.raises(ValueError, match="must not replace its source"):
        add_validation_split(tmp_path / "s", "xsub", name="xsub", overwrite=True)
    with pytest.raises(KeyError, match="no split nope/train"):
        add_validation_split(tmp_path / "s", "nope")


def test_prepare_split_command(tmp_path, capsys):
    from msclr import prepare

    _store_with_subjects(tmp_path / "s", [1, 1, 2, 2, 3, 3, 4, 4, 9, 9])
    assert prepare.main(["split", "--store", str(tmp_path / "s"), "--subjects", "4"]) == 0
    out = capsys.readouterr().out
    assert "split xsub_val: train 6 / test (validation) 2 samples" in out and "data.split=xsub_val" in out
    assert prepare.main(["split", "--store", str(tmp_path / "s"), "--subjects", "4"]) == 2  # exists
    assert "error: " in capsys.readouterr().err
