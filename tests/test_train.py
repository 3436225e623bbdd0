"""python -m msclr.train end to end on small synthetic data: runs, resumes exactly, compiles, backends agree."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import backend_unavailable

from msclr import train
from msclr.train import trainer  # the module whose names the spies below wrap
from msclr.train.crop import _valid_lengths

# A small but complete run: three conventions, both views, the whole pipeline.
SMALL = [
    "data.synthetic.num_samples=48",
    "data.synthetic.frames=24",
    "data.frames=12",
    "model.hidden_channels=4",
    "model.hidden_dim=16",
    "model.feature_dim=8",
    "method.queue_size=32",
    "data.split=all",  # every sample, so the step counts below are those of 48 samples
    "optim.batch_size=8",
    "run.log_every=1",
    "--aug",
    "torch",
]


def losses(out: Path) -> list[float]:
    with open(out / "log.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]


def run(*args: str) -> int:
    return train.main([*SMALL, *args])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Generate the synthetic store once; runs copy nothing, they point at it."""
    out = tmp_path_factory.mktemp("syn")
    assert run("--out", str(out), "--max-steps", "1") == 0
    return out / "synthetic"


def test_default_run_writes_checkpoint_and_logs(tmp_path, synthetic, capsys):
    assert run("--out", str(tmp_path), "--data", str(synthetic), "--epochs", "1") == 0
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "config.yaml").is_file()
    ls = losses(tmp_path)
    assert len(ls) == 6 and all(torch.isfinite(torch.tensor(ls)))
    text = capsys.readouterr().out
    assert "Checkpoint:" in text and "--resume" in text
    ck = torch.load(tmp_path / "last.pt", weights_only=True)  # plain data: loads without running code
    assert ck["step"] == 6 and ck["epoch"] == 1
    assert {"model", "optimizer", "scheduler", "rng", "config"} <= set(ck)


def test_a_checkpoint_from_an_older_version_resumes_with_its_own_behaviour(tmp_path, synthetic):
    """A config written before data.synthetic.style, model.input_norm and model.init existed
    resumes (and evaluates) with the values of its run, not today's defaults."""
    from msclr import checkpoint_io
    from msclr import config as cfglib
    from msclr.evaluate.checkpoint import read_checkpoint

    out = tmp_path / "old"
    assert run("--out", str(out), "--data", str(synthetic), "--max-steps", "2", "model.init=torch",
               "model.input_norm=per_person") == 0  # fmt: skip
    ck = checkpoint_io.load(out / "last.pt")
    del ck["config"]["data"]["synthetic"]["style"], ck["config"]["model"]["input_norm"], ck["config"]["model"]["init"]
    checkpoint_io.save(out / "last.pt", ck)
    cfg = cfglib.from_checkpoint(ck["config"])
    assert (cfg.data.synthetic.style, cfg.model.input_norm, cfg.model.init) == (0.0, "per_person", "torch")
    assert read_checkpoint(out / "last.pt").config.model.input_norm == "per_person"
    assert train.main(["--resume", str(out / "last.pt"), "--max-steps", "3"]) == 0
    assert len(losses(out)) == 3
    with pytest.raises(ValueError):
        cfglib.from_checkpoint({**ck["config"], "no_such_section": {}})


@pytest.mark.slow
def test_resume_continues_with_the_same_losses(tmp_path, synthetic):
    full, part = tmp_path / "full", tmp_path / "part"
    assert run("--out", str(full), "--data", str(synthetic), "--epochs", "2", "--max-steps", "9") == 0
    assert run("--out", str(part), "--data", str(synthetic), "--epochs", "2", "--max-steps", "4") == 0
    assert train.main(["--resume", str(part / "last.pt"), "--max-steps", "9"]) == 0
    a, b = losses(full), losses(part)
    assert len(a) == len(b) == 9
    assert a == b  # bit-identical on CPU with a fixed seed


