"""The unified ST-GCN: masking (padded joints contribute nothing), normalisation statistics, MoCo step."""

from __future__ import annotations

import pytest
import torch

from msclr import skeletons
from msclr.models import LayoutInputNorm, MaskedBatchNorm, STGCNEncoder, simam_attention
from msclr.models.contrast import MoCo, aimclr_released_mask
from msclr.views import make_pairs, to_stream


def table_of(*names):
    return skeletons.LayoutTable([skeletons.get(n) for n in names])


def test_masked_batchnorm_counts_valid_joints_only():
    torch.manual_seed(0)
    bn = MaskedBatchNorm(4)
    mask = torch.zeros(3, 10)
    mask[0, :7] = 1
    mask[1:, :10] = 1
    x = torch.randn(3, 4, 5, 10) * mask[:, None, None, :] + 100 * (1 - mask[:, None, None, :])  # garbage in padding
    y = bn(x, mask)
    valid = x.permute(1, 0, 2, 3)[:, mask[:, None, :].expand(3, 5, 10).bool()]  # (C, count)
    ref = torch.nn.functional.batch_norm(valid[None].permute(0, 1, 2), None, None, training=True, eps=1e-5)[0]
    got = y.permute(1, 0, 2, 3)[:, mask[:, None, :].expand(3, 5, 10).bool()]
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert (y[0, :, :, 7:] == 0).all()
    torch.testing.assert_close(bn.running_mean, 0.1 * valid.mean(1))


def test_layout_input_norm_is_batchnorm1d_per_layout():
    torch.manual_seed(0)
    table = table_of("coco17", "ntu25")
    norm = LayoutInputNorm(2, 3, table.v_max, 2, form="per_person")  # 2s-AGCN's; "stgcn": test_models_faithful
    layout = torch.tensor([0, 1, 1, 0, 1])
    x = torch.randn(5, 3, 6, table.v_max, 2) * table.joint_mask[layout][:, None, None, :, None]
    y = norm(x, layout, table.joint_mask[layout])
    for l in (0, 1):
        sel = layout == l
        v = table.conventions[l].num_joints
        # ST-GCN's data_bn: BatchNorm1d over M*V*C features, statistics over (samples, frames)
        feats = x[sel][:, :, :, :v].permute(0, 4, 3, 1, 2).reshape(int(sel.sum()), -1, 6)
        ref = torch.nn.functional.batch_norm(feats, None, None, training=True, eps=1e-5)
        got = y[sel][:, :, :, :v].permute(0, 4, 3, 1, 2).reshape(int(sel.sum()), -1, 6)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert (y[layout == 0][:, :, :, 17:] == 0).all()


