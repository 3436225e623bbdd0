"""python -m msclr.info: what this install of msclr has and can run.

Prints the torch/CUDA versions, which compiled backends were built, whether they can
run here, Triton and DALI status, the GPU, and which backend `auto` picks per op.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform

import torch

from . import __version__, _ext
from .ops import backends


def _dali_status() -> dict:
    try:
        dali = importlib.import_module("nvidia.dali")
    except Exception as e:  # any import failure means "not usable"
        return {"importable": False, "reason": str(e).splitlines()[0] if str(e) else type(e).__name__}
    device = "gpu" if torch.cuda.is_available() else "cpu (pipelines with device_id=None)"
    return {"importable": True, "version": getattr(dali, "__version__", "?"), "device": device}


def collect() -> dict:
    mod = _ext.extension()
    info: dict = {
        "msclr": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "gpu": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "extension": {
            "loaded": mod is not None,
            "error": _ext.load_error() or None,
            "built_cpu": mod is not None,
            "built_cuda": _ext.built_with_cuda(),
            "built_against_torch": mod.torch_version() if mod is not None else None,
            "cuda_version": (mod.cuda_version() or None) if mod is not None else None,
        },
    }
    triton_ok, triton_where = backends.triton_runnable()
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    info["triton"] = {"version": triton_version, "runnable": triton_ok, "where": triton_where}
    info["dali"] = _dali_status()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    info["backends"] = {b: {d: (backends.why_unavailable(b, d) or "yes") for d in devices} for b in backends.BACKENDS}
    info["auto"] = {op: {d: backends.resolve(op, "auto", d) for d in devices} for op in backends.IMPLEMENTED}
    info["auto_source"] = {  # float32; other dtypes may differ (python -m msclr.tune measures them all)
        op: {d: backends.auto_order(op, d)[1] for d in devices} for op in backends.IMPLEMENTED
    }
    info["implemented"] = {op: list(v) for op, v in backends.IMPLEMENTED.items()}
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m msclr.info", description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = ap.parse_args(argv)
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    ext = info["extension"]
    built = [name for name, ok in (("cpu", ext["built_cpu"]), ("cuda", ext["built_cuda"])) if ok]
    print(f"msclr {info['msclr']}  python {info['python']}  torch {info['torch']} (CUDA {info['torch_cuda']})")
    print(f"GPU: {', '.join(info['gpu']) if info['gpu'] else 'none'}")
    if ext["loaded"]:
        cuda = f", CUDA {ext['cuda_version']}" if ext["built_cuda"] else ""
        print(
            f"extension msclr._C: built backends {', '.join(built)} (against torch {ext['built_against_torch']}{cuda})"
        )
    else:
        print(f"extension msclr._C: NOT LOADED: {ext['error']}")
    tri = info["triton"]
    print(f"triton {tri['version']}: {'runs on ' + tri['where'] if tri['runnable'] else 'cannot run: ' + tri['where']}")
    dali = info["dali"]
    dali_line = f"{dali['version']} on {dali['device']}" if dali["importable"] else f"not importable: {dali['reason']}"
    print(f"DALI: {dali_line}")
    print("backends (runnable here?):")
    for b, per_dev in info["backends"].items():
        print(f"  {b:<10} " + "  ".join(f"{d}: {v}" for d, v in per_dev.items()))
    print("auto picks (float32; python -m msclr.tune measures this machine and auto then follows it):")
    for op, per_dev in info["auto"].items():
        impl = ", ".join(info["implemented"][op])
        picks = "  ".join(f"{d}: {v} [{info['auto_source'][op][d]}]" for d, v in per_dev.items())
        print(f"  {op:<18} {picks}   (implemented: {impl})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
