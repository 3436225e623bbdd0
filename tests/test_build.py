"""The extension build, its version check, backend choice and `python -m msclr.info`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest
import torch
from helpers import GPU, enqueue_problem

from msclr import _ext
from msclr.ops import backends
from msclr.ops.enqueue import _enqueue_ref  # the module: msclr.ops.enqueue is the function


def test_extension_built_with_cpu_kernels():
    mod = _ext.extension()
    assert mod is not None, _ext.load_error()
    assert mod.torch_version() == torch.__version__.split("+")[0]
    # one of its ops, run: enqueue_ writes the keys where the reference does (wrapping) and passes opcheck
    queue, ptr, keys = enqueue_problem(6, 4, 3, ptr=5)
    want_queue, want_ptr = queue.clone(), ptr.clone()
    _enqueue_ref(want_queue, want_ptr, keys)
    got_queue, got_ptr = queue.clone(), ptr.clone()
    torch.ops.msclr.enqueue_(got_queue, got_ptr, keys)
    assert torch.equal(got_queue, want_queue) and torch.equal(got_ptr, want_ptr)
    assert torch.equal(got_queue[[5, 0, 1]], keys) and got_ptr.item() == 2 and torch.equal(got_queue[2:5], queue[2:5])
    torch.library.opcheck(torch.ops.msclr.enqueue_.default, (queue, ptr, keys))


@pytest.mark.skipif(not torch.version.cuda, reason="torch is a CPU-only build")
def test_cuda_kernels_built_with_cuda_torch():
    """With a CUDA torch and nvcc (as in CI) the CUDA sources must have been compiled."""
    from msclr import _build_info

    if not _build_info.WITH_CUDA:
        pytest.skip("extension built without CUDA (MSCLR_BUILD_CUDA=0 or no nvcc)")
    assert _ext.built_with_cuda()
    assert _ext.extension().cuda_version() == torch.version.cuda


def test_extension_refuses_another_torch(monkeypatch):
    fake_info = types.SimpleNamespace(TORCH_VERSION="1.0.0+other", WITH_CUDA=False)
    monkeypatch.setitem(sys.modules, "msclr._build_info", fake_info)
    mod, reason = _ext._load.__wrapped__()
    assert mod is None
    assert "built against torch 1.0.0+other" in reason and torch.__version__ in reason
    assert "pip install --no-build-isolation -e ." in reason


def test_explicit_backend_errors_say_why(monkeypatch):
    with pytest.raises(RuntimeError, match="cuda backend runs on CUDA tensors"):
        backends.resolve("enqueue", "cuda", "cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(backends, "_resolved", {})
    # as if the Triton kernels were not imported yet (they may be, by tests run before this one)
    monkeypatch.delitem(sys.modules, "msclr.kernels.graph_conv", raising=False)
    with pytest.raises(RuntimeError, match="enqueue has no triton implementation yet"):
        backends.resolve("enqueue", "triton", "cpu")
    with pytest.raises(RuntimeError, match="unknown backend"):
        backends.resolve("enqueue", "fastest", "cpu")


def test_auto_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(backends._ext, "load_error", lambda: "msclr._C is not built")
    monkeypatch.setattr(backends, "_resolved", {})
    with pytest.warns(RuntimeWarning, match=r"using the reference backend on cpu: cpu unavailable \(msclr._C is not"):
        assert backends.resolve("enqueue", "auto", "cpu") == "reference"
    # cached: no second warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert backends.resolve("enqueue", "auto", "cpu") == "reference"


def test_auto_prefers_compiled_cpu_kernel():
    assert backends.resolve("enqueue", "auto", "cpu") == "cpu"


def _runnable_in_subprocess(env_value: str | None, flip_after_import: bool = False) -> str:
    """triton_runnable() in a fresh interpreter (the kernels' mode is fixed at import)."""
    code = (
        "import os, msclr.kernels.graph_conv; from msclr.ops import backends; "
        + ("os.environ['TRITON_INTERPRET'] = '1'; " if flip_after_import else "")
        + "print(backends.triton_runnable())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if env_value is not None:
        env["TRITON_INTERPRET"] = env_value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_triton_interpreter_detection():
    if GPU:
        pytest.skip("a GPU is present")
    assert "(True, 'interpreter (TRITON_INTERPRET=1)')" in _runnable_in_subprocess("1")
    assert "(False, 'no GPU and TRITON_INTERPRET is not 1')" in _runnable_in_subprocess("0")
    # set after the kernels were imported: they are compiled kernels, which cannot run here
    assert "TRITON_INTERPRET changed after msclr.kernels was imported" in _runnable_in_subprocess(None, True)


@pytest.mark.slow
def test_info_cli_reports_backends():
    out = subprocess.run([sys.executable, "-m", "msclr.info"], capture_output=True, text=True, check=True).stdout
    assert "extension msclr._C: built backends cpu" in out
    assert f"torch {torch.__version__}" in out
    data = json.loads(
        subprocess.run(
            [sys.executable, "-m", "msclr.info", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert data["extension"]["built_cpu"] is True
    assert data["auto"]["enqueue"]["cpu"] == "cpu"
    assert set(data["backends"]) == {"reference", "cpu", "cuda", "triton"}
    assert "importable" in data["dali"]
