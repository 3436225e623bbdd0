"""python -m msclr.tune and the table `auto` follows (msclr.ops.backends.auto_order)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from msclr import tune
from msclr.ops import backends


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A fresh tuned-table path for this test, and no cached `auto` decisions before or after."""
    path = tmp_path / "tuned.json"
    monkeypatch.setenv("MSCLR_TUNED_TABLE", str(path))
    monkeypatch.setattr(backends, "_resolved", {})
    return path


def _write(path, machines):
    path.write_text(json.dumps({"format": backends.TUNED_FORMAT, "machines": machines}))


def test_tune_measures_and_writes_the_order(table, capsys):
    assert tune.main(["--device", "cpu", "--ops", "enqueue", "masked_graph_conv", "--rounds", "1"]) == 0
    data = json.loads(table.read_text())
    entry = data["machines"][backends.machine_key("cpu")]
    for op in ("enqueue", "masked_graph_conv"):
        r = entry["ops"][op]["float32"]
        assert set(r["order"]) == set(r["ms"]) and "reference" in r["ms"]
        assert r["order"] == sorted(r["ms"], key=r["ms"].get) and all(v > 0 for v in r["ms"].values())
    assert entry["torch"] == torch.__version__ and entry["rounds"] == 1 and len(entry["load_average"]) == 3
    assert "auto -> " in capsys.readouterr().out


def test_auto_follows_the_measured_order_for_this_machine_only(table):
    key = backends.machine_key("cpu")
    _write(table, {key: {"ops": {"enqueue": {"float32": {"order": ["reference", "cpu"]}}}},
                   "cuda:Some Other GPU": {"ops": {"enqueue": {"bfloat16": {"order": ["reference"]}}}}})  # fmt: skip
    assert backends.resolve("enqueue", "auto", "cpu", "float32") == "reference"
    assert backends.auto_order("enqueue", "cpu", "float32")[1].startswith("measured")
    # a dtype the table does not have, and an op it does not have: the shipped default
    assert backends.resolve("enqueue", "auto", "cpu", "bfloat16") == backends.resolve("masked_bn_apply", "auto", "cpu")
    assert backends.auto_order("enqueue", "cpu", "bfloat16") == (("cpu", "reference"), "shipped default")


def test_another_machines_entry_and_tune_keep_each_other(table):
    _write(table, {"cuda:Some Other GPU": {"ops": {"enqueue": {"bfloat16": {"order": ["triton"]}}}}})
    assert backends.auto_order("enqueue", "cpu")[1] == "shipped default"
    assert tune.main(["--device", "cpu", "--ops", "enqueue", "--rounds", "1"]) == 0
    machines = json.loads(table.read_text())["machines"]
    assert set(machines) == {"cuda:Some Other GPU", backends.machine_key("cpu")}


def test_a_damaged_table_is_ignored_with_a_warning(table):
    table.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="ignoring the tuned backend table"):
        order, source = backends.auto_order("enqueue", "cpu")
    assert source == "shipped default" and order == ("cpu", "reference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tune.main(["--device", "cpu", "--ops", "enqueue", "--rounds", "1"]) == 0  # replaces it
    assert backends.auto_order("enqueue", "cpu")[1].startswith("measured")


def test_shipped_default_prefers_tensor_core_kernels_in_low_precision():
    for dtype in ("bfloat16", "float16"):
        assert backends.DEFAULT_ORDER["cuda"][dtype][0] == "triton"
    assert backends.DEFAULT_ORDER["cuda"]["float32"][0] == "cuda"


@pytest.mark.parametrize(
    "argv", [["--device", "tpu"], ["--rounds", "0"]] + ([] if torch.cuda.is_available() else [["--device", "cuda"]])
)
def test_bad_arguments_are_one_line_errors(table, argv, capsys):
    assert tune.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("msclr.tune: error:") and "\n" not in err and not table.exists()
