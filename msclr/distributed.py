"""Multi-process training with torchrun: process group, key gathering, rank-0 duties.

`torchrun --nproc_per_node=N -m msclr.train ...` (and across nodes with torchrun's
rendezvous flags) sets RANK/WORLD_SIZE/LOCAL_RANK; NCCL is used on GPUs, gloo on CPU.
The batch size in the config is the global one; each rank takes batch_size / world.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def setup(device_name: str) -> torch.device:
    """Initialise the process group when launched by torchrun; returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _device(device_name)
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return device


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but no GPU is visible")
    return dev


@torch.no_grad()
def gather_keys(keys: torch.Tensor) -> torch.Tensor:
    """Keys of every rank, concatenated in rank order, before they enter the shared queue."""
    if world_size() == 1:
        return keys
    out = [torch.empty_like(keys) for _ in range(world_size())]
    dist.all_gather(out, keys.contiguous())
    return torch.cat(out)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
