"""MultiSkeletonDataset: padded multi-convention items, valid-crop-resize, workers, bad values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from msclr import skeletons
from msclr.data import MultiSkeletonDataset, NonFiniteSampleError, StoreBuilder
from msclr.data.dataset import gather_frames, resample_positions
from msclr.data.synthetic import make_synthetic_store

N, T_MAX = 12, 30


def _store(tmp_path, lengths=None, with_nan=False, half_rate=False):
    """ntu25 data plus a second convention 'unit_ntu_copy' holding the same values.

    half_rate: the copy is sampled at every second frame (length L/2), as an estimator
    running at half the frame rate would be.
    """
    rng = np.random.default_rng(0)
    data = rng.normal(size=(N, 3, T_MAX, 25, 2)).astype(np.float32)
    lengths = np.array(lengths if lengths is not None else rng.integers(5, T_MAX + 1, N))
    for i, L in enumerate(lengths):
        data[i, :, L:] = 0
    if with_nan:
        data[4, 1, 2, 3, 0] = np.nan
    ntu = skeletons.get("ntu25")
    spec = ntu.to_dict()
    spec["name"] = "unit_ntu_copy"
    copy = skeletons.from_dict(spec)
    b = StoreBuilder.create(
        tmp_path / "st",
        dataset="unit",
        sample_ids=[f"id{i}" for i in range(N)],
        labels=np.arange(N) % 4,
        splits={"s": {"train": np.arange(8), "test": np.arange(8, N)}},
    )
    b.add("ntu25", data, lengths)
    avail = np.ones(N, bool)
    avail[9] = False
    if half_rate:
        b.add(copy, data[:, :, ::2], (lengths + 1) // 2, avail)
    else:
        b.add(copy, data, lengths, avail)
    return b.finish(), data, lengths


def _table(*names):
    return skeletons.LayoutTable([skeletons.get(n) for n in names])


def test_item_layout(tmp_path):
    store, data, lengths = _store(tmp_path)
    table = _table("smplx42", "ntu25", "unit_ntu_copy", "coco17")  # V_max = 42
    ds = MultiSkeletonDataset(store, ["ntu25", "unit_ntu_copy"], table, T=16, M=2, train=False)
    assert len(ds) == N
    it = ds[3]
    assert set(it) == {"x", "available", "layout", "label", "index", "store_index", "sample_id"}
    assert it["layout"].tolist() == [0, 1, 2, 3]
    assert it["x"].shape == (4, 3, 16, 42, 2) and it["x"].dtype == torch.float32
    assert it["available"].tolist() == [False, True, True, False]
    assert it["label"].dtype == torch.int64 and int(it["label"]) == 3
    assert it["index"] == 3 and it["store_index"] == 3 and it["sample_id"] == "id3"
    x = it["x"]
    assert not x[0].any() and not x[3].any()  # slots of conventions not read
    assert not x[1, :, :, 25:].any()  # joint padding
    torch.testing.assert_close(x[1], x[2])  # the same crop for both conventions
    # sample 9 has no 'unit_ntu_copy'
    assert ds[9]["available"].tolist() == [False, True, False, False]


def test_eval_whole_valid_part_is_identity(tmp_path):
    store, data, lengths = _store(tmp_path, lengths=[T_MAX] * N)
    ds = MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), T=T_MAX, train=False, eval_p=1.0)
    for i in (0, 5):
        np.testing.assert_allclose(ds[i]["x"][0].numpy(), data[i], rtol=0, atol=1e-6)


def test_resample_matches_torch_interpolate():
    rng = np.random.default_rng(1)
    sample = rng.normal(size=(3, 40, 5, 2)).astype(np.float32)
    for begin, crop, T in [(0, 40, 50), (7, 23, 50), (3, 30, 16), (0, 1, 8), (10, 64 - 40, 64)]:
        crop = min(crop, 40 - begin)
        got = gather_frames(sample, resample_positions(begin, crop, T))
        seg = torch.from_numpy(sample[:, begin : begin + crop]).permute(0, 2, 3, 1).reshape(1, 1, -1, crop)
        want = F.interpolate(seg, size=(seg.shape[2], T), mode="bilinear", align_corners=False)
        want = want.reshape(3, 5, 2, T).permute(0, 3, 1, 2).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_eval_crop_is_the_aimclr_centre_crop(tmp_path):
    store, data, lengths = _store(tmp_path)
    ds = MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), T=20, train=False, eval_p=0.9)
    for i in range(N):
        L = int(lengths[i])
        bias = int(0.1 * L / 2)
        want = gather_frames(data[i], resample_positions(bias, L - 2 * bias, 20))
        np.testing.assert_allclose(ds[i]["x"][0].numpy(), want, atol=1e-6)


def test_train_crops_are_random_valid_and_shared(tmp_path):
    store, data, lengths = _store(tmp_path, lengths=[T_MAX] * N)
    ds = MultiSkeletonDataset(
        store, ["ntu25", "unit_ntu_copy"], _table("ntu25", "unit_ntu_copy"), T=10, train=True, min_crop=4
    )
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        x = ds[0]["x"]
        torch.testing.assert_close(x[0], x[1])
        seen.add(x[0, 0, 0, 0, 0].item())
        # every output frame is an interpolation of valid frames: inside the data's range
        assert x[0].abs().max() <= np.abs(data[0]).max() + 1e-6
    assert len(seen) > 5  # crops differ


def test_same_relative_crop_at_another_frame_rate(tmp_path):
    """A convention at half the frame rate gets the same crop in relative time."""
    store, _, _ = _store(tmp_path, lengths=[T_MAX] * N, half_rate=True)
    assert store.array("unit_ntu_copy").shape[2] == T_MAX // 2
    # smooth data, so that half-rate and full-rate interpolations agree closely
    t = np.linspace(0, 1, T_MAX)
    full = (np.sin(2 * np.pi * t)[None, None, :, None, None] * np.ones((1, 3, 1, 25, 2))).astype(np.float32)
    b = StoreBuilder.create(tmp_path / "smooth", dataset="unit", sample_ids=["a"], labels=[0])
    b.add("ntu25", full, [T_MAX])
    b.add(skeletons.get("unit_ntu_copy"), full[:, :, ::2], [T_MAX // 2])
    ds = MultiSkeletonDataset(
        b.finish(), ["ntu25", "unit_ntu_copy"], _table("ntu25", "unit_ntu_copy"), T=12, min_crop=1
    )
    torch.manual_seed(1)
    crops = set()
    for _ in range(10):
        x = ds[0]["x"]
        crops.add(round(x[0, 0, 0, 0, 0].item(), 4))
        assert (x[0] - x[1]).abs().max() < 0.15
    assert len(crops) > 3


def test_persons_cut_or_padded(tmp_path):
    store, data, _ = _store(tmp_path, lengths=[T_MAX] * N)
    one = MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), T=T_MAX, M=1, train=False, eval_p=1.0)[2]["x"]
    three = MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), T=T_MAX, M=3, train=False, eval_p=1.0)[2]["x"]
    assert one.shape[-1] == 1 and three.shape[-1] == 3
    np.testing.assert_allclose(one[0, ..., 0].numpy(), data[2, ..., 0], atol=1e-6)
    np.testing.assert_allclose(three[0, ..., :2].numpy(), data[2], atol=1e-6)
    assert not three[..., 2].any()


def test_split_and_missing_samples(tmp_path):
    store, _, _ = _store(tmp_path)
    ds = MultiSkeletonDataset(store, ["unit_ntu_copy"], _table("unit_ntu_copy"), split=("s", "test"), train=False)
    # test part is 8..11, sample 9 lacks the only requested convention
    assert ds.indices.tolist() == [8, 10, 11]
    assert [ds[i]["sample_id"] for i in range(len(ds))] == ["id8", "id10", "id11"]
    assert ds.labels.tolist() == [0, 2, 3]


def test_nan_is_rejected_with_sample_and_convention(tmp_path):
    store, _, _ = _store(tmp_path, lengths=[T_MAX] * N, with_nan=True)
    ds = MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), T=8, train=False)
    ds[3]
    with pytest.raises(NonFiniteSampleError, match="sample 'id4'.*convention 'ntu25'"):
        ds[4]


def test_bad_configuration(tmp_path):
    store, _, _ = _store(tmp_path)
    with pytest.raises(ValueError, match="not in the layout table"):
        MultiSkeletonDataset(store, ["ntu25"], _table("coco17"))
    with pytest.raises(ValueError, match="not in store"):
        MultiSkeletonDataset(store, ["coco17"], _table("coco17"))
    with pytest.raises(ValueError, match="p_interval"):
        MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), p_interval=(0.0, 1.0))
    with pytest.raises(KeyError, match="no split"):
        MultiSkeletonDataset(store, ["ntu25"], _table("ntu25"), split=("xsub", "train"))


def test_dataloader_with_workers_on_synthetic(tmp_path):
    store = make_synthetic_store(tmp_path / "syn", num_samples=48, T=32, seed=0, num_classes=12)
    names = store.conventions
    table = skeletons.LayoutTable([store.convention(n) for n in names])
    ds = MultiSkeletonDataset(store, names, table, T=20, split=("xsub", "train"))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, shuffle=True)
    seen = []
    for batch in loader:
        assert batch["x"].shape[1:] == (len(names), 3, 20, table.v_max, 2)
        assert batch["available"].all()
        assert torch.isfinite(batch["x"]).all()
        seen += batch["sample_id"]
    assert sorted(seen) == sorted(store.sample_ids[i] for i in store.split("xsub", "train"))
