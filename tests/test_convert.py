"""python -m msclr.convert: released SkeletonCLR / AimCLR / CrosSCLR / ST-GCN checkpoints -> msclr.

The "released" files are made here from tests/stgcn_reference.py (an independent ST-GCN with the
released code's parameter names) wrapped as each codebase saves it; the converted checkpoint must
compute the reference's features through msclr's own loaders.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from stgcn_reference import Model, perturb_

import msclr
from msclr import skeletons
from msclr.convert import main
from msclr.evaluate.checkpoint import build_encoder, read_checkpoint
from msclr.models import STGCNEncoder
from msclr.models.contrast import MoCo

HC, HD, FEAT, QUEUE = 8, 32, 16, 256


def reference(seed: int, convention: str = "ntu25") -> Model:
    table = skeletons.LayoutTable([skeletons.get(convention)])
    return perturb_(Model(3, HC, HD, 60, table.A[0]), seed).eval()


def encoder_state(ref: Model, prefix: str) -> dict:
    """The ST-GCN's tensors as SkeletonCLR/AimCLR save them: its classifier fc is replaced by the head."""
    return {prefix + k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}


def head_state(prefix: str, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        f"{prefix}fc.0.weight": torch.randn(HD, HD, generator=g) * 0.2,
        f"{prefix}fc.0.bias": torch.randn(HD, generator=g) * 0.1,
        f"{prefix}fc.2.weight": torch.randn(FEAT, HD, generator=g) * 0.2,
        f"{prefix}fc.2.bias": torch.randn(FEAT, generator=g) * 0.1,
    }


def aimclr_file(tmp_path, ref_q: Model, ref_k: Model, name="aimclr.pt", wrap=None) -> tuple:
    """A bare state dict as AimCLR's / SkeletonCLR's processor saves it (or wrapped)."""
    sd = OrderedDict()
    sd.update(encoder_state(ref_q, "encoder_q."))
    sd.update(head_state("encoder_q.", 1))
    sd.update(encoder_state(ref_k, "encoder_k."))
    sd.update(head_state("encoder_k.", 2))
    sd["queue"] = F.normalize(torch.randn(FEAT, QUEUE, generator=torch.Generator().manual_seed(3)), dim=0)
    sd["queue_ptr"] = torch.tensor([64])
    path = tmp_path / name
    if wrap == "state_dict":  # a {"state_dict": ...} file from DataParallel
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 300}, path)
    else:
        torch.save(sd, path)
    return path, sd


def ntu_input(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 3, 30, 25, 2, generator=g) * 0.5
    x[0, ..., 1] = 0  # one person
    return x


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def rebuilt(path) -> STGCNEncoder:
    pre = read_checkpoint(path)
    table = skeletons.LayoutTable(pre.conventions, strategy=str(pre.config.model.strategy))
    enc, new = build_encoder(pre, table, backend="reference")
    assert new == []
    return enc.eval()


@pytest.mark.parametrize("codebase,wrap", [("aimclr", None), ("skeletonclr", "state_dict")])
def test_moco_checkpoint_converts_to_the_same_features(tmp_path, capsys, codebase, wrap):
    ref_q, ref_k = reference(0), reference(1)
    src, sd = aimclr_file(tmp_path, ref_q, ref_k, wrap=wrap)
    out = tmp_path / "out" / "converted.pt"
    rc, stdout, err = run([codebase, src, "--out", out], capsys)
    assert rc == 0, err
    assert "146 tensors -> encoder_q.*" in stdout and "146 tensors -> encoder_k.*" in stdout
    assert "dropped: 46 BatchNorm num_batches_tracked" in stdout and "ignored: nothing else" in stdout

    # the checkpoint as msclr's evaluation reads it: the query encoder computes the reference's features
    x = ntu_input()
    layout = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(out)(x, layout), ref_q(x), rtol=1e-4, atol=1e-4)

    ck = torch.load(out, map_location="cpu", weights_only=True)
    assert ck["conventions"] == ["ntu25"] and ck["convention_specs"][0]["name"] == "ntu25"
    assert ck["converted_from"]["codebase"] == codebase and len(ck["converted_from"]["sha256"]) == 64
    cfg = ck["config"]
    assert (cfg["model"]["hidden_channels"], cfg["model"]["hidden_dim"], cfg["model"]["feature_dim"]) == (HC, HD, FEAT)
    assert cfg["model"]["input_norm"] == "stgcn" and cfg["data"]["persons"] == 2
    assert cfg["data"]["conventions"] == ["ntu25"] and cfg["data"]["store"] is None
    assert cfg["method"]["name"] == codebase

    # the model state is a complete MoCo state: key encoder, heads, queue (Q, D)
    table = skeletons.LayoutTable([skeletons.get("ntu25")])
    moco = MoCo(STGCNEncoder(table, hidden_channels=HC, hidden_dim=HD, backend="reference"), FEAT, QUEUE)
    moco.load_state_dict(ck["model"])  # strict
    moco.eval()
    torch.testing.assert_close(moco.queue, sd["queue"].t())
    assert int(moco.queue_ptr) == 64 and int(moco.queue_count) == QUEUE
    with torch.no_grad():
        torch.testing.assert_close(moco.encoder_k(x, layout), ref_k(x), rtol=1e-4, atol=1e-4)
        hidden = F.relu(F.linear(ref_q(x), sd["encoder_q.fc.0.weight"], sd["encoder_q.fc.0.bias"]))
        want = F.linear(hidden, sd["encoder_q.fc.2.weight"], sd["encoder_q.fc.2.bias"])
        torch.testing.assert_close(moco.head_q(moco.encoder_q(x, layout)), want, rtol=1e-4, atol=1e-4)