def test_padding_contributes_nothing_in_the_encoder():
    """An ntu25 sample gets the same features in a V_max=25 model and in a V_max=43 model."""
    torch.manual_seed(0)
    small, big = table_of("ntu25"), table_of("ntu25", "berkeley_mhad43")
    enc_small = STGCNEncoder(small, persons=2, dropout=0.0, hidden_channels=4, hidden_dim=16)
    enc_big = STGCNEncoder(big, persons=2, dropout=0.0, hidden_channels=4, hidden_dim=16)
    with torch.no_grad():
        for p in enc_big.parameters():  # random importance / BN affine so nothing is trivially 1 or 0
            p.uniform_(0.5, 1.5)
        for name, p in enc_small.named_parameters():
            src = dict(enc_big.named_parameters())[name]
            if name.endswith("importance"):
                p.copy_(src[:1, :, :25, :25])
            elif name.startswith("data_bn"):
                p.copy_(src[:1, :, :25, :])
            else:
                p.copy_(src)
    layout_big = torch.tensor([0, 1, 0, 1])
    x = torch.randn(4, 3, 20, 43, 2) * big.joint_mask[layout_big][:, None, None, :, None]
    enc_small.train(), enc_big.train()
    # batch statistics only see ntu25 joints for the shared BN layers if the batch is ntu25 only
    x_ntu = x[layout_big == 0]
    f_big = enc_big(x_ntu, torch.zeros(2, dtype=torch.long))
    f_small = enc_small(x_ntu[:, :, :, :25], torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(f_big, f_small, rtol=1e-4, atol=1e-5)
    # garbage in the padding of the input changes nothing
    x_bad = x_ntu.clone()
    x_bad[:, :, :, 25:] = 1e3
    torch.testing.assert_close(enc_big(x_bad, torch.zeros(2, dtype=torch.long)), f_big, rtol=1e-4, atol=1e-5)


def test_encoder_channels_and_strides_are_the_papers():
    enc = STGCNEncoder(table_of("ntu25"))
    assert [u.tcn.out_channels for u in enc.units] == [16, 16, 16, 16, 32, 32, 32, 64, 64, 256]
    assert [u.tcn.stride[0] for u in enc.units] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert enc.units[0].importance.shape == (1, 3, 25, 25)
    assert enc(torch.randn(2, 3, 50, 25, 2), torch.zeros(2, dtype=torch.long)).shape == (2, 256)


def test_make_pairs():
    g = torch.Generator().manual_seed(0)
    n, L = 6, 3
    x = torch.arange(n * L, dtype=torch.float32).view(n, L, 1, 1, 1, 1).expand(n, L, 3, 4, 5, 1)
    avail = torch.ones(n, L, dtype=torch.bool)
    xq, lq, xk, lk = make_pairs(x, avail, "batch", 0, g)
    assert (lq == lq[0]).all() and (lk == lk[0]).all() and lq[0] != lk[0, 0] and lk.shape == (n, 1)
    assert torch.equal(xq[:, 0, 0, 0, 0], x[torch.arange(n), lq, 0, 0, 0, 0])
    xq, lq, xk, lk = make_pairs(x, avail, "sample", 0, g)
    assert (lq != lk[:, 0]).all()
    xq, lq, xk, lk = make_pairs(x, avail, "all", 0, g)
    assert lk.shape == (n, 2) and all(set(lk[i].tolist()) == set(range(L)) - {int(lq[i])} for i in range(n))
    assert xk.shape == (n, 2, 3, 4, 5, 1)
    xq, lq, xk, lk = make_pairs(x, avail, "single", 2, g)
    assert (lq == 2).all() and (lk == 2).all()
    avail[:, 1] = False  # convention 1 missing everywhere: never chosen
    for mode in ("batch", "sample"):
        _, lq, _, lk = make_pairs(x, avail, mode, 0, g)
        assert (lq != 1).all() and (lk != 1).all()


def test_streams():
    table = table_of("ntu25")
    x = torch.randn(2, 3, 6, 25, 1)
    layout = torch.zeros(2, dtype=torch.long)
    m = to_stream(x, layout, "motion", table)
    torch.testing.assert_close(m[:, :, :5], x[:, :, 1:] - x[:, :, :-1])
    assert (m[:, :, 5] == 0).all()
    b = to_stream(x, layout, "bone", table)
    torch.testing.assert_close(b[..., 0, :], x[..., 0, :] - x[..., 1, :])  # spine_base -> spine_mid
    assert (b[..., 20, :] == 0).all()  # the centre


@pytest.mark.parametrize("aimclr", [False, True])
def test_moco_step_updates_queue_and_key_encoder(aimclr):
    torch.manual_seed(0)
    table = table_of("ntu25", "coco17")
    model = MoCo(
        STGCNEncoder(table, persons=1, dropout=0.0, hidden_channels=4, hidden_dim=16),
        queue_size=64,
        momentum=0.9,
        aimclr=aimclr,
    )
    layout_q = torch.tensor([0, 1, 0, 1])
    layout_k = torch.tensor([[1], [0], [1], [0]])
    mask_q = table.joint_mask[layout_q][:, None, None, :, None]
    xq = torch.randn(4, 3, 12, 25, 1) * mask_q
    xk = torch.randn(4, 1, 3, 12, 25, 1) * table.joint_mask[layout_k][:, :, None, None, :, None]
    k_before = [p.clone() for p in model.encoder_k.parameters()]
    q_before = [p.detach().clone() for p in model.encoder_q.parameters()]
    out = model(xq, layout_q, xk, layout_k, x_extreme=xq * 1.1 if aimclr else None, nn_mining=aimclr)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.encoder_q.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert model.queue_ptr.item() == 4
    assert all(p.grad is None for p in model.encoder_k.parameters())
    # the key encoder follows the query encoder by momentum: one update per step, each with the
    # query weights of that step (the default init draws the key encoder apart, as AimCLR's code)
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    model(xq, layout_q, xk, layout_k, x_extreme=xq * 1.1 if aimclr else None)
    for a, q0, kp, q1 in zip(k_before, q_before, model.encoder_k.parameters(), model.encoder_q.parameters()):
        torch.testing.assert_close(kp, 0.9 * (0.9 * a + 0.1 * q0) + 0.1 * q1.detach(), rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, q0) for a, q0 in zip(k_before, q_before))  # drawn apart
    assert model.queue_ptr.item() == 8
    torch.testing.assert_close(model.queue[:4].norm(dim=1), torch.ones(4))


