"""Tests of msclr.augment: parameters, the per-sample draw, the torch and the DALI (CPU) backends.

The ground truth is `reference_sample` below: AimCLR's feeder/tools.py operations written out
per sample in float64 numpy (mirror padding by concatenation, the rotation matrices as AimCLR
writes them, the blur as F.conv2d over (M, C, V, T) as AimCLR calls it), driven by the drawn
parameters. Both backends must match it for fixed parameters, and each other.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import GPU

from msclr import skeletons
from msclr.augment import (
    AugmentError,
    AugmentParams,
    DaliAugment,
    TorchAugment,
    dali_import_error,
    draw,
    make_augment,
    plan,
)

DALI_MISSING = dali_import_error()
needs_dali = pytest.mark.skipif(bool(DALI_MISSING), reason=DALI_MISSING or "dali available")

BACKENDS = ["torch", pytest.param("dali", marks=needs_dali)]
CONVENTIONS = ("ntu25", "smplx42", "berkeley_mhad43", "coco17")
CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "augment"


@pytest.fixture(scope="module")
def table():
    return skeletons.LayoutTable([skeletons.get(n) for n in CONVENTIONS])


def make_batch(table, n=6, t=20, m=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    layout = torch.arange(n) % len(table)
    x = torch.randn(n, 3, t, table.v_max, m, generator=g)
    x = x * table.joint_mask[layout][:, None, None, :, None]
    return x, layout


_AUGS: dict = {}


def augmenter(backend, params, table):
    """Cache augmenters (DALI builds a pipeline per parameter set and shape)."""
    key = (backend, repr(params), id(table))
    if key not in _AUGS:
        opts = {"seed": 123} if backend == "dali" else {}
        _AUGS[key] = make_augment(params, table, backend=backend, device="cpu", **opts)
    return _AUGS[key]


# ---- the reference: AimCLR's operations, one sample at a time, float64 ------------------------


def reference_sample(x, conv_flip, v_l, d, i, p: AugmentParams):
    """x (C, T, V_max, M) float64 numpy; d = drawn parameters (numpy); i = sample index."""
    c_, t_, v_max, m_ = x.shape
    data = x.copy()
    # 1. temporal crop (AimCLR temperal_crop, generalised to a window of length L resized to T)
    pad = p.crop_padding(t_)
    if pad > 0:
        data_p = np.concatenate((data[:, :pad][:, ::-1], data, data[:, -pad:][:, ::-1]), axis=1)
    else:
        data_p = data
    s, length = int(d["crop_start"][i]), int(d["crop_length"][i])
    window = data_p[:, s : s + length]
    if length == t_:
        data = window.copy()
    else:
        pos = np.arange(t_) * (length - 1) / (t_ - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, length - 1)
        frac = (pos - lo)[None, :, None, None]
        data = window[:, lo] + frac * (window[:, hi] - window[:, lo])
    # 2. optional per-axis scale (PySKL's RandomScale), then shear
    # (AimCLR: R = [[1, s1[0], s2[0]], [s1[1], 1, s2[1]], [s1[2], s2[2], 1]]; out = R x)
    if "scale" in d:
        data = data * d["scale"][i][:, None, None, None]
    sh = d["shear"][i]
    R = np.array([[1, sh[0, 0], sh[0, 1]], [sh[1, 0], 1, sh[1, 1]], [sh[2, 0], sh[2, 1], 1]])
    data = np.dot(data.transpose([1, 2, 3, 0]), R.T).transpose(3, 0, 1, 2)
    # 3. left/right flip: the convention's flip map (AimCLR: transform_order['ntu'])
    if d["flip"][i]:
        order = list(conv_flip) + list(range(v_l, v_max))
        data = data[:, :, order, :]
    # 4. rotation, AimCLR's matrices, axes x, y, z in turn
    seq = data.transpose(1, 2, 3, 0)
    for axis in range(3):
        a = math.radians(float(d["rotate"][i, axis]))
        c, s_ = math.cos(a), math.sin(a)
        if axis == 0:
            Rm = np.array([[1, 0, 0], [0, c, s_], [0, -s_, c]])
        elif axis == 1:
            Rm = np.array([[c, 0, -s_], [0, 1, 0], [s_, 0, c]])
        else:
            Rm = np.array([[c, s_, 0], [-s_, c, 0], [0, 0, 1]])
        seq = np.matmul(seq, Rm.T)
    data = seq.transpose(3, 0, 1, 2)
    # 5. time flip
    if d["time_flip"][i]:
        data = data[:, ::-1]
    # 6. noise
    if d["noise_std"][i] > 0:
        data = data + float(d["noise_std"][i]) * d["noise"][i].astype(np.float64)
    # 7. blur, as AimCLR's GaussianBlurConv: conv2d on (M, C, V, T), kernel (1, K), zero padding K//2
    if d["blur"][i]:
        r = p.blur_kernel // 2
        sigma = float(d["blur_sigma"][i])
        k = np.exp(-np.power(np.arange(-r, r + 1), 2.0) / (2.0 * np.power(sigma, 2.0)))
        if p.blur_normalize:
            k = k / k.sum()
        w = torch.from_numpy(k)[None, None, None, :].repeat(3, 1, 1, 1)
        xt = torch.from_numpy(np.ascontiguousarray(data)).permute(3, 0, 2, 1)
        data = F.conv2d(xt, w, padding=(0, r), groups=3).permute(1, 3, 2, 0).numpy()
    # 8. axis mask
    data = np.array(data)
    if d["axis_mask"][i] >= 0:
        data[int(d["axis_mask"][i])] = 0
    # 9./10. joint and frame drop
    data[:, :, ~d["joint_keep"][i]] = 0
    data[:, ~d["frame_keep"][i]] = 0
    data[:, :, v_l:] = 0  # padding
    return data


def reference(x, layout, drawn, params, table):
    d = {k: v.numpy() for k, v in drawn.items()}
    xs = x.double().numpy()
    out = []
    for i, l in enumerate(layout.tolist()):
        conv = table.conventions[l]
        out.append(reference_sample(xs[i], conv.flip, conv.num_joints, d, i, params))
    return torch.from_numpy(np.stack(out))


def only(**kw) -> AugmentParams:
    return AugmentParams(**kw)


SINGLE_OPS = {
    "crop": only(crop_p=1.0),
    "crop_resize": only(crop_p=1.0, crop_scale=(0.5, 1.3)),
    "shear": only(shear_p=1.0),
    "scale": only(scale_p=1.0, scale_amplitude=0.3),
    "scale_shear": only(scale_p=0.5, shear_p=1.0),
    "flip": only(flip_p=1.0),
    "rotate": only(rotate_p=1.0),
    "time_flip": only(time_flip_p=1.0),
    "noise": only(noise_p=1.0),
    "blur": only(blur_p=1.0),
    "blur_normalized": only(blur_p=1.0, blur_normalize=True),
    "axis_mask": only(axis_mask_p=1.0),
    "joint_drop": only(joint_drop_p=1.0, joint_drop_rate=0.3),
    "frame_drop": only(frame_drop_p=1.0, frame_drop_rate=0.3),
}


# ---- parameters ------------------------------------------------------------------------------


def test_presets_match_skeletonclr_aimclr():
    normal = AugmentParams.normal()
    assert (normal.crop_p, normal.crop_padding_ratio, normal.crop_scale) == (1.0, 6, (1.0, 1.0))
    assert (normal.shear_p, normal.shear_amplitude) == (1.0, 0.5)
    off = ("flip_p", "rotate_p", "time_flip_p", "noise_p", "blur_p", "axis_mask_p", "joint_drop_p", "frame_drop_p")
    off += ("scale_p",)
    assert all(getattr(normal, f) == 0.0 for f in off)
    aim = AugmentParams.aimclr()
    # AimCLR feeder/tools.py: flip p=0.5, rotation always (main 0-30 deg, others 0-1), time flip 0.5,
    # noise p=0.5 std 0.01, blur p=0.5 kernel 15 sigma [0.1, 2], axis mask p=0.5.
    assert (aim.flip_p, aim.rotate_p, aim.rotate_main_deg, aim.rotate_other_deg) == (0.5, 1.0, 30.0, 1.0)
    assert (aim.time_flip_p, aim.noise_p, aim.noise_std) == (0.5, 0.5, 0.01)
    assert (aim.blur_p, aim.blur_kernel, aim.blur_sigma, aim.blur_normalize) == (0.5, 15, (0.1, 2.0), False)
    assert aim.axis_mask_p == 0.5 and aim.joint_drop_p == 0.0 and aim.frame_drop_p == 0.0
    ext = AugmentParams.extreme()
    assert dataclasses.replace(ext, joint_drop_p=0.0, frame_drop_p=0.0, name="aimclr") == aim
    assert ext.joint_drop_p == 0.5 and ext.frame_drop_p == 0.5
    assert 0 < ext.joint_drop_rate < 1 and 0 < ext.frame_drop_rate < 1


def test_ntu_flip_map_is_aimclrs():
    aimclr_order = [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23, 24, 21, 22]
    assert list(skeletons.get("ntu25").flip) == aimclr_order


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(flip_p=1.5), "flip_p"),
        (dict(noise_p=-0.1), "noise_p"),
        (dict(blur_p=float("nan")), "blur_p"),
        (dict(shear_amplitude=-0.5), "shear_amplitude"),
        (dict(noise_std=float("inf")), "noise_std"),
        (dict(rotate_main_deg=400.0), "rotate_main_deg"),
        (dict(blur_kernel=14), "blur_kernel"),
        (dict(blur_kernel=0), "blur_kernel"),
        (dict(blur_sigma=(2.0, 0.1)), "blur_sigma"),
        (dict(blur_sigma=(0.0, 1.0)), "blur_sigma"),
        (dict(blur_sigma=3.0), "blur_sigma"),
        (dict(crop_padding_ratio=-1), "crop_padding_ratio"),
        (dict(crop_padding_ratio=2.5), "crop_padding_ratio"),
        (dict(crop_scale=(0.0, 1.0)), "crop_scale"),
        (dict(crop_scale=(1.0, 2.0)), "crop_scale"),  # longer than T + 2 T//6
        (dict(crop_padding_ratio=0, crop_scale=(1.0, 1.1)), "crop_scale"),
        (dict(joint_drop_rate=1.0), "joint_drop_rate"),
        (dict(frame_drop_rate="a lot"), "frame_drop_rate"),
        (dict(axis_mask_p=True), "axis_mask_p"),
        (dict(blur_normalize="yes"), "blur_normalize"),
    ],
)
def test_invalid_settings_rejected(kwargs, field):
    with pytest.raises(AugmentError, match=field):
        AugmentParams(**kwargs)


def test_from_dict_and_yaml(tmp_path):
    p = AugmentParams.from_dict({"preset": "extreme", "noise_std": 0.02})
    assert p.noise_std == 0.02 and p.rotate_p == 1.0 and p.name == "extreme+custom"
    assert AugmentParams.from_dict(AugmentParams.extreme().to_dict()) == AugmentParams.extreme()
    with pytest.raises(AugmentError, match=r"unknown field\(s\) \['shear_amplitud'\]"):
        AugmentParams.from_dict({"shear_amplitud": 0.3})
    with pytest.raises(AugmentError, match="unknown augmentation preset 'wild'"):
        AugmentParams.from_dict({"preset": "wild"})
    path = tmp_path / "aug.yaml"
    path.write_text("preset: normal\nflip_p: 0.25\nblur_sigma: [0.5, 1.0]\n")
    q = AugmentParams.from_yaml(path)
    assert q.flip_p == 0.25 and q.blur_sigma == (0.5, 1.0) and q.shear_p == 1.0
    path.write_text("flip_p: 2\n")
    with pytest.raises(AugmentError, match=r"aug.yaml: AugmentParams.flip_p = 2.0 is not a probability"):
        AugmentParams.from_yaml(path)
    with pytest.raises(AugmentError, match="does not exist"):
        AugmentParams.from_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["normal", "aimclr", "extreme"])
def test_config_files_equal_presets(name):
    assert AugmentParams.from_yaml(CONFIGS / f"{name}.yaml") == AugmentParams.preset(name)


# ---- the draw --------------------------------------------------------------------------------


def _binomial_ok(count, n, p, z=5.0):
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


def test_draw_statistics():
    p = AugmentParams.extreme()
    n, t = 20000, 50
    d = draw(p, n, frames=t, joints=43, generator=torch.Generator().manual_seed(0))
    pad = t // 6
    # crop: window of T frames, start uniform over 0..2*pad (AimCLR: randint(0, 2*pad + 1))
    assert (d["crop_length"] == t).all()
    starts = torch.bincount(d["crop_start"], minlength=2 * pad + 1)
    assert len(starts) == 2 * pad + 1 and all(_binomial_ok(int(c), n, 1 / (2 * pad + 1)) for c in starts)
    # shear: six independent U(-0.5, 0.5)
    s = d["shear"].reshape(n, 6).double()
    assert s.abs().max() <= 0.5
    assert s.mean(0).abs().max() < 5 * math.sqrt(1 / 12 / n)
    assert torch.allclose(s.var(0), torch.full((6,), 1 / 12, dtype=torch.float64), rtol=0.05)
    # rotation: always; one main axis (uniform) in [0, 30], the others in [0, 1]
    r = d["rotate"]
    assert (r >= 0).all() and (r <= 30).all()
    big = r > 1
    assert (big.sum(1) <= 1).all()
    for axis in range(3):
        assert _binomial_ok(int(big[:, axis].sum()), n, (1 / 3) * (29 / 30))
    assert abs(float(r[big].mean()) - 15.5) < 0.5  # U(1, 30) given > 1
    # coin flips with probability 0.5
    for key in ("flip", "time_flip", "blur"):
        assert _binomial_ok(int(d[key].sum()), n, 0.5), key
    assert sorted(d["noise_std"].unique().tolist()) == [0.0, pytest.approx(0.01)]
    assert _binomial_ok(int((d["noise_std"] > 0).sum()), n, 0.5)
    sig = d["blur_sigma"].double()
    assert sig.min() >= 0.1 and sig.max() <= 2.0 and abs(float(sig.mean()) - 1.05) < 0.02
    axis = d["axis_mask"]
    assert _binomial_ok(int((axis == -1).sum()), n, 0.5)
    for a in range(3):
        assert _binomial_ok(int((axis == a).sum()), n, 1 / 6)
    # drops: p=0.5 per sample, 10% of the joints / frames of a selected sample
    assert _binomial_ok(int((~d["joint_keep"]).sum()), n * 43, 0.05)
    assert _binomial_ok(int((~d["frame_keep"]).sum()), n * t, 0.05)


def test_draw_crop_resize_statistics():
    p = AugmentParams(crop_p=1.0, crop_scale=(0.5, 1.2))
    n, t = 20000, 60
    d = draw(p, n, frames=t, joints=10, generator=torch.Generator().manual_seed(1))
    length, start = d["crop_length"], d["crop_start"]
    assert length.min() == 30 and length.max() == 72
    assert (start >= 0).all() and (start + length <= t + 2 * 10).all()
    assert abs(float(length.double().mean()) - 51.0) < 0.3


def test_draw_reproducible_and_independent_of_probabilities():
    p = AugmentParams.extreme()
    a = draw(p, 64, frames=30, joints=25, persons=2, generator=torch.Generator().manual_seed(5))
    b = draw(p, 64, frames=30, joints=25, persons=2, generator=torch.Generator().manual_seed(5))
    c = draw(p, 64, frames=30, joints=25, persons=2, generator=torch.Generator().manual_seed(6))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["shear"], c["shear"])
    # Same stream when a probability changes: shear factors agree wherever shear is applied.
    q = dataclasses.replace(p, flip_p=0.0, noise_p=1.0)
    e = draw(q, 64, frames=30, joints=25, persons=2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a["shear"], e["shear"]) and torch.equal(a["noise"], e["noise"])
    assert not e["flip"].any() and (e["noise_std"] == 0.01).all()
    with pytest.raises(AugmentError, match="n = -1"):
        draw(p, -1, frames=30, joints=25)


# ---- each augmentation, exact for fixed parameters, both backends ----------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", sorted(SINGLE_OPS))
def test_single_augmentation_matches_reference(backend, op, table):
    params = SINGLE_OPS[op]
    x, layout = make_batch(table, n=8, t=24)
    aug = augmenter(backend, params, table)
    drawn = aug.draw(8, torch.Generator().manual_seed(11), frames=24, persons=2)
    y = aug.apply(x, layout, drawn)
    assert y.shape == x.shape and y.dtype == x.dtype
    ref = reference(x, layout, drawn, params, table)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=2e-6)


def test_scale_is_drawn_only_when_used_and_keeps_the_stream():
    """scale_p > 0 draws one more field, last: every other field, and the generator's state for a
    run without scaling, are what they were before the option existed."""
    base = AugmentParams.normal()
    scaled = AugmentParams.from_dict({"preset": "normal", "scale_p": 0.5, "scale_amplitude": 0.2})
    g0, g1 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    d0 = draw(base, 64, frames=30, joints=25, generator=g0)
    d1 = draw(scaled, 64, frames=30, joints=25, generator=g1)
    assert "scale" not in d0 and set(d1) == set(d0) | {"scale"}
    for name in d0:
        torch.testing.assert_close(d1[name], d0[name])
    f = d1["scale"]
    assert f.shape == (64, 3) and ((f >= 0.8) & (f <= 1.2)).all()
    untouched = (f == 1.0).all(1)
    assert 0 < untouched.sum() < 64  # scale_p = 0.5: some samples keep their size
    with pytest.raises(AugmentError, match="scale_amplitude"):
        AugmentParams(scale_p=1.0, scale_amplitude=1.0)
    # the preset: SkeletonCLR's normal view plus scaling by U(0.8, 1.2) on every sample
    preset = AugmentParams.preset("normal_scale")
    assert preset == AugmentParams.from_dict({"preset": "normal", "scale_p": 1.0, "scale_amplitude": 0.2})


@pytest.mark.parametrize("backend", BACKENDS)
def test_shear_matrix_applied(backend, table):
    """Basis vectors on three joints come out as the columns of [[1,xy,xz],[yx,1,yz],[zx,zy,1]]."""
    params = only(shear_p=1.0)
    aug = augmenter(backend, params, table)
    x = torch.zeros(2, 3, 4, table.v_max, 1)
    for j in range(3):
        x[:, j, :, j, 0] = 1.0
    layout = torch.tensor([0, 1])
    drawn = aug.draw(2, torch.Generator().manual_seed(0), frames=4)
    drawn["shear"] = torch.tensor([[[0.1, 0.2], [0.3, 0.4], [0.5, -0.25]]] * 2)
    expected = torch.tensor([[1.0, 0.1, 0.2], [0.3, 1.0, 0.4], [0.5, -0.25, 1.0]])
    y = aug.apply(x, layout, drawn)
    for j in range(3):
        torch.testing.assert_close(y[0, :, 0, j, 0], expected[:, j])
    torch.testing.assert_close(plan.geometry_matrix(drawn)[0], expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_matrix_applied(backend, table):
    """A 90 degree AimCLR rotation about z maps e_x to (cos, -sin, 0) = (0, -1, 0): minus the right-hand angle."""
    params = only(rotate_p=1.0)
    aug = augmenter(backend, params, table)
    x = torch.zeros(3, 3, 2, table.v_max, 1)
    x[:, 0, :, 0, 0] = 1.0  # e_x on joint 0
    x[:, 1, :, 1, 0] = 1.0  # e_y on joint 1
    layout = torch.tensor([0, 1, 2])
    drawn = aug.draw(3, torch.Generator().manual_seed(0), frames=2)
    drawn["rotate"] = torch.tensor([[0.0, 0.0, 90.0], [90.0, 0.0, 0.0], [0.0, 90.0, 0.0]])
    y = aug.apply(x, layout, drawn)
    torch.testing.assert_close(y[0, :, 0, 0, 0], torch.tensor([0.0, -1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(y[1, :, 0, 1, 0], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(y[2, :, 0, 0, 0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_flip_permutation_per_layout(backend, table):
    """Joint ids encoded as coordinates come out permuted by each sample's own flip map."""
    params = only(flip_p=1.0)
    aug = augmenter(backend, params, table)
    n = len(table)
    layout = torch.arange(n)
    ids = torch.arange(table.v_max, dtype=torch.float32) + 1
    x = ids[None, None, None, :, None].expand(n, 3, 3, -1, 2) * table.joint_mask[layout][:, None, None, :, None]
    drawn = aug.draw(n, torch.Generator().manual_seed(0), frames=3)
    drawn["flip"] = torch.tensor([True, True, False, True])
    y = aug.apply(x.contiguous(), layout, drawn)
    for i, conv in enumerate(table.conventions):
        got = y[i, 0, 0, :, 0] - 1
        v = conv.num_joints
        want = torch.tensor(conv.flip if drawn["flip"][i] else range(v), dtype=torch.float32)
        assert torch.equal(got[:v], want), conv.name
        assert (y[i, :, :, v:] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_crop_indices(backend, table):
    """Frame ids as coordinates: the window of AimCLR's mirror-padded sequence, and time flip."""
    params = only(crop_p=1.0, time_flip_p=1.0)
    aug = augmenter(backend, params, table)
    t, pad = 18, 3
    x = (torch.arange(t, dtype=torch.float32) + 1)[None, None, :, None, None].expand(3, 3, t, table.v_max, 1)
    x = x.contiguous()
    layout = torch.tensor([2, 2, 2])
    drawn = aug.draw(3, torch.Generator().manual_seed(0), frames=t)
    drawn["crop_start"] = torch.tensor([0, 2 * pad, 4])
    drawn["time_flip"] = torch.tensor([False, False, True])
    y = aug.apply(x, layout, drawn)[:, 0, :, 0, 0] - 1
    padded = [2, 1, 0] + list(range(t)) + [17, 16, 15]  # AimCLR: data[:, :pad][::-1], data, data[:, -pad:][::-1]
    assert y[0].tolist() == padded[0:t]
    assert y[1].tolist() == padded[2 * pad : 2 * pad + t]
    assert y[2].tolist() == padded[4 : 4 + t][::-1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_blur_kernel_impulse_response(backend, table):
    """An impulse in the middle frame comes out as AimCLR's (unnormalised) kernel exp(-k^2 / 2 sigma^2)."""
    params = only(blur_p=1.0)
    aug = augmenter(backend, params, table)
    t = 31
    x = torch.zeros(2, 3, t, table.v_max, 1)
    x[:, :, t // 2, 0, 0] = 1.0
    drawn = aug.draw(2, torch.Generator().manual_seed(0), frames=t)
    drawn["blur_sigma"] = torch.tensor([0.5, 2.0])
    drawn["blur"] = torch.tensor([True, False])
    y = aug.apply(x, torch.tensor([0, 1]), drawn)
    k = torch.arange(-7, 8, dtype=torch.float64)
    kernel = torch.exp(-(k**2) / (2 * 0.5**2))
    got = y[0, 1, t // 2 - 7 : t // 2 + 8, 0, 0].double()
    torch.testing.assert_close(got, kernel, rtol=1e-6, atol=1e-7)
    assert y[0, 1, : t // 2 - 7].abs().max() == 0 and y[0, 1, t // 2 + 8 :].abs().max() == 0
    assert torch.equal(y[1], x[1])  # not blurred: untouched


@pytest.mark.parametrize("backend", BACKENDS)
def test_masks(backend, table):
    params = only(axis_mask_p=1.0, joint_drop_p=1.0, frame_drop_p=1.0)
    aug = augmenter(backend, params, table)
    x, layout = make_batch(table, n=4, t=10, m=2)
    drawn = aug.draw(4, torch.Generator().manual_seed(0), frames=10)
    drawn["axis_mask"] = torch.tensor([-1, 0, 1, 2])
    drawn["joint_keep"] = torch.ones(4, table.v_max, dtype=torch.bool)
    drawn["joint_keep"][1, [3, 5]] = False
    drawn["frame_keep"] = torch.ones(4, 10, dtype=torch.bool)
    drawn["frame_keep"][2, [0, 9]] = False
    y = aug.apply(x, layout, drawn)
    assert torch.equal(y[0], x[0])
    assert (y[1, 0] == 0).all() and torch.equal(y[1, 1:, :, :3], x[1, 1:, :, :3])
    assert (y[1, :, :, [3, 5]] == 0).all() and torch.equal(y[1, 1:, :, 6:], x[1, 1:, :, 6:])
    assert (y[2, 1] == 0).all() and (y[2, :, [0, 9]] == 0).all() and torch.equal(y[2, 0, 1:9], x[2, 0, 1:9])
    assert (y[3, 2] == 0).all() and torch.equal(y[3, :2], x[3, :2])


# ---- whole presets: backends agree exactly (fixed parameters) and in distribution -------------


@pytest.mark.parametrize("preset", ["normal", "aimclr", "extreme", "resize"])
def test_presets_match_reference_and_each_other(preset, table):
    params = (
        AugmentParams.preset(preset)
        if preset != "resize"
        else dataclasses.replace(AugmentParams.extreme(), crop_scale=(0.6, 1.25), blur_normalize=True)
    )
    x, layout = make_batch(table, n=12, t=30, m=2, seed=3)
    drawn = draw(params, 12, frames=30, joints=table.v_max, persons=2, generator=torch.Generator().manual_seed(4))
    ref = reference(x, layout, drawn, params, table)
    outs = {"torch": augmenter("torch", params, table).apply(x, layout, drawn)}
    if not DALI_MISSING:
        outs["dali"] = augmenter("dali", params, table).apply(x, layout, drawn)
    for name, y in outs.items():
        torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
    if "dali" in outs:
        torch.testing.assert_close(outs["dali"], outs["torch"], rtol=1e-5, atol=1e-5)


@needs_dali
def test_backends_agree_in_distribution(table):
    """Random calls (independent seeds): the same statistics of the augmented batches."""
    params = AugmentParams.extreme()
    n, t = 256, 20
    x, layout = make_batch(table, n=n, t=t, m=1, seed=7)
    stats = {}
    for backend, seed in (("torch", 100), ("dali", 200)):
        aug = augmenter(backend, params, table)
        g = torch.Generator().manual_seed(seed)
        ys = torch.cat([aug(x, layout, g) for _ in range(4)])
        valid = table.joint_mask[layout.repeat(4)][:, None, None, :, None].expand_as(ys)
        zero_axis = (ys == 0).all(dim=(2, 3, 4))  # (4n, 3): an axis masked out
        zero_frame = (ys.abs().sum(dim=(1, 3, 4)) == 0).float()  # (4n, T)
        stats[backend] = dict(
            mean_abs=ys[valid].abs().mean().item(),
            rms=ys[valid].pow(2).mean().sqrt().item(),
            axis_masked=zero_axis.any(1).float().mean().item(),
            frames_dropped=zero_frame.mean().item(),
        )
    a, b = stats["torch"], stats["dali"]
    assert a["mean_abs"] == pytest.approx(b["mean_abs"], rel=0.08), stats
    assert a["rms"] == pytest.approx(b["rms"], rel=0.08), stats
    assert abs(a["axis_masked"] - 0.5) < 0.06 and abs(b["axis_masked"] - 0.5) < 0.06, stats
    assert abs(a["frames_dropped"] - 0.05) < 0.015 and abs(b["frames_dropped"] - 0.05) < 0.015, stats


@needs_dali
@pytest.mark.parametrize("noise_source", ["dali", "torch"])
def test_dali_noise_distribution(noise_source, table):
    """N(0, 0.01^2) on half the samples, none elsewhere: from fn.random.normal or fed from torch."""
    params = only(noise_p=0.5, noise_std=0.01)
    aug = make_augment(params, table, backend="dali", device="cpu", seed=5, noise_source=noise_source)
    assert aug.noise_source == noise_source
    x, layout = make_batch(table, n=200, t=16, m=1, seed=1)
    y = aug(x, layout, torch.Generator().manual_seed(0))
    valid = table.joint_mask[layout][:, None, None, :, None].expand_as(x)
    diff = (y - x).masked_fill(~valid, 0)
    noisy = diff.abs().amax(dim=(1, 2, 3, 4)) > 0
    assert _binomial_ok(int(noisy.sum()), 200, 0.5)
    res = diff[noisy][valid[noisy]]
    assert abs(res.std().item() - 0.01) < 0.0005 and abs(res.mean().item()) < 0.0002
    assert (y.permute(0, 3, 1, 2, 4)[~table.joint_mask[layout]] == 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("preset", ["normal", "extreme"])
def test_padded_joints_stay_zero(backend, preset, table):
    aug = augmenter(backend, AugmentParams.preset(preset), table)
    x, layout = make_batch(table, n=16, t=20, m=2, seed=9)
    y = aug(x, layout, torch.Generator().manual_seed(1))
    pad = ~table.joint_mask[layout]
    assert (y.permute(0, 3, 1, 2, 4)[pad] == 0).all()
    assert (y.permute(0, 3, 1, 2, 4)[~pad] != 0).any()


def test_torch_reproducible_under_seed(table):
    aug = augmenter("torch", AugmentParams.extreme(), table)
    x, layout = make_batch(table, n=8, t=20)
    a = aug(x, layout, torch.Generator().manual_seed(3))
    b = aug(x, layout, torch.Generator().manual_seed(3))
    c = aug(x, layout, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(8)
    d = aug(x, layout)
    torch.manual_seed(8)
    assert torch.equal(d, aug(x, layout))


def test_torch_apply_without_noise_field_draws_from_generator(table):
    params = only(noise_p=1.0)
    aug = augmenter("torch", params, table)
    x, layout = make_batch(table, n=4, t=10)
    drawn = aug.draw(4, torch.Generator().manual_seed(0), frames=10)
    a = aug.apply(x, layout, drawn, torch.Generator().manual_seed(1))
    b = aug.apply(x, layout, drawn, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("persons, dtype", [(1, torch.float32), (3, torch.float32), (2, torch.float64)])
def test_persons_and_dtypes_match_reference(backend, persons, dtype, table):
    params = dataclasses.replace(AugmentParams.extreme(), crop_scale=(0.8, 1.1))
    x, layout = make_batch(table, n=5, t=14, m=persons, seed=2)
    drawn = draw(params, 5, frames=14, joints=table.v_max, persons=persons, generator=torch.Generator().manual_seed(3))
    y = augmenter(backend, params, table).apply(x.to(dtype), layout, drawn)
    assert y.dtype == dtype
    tol = 1e-12 if (backend, dtype) == ("torch", torch.float64) else 1e-5
    torch.testing.assert_close(y.double(), reference(x, layout, drawn, params, table), rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dtypes_and_identity(backend, table):
    aug = augmenter(backend, AugmentParams.none(), table)
    x, layout = make_batch(table, n=4, t=10)
    assert torch.equal(aug(x, layout), x)
    x64 = x.double()
    y = augmenter(backend, AugmentParams.normal(), table)(x64, layout, torch.Generator().manual_seed(0))
    assert y.dtype == torch.float64 and y.shape == x.shape


# ---- the DALI pipeline specifics -------------------------------------------------------------


@needs_dali
def test_dali_runs_on_cpu_with_device_id_none(table):
    aug = augmenter("dali", AugmentParams.extreme(), table)
    assert isinstance(aug, DaliAugment) and aug.name == "dali" and aug.device_id is None
    assert aug.noise_source == "torch"  # CPU default: torch draws the noise field, DALI adds it
    x, layout = make_batch(table, n=3, t=12)
    first = aug(x, layout, torch.Generator().manual_seed(0))
    kept = first.clone()
    pipes = [pipe for _, pipe in aug._pipes.values()]
    assert pipes and all(pipe.device_id is None for pipe in pipes)
    # The output is a zero-copy view of a DALI buffer: later iterations must not overwrite it.
    for seed in range(3):
        aug(x, layout, torch.Generator().manual_seed(seed + 1))
    assert torch.equal(first, kept)
    # With the noise fed from torch, a CPU pipeline is reproducible under the generator.
    assert torch.equal(aug(x, layout, torch.Generator().manual_seed(0)), kept)


@needs_dali
def test_dali_batch_sizes_and_prefetching_iterator(table):
    params = AugmentParams.normal()  # no noise: results are a function of the generator only
    aug = make_augment(params, table, backend="dali", device="cpu", seed=0, prefetch=2)
    batches = [make_batch(table, n=n, t=12, seed=i) for i, n in enumerate([5, 5, 3, 4, 2])]
    g1 = torch.Generator().manual_seed(0)
    direct = [aug(x, l, g1) for x, l in batches]
    g2 = torch.Generator().manual_seed(0)
    streamed = list(aug.iterate(batches, g2))
    assert len(streamed) == len(batches)
    for (x, l), (xs, ls, ys), yd in zip(batches, streamed, direct):
        assert xs is x and ls is l and torch.equal(ys, yd)
    # Each iterate() builds a pipeline with its own noise seed: epochs do not replay the noise.
    noisy = make_augment(only(noise_p=1.0), table, backend="dali", device="cpu", seed=0)
    first = [y for _, _, y in noisy.iterate(batches[:2])]
    second = [y for _, _, y in noisy.iterate(batches[:2])]
    assert not any(torch.equal(a, b) for a, b in zip(first, second))
    too_big = batches[:2] + [make_batch(table, n=9, t=12)]
    with pytest.raises(AugmentError, match="does not fit"):
        list(aug.iterate(too_big))


# ---- selection and bad input -----------------------------------------------------------------


def test_make_augment_selection(table):
    assert make_augment("normal", table, backend="torch", device="cpu").name == "torch"
    auto = make_augment("normal", table, backend="auto", device="cpu")
    assert auto.name == "torch" and isinstance(auto, TorchAugment)  # DALI is auto's choice on GPUs only
    if not DALI_MISSING:
        assert make_augment("normal", table, backend="dali", device="cpu").name == "dali"
    with pytest.raises(AugmentError, match="unknown backend 'numpy'"):
        make_augment("normal", table, backend="numpy")
    with pytest.raises(AugmentError, match="unknown augmentation preset"):
        make_augment("strong", table, backend="torch")
    with pytest.raises(AugmentError, match="only apply to the dali backend"):
        make_augment("normal", table, backend="torch", device="cpu", seed=1)
    if not GPU and not DALI_MISSING:
        with pytest.raises(AugmentError, match="CUDA is not available"):
            make_augment("normal", table, backend="dali", device="cuda")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs_rejected(backend, table):
    aug = augmenter(backend, AugmentParams.normal(), table)
    x, layout = make_batch(table, n=4, t=10)
    with pytest.raises(AugmentError, match="C = 2 channels"):
        aug(x[:, :2], layout)
    with pytest.raises(AugmentError, match="V = 40 joints"):
        aug(x[:, :, :, :40], layout)
    with pytest.raises(AugmentError, match=r"layout\[2\] = 7"):
        aug(x, torch.tensor([0, 1, 7, 0]))
    with pytest.raises(AugmentError, match=r"layout must be an \(N,\)"):
        aug(x, layout[:3])
    drawn = aug.draw(4, frames=10)
    with pytest.raises(AugmentError, match=r"drawn\['shear'\] must have shape \(4, 3, 2\)"):
        aug.apply(x, layout, {**drawn, "shear": torch.zeros(4, 6)})
    with pytest.raises(AugmentError, match=r"lack field\(s\) \['flip'\]"):
        aug.apply(x, layout, {k: v for k, v in drawn.items() if k != "flip"})
    with pytest.raises(AugmentError, match="crop window"):
        aug.apply(x, layout, {**drawn, "crop_start": torch.full((4,), 5)})
    # parameters drawn without scaling, applied by an augmenter that scales: the field is missing
    scaled = augmenter(backend, AugmentParams.preset("normal_scale"), table)
    with pytest.raises(AugmentError, match=r"lack field\(s\) \['scale'\]"):
        scaled.apply(x, layout, drawn)


# ---- GPU (skipped here: no GPU on the development machine) -----------------------------------


@pytest.mark.gpu  # skipped without a GPU (conftest.py)
def test_torch_gpu_matches_cpu(table):
    params = AugmentParams.extreme()
    x, layout = make_batch(table, n=8, t=20)
    drawn = draw(params, 8, frames=20, joints=table.v_max, persons=2, generator=torch.Generator().manual_seed(0))
    aug = make_augment(params, table, backend="torch", device="cuda")
    y = aug.apply(x.cuda(), layout.cuda(), {k: v.cuda() for k, v in drawn.items()})
    assert y.is_cuda
    torch.testing.assert_close(y.cpu(), augmenter("torch", params, table).apply(x, layout, drawn), rtol=1e-5, atol=1e-5)
    g = torch.Generator(device="cuda").manual_seed(0)
    assert aug(x.cuda(), layout.cuda(), g).is_cuda


@pytest.mark.gpu  # skipped without a GPU (conftest.py)
@needs_dali
def test_dali_gpu_matches_torch(table):
    params = dataclasses.replace(AugmentParams.extreme(), crop_scale=(0.7, 1.2))
    x, layout = make_batch(table, n=8, t=20)
    drawn = draw(params, 8, frames=20, joints=table.v_max, persons=2, generator=torch.Generator().manual_seed(0))
    aug = make_augment(params, table, backend="dali", device="cuda", seed=0)
    assert make_augment(params, table, backend="auto", device="cuda").name == "dali"
    y = aug.apply(x.cuda(), layout.cuda(), drawn)
    assert y.is_cuda
    ref = augmenter("torch", params, table).apply(x, layout, drawn)
    torch.testing.assert_close(y.cpu(), ref, rtol=1e-5, atol=1e-5)
    y2 = aug(x.cuda(), layout.cuda())
    assert y2.is_cuda and (y2.permute(0, 3, 1, 2, 4)[~table.joint_mask[layout].cuda()] == 0).all()
