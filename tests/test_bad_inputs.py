"""Bad inputs fail clearly: one line naming the file or key, exit status 2, nothing written, no code run.

One table: (what is run, a fragment of the message, the exit status, what must not exist after).
Checkpoint files cover: missing, truncated, not a checkpoint, not resumable, modified after it was
written (SHA-256 sidecar) and a pickle that runs os.system when unpickled; each through
`train --resume`, `evaluate --ckpt`, `convert` and `msclr.load`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import GPU, enqueue_problem, need_backend

import msclr
from msclr import checkpoint_io, convert, train
from msclr.checkpoint_io import CheckpointError
from msclr.data.synthetic import make_synthetic_store
from msclr.evaluate import __main__ as ev

SMALL = [
    "data.frames=12",
    "model.hidden_channels=4",
    "model.hidden_dim=16",
    "model.feature_dim=8",
    "method.queue_size=32",
    "data.split=all",
    "optim.batch_size=8",
    "--aug",
    "torch",
]


class Evil:
    """Unpickling it runs a shell command: a crafted checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A store, a real checkpoint and every kind of bad checkpoint file, made once."""
    root = tmp_path_factory.mktemp("bad")
    conventions = ["ntu25", "smpl24", "coco17"]  # the default config's
    store = make_synthetic_store(root / "store", num_samples=48, conventions=conventions, T=24, seed=0)
    run = root / "run"
    assert train.main([*SMALL, "--data", str(store.path), "--out", str(run), "--max-steps", "1"]) == 0
    good = run / "last.pt"
    bad = root / "ckpts"
    bad.mkdir()
    data = good.read_bytes()
    (bad / "truncated.pt").write_bytes(data[: len(data) // 2])
    (bad / "notes.pt").write_text("not a checkpoint\n")
    (bad / "badkey.yaml").write_text("optim:\n  lrr: 0.1\n")
    torch.save({"weights": torch.zeros(3)}, bad / "foreign.pt")
    marker = root / "pwned"
    torch.save({"model": Evil(marker), "config": {}}, bad / "evil.pt")
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    (bad / "tampered.pt").write_bytes(bytes(tampered))
    shutil.copy(checkpoint_io.digest_path(good), checkpoint_io.digest_path(bad / "tampered.pt"))
    half = root / "halfsplit"  # the same store with splits that lack a part
    shutil.copytree(store.path, half)
    meta = json.loads((half / "meta.json").read_text())
    xsub = meta["splits"]["xsub"]
    meta["splits"] = {"xsub": {"train": xsub["train"], "test": []}, "notrain": {"test": xsub["test"]}}
    (half / "meta.json").write_text(json.dumps(meta))
    return {"root": root, "store": store.path, "good": good, "bad": bad, "marker": marker, "half": half}


def ckpt(name):
    return lambda f: f["bad"] / f"{name}.pt"


def fresh(f):
    return f["root"] / "out"


# (id, runner, argv builder, message fragment, exit status)
TRAIN = "train"
EVAL = "evaluate"
CONVERT = "convert"
LOAD = "msclr.load"
ROWS = [
    ("data-missing", TRAIN, lambda f: ["--data", "/nonexistent", "--out", str(fresh(f))], "no such directory", 2),
    ("data-not-a-store", TRAIN, lambda f: ["--data", str(f["bad"]), "--out", str(fresh(f))], "not a msclr store", 2),
    ("config-missing", TRAIN, lambda f: ["--config", str(f["bad"] / "no.yaml"), "--out", str(fresh(f))], "no.yaml", 2),
    ("out-is-a-file", TRAIN, lambda f: ["--out", str(ckpt("notes")(f))], "a file, not a folder", 2),
    ("unknown-key", TRAIN, lambda f: ["optim.lrr=0.1", "--out", str(fresh(f))], "optim.lrr: Key 'lrr'", 2),
    (
        "unknown-key-in-file",
        TRAIN,
        lambda f: ["--config", str(f["bad"] / "badkey.yaml"), "--out", str(fresh(f))],
        "badkey.yaml: optim.lrr: Key 'lrr' is not in struct",
        2,
    ),
    ("lr-not-a-number", TRAIN, lambda f: ["optim.lr=abc", "--out", str(fresh(f))], "optim.lr must be a number", 2),
    ("max-steps-negative", TRAIN, lambda f: ["--max-steps", "-5", "--out", str(fresh(f))], "run.max_steps", 2),
    ("max-steps-zero", TRAIN, lambda f: ["--max-steps", "0", "--out", str(fresh(f))], "run.max_steps", 2),
    ("no-conventions", TRAIN, lambda f: ["data.conventions=[]", "--out", str(fresh(f))], "data.conventions", 2),
    (
        "unknown-convention",
        TRAIN,
        lambda f: ["--data", str(f["store"]), "data.conventions=[ntu25,nope]", "--out", str(fresh(f))],
        "not in the store",
        2,
    ),
    ("backend-cuda", TRAIN, lambda f: ["--backend", "cuda", "--out", str(fresh(f))], "needs a GPU", 2),
    ("backend-triton", TRAIN, lambda f: ["--backend", "triton", "--out", str(fresh(f))], "needs a GPU", 2),
    ("unknown-flag", TRAIN, lambda f: ["--bogus", "--out", str(fresh(f))], "unrecognized arguments", 2),
    ("aug-preset", TRAIN, lambda f: ["aug.normal=foo", "--out", str(fresh(f))], "aug.normal=foo: unknown", 2),
    (
        "aug-file-missing",
        TRAIN,
        lambda f: ["aug.extreme=/nonexistent/x.yaml", "--out", str(fresh(f))],
        "aug.extreme=/nonexistent/x.yaml",
        2,
    ),
    ("resume-missing", TRAIN, lambda f: ["--resume", str(f["bad"] / "missing.pt")], "does not exist", 2),
    ("resume-truncated", TRAIN, lambda f: ["--resume", str(ckpt("truncated")(f))], "truncated or corrupt", 2),
    ("resume-text", TRAIN, lambda f: ["--resume", str(ckpt("notes")(f))], "cannot read it as a torch checkpoint", 2),
    ("resume-foreign", TRAIN, lambda f: ["--resume", str(ckpt("foreign")(f))], "not a resumable", 2),
    ("resume-tampered", TRAIN, lambda f: ["--resume", str(ckpt("tampered")(f))], "modified or corrupted", 2),
    ("resume-crafted", TRAIN, lambda f: ["--resume", str(ckpt("evil")(f))], "refusing to execute code", 2),
    (
        "out-holds-a-run",
        TRAIN,
        lambda f: ["--data", str(f["store"]), "--out", str(f["good"].parent), "--max-steps", "1"],
        "already holds a run",
        2,
    ),
    (
        "eval-backend-unavailable",
        EVAL,
        lambda f: ["linear", "--ckpt", str(f["good"]), "--device", "cpu", "--backend", "cuda", "--out", str(fresh(f))],
        "--backend cuda cannot run on cpu",
        2,
    ),
    (
        "convert-out-exists",
        CONVERT,
        lambda f: ["aimclr", str(ckpt("foreign")(f)), "--out", str(f["good"])],
        "exists; choose a new file or pass --overwrite",
        2,
    ),
    ("eval-truncated", EVAL, lambda f: ["linear", "--ckpt", str(ckpt("truncated")(f))], "truncated or corrupt", 2),
    ("eval-tampered", EVAL, lambda f: ["linear", "--ckpt", str(ckpt("tampered")(f))], "modified or corrupted", 2),
    ("eval-crafted", EVAL, lambda f: ["knn", "--ckpt", str(ckpt("evil")(f))], "refusing to execute code", 2),
    (
        "eval-empty-test-part",
        EVAL,
        lambda f: ["linear", "--ckpt", str(f["good"]), "--data", str(f["half"]), "--split", "xsub"],
        "halfsplit: split 'xsub' has an empty test part",
        2,
    ),
    (
        "eval-no-train-part",
        EVAL,
        lambda f: ["knn", "--ckpt", str(f["good"]), "--data", str(f["half"]), "--split", "notrain"],
        "halfsplit: split 'notrain' has no train part",
        2,
    ),
    (
        "convert-crafted",
        CONVERT,
        lambda f: ["aimclr", str(ckpt("evil")(f)), "--out", str(fresh(f) / "x.pt")],
        "refusing to execute code",
        2,
    ),
    ("load-missing", LOAD, lambda f: f["bad"] / "missing.pt", "does not exist", None),
    ("load-truncated", LOAD, ckpt("truncated"), "truncated or corrupt", None),
    ("load-text", LOAD, ckpt("notes"), "cannot read it as a torch checkpoint", None),
    ("load-tampered", LOAD, ckpt("tampered"), "modified or corrupted", None),
    ("load-crafted", LOAD, ckpt("evil"), "refusing to execute code", None),
]


def listing(f) -> set[Path]:
    return set(f["root"].rglob("*"))


@pytest.mark.parametrize(("runner", "args", "fragment", "status"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_fails_in_one_line_and_writes_nothing(files, capsys, runner, args, fragment, status):
    if "GPU" in fragment and GPU:
        pytest.skip("a GPU is visible here")
    before = listing(files)
    stamp = files["good"].stat().st_mtime_ns
    if runner == LOAD:
        with pytest.raises(CheckpointError) as err:
            msclr.load(args(files))
        message = str(err.value)
        assert str(args(files)) in message  # names the file
    else:
        main = {TRAIN: train.main, EVAL: ev.main, CONVERT: convert.main}[runner]
        assert main(args(files)) == status
        message = capsys.readouterr().err.strip()
    assert fragment in message, message
    assert "\n" not in message and "Traceback" not in message, message
    assert listing(files) == before, "a failed start wrote files"
    assert files["good"].stat().st_mtime_ns == stamp  # the existing run is untouched
    assert not files["marker"].exists(), "the crafted checkpoint ran code"


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["knn", "--k", "0"], "argument --k: must be > 0, got 0"),
        (["linear", "--C", "-1"], "argument --C: must be > 0, got -1"),
        (["linear", "--epochs", "0"], "argument --epochs: must be > 0, got 0"),
        (["semi", "--fractions", "1.5"], "argument --fractions: must be in (0, 1], got 1.5"),
    ],
    ids=["k", "C", "epochs", "fractions"],
)
def test_probe_settings_that_would_score_chance_are_refused(files, capsys, argv, fragment):
    with pytest.raises(SystemExit) as done:
        ev.parse_args([argv[0], "--ckpt", str(files["good"]), *argv[1:]])
    assert done.value.code == 2 and fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "msclr.train", "--max-steps", "-5"],
        ["-m", "msclr.evaluate", "linear", "--ckpt", "{evil}"],
    ],
    ids=["train", "evaluate"],
)
def test_command_line_exit_status_and_no_traceback(files, argv):
    argv = [a.format(evil=ckpt("evil")(files)) for a in argv]
    res = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=files["root"], timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert not files["marker"].exists()


# ---------------------------------------------------------------- checkpoints as written


def test_checkpoints_load_without_code_and_carry_their_digest(files):
    good = files["good"]
    digest = checkpoint_io.digest_path(good).read_text().split()[0]
    assert digest == checkpoint_io.sha256_of(good)
    ck = torch.load(good, weights_only=True)
    assert Path(ck["config"]["run"]["out"]).is_absolute() and Path(ck["config"]["data"]["store"]).is_absolute()


def test_legacy_numpy_rng_state_still_loads(tmp_path):
    """Checkpoints of an older msclr hold numpy's RNG state as an ndarray: data, still readable."""
    import numpy as np

    path = tmp_path / "old.pt"
    torch.save({"rng": {"numpy": np.random.get_state()}}, path)  # noqa: NPY002
    state = checkpoint_io.load(path)["rng"]["numpy"]
    assert isinstance(state[1], np.ndarray) and state[1].dtype == np.uint32