@pytest.mark.parametrize("aimclr", [False, True])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_moco_with_a_bf16_queue_matches_the_fp32_queue(aimclr, backend):
    """method.queue_dtype=bfloat16: the queue is stored in bf16, InfoNCE gets bf16 queries and keys
    (one dtype: the kernels' tensor-core path on a GPU), the gradients arrive in fp32, and the loss
    and gradients agree with the fp32 queue within bf16 rounding."""
    if backend == "cpu":
        pytest.importorskip("msclr._C")
    table = table_of("ntu25", "coco17")
    layout_q = torch.tensor([0, 1, 0, 1])
    layout_k = torch.tensor([[1], [0], [1], [0]])
    gen = torch.Generator().manual_seed(1)
    xq = torch.randn(4, 3, 12, 25, 1, generator=gen) * table.joint_mask[layout_q][:, None, None, :, None]
    xk = torch.randn(4, 1, 3, 12, 25, 1, generator=gen) * table.joint_mask[layout_k][:, :, None, None, :, None]
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        encoder = STGCNEncoder(table, persons=1, dropout=0.0, hidden_channels=4, hidden_dim=16, backend=backend)
        model = MoCo(encoder, queue_size=64, momentum=0.9, aimclr=aimclr, backend=backend, queue_dtype=dtype)
        assert model.queue.dtype == dtype
        out = model(xq, layout_q, xk, layout_k, x_extreme=xq * 1.1 if aimclr else None, nn_mining=aimclr)
        out.loss.backward()
        assert model.queue.dtype == dtype and model.queue_ptr.item() == 4  # keys enqueued in the queue's dtype
        grads = [p.grad for p in model.encoder_q.parameters() if p.grad is not None]
        assert grads and all(g.dtype == torch.float32 for g in grads)
        results[dtype] = (out.loss.detach(), torch.cat([g.flatten() for g in grads]))
    loss32, grad32 = results[torch.float32]
    loss16, grad16 = results[torch.bfloat16]
    torch.testing.assert_close(loss16, loss32, rtol=2e-2, atol=2e-2)
    assert (grad16 - grad32).norm() <= 0.05 * grad32.norm()


def test_queue_dtype_is_checked():
    with pytest.raises(ValueError, match="queue_dtype must be"):
        MoCo(STGCNEncoder(table_of("ntu25"), persons=1, hidden_channels=4, hidden_dim=16), queue_dtype=torch.int8)


# ------------------------------------------------------------------------------ AimCLR's drop
def test_aimclr_released_mask_keeps_everything():
    """AimCLR's released DropBlock_Ske / DropBlockT_1d: `mask[mask >= keep] = 0` then
    `mask[mask < keep] = 1` turns the zeros of the first update into ones in the second."""
    g = torch.Generator().manual_seed(0)
    att = 0.5 + 0.5 * torch.rand(8, 16, 12, 25, generator=g)  # SimAM attention lies in (0.5, 1)
    att[0, 0, 0, 0] = 0.7  # the threshold itself
    assert (att >= 0.7).any() and (att < 0.7).any()
    mask = aimclr_released_mask(att, 0.7)
    assert torch.equal(mask, torch.ones_like(att))
    assert (att < 1).all()  # the input is not modified in place


def _drop_problem(mode: str, keep_prob: float = 0.7, n: int = 4, t: int = 12, seed: int = 0):
    torch.manual_seed(seed)
    table = table_of("ntu25", "coco17")
    model = MoCo(
        STGCNEncoder(table, persons=1, dropout=0.0, hidden_channels=4, hidden_dim=16),
        queue_size=64,
        aimclr=True,
        drop_keep_prob=keep_prob,
        drop_mode=mode,
    )
    layout = torch.arange(n) % 2
    mask = table.joint_mask[layout]
    fmap = torch.randn(n, 16, t, table.v_max) * mask[:, None, None, :]
    fmap[0, :, :, 3] *= 20  # a salient joint: its mean attention is near 1
    return model, fmap, mask


def test_drop_mode_aimclr_passes_the_feature_map_unchanged():
    model, fmap, mask = _drop_problem("aimclr")
    assert torch.equal(model.attention_drop(fmap, mask), fmap)


def test_drop_mode_threshold_zeroes_the_salient_positions():
    keep = 0.7
    model, fmap, mask = _drop_problem("threshold", keep)
    out = model.attention_drop(fmap, mask)
    att = simam_attention(fmap, mask)  # (N, C, T, V); 0 on padding
    valid = mask[:, None, None, :].expand_as(att)
    # dropped: joints whose mean attention over (C, T) reaches keep_prob, then every position whose does
    salient_joint = (att.mean((1, 2)) >= keep)[:, None, None, :].expand_as(att)
    dropped = valid & (salient_joint | (att >= keep))
    kept = valid & ~dropped
    assert salient_joint[0, 0, 0, 3] and dropped.any() and kept.any()
    assert (out[dropped] == 0).all()
    assert (out[kept] != 0).all()
    assert (out[~valid] == 0).all()  # padding stays zero
    assert torch.isfinite(out).all()
    # the kept positions are rescaled by one factor for the whole batch
    ratio = out[kept] / fmap[kept]
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0])))
    assert ratio[0] > 1


def test_drop_mode_random_keeps_about_keep_prob():
    keep = 0.7
    model, fmap, mask = _drop_problem("random", keep, n=8, t=50)
    fmap[0, :, :, 3] /= 20  # no outlier: the drop probability is then close to uniform
    out = model.attention_drop(fmap, mask)
    valid = mask[:, None, :].expand(-1, fmap.shape[2], -1)  # (N, T, V): one draw per position
    kept = (out[:, 0] != 0) & valid
    share = kept.sum() / valid.sum()
    assert abs(float(share) - keep) < 0.05, share
    assert (out[~mask[:, None, None, :].expand_as(out)] == 0).all()
    assert torch.isfinite(out).all()
