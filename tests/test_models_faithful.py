"""msclr's STGCNEncoder computes ST-GCN as SkeletonCLR / AimCLR use it.

Held against tests/stgcn_reference.py (an independent ST-GCN written from the published
equations, with the released code's parameter names), with the reference's weights mapped by
msclr.convert (the mapping `python -m msclr.convert` uses), in float64: features in eval and in
train mode, BatchNorm running statistics after a train-mode step, gradients w.r.t. the input and
every parameter. Backends: reference (plain torch) and cpu (the C++ kernels).
"""

from __future__ import annotations

import pytest
import torch
from helpers import layout_table, need_backend
from stgcn_reference import Model, perturb_

from msclr.convert import convert_stgcn_state
from msclr.models import LayoutInputNorm, STGCNEncoder

BACKENDS = ("reference", "cpu")
TOL = dict(rtol=1e-5, atol=1e-5)


def pair(backend: str, seed: int = 0):
    """(reference ST-GCN, msclr encoder with its weights), float64, ntu25, persons=2."""
    table = layout_table(("ntu25",))
    assert table.A.shape == (1, 3, 25, 25)
    ref = perturb_(Model(3, 8, 32, 10, table.A[0], edge_importance=True, dropout=0.0), seed).double()
    enc = STGCNEncoder(table, hidden_channels=8, hidden_dim=32, persons=2, dropout=0.0, backend=backend).double()
    state, arch, _ = convert_stgcn_state(ref.state_dict())
    assert (arch.hidden_channels, arch.hidden_dim, arch.partitions, arch.joints) == (8, 32, 3, 25)
    enc.load_state_dict(state)  # strict: every encoder entry comes from the reference
    return ref, enc


def ntu_batch(seed: int = 1) -> torch.Tensor:
    """(N=4, C=3, T=20, V=25, M=2) float64: samples 0 and 2 have no second person (zeros, as NTU
    stores them), sample 1's second person leaves after 12 frames, sample 3 ends after 16 frames."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 20, 25, 2, generator=g, dtype=torch.float64) * 0.5 + 0.2
    x[0, ..., 1] = 0
    x[2, ..., 1] = 0
    x[1, :, 12:, :, 1] = 0
    x[3, :, 16:] = 0
    return x


LAYOUT = torch.zeros(4, dtype=torch.long)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eval_features_equal_the_reference(backend):
    need_backend(backend, "cpu", ("masked_graph_conv", "masked_bn_stats", "masked_bn_apply"))
    ref, enc = pair(backend)
    ref.eval(), enc.eval()
    x = ntu_batch()
    with torch.no_grad():
        want = ref(x)
        got = enc(x, LAYOUT)
    assert want.shape == got.shape == (4, 32)
    assert want.abs().max() > 1e-3  # not a trivially small output
    torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_mode_features_statistics_and_gradients_equal_the_reference(backend):
    need_backend(backend, "cpu", ("masked_graph_conv", "masked_bn_stats", "masked_bn_apply"))
    ref, enc = pair(backend, seed=3)
    ref.train(), enc.train()
    x = ntu_batch(seed=4)
    x_ref, x_enc = x.clone().requires_grad_(), x.clone().requires_grad_()
    want, got = ref(x_ref), enc(x_enc, LAYOUT)
    torch.testing.assert_close(got, want, **TOL)

    # the running statistics after the step: the reference's, mapped, equal the encoder's
    mapped = convert_stgcn_state(ref.state_dict())[0]
    state = enc.state_dict()
    stats = [k for k in state if k.endswith(("running_mean", "running_var"))]
    # data_bn, bn1/bn2 of 10 units, res_bn of units 4 and 7 (unit 9, 32 -> 32, has the identity)
    assert len(stats) == 2 * (1 + 2 * 10 + 2)
    for key in stats:
        torch.testing.assert_close(state[key], mapped[key], **TOL, msg=lambda m, key=key: f"{key}: {m}")

    # gradients of one scalar of the features: w.r.t. the input and, mapped, every parameter
    w = torch.randn(want.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (want * w).sum().backward()
    (got * w).sum().backward()
    torch.testing.assert_close(x_enc.grad, x_ref.grad, **TOL)
    assert x_ref.grad.abs().max() > 0
    grads = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    grads.update({n: b for n, b in ref.named_buffers()})  # placeholders: the mapping needs the whole layout
    mapped_grads = convert_stgcn_state(grads)[0]
    for name, p in enc.named_parameters():
        torch.testing.assert_close(p.grad, mapped_grads[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")


# ------------------------------------------------------------------------------ input BatchNorm
def _norm_problem(form: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    table = layout_table(("coco17", "ntu25"))
    persons = 2
    norm = LayoutInputNorm(2, 3, table.v_max, persons, form=form).double()
    with torch.no_grad():
        for t in (norm.weight, norm.running_var):
            t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
        for t in (norm.bias, norm.running_mean):
            t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) - 0.5)
    layout = torch.tensor([0, 1, 1, 0, 1])
    mask = table.joint_mask[layout]
    x = torch.randn(5, 3, 6, table.v_max, persons, generator=g, dtype=torch.float64) + 0.3
    x = x * mask[:, None, None, :, None]
    x[3, ..., 1] = 0  # a missing second person counts in the statistics, as in ST-GCN
    return table, norm, layout, mask, x


def _as_batchnorm1d(form: str, norm: LayoutInputNorm, l: int, v: int) -> torch.nn.BatchNorm1d:
    """The torch BatchNorm1d that layout l's slice of `norm` stands for."""
    feats = norm.weight[l, :, :v, :].numel()
    bn = torch.nn.BatchNorm1d(feats).double()
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(norm, name)[l, :, :v, :].reshape(-1))
    return bn


def _features(form: str, x: torch.Tensor, v: int) -> torch.Tensor:
    """(N, C, T, V, M) -> stgcn: (N*M, V*C, T) (feature v*C + c); per_person: (N, M*V*C, T)."""
    n, c, t, _, m = x.shape
    y = x[:, :, :, :v].permute(0, 4, 3, 1, 2)  # (N, M, V, C, T)
    return y.reshape(n * m, v * c, t) if form == "stgcn" else y.reshape(n, m * v * c, t)


@pytest.mark.parametrize("form", ["stgcn", "per_person"])
@pytest.mark.parametrize("training", [True, False])
def test_layout_input_norm_forms_are_torch_batchnorm1d(form, training):
    """stgcn: BatchNorm1d(V*C) over (N*M, V*C, T), persons sharing it (ST-GCN, SkeletonCLR, AimCLR);
    per_person: BatchNorm1d(M*V*C) over (N, M*V*C, T) (2s-AGCN). Per layout, padding stays 0."""
    table, norm, layout, mask, x = _norm_problem(form)
    assert norm.weight.shape == ((2, 1, 25, 3) if form == "stgcn" else (2, 2, 25, 3))
    refs = [_as_batchnorm1d(form, norm, l, table.conventions[l].num_joints) for l in (0, 1)]
    norm.train(training)
    y = norm(x, layout, mask)
    for l in (0, 1):
        sel, v = layout == l, table.conventions[l].num_joints
        refs[l].train(training)
        want = refs[l](_features(form, x[sel], v))
        torch.testing.assert_close(_features(form, y[sel], v), want, rtol=1e-10, atol=1e-10)
        for name in ("running_mean", "running_var"):
            got = getattr(norm, name)[l, :, :v, :].reshape(-1)
            torch.testing.assert_close(got, getattr(refs[l], name), rtol=1e-10, atol=1e-10)
    assert (y[layout == 0][:, :, :, 17:] == 0).all()
