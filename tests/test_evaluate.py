"""python -m msclr.evaluate and msclr.load on tiny synthetic data: every protocol end to end,
exact ensemble averaging, balanced reproducible subsets, clear errors for mismatched inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data_utd_derive import UTD  # where the real UTD-MHAD data lives, if anywhere

import msclr
from msclr import train
from msclr.data import open_store
from msclr.data.synthetic import make_synthetic_store
from msclr.evaluate import CheckpointError, EvalError, ensemble_logits, knn_scores, make_context
from msclr.evaluate import __main__ as ev
from msclr.evaluate.features import extract, split_indices
from msclr.evaluate.report import load_scores, save_scores

TINY = [
    "data.frames=12",
    "data.persons=1",
    "model.hidden_channels=4",
    "model.hidden_dim=16",
    "model.feature_dim=8",
    "method.queue_size=64",
    "optim.batch_size=8",
    "--aug",
    "torch",
]
CONVS = ["ntu25", "smpl24", "coco17"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("evstore")
    return make_synthetic_store(d, num_samples=60, conventions=CONVS, T=24, seed=0, num_classes=10)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, store):
    out = tmp_path_factory.mktemp("evrun")
    argv = [*TINY, "--data", str(store.path), "--out", str(out), "--max-steps", "3", "data.split=xsub"]
    assert train.main(argv) == 0
    return out / "last.pt"


def evaluate(*args: str) -> dict:
    return ev.run(ev.parse_args(list(args)))


COMMON = ["--epochs", "2", "--batch-size", "16"]


@pytest.mark.parametrize("protocol", ["linear", "knn", "finetune", "ensemble"])
def test_protocol_runs_end_to_end(protocol, ckpt, tmp_path):
    extra = [] if protocol == "knn" else COMMON
    doc = evaluate(protocol, "--ckpt", str(ckpt), "--out", str(tmp_path), "--no-plots", *extra)
    res = doc["result"]
    assert 0 <= res["top1"] <= res["top5"] <= 1
    n_test = len(open_store(doc["store"]).split("xsub", "test"))
    assert res["num_samples"] == n_test
    cm = np.asarray(res["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == n_test and np.trace(cm) / n_test == pytest.approx(res["top1"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["protocol"] == protocol and report["split"] == "xsub"
    scores = load_scores(Path(res["files"]["scores"]))
    assert scores["scores"].shape == (n_test, 10)


def test_linear_writes_plots_report_and_a_loadable_classifier(ckpt, tmp_path):
    doc = evaluate("linear", "--ckpt", str(ckpt), "--out", str(tmp_path), *COMMON)
    files = doc["result"]["files"]
    for key in ("confusion", "tsne", "model", "scores"):
        assert Path(files[key]).is_file(), key
    assert Path(files["confusion"]).read_bytes()[:4] == b"\x89PNG"
    # the saved classifier reproduces the test scores from raw arrays through msclr.load
    model = msclr.load(files["model"])
    st = open_store(doc["store"])
    scores = load_scores(Path(files["scores"]))
    rows = st.index_of([str(s) for s in scores["sample_ids"][:5]])
    seqs = [st.array("ntu25")[r, :, : st.lengths("ntu25")[r], :, 0].transpose(1, 2, 0) for r in rows]
    pred = model.predict(seqs, convention="ntu25")
    np.testing.assert_array_equal(pred.labels, scores["scores"][:5].argmax(1))
    assert pred.names == [model.class_names[i] for i in pred.labels] and pred.probs.shape == (5, 10)


def test_embed_matches_the_evaluation_features(ckpt, store):
    """msclr.load(...).embed on raw (T, V, C) arrays = the features evaluation computes from the store
    (same centred crop and resampling)."""
    model = msclr.load(ckpt)
    ctx = make_context(ckpt, data=store.path, out=None, plots=False)
    fs = extract(ctx.encoder, ctx.dataset("test"), ctx.table, ctx.stream, ctx.device)
    for name in ("ntu25", "coco17"):
        rows = store.index_of(fs.sample_ids[:4])
        seqs = [store.array(name)[r, :, : store.lengths(name)[r], :, 0].transpose(1, 2, 0) for r in rows]
        got = model.embed(seqs, convention=name)
        want = fs.features[:4, ctx.table.layout_id(name)]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.embed(seqs[0], convention=name), got[0])  # single (T, V, C)
    with pytest.raises(ValueError, match="expected"):
        model.embed(np.zeros((10, 17, 3), np.float32), convention="ntu25")
    with pytest.raises(RuntimeError, match="no classifier"):
        model.predict(seqs)


def test_ensemble_averages_logits_exactly(ckpt, tmp_path):
    doc = evaluate("ensemble", "--ckpt", str(ckpt), "--out", str(tmp_path), "--no-plots", *COMMON)
    model = msclr.load(doc["result"]["files"]["model"])
    assert sorted(model.heads) == sorted(CONVS)
    ctx = make_context(ckpt, out=tmp_path, plots=False)
    test = ctx.features("test")  # the cached features the protocol used
    with torch.no_grad():
        per = torch.stack([model.heads[c](test.features[:, ctx.table.layout_id(c)]) for c in ctx.table.names], 1)
    want = per.sum(1) / len(CONVS)  # every synthetic sample has every convention
    got = torch.from_numpy(load_scores(Path(doc["result"]["files"]["scores"]))["scores"])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert set(doc["result"]["per_convention"]) == set(CONVS)


def test_ensemble_logits_average_only_available_conventions():
    logits = torch.randn(4, 3, 5)
    avail = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 1]], dtype=torch.bool)
    got = ensemble_logits(logits, avail)
    for i in range(4):
        torch.testing.assert_close(got[i], logits[i, avail[i]].mean(0))


def test_semi_subsets_are_balanced_and_reproducible():
    labels = np.repeat(np.arange(5), [100, 200, 300, 50, 7])
    for frac in (0.01, 0.1):
        a = split_indices(labels, frac, seed=3)
        np.testing.assert_array_equal(a, split_indices(labels, frac, seed=3))
        assert not np.array_equal(a, split_indices(labels, frac, seed=4))
        counts = np.bincount(labels[a], minlength=5)
        want = [max(1, round(frac * n)) for n in (100, 200, 300, 50, 7)]
        np.testing.assert_array_equal(counts, want)
        assert len(np.unique(a)) == len(a)
    with pytest.raises(ValueError, match="fraction"):
        split_indices(labels, 0.0, 0)


def test_semi_runs_both_fractions(ckpt, tmp_path):
    doc = evaluate("semi", "--ckpt", str(ckpt), "--out", str(tmp_path), "--no-plots", "--epochs", "1")
    assert set(doc["result"]) == {"1%", "10%"}
    assert doc["result"]["1%"]["train_samples"] == 10  # one per class (10 classes) at 1 %


def test_knn_scores_match_a_naive_vote():
    g = torch.Generator().manual_seed(0)
    tr, te = torch.randn(30, 8, generator=g), torch.randn(7, 8, generator=g)
    ytr = torch.randint(0, 4, (30,), generator=g)
    got = knn_scores(tr, ytr, te, 4, k=5, tau=0.1)
    for i in range(7):
        sim = torch.nn.functional.cosine_similarity(te[i : i + 1], tr)
        top = sim.topk(5)
        want = torch.zeros(4)
        for s, j in zip(top.values, top.indices):
            want[ytr[j]] += torch.exp(s / 0.1)
        torch.testing.assert_close(got[i], want, rtol=1e-4, atol=1e-5)


def test_transfer_to_new_conventions(ckpt, tmp_path):
    other = make_synthetic_store(
        tmp_path / "other", num_samples=40, conventions=["ntu25", "kinect_v1_20"], T=24, seed=5
    )
    doc = evaluate("transfer", "--ckpt", str(ckpt), "--data", str(other.path), "--out", str(tmp_path / "t"),
                   "--no-plots", *COMMON)  # fmt: skip
    assert doc["new_conventions"] == ["kinect_v1_20"]
    assert doc["result"]["transfer"]["target_store"] == str(other.path)
    # the shared weights and ntu25's own parameters come from the checkpoint
    ctx = make_context(ckpt, data=other.path, allow_new=True, out=tmp_path / "u", plots=False)
    src = torch.load(ckpt, weights_only=True)["model"]
    torch.testing.assert_close(ctx.encoder.units[3].weight, src["encoder_q.units.3.weight"])
    l_src, l_new = 0, ctx.table.layout_id("ntu25")
    torch.testing.assert_close(
        ctx.encoder.units[0].importance[l_new, :, :25, :25], src["encoder_q.units.0.importance"][l_src, :, :25, :25]
    )


def test_fuse_weights_scores_by_sample_id(tmp_path):
    ids = [f"s{i}" for i in range(6)]
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    a, b = torch.randn(6, 3), torch.randn(6, 3)
    save_scores(tmp_path / "a.npz", ids, a, labels, ["x", "y", "z"])
    perm = [5, 3, 1, 0, 2, 4]  # the second file lists the samples in another order
    save_scores(tmp_path / "b.npz", [ids[i] for i in perm], b[perm], labels[perm], ["x", "y", "z"])
    doc = evaluate("fuse", "--scores", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--weights", "0.6", "0.4",
                   "--out", str(tmp_path / "f"), "--no-plots")  # fmt: skip
    fused = load_scores(tmp_path / "f" / "scores_fused.npz")
    torch.testing.assert_close(torch.from_numpy(fused["scores"]), 0.6 * a + 0.4 * b)
    want = float(((0.6 * a + 0.4 * b).argmax(1) == labels).float().mean())
    assert doc["result"]["top1"] == pytest.approx(want)
    save_scores(tmp_path / "c.npz", ids[:4], a[:4], labels[:4], ["x", "y", "z"])
    with pytest.raises(EvalError, match="c.npz: no scores for 2 sample"):
        evaluate("fuse", "--scores", str(tmp_path / "a.npz"), str(tmp_path / "c.npz"), "--out", str(tmp_path / "g"))


def test_synthetic_data_is_regenerated_exactly_with_every_config_key(tmp_path):
    """A synthetic run's data, deleted after training, comes back identical for evaluation
    (style included: evaluating style-0 data for a style-1 run would score the wrong task)."""
    import shutil

    from msclr.evaluate.checkpoint import read_checkpoint
    from msclr.evaluate.protocols import open_eval_store

    out = tmp_path / "run"
    syn = ["data.synthetic.num_samples=24", "data.synthetic.frames=16", "data.synthetic.style=1.0"]
    assert train.main([*TINY, *syn, "--out", str(out), "--max-steps", "1"]) == 0
    made = open_store(out / "synthetic")
    before = {c: np.array(made.array(c)) for c in made.conventions}
    shutil.rmtree(out / "synthetic")
    again = open_eval_store(read_checkpoint(out / "last.pt"), None)
    assert again.meta["generator"]["style"] == 1.0
    for c, x in before.items():
        np.testing.assert_array_equal(np.asarray(again.array(c)), x)


def test_store_lacking_a_convention_is_a_clear_error(ckpt, tmp_path):
    other = make_synthetic_store(tmp_path / "o", num_samples=30, conventions=["ntu25"], T=24, seed=1)
    with pytest.raises(EvalError, match=r"has no convention \['coco17'\]"):
        make_context(ckpt, data=other.path, conventions=["coco17"], out=tmp_path / "x")
    none = make_synthetic_store(tmp_path / "n", num_samples=30, conventions=["h36m17"], T=24, seed=1)
    with pytest.raises(EvalError, match="none of the checkpoint's conventions"):
        make_context(ckpt, data=none.path, out=tmp_path / "y")
    # the CLI turns it into exit status 2 with the message
    assert ev.main(["linear", "--ckpt", str(ckpt), "--data", str(none.path), "--out", str(tmp_path / "z")]) == 2


def test_checkpoint_of_another_architecture_is_a_clear_error(ckpt, tmp_path):
    ck = torch.load(ckpt, weights_only=True)
    ck["config"]["model"]["hidden_channels"] = 8  # weights of a 4-channel model, config says 8
    torch.save(ck, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="another architecture"):
        make_context(tmp_path / "other.pt", out=tmp_path / "x")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an msclr checkpoint"):
        make_context(tmp_path / "foreign.pt", out=tmp_path / "y")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: cannot read"):
        msclr.load(tmp_path / "junk.pt")


def test_random_init_floor_keeps_a_fresh_networks_batchnorm_unless_asked(ckpt, tmp_path):
    """The floor is the network as pre-training would start it, evaluated as SkeletonCLR/AimCLR
    evaluate (eval mode, the BatchNorm statistics it has: mean 0, variance 1); --bn-stats train
    recomputes them from the train part, for a floor and a checkpoint alike."""
    floor = make_context(ckpt, random_init=True, out=tmp_path / "f", plots=False)
    trained = make_context(ckpt, out=tmp_path / "t", plots=False)
    assert not torch.allclose(floor.encoder.units[3].weight, trained.encoder.units[3].weight)
    for m in (floor.encoder.units[2].bn1, floor.encoder.data_bn):
        assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
        assert torch.equal(m.running_var, torch.ones_like(m.running_var))
    stored = {k: v.clone() for k, v in trained.encoder.state_dict().items() if "running" in k}

    floor_t = make_context(ckpt, random_init=True, out=tmp_path / "ft", plots=False, bn_stats="train")
    assert torch.equal(floor_t.encoder.units[3].weight, floor.encoder.units[3].weight)  # same seed, same weights
    assert floor_t.encoder.units[2].bn1.running_mean.abs().sum() > 0  # from data
    trained_t = make_context(ckpt, out=tmp_path / "tt", plots=False, bn_stats="train")
    moved = [k for k, v in trained_t.encoder.state_dict().items() if "running" in k and not torch.equal(v, stored[k])]
    assert len(moved) == len(stored)  # every statistic recomputed, the weights untouched
    assert torch.equal(trained_t.encoder.units[3].weight, trained.encoder.units[3].weight)
    name = trained.conventions[0]  # the two treatments never share cached features
    assert not torch.equal(trained_t.features("test").of(name)[0], trained.features("test").of(name)[0])
    with pytest.raises(EvalError, match="bn_stats"):
        make_context(ckpt, out=tmp_path / "bad", bn_stats="recompute")


@pytest.mark.slow
@pytest.mark.skipif(UTD is None, reason="the UTD-MHAD data (docs/architecture.md section 8) is not present")
def test_utd_mhad_reproduction_runs_end_to_end_and_resumes(tmp_path, capsys):
    """The documented study on real data, with a tiny budget: every stage runs, the table is
    written, and a second invocation reuses the finished stages."""
    from msclr import reproduce

    argv = ["utd-mhad", "--raw", str(UTD), "--out", str(tmp_path), "--epochs", "1", "--frames", "8",
            "--queue", "64", "--seeds", "0", "1", "--pairings", "batch", "--no-plots"]  # fmt: skip
    assert reproduce.main(argv) == 0
    table = (tmp_path / "results.md").read_text()
    for row in ("random init (floor", "random init, BatchNorm", "single-skeleton", "multi-skeleton, `batch` pairing"):
        assert f"| {row}" in table
    assert "single-skeleton minus floor (BatchNorm statistics from the train part), knn" in table
    assert "± " in table and "minus single-skeleton, linear" in table  # mean ± std over the seeds
    per_seed = json.loads((tmp_path / "results.json").read_text())["per_seed"]
    assert set(per_seed) == {"0", "1"}
    for res in per_seed.values():
        assert set(res) == {"random", "random_bn_train", "single", "single_bn_train", "multi_batch"}
        assert all(0 <= r["linear"] <= 1 and 0 <= r["knn"] <= 1 for r in res.values())
        assert set(res["multi_batch"]["per_convention"]) == {"kinect_v1_20", "body15", "coco13"}
        assert res["single"]["loss_first"] > 0 and "loss_last" in res["single"]
    report = tmp_path / "seed1" / "eval" / "multi_batch_linear" / "report.json"
    before = report.stat().st_mtime_ns
    assert reproduce.main(argv) == 0  # finished stages are skipped
    assert report.stat().st_mtime_ns == before


@pytest.mark.slow
def test_quick_start_reproduction_on_the_validation_split_runs_and_resumes(tmp_path):
    """reproduce quick-start --validation with a tiny budget: the xsub_val split is made in its own
    store (subjects 5 and 6 held out), pre-training and every probe run on it, the table pairs each
    seed with its floor, and a second invocation reuses the finished stages."""
    from msclr import reproduce
    from msclr.data import open_store

    argv = ["quick-start", "--out", str(tmp_path), "--seeds", "0", "--epochs", "1", "--validation",
            "optim.batch_size=16", "data.frames=8"]  # fmt: skip
    assert reproduce.main(argv) == 0
    store = open_store(tmp_path / "store")
    val = store.split("xsub_val", "test")
    assert sorted(set(store.sample_info["subject"][val].tolist())) == [5, 6]
    ck = torch.load(tmp_path / "seed0" / "pretrained" / "last.pt", weights_only=True)
    assert ck["config"]["data"]["split"] == "xsub_val" and ck["config"]["method"]["name"] == "aimclr"
    table = (tmp_path / "results.md").read_text()
    assert "| random init (floor: BatchNorm as built) | **" in table and "| pre-trained | **" in table
    assert "| pre-trained, BatchNorm statistics from the train part | **" in table
    assert "pre-trained minus floor (BatchNorm as built / as trained), linear" in table and "split xsub_val" in table
    res = json.loads((tmp_path / "results.json").read_text())["per_seed"]["0"]
    names = ("random", "random_bn_train", "pretrained", "pretrained_bn_train")
    assert all(0 <= res[n][k] <= 1 for n in names for k in ("linear", "knn"))
    reports = {n: json.loads((tmp_path / "seed0" / f"{n}_linear" / "report.json").read_text()) for n in names}
    assert [reports[n]["bn_stats"] for n in names] == ["checkpoint", "train", "checkpoint", "train"]
    report = tmp_path / "seed0" / "pretrained_linear" / "report.json"
    assert json.loads(report.read_text())["split"] == "xsub_val"
    before = report.stat().st_mtime_ns
    assert reproduce.main(argv) == 0  # finished stages are skipped
    assert report.stat().st_mtime_ns == before


# ------------------------------------------------------------------------------ the linear probe
def _clusters(seed: int, n: int = 600, d: int = 64, classes: int = 12, scale: float = 1.0):
    """Gaussian class clusters with features of very different scales and a common offset (as
    pooled ReLU features are): hard for SGD on raw features, easy once standardised."""
    g = np.random.default_rng(seed)
    centres = g.normal(size=(classes, d))
    y = g.integers(0, classes, n)
    x = centres[y] + g.normal(scale=2.0, size=(n, d))
    x = x * np.logspace(-2, 2, d) * scale + 5.0 * scale
    return torch.tensor(x[: n // 2], dtype=torch.float32), torch.tensor(y[: n // 2]), \
        torch.tensor(x[n // 2 :], dtype=torch.float32), torch.tensor(y[n // 2 :])  # fmt: skip


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 30.0), (2, 0.01)])
def test_probe_matches_standardised_sklearn_logistic_regression(seed, scale):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from msclr.evaluate.probes import fit_linear

    xtr, ytr, xte, yte = _clusters(seed, scale=scale)
    fc = fit_linear(xtr, ytr, 12)  # the default probe, on raw features (it standardises itself)
    ours = float((fc(xte).argmax(1) == yte).float().mean())
    sc = StandardScaler().fit(xtr.numpy())
    sk = LogisticRegression(max_iter=5000).fit(sc.transform(xtr.numpy()), ytr.numpy())
    ref = sk.score(sc.transform(xte.numpy()), yte.numpy())
    assert ours >= ref - 0.02, (ours, ref)
    assert ref > 0.3  # the task is learnable, so the comparison means something
    fc2 = fit_linear(xtr, ytr, 12)  # deterministic: the same numbers every time
    assert torch.equal(fc.weight, fc2.weight) and torch.equal(fc.bias, fc2.bias)


def test_train_accuracy_warns_near_chance(caplog):
    from msclr.evaluate.probes import fit_linear, train_accuracy

    xtr, ytr, _, _ = _clusters(0)
    fc = fit_linear(xtr, ytr, 12)
    assert train_accuracy(fc, xtr, ytr, 12, "probe") > 0.5 and "near chance" not in caplog.text
    noise = torch.randn(300, 64)
    fc = fit_linear(noise, ytr, 12, C=1e-4)  # heavily regularised on noise: about chance
    assert train_accuracy(fc, noise, ytr, 12, "noise") < 2 / 12
    assert "near chance" in caplog.text


# ------------------------------------------------------------ the probes' hyper-parameter choice
def _naive_leave_out_accuracy(x, y, groups, k, num_classes, tau=0.07):
    """Per training sample: the k-NN vote of the samples outside its group, one at a time."""
    right = 0
    for i in range(y.numel()):
        others = groups != groups[i]
        scores = knn_scores(x[others], y[others], x[i : i + 1], num_classes, k, tau)
        right += int(scores.argmax(1).item() == y[i].item())
    return right / y.numel()


@pytest.mark.parametrize("with_groups", [True, False])
def test_choose_k_matches_a_naive_leave_out_vote(with_groups):
    from msclr.evaluate.probes import K_GRID, choose_k

    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(3, 8, generator=g)[y] + 1.5 * torch.randn(90, 8, generator=g)
    groups = torch.arange(90) // 15 if with_groups else None
    k, acc = choose_k(x, y, 3, groups=groups)
    leave_out = groups if with_groups else torch.arange(90)  # without groups: leave-one-out
    for kk in K_GRID:
        assert acc[kk] == pytest.approx(_naive_leave_out_accuracy(x, y, leave_out, kk, 3)), kk
    assert acc[k] == max(acc.values()) and all(acc[kk] < acc[k] for kk in K_GRID if kk > k)


def test_cv_folds_keep_subjects_together_and_stratify_without():
    from msclr.evaluate.probes import cv_folds

    y = torch.arange(200) % 4
    groups = torch.tensor([7, 3, 9, 1, 5, 11, 2]).repeat_interleave(29)[:200]
    fold = cv_folds(y, groups, folds=5)
    for s in groups.unique():  # a subject is never on both sides of a split
        assert fold[groups == s].unique().numel() == 1
    assert fold.unique().numel() == 5
    fold = cv_folds(y, None, folds=5, seed=1)
    for c in range(4):  # every fold holds 1/5 of every class
        assert torch.bincount(fold[y == c], minlength=5).tolist() == [10] * 5
    assert torch.equal(fold, cv_folds(y, None, folds=5, seed=1))


def test_choose_C_is_the_best_of_its_table_and_deterministic():
    from msclr.evaluate.probes import C_GRID, choose_C

    xtr, ytr, _, _ = _clusters(0)
    groups = torch.arange(ytr.numel()) % 3
    C, acc = choose_C(xtr, ytr, 12, groups)
    assert set(acc) == set(C_GRID) and acc[C] == max(acc.values())
    assert all(acc[c] < acc[C] for c in C_GRID if c < C)  # ties go to the stronger regularisation
    assert choose_C(xtr, ytr, 12, groups) == (C, acc)


def test_an_evaluation_is_never_overwritten_silently(ckpt, tmp_path, capsys):
    """A rerun with the default output goes to eval_<protocol>-2; an explicit --out that holds a
    report is refused in one line unless --overwrite."""
    import shutil

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(ckpt, run_dir / "last.pt")
    first = evaluate("knn", "--ckpt", str(run_dir / "last.pt"), "--k", "1", "--no-plots")
    second = evaluate("knn", "--ckpt", str(run_dir / "last.pt"), "--k", "1", "--no-plots")
    assert (run_dir / "eval_knn" / "report.json").is_file() and (run_dir / "eval_knn-2" / "report.json").is_file()
    assert first["result"]["top1"] == second["result"]["top1"]
    stamp = (run_dir / "eval_knn" / "report.json").stat().st_mtime_ns
    argv = ["knn", "--ckpt", str(run_dir / "last.pt"), "--k", "1", "--no-plots", "--out", str(run_dir / "eval_knn")]
    assert ev.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "holds an evaluation" in err and "--overwrite" in err and "\n" not in err
    assert (run_dir / "eval_knn" / "report.json").stat().st_mtime_ns == stamp
    assert ev.main([*argv, "--overwrite"]) == 0