# ---------------------------------------------------------------- runs never overwrite runs


def test_default_output_moves_to_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("msclr", "msclr-2"):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "log.csv").write_text("step\n")
    _, cfg = train.parse_args([])
    assert cfg.run.out == str(tmp_path / "runs" / "msclr-3")
    _, cfg = train.parse_args(["--out", str(tmp_path / "runs" / "msclr"), "--overwrite"])
    assert cfg.run.out == str(tmp_path / "runs" / "msclr")
    assert not (tmp_path / "runs" / "msclr-3").exists()  # parse_args writes nothing


def test_resume_continues_in_the_checkpoint_folder_not_the_recorded_one(files, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in (files["good"], checkpoint_io.digest_path(files["good"])):
        shutil.copy(p, moved / p.name)
    _, cfg = train.parse_args(["--resume", str(moved / "last.pt")])
    assert cfg.run.out == str(moved)  # the checkpoint records files["good"].parent
    with pytest.raises(train.TrainError, match="already holds a run"):  # another run's folder
        train.parse_args(["--resume", str(moved / "last.pt"), "--out", str(files["good"].parent)])


# ---------------------------------------------------------------- a NaN loss stops the run


@pytest.mark.slow
def test_nan_loss_stops_with_the_logged_step_and_keeps_the_last_good_checkpoint(files, tmp_path, capsys, monkeypatch):
    step_fn = train.Trainer.train_step

    def poisoned(self, batch):
        stats = step_fn(self, batch)
        if self.step == 7:  # the 8th step: the 2nd of the 2nd epoch (6 steps per epoch)
            stats["loss"] = math.nan
        return stats

    monkeypatch.setattr(train.Trainer, "train_step", poisoned)
    out = tmp_path / "nan"
    rc = train.main([*SMALL, "--data", str(files["store"]), "--out", str(out), "--epochs", "3"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "loss is nan at step 8" in err, err
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["step"] == "8" and rows[-1]["loss"] == "nan"
    ck = checkpoint_io.load(out / "last.pt")  # verified against its digest
    assert ck["step"] == 6 and ck["epoch"] == 1  # the end of epoch 1, not the NaN state


# ---------------------------------------------------------------- embed / predict: the input's axes


def _seq(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).numpy()


# (id, sequences, layout, message fragment): every one a ValueError from embed and predict alike
ARRAY_ROWS = [
    ("store-array-without-layout", _seq(2, 3, 20, 25, 1), None, "it fits ['NCTVM']: pass layout='NCTVM'"),
    ("ambiguous-batch-or-persons", _seq(3, 20, 25, 3), None, "is ambiguous, it fits ['NTVC', 'CTVM']"),
    ("wrong-joints", _seq(20, 17, 3), None, "expected V = 25 joints of 'ntu25'"),
    ("layout-does-not-fit", _seq(2, 20, 25, 3), "NCTV", "read as 'NCTV' has V = 3"),
    ("layout-axes", _seq(2, 20, 25, 3), "NTVC M", "use each of N (batch), M (persons), T, V, C"),
    ("layout-rank", _seq(20, 25, 3), "NTVC", "layout 'NTVC' has 4 axes, the array 3"),
    ("layout-n-in-a-list", [_seq(20, 25, 3)], "NTVC", "a list holds one sequence per item"),
    ("no-frames", _seq(0, 25, 3), None, "no frames (T = 0)"),
    ("no-frames-in-a-list", [_seq(20, 25, 3), _seq(0, 25, 3)], None, "sequence 1: no frames (T = 0)"),
    ("no-persons", _seq(0, 20, 25, 3), "MTVC", "no persons (M = 0)"),
    ("empty-list", [], None, "no sequences: an empty list or batch"),
    ("empty-batch", _seq(0, 20, 25, 3), None, "no sequences: an empty list or batch"),
    ("rank-6", _seq(1, 1, 1, 20, 25, 3), None, "expected 3-D (T, V, C) or 4-D (N, T, V, C) or 5-D"),
]


@pytest.fixture(scope="module")
def models(files):
    from torch import nn

    from msclr.evaluate.model import SkeletonModel

    emb = msclr.load(files["good"])
    head = nn.Linear(emb.encoder.hidden_dim, 4)
    clf = SkeletonModel(emb.pre, emb.table, emb.encoder, {"ntu25": head}, ["a", "b", "c", "d"])
    return emb, clf


@pytest.mark.parametrize(("seqs", "layout", "fragment"), [r[1:] for r in ARRAY_ROWS], ids=[r[0] for r in ARRAY_ROWS])
def test_embed_and_predict_refuse_unclear_or_empty_input(models, seqs, layout, fragment):
    emb, clf = models
    for call in (emb.embed, clf.predict):
        with pytest.raises(ValueError) as err:
            call(seqs, convention="ntu25", layout=layout)
        assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_layouts_name_the_same_sequences(models):
    emb, clf = models
    ntvc = _seq(4, 20, 25, 3)  # N = 4: (3, 20, 25, 3) would also be one (C, T, V, M) sequence
    want = emb.embed(ntvc, convention="ntu25")
    store_like = ntvc.transpose(0, 3, 1, 2)[..., None]  # (N, C, T, V, M=1), as a store holds it
    torch.testing.assert_close(emb.embed(store_like, convention="ntu25", layout="NCTVM"), want)
    torch.testing.assert_close(emb.embed(list(ntvc), convention="ntu25"), want)
    one = ntvc[:1]  # one sequence with its person axis: (M=1, T, V, C) or (T, M=1, V, C)
    torch.testing.assert_close(emb.embed(one, convention="ntu25", layout="MTVC"), want[0])
    torch.testing.assert_close(emb.embed(one.transpose(1, 0, 2, 3), convention="ntu25", layout="TMVC"), want[0])
    pred = clf.predict(store_like, convention="ntu25", layout="nctvm")
    assert pred.probs.shape == (4, 4) and pred.names[0] in ("a", "b", "c", "d")


# ---------------------------------------------------------------- ops: reference refuses what cpu refuses


def _graph_conv(layout):
    from msclr.ops import masked_graph_conv

    x = torch.randn(3, 2, 4, 5, requires_grad=True)
    A, W = torch.rand(2, 3, 5, 5), torch.randn(3, 6, 2)
    return lambda backend: masked_graph_conv(x, torch.tensor(layout), A, W, backend=backend)


def _enqueue(ptr):
    from msclr.ops import enqueue

    queue, _, keys = enqueue_problem(16, 8, 4)
    return lambda backend: enqueue(queue.clone(), torch.tensor([ptr]), keys, backend=backend)


# (id, the call, the message both backends give)
OP_ROWS = [
    (
        "layout-negative",
        _graph_conv([0, 1, -1]),
        "msclr::masked_graph_conv: layout[2] = -1 is not a layout id in [0, 2)",
    ),
    (
        "layout-too-large",
        _graph_conv([0, 2, 1]),
        "msclr::masked_graph_conv: layout[1] = 2 is not a layout id in [0, 2)",
    ),
    ("ptr-negative", _enqueue(-1), "msclr::enqueue_: ptr -1 is outside the queue of 16 rows"),
    ("ptr-past-the-end", _enqueue(16), "msclr::enqueue_: ptr 16 is outside the queue of 16 rows"),
    ("ptr-far", _enqueue(40), "msclr::enqueue_: ptr 40 is outside the queue of 16 rows"),
]


@pytest.mark.parametrize(("call", "message"), [r[1:] for r in OP_ROWS], ids=[r[0] for r in OP_ROWS])
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_reference_and_cpu_refuse_bad_ids_alike(backend, call, message):
    need_backend(backend, "cpu")
    with pytest.raises(RuntimeError) as err:
        call(backend)
    assert str(err.value).splitlines()[0] == message  # torch appends C++ context lines to cpu errors


def test_reference_backward_refuses_bad_layout_ids():
    from msclr.ops.graph_conv import _ref_backward

    x, A, W = torch.randn(2, 2, 3, 5), torch.rand(2, 3, 5, 5), torch.randn(3, 4, 2)
    with pytest.raises(RuntimeError, match=r"masked_graph_conv_backward: layout\[0\] = 5 is not a layout id"):
        _ref_backward(torch.ones(2, 4, 3, 5), x, torch.tensor([5, 0]), A, W, None, None)


# ---------------------------------------------------------------- what the help and the docs point to exist

ROOT = Path(__file__).resolve().parents[1]
REPO_PATH = re.compile(r"(?<![\w/.~-])((?:configs|msclr|docs|tests|bench|csrc|kernels)/[\w./-]*\w)(?![\w*{<])")


def _help(main, argv) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(argv)
    return buf.getvalue()


def test_paths_named_by_help_texts_and_docs_exist():
    from msclr import prepare, reproduce

    texts = {
        f"{name} --help": _help(main, argv)
        for name, main, argv in (
            ("train", train.main, ["--help"]),
            ("evaluate", ev.main, ["linear", "--help"]),
            ("prepare", prepare.main, ["--help"]),
            ("prepare folder", prepare.main, ["folder", "--help"]),
            ("convert", convert.main, ["--help"]),
            ("reproduce", reproduce.main, ["--help"]),
        )
    }
    assert "configs/" in texts["train --help"]  # the example configs are named there
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("msclr/**/*.py")]:
        texts[str(path.relative_to(ROOT))] = path.read_text()
    missing = [
        f"{where}: {m.group(1)}"
        for where, text in texts.items()
        for m in REPO_PATH.finditer(text)
        if not (ROOT / m.group(1)).exists()
    ]
    assert not missing, missing
    assert texts["train --help"].count("configs/") >= 3