def test_msclr_load_embeds_like_the_reference(tmp_path, capsys):
    ref = reference(4)
    src, _ = aimclr_file(tmp_path, ref, reference(5))
    out = tmp_path / "converted.pt"
    assert run(["aimclr", src, "--out", out], capsys)[0] == 0
    model = msclr.load(out)
    seq = torch.randn(40, 25, 3, generator=torch.Generator().manual_seed(6)).numpy()
    feats = model.embed(seq, convention="ntu25")
    assert feats.shape == (HD,) and torch.isfinite(feats).all()
    # embed crops and resamples the sequence as evaluation does; the reference gets that same tensor
    x, _, _ = model._batch(seq, "ntu25")
    with torch.no_grad():
        torch.testing.assert_close(feats, ref(x)[0], rtol=1e-4, atol=1e-4)


def test_plain_stgcn_converts_and_its_classifier_is_ignored(tmp_path, capsys):
    ref = reference(7)
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    sd["fcn.weight"] = torch.randn(60, HD, 1, 1)  # ST-GCN's classifier: a 1x1 convolution
    sd["fcn.bias"] = torch.randn(60)
    torch.save(sd, tmp_path / "st_gcn.pth")
    out = tmp_path / "stgcn_msclr.pt"
    rc, stdout, err = run(["stgcn", tmp_path / "st_gcn.pth", "--out", out, "--hidden-channels", HC], capsys)
    assert rc == 0, err
    assert "fcn" in stdout and "no projection head" in stdout
    x = ntu_input(1)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(out)(x, torch.zeros(3, dtype=torch.long)), ref(x), rtol=1e-4, atol=1e-4)
    model = torch.load(out, weights_only=True)["model"]
    assert not any(k.startswith(("head_", "queue")) for k in model)


def test_crossclr_view_is_chosen(tmp_path, capsys):
    """CrosSCLR holds one MoCo per view (encoder_q / encoder_q_motion / ...); --view picks one. Its
    motion head nests the joint head (three layers): not carried."""
    joint, motion = reference(8), reference(9)
    sd = {}
    sd.update(encoder_state(joint, "encoder_q."))
    sd.update(encoder_state(reference(10), "encoder_k."))
    sd.update(head_state("encoder_q.", 11))
    sd.update(encoder_state(motion, "encoder_q_motion."))
    sd.update(encoder_state(reference(12), "encoder_k_motion."))
    # encoder_q_motion.fc = (Linear, ReLU, encoder_q.fc): keys fc.0.*, fc.2.0.*, fc.2.2.*
    sd.update({f"encoder_q_motion.fc.2.{k[3:]}": v for k, v in head_state("", 13).items()})
    sd["encoder_q_motion.fc.0.weight"], sd["encoder_q_motion.fc.0.bias"] = torch.randn(HD, HD), torch.randn(HD)
    sd["queue"], sd["queue_motion"] = torch.randn(FEAT, QUEUE), torch.randn(FEAT, QUEUE)
    sd["queue_ptr"], sd["queue_ptr_motion"] = torch.tensor([0]), torch.tensor([128])
    torch.save(sd, tmp_path / "crossclr.pt")
    out = tmp_path / "motion.pt"
    rc, stdout, err = run(["crossclr", tmp_path / "crossclr.pt", "--view", "motion", "--out", out], capsys)
    assert rc == 0, err
    assert "nests the joint head" in stdout and "encoder_q.* (" in stdout  # the joint view: ignored
    x = ntu_input(2)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(out)(x, torch.zeros(3, dtype=torch.long)), motion(x), rtol=1e-4, atol=1e-4)
    ck = torch.load(out, weights_only=True)
    assert ck["config"]["data"]["stream"] == "motion"
    torch.testing.assert_close(ck["model"]["queue"], sd["queue_motion"].t())
    assert int(ck["model"]["queue_ptr"]) == 128