@pytest.mark.slow
def test_sigterm_checkpoints_and_resume_matches(tmp_path, synthetic):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run("--out", str(full), "--data", str(synthetic), "--epochs", "2") == 0
    cmd = [sys.executable, "-m", "msclr.train", *SMALL, "--out", str(killed), "--data", str(synthetic), "--epochs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (killed / "log.csv").exists() and len(losses(killed)) >= 3:
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "stopped by signal" in out
    assert 3 <= len(losses(killed)) < 12
    assert train.main(["--resume", str(killed / "last.pt")]) == 0
    assert losses(killed) == losses(full)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_exit_status_is_128_plus_the_signal(tmp_path, synthetic, monkeypatch, signum):
    """The shell's convention: 130 for SIGINT, 143 for SIGTERM, after a checkpoint of the step."""
    step_fn = train.Trainer.train_step

    def signalled(self, batch):
        stats = step_fn(self, batch)
        if self.step == 2:
            self._on_signal(signum, None)  # as the handler would on delivery
        return stats

    monkeypatch.setattr(train.Trainer, "train_step", signalled)
    assert run("--out", str(tmp_path), "--data", str(synthetic), "--epochs", "2") == 128 + signum
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3


def log_rows(out: Path) -> list[dict]:
    with open(out / "log.csv") as f:
        return list(csv.DictReader(f))


def spy(monkeypatch, owner, name: str) -> list:
    """Wrap owner.name: every call's (args, result) is appended to the returned list."""
    calls, fn = [], getattr(owner, name)

    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        calls.append((args, result))
        return result

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def assert_finished(out: Path, steps: int) -> dict:
    """The run wrote `steps` log rows with finite losses and a loadable checkpoint at that step; its config."""
    rows = log_rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    assert all(math.isfinite(float(r[key])) for r in rows for key in ("loss", "info_nce"))
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["step"] == steps
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved == ck["config"]  # config.yaml is the checkpoint's config
    return ck["config"]


@pytest.mark.parametrize("mode", ["sample", "all", "single"])
def test_pairings_and_aimclr(tmp_path, synthetic, monkeypatch, mode):
    """Each pairing draws the positives it names; AimCLR (with mode all) adds its divergence terms."""
    aimclr = mode == "all"
    extra = ["method.name=aimclr", "method.nn_epoch=0"] if aimclr else ["method.name=skeletonclr"]
    pairs = spy(monkeypatch, trainer, "make_pairs")
    steps = spy(monkeypatch, train.Trainer, "train_step")
    assert (
        run("--out", str(tmp_path), "--data", str(synthetic), "--max-steps", "2", f"method.pairing={mode}", *extra) == 0
    )
    cfg = assert_finished(tmp_path, 2)
    assert cfg["method"]["pairing"] == mode and cfg["method"]["name"] == ("aimclr" if aimclr else "skeletonclr")
    assert len(pairs) == 2
    for (_, available, *_), (_, lq, _, lk) in pairs:
        n, conventions = available.shape
        if mode == "single":  # both views from one convention, the same for every sample
            assert lk.shape == (n, 1) and (lq == lq[0]).all() and torch.equal(lk[:, 0], lq)
        elif mode == "sample":  # one key convention per sample, another than the query's where there is one
            assert lk.shape == (n, 1)
            two = available.sum(1) >= 2
            assert two.any() and (lk[two, 0] != lq[two]).all()
        else:  # every other convention is a positive
            assert conventions == 3 and lk.shape == (n, conventions - 1)
            assert (lk != lq[:, None]).any(1).all()
    rows = log_rows(tmp_path)
    stats = [result for _, result in steps]
    assert len(stats) == 2
    if aimclr:  # the divergence terms: logged, finite, and part of the loss beside the InfoNCE term
        assert all("ddm" in st and math.isfinite(st["ddm"]) and st["ddm"] > 0 for st in stats)
        assert all(r["loss"] != r["info_nce"] for r in rows)
    else:
        assert all(set(st) == {"loss", "info_nce"} for st in stats)
        assert all(r["loss"] == r["info_nce"] for r in rows)


def test_amp_and_streams(tmp_path, synthetic, monkeypatch):
    """--amp and data.stream reach the trainer, are saved with the run, and the runs finish with finite losses."""
    amp = spy(monkeypatch, trainer, "amp_setup")
    streams = spy(monkeypatch, trainer, "to_stream")
    assert (
        run("--out", str(tmp_path / "bone"), "--data", str(synthetic), "--max-steps", "2", "--amp", "data.stream=bone")
        == 0
    )
    cfg = assert_finished(tmp_path / "bone", 2)
    assert cfg["run"]["amp"] is True and cfg["data"]["stream"] == "bone"
    assert [args[0] for args, _ in amp] == [True]  # amp_setup(enabled, ...)
    assert {args[2] for args, _ in streams} == {"bone"}  # to_stream(x, layout, stream, table)
    for (x, layout, _, table), y in streams:  # bones: x[v] - x[parent[v]] (0 at the root and on padding)
        par = table.parent[layout]
        for i in range(x.shape[0]):
            torch.testing.assert_close(y[i], x[i] - x[i][:, :, par[i]], rtol=0, atol=0)
    amp.clear(), streams.clear()
    assert (
        run("--out", str(tmp_path / "motion"), "--data", str(synthetic), "--max-steps", "2", "data.stream=motion") == 0
    )
    cfg = assert_finished(tmp_path / "motion", 2)
    assert cfg["run"]["amp"] is False and cfg["data"]["stream"] == "motion"
    assert [args[0] for args, _ in amp] == [False]
    assert {args[2] for args, _ in streams} == {"motion"}
    for (x, _, _, _), y in streams:  # frame differences: the last frame is 0
        assert (y[:, :, -1] == 0).all() and torch.equal(y[:, :, :-1], x[:, :, 1:] - x[:, :, :-1])


@pytest.mark.slow
def test_compile_fullgraph_runs(tmp_path, synthetic):
    """--compile uses torch.compile(fullgraph=True): any graph break would be an error. aot_eager traces
    forward and backward like inductor but skips code generation (minutes on 2 cores)."""
    torch._dynamo.reset()
    assert (
        run(
            "--out",
            str(tmp_path),
            "--data",
            str(synthetic),
            "--max-steps",
            "2",
            "--compile",
            "run.compile_backend=aot_eager",
        )
        == 0
    )
    assert len(losses(tmp_path)) == 2


@pytest.mark.slow
def test_fused_and_reference_backends_agree(tmp_path, synthetic):
    fused = [op for op in ("masked_graph_conv", "infonce_queue") if not backend_unavailable("cpu", "cpu", op)]
    if not fused:
        pytest.skip("no fused CPU kernel is built for the encoder or the loss")
    # dropout on (the config's 0.5): both backends draw the same hash-dropout masks
    common = ["--data", str(synthetic), "--epochs", "4", "--max-steps", "20"]
    assert run("--out", str(tmp_path / "ref"), "--backend", "reference", *common) == 0
    assert run("--out", str(tmp_path / "fused"), "--backend", "auto", *common) == 0
    a, b = torch.tensor(losses(tmp_path / "ref")), torch.tensor(losses(tmp_path / "fused"))
    assert len(a) == len(b) == 20
    # the same masks: the first steps agree to float tolerance; rounding differences of the two
    # summation orders then grow over the steps of a chaotic optimisation (measured: 0.5 % at step 14)
    torch.testing.assert_close(b[:10], a[:10], rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(b, a, rtol=2e-2, atol=2e-2)


def test_bad_arguments_are_clear(tmp_path, capsys):
    assert train.main(["--resume", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "out"
    assert train.main([*SMALL, "--out", str(out), "data.conventions=[ntu25,not_a_skeleton]", "--max-steps", "1"]) == 2
    assert "['not_a_skeleton'] are not in the synthetic data, which has" in capsys.readouterr().err
    assert not out.exists()  # a failed start leaves nothing behind


def test_module_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "msclr.train", "--help"], capture_output=True, text=True, env={**os.environ}, check=True
    ).stdout
    assert "--resume" in out and "--amp" in out and "--compile" in out


# ------------------------------------------------------------------------------ what the run reads
def test_schedule_points_scale_with_the_run():
    from msclr.config import epoch_of

    assert epoch_of(0.8333, 300) == 250 and epoch_of(0.8333, 30) == 25 and epoch_of(0.5, 300) == 150
    assert epoch_of(250, 300) == 250  # an integer is an epoch number


def make_trainer(synthetic, tmp_path, *extra):
    argv = [a for a in SMALL if a != "data.split=all"]
    _, cfg = train.parse_args([*argv, "--out", str(tmp_path), "--data", str(synthetic), *extra])
    return train.Trainer(cfg)


def test_trainer_reads_the_train_part_and_scales_schedules(synthetic, tmp_path, caplog):
    from msclr.data import open_store

    caplog.set_level("INFO", logger="msclr.train")
    store = open_store(synthetic)
    t = make_trainer(synthetic, tmp_path, "--epochs", "10", "optim.milestones=[0.8]", "method.nn_epoch=0.5")
    assert t.split == next(iter(store.splits))  # the store's first split
    assert len(t.dataset) == len(store.split(t.split, "train")) < len(store)
    assert t.milestones == [8] and t.nn_epoch == 5
    assert "train part" in caplog.text and "temporal crop" in caplog.text
    assert "exceeds the" in caplog.text  # queue 32 > the training sequences of this tiny store
    every = make_trainer(synthetic, tmp_path / "all", "data.split=all")
    assert every.split is None and len(every.dataset) == len(store)


def test_min_crop_auto_follows_the_sequence_lengths(synthetic, tmp_path):
    t = make_trainer(synthetic, tmp_path)
    lengths = _valid_lengths(t.store, list(t.table.names), (t.split, "train"))
    assert t.dataset.min_crop == min(64, int(0.5 * float(__import__("numpy").median(lengths))))
    assert make_trainer(synthetic, tmp_path / "b", "data.min_crop=5").dataset.min_crop == 5
