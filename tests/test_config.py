"""Configs: every paper composition loads and validates; typos and bad values are errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from msclr import config
from msclr.train import parse_args

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize(
    "data,stream,method,skel",
    list(
        itertools.product(
            sorted((CONFIGS / "data").glob("*.yaml")),
            ["joint", "motion", "bone"],
            ["skeletonclr", "aimclr"],
            ["single", "multi"],
        )
    ),
)
def test_paper_compositions(data, stream, method, skel):
    files = [
        data,
        CONFIGS / "stream" / f"{stream}.yaml",
        CONFIGS / "method" / f"{method}.yaml",
        CONFIGS / "skeletons" / f"{skel}.yaml",
    ]
    cfg = config.load(files)
    assert cfg.data.stream == stream and cfg.method.name == method
    assert cfg.method.queue_size == 32768 and cfg.method.tau == 0.07 and cfg.method.momentum == 0.999
    assert cfg.optim.epochs == 300 and cfg.optim.batch_size == 128
    assert [config.epoch_of(m, 300) for m in cfg.optim.milestones] == [250]  # AimCLR's step
    assert cfg.data.frames == 50 and cfg.data.persons == 2
    assert cfg.data.conventions[0] == "ntu25"


def test_default_is_synthetic():
    _, cfg = parse_args([])
    assert cfg.data.store is None and cfg.optim.epochs >= 1


def test_flags_and_overrides():
    _, cfg = parse_args(["--epochs", "2", "--batch-size", "8", "--amp", "--backend", "reference", "method.pairing=all"])
    assert cfg.optim.epochs == 2 and cfg.optim.batch_size == 8 and cfg.run.amp and cfg.run.backend == "reference"
    assert cfg.method.pairing == "all"


def test_errors_are_clear(tmp_path, capsys):
    from msclr.train import TrainError

    with pytest.raises(TrainError, match="pairng"):  # typo in a key; main() prints it, exit 2
        parse_args(["method.pairng=all"])
    with pytest.raises(TrainError, match="method.pairing must be one of"):
        parse_args(["method.pairing=everything"])
    with pytest.raises(TrainError, match="method.queue_dtype must be one of"):
        parse_args(["method.queue_dtype=int8"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {epochs: [1\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        config.load([bad])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        config.load([tmp_path / "nope.yaml"])