# ------------------------------------------------------------------------------------ errors
def _one_line_error(rc, err, *parts):
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for p in parts:
        assert str(p) in err, err


def test_wrong_joint_count_for_the_convention(tmp_path, capsys):
    ref = reference(0, convention="coco17")  # V = 17, converted as ntu25
    src, _ = aimclr_file(tmp_path, ref, ref)
    rc, _, err = run(["aimclr", src, "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, src, "encoder_q.data_bn.weight", "V=17", "ntu25", "--convention")
    assert not (tmp_path / "x.pt").exists()


def test_not_a_checkpoint(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    rc, _, err = run(["aimclr", text, "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, text, "cannot read it as a torch checkpoint")
    lst = tmp_path / "list.pt"
    torch.save([1, 2, 3], lst)
    rc, _, err = run(["skeletonclr", lst, "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, lst, "not a checkpoint")
    rc, _, err = run(["aimclr", tmp_path / "missing.pt", "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, "missing.pt", "no such file")


def test_missing_key_and_wrong_shapes_name_the_key(tmp_path, capsys):
    ref = reference(0)
    src, sd = aimclr_file(tmp_path, ref, ref)
    del sd["encoder_q.st_gcn_networks.3.tcn.2.weight"]
    torch.save(sd, src)
    rc, _, err = run(["aimclr", src, "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, src, "missing key encoder_q.st_gcn_networks.3.tcn.2.weight")

    src, sd = aimclr_file(tmp_path, ref, ref)
    sd["encoder_q.st_gcn_networks.5.residual.0.weight"] = torch.zeros(2 * HC, 2 * HC, 1, 1)  # an extra residual
    torch.save(sd, src)
    rc, _, err = run(["aimclr", src, "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, src, "unexpected key encoder_q.st_gcn_networks.5.residual.0.weight")

    src, sd = aimclr_file(tmp_path, ref, ref)
    sd["encoder_q.A"] = sd["encoder_q.A"].flip(-1)  # another graph
    torch.save(sd, src)
    rc, _, err = run(["aimclr", src, "--out", tmp_path / "x.pt"], capsys)
    _one_line_error(rc, err, src, "encoder_q.A", "graph")

    src, _ = aimclr_file(tmp_path, ref, ref)
    rc, _, err = run(["aimclr", src, "--out", tmp_path / "x.pt", "--hidden-dim", 256], capsys)
    _one_line_error(rc, err, src, "--hidden-dim 256", str(HD))

    rc, _, err = run(["stgcn", src, "--out", tmp_path / "x.pt"], capsys)  # a wrapped file as a plain one
    _one_line_error(rc, err, src, "aimclr or skeletonclr")


def test_output_is_never_replaced_silently_and_a_converted_checkpoint_asks_for_data(tmp_path, capsys):
    """--out that exists (it may be a training run's last.pt) is refused unless --overwrite; and
    the converted checkpoint records no store, so evaluating it needs --data (without it,
    msclr's default synthetic data would be scored instead)."""
    from msclr.evaluate import __main__ as ev

    src, _ = aimclr_file(tmp_path, reference(0), reference(1))
    out = tmp_path / "last.pt"
    out.write_bytes(b"a training run's checkpoint")
    rc, _, err = run(["aimclr", src, "--out", out], capsys)
    _one_line_error(rc, err, str(out), "exists", "--overwrite")
    assert out.read_bytes() == b"a training run's checkpoint"
    rc, _, err = run(["aimclr", src, "--out", out, "--overwrite"], capsys)
    assert rc == 0, err

    assert ev.main(["linear", "--ckpt", str(out), "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    _one_line_error(2, err, str(out), "converted from aimclr", "pass --data")
    assert not (tmp_path / "eval").exists() and not (tmp_path / "synthetic").exists()
