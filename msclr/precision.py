"""Mixed precision for training and evaluation: which autocast dtype, and whether a GradScaler.

`amp_setup` is what `--amp` means on each device (README, "Mixed precision").
"""

from __future__ import annotations

import logging
from contextlib import nullcontext

import torch

log = logging.getLogger("msclr.train")


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 / AMX), as oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def amp_setup(enabled: bool, device: torch.device, cpu_bf16: str = "auto"):
    """(autocast context factory, GradScaler or None, description).

    GPU: bf16 where supported, else fp16 with a GradScaler. CPU: bf16 autocast where the CPU
    has native bf16; elsewhere (e.g. AVX2-only CPUs) bf16 convolutions take slow emulated
    paths that make a step several times slower than fp32, so `auto` keeps fp32 and says so
    (run.cpu_bf16=on forces bf16).
    """
    if not enabled:
        return nullcontext, None, "float32"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None, "bfloat16"
        scaler = torch.amp.GradScaler("cuda")
        return (lambda: torch.autocast("cuda", dtype=torch.float16)), scaler, "float16 + GradScaler"
    if cpu_bf16 == "on" or (cpu_bf16 == "auto" and cpu_has_native_bf16()):
        return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)), None, "bfloat16"
    log.warning(
        "--amp: this CPU has no native bf16 (oneDNN), where bf16 autocast is slower than fp32; "
        "training in float32 (set run.cpu_bf16=on to force bf16)"
    )
    return nullcontext, None, "float32 (no native bf16 on this CPU)"
