"""Skeleton augmentations: one parameter set, a batched torch implementation and a DALI pipeline.

>>> import torch
>>> from msclr import skeletons
>>> from msclr.augment import AugmentParams, make_augment
>>> table = skeletons.LayoutTable([skeletons.get("ntu25"), skeletons.get("smplx42")])
>>> aug = make_augment(AugmentParams.extreme(), table, backend="torch")
>>> x = torch.zeros(4, 3, 50, table.v_max, 2)
>>> layout = torch.tensor([0, 1, 0, 1])
>>> aug(x, layout, torch.Generator().manual_seed(0)).shape
torch.Size([4, 3, 50, 42, 2])

Presets: AugmentParams.normal() (SkeletonCLR/AimCLR normal view), .aimclr() (AimCLR's
strong augmentation exactly), .extreme() (aimclr + joint and frame drop); or a YAML file
(AugmentParams.from_yaml; configs/augment/*.yaml).
"""

from __future__ import annotations

import torch

from ..skeletons import LayoutTable
from .dali_pipeline import DaliAugment, dali_import_error
from .params import DRAWN_FIELDS, AugmentError, AugmentParams, draw
from .torch_aug import TorchAugment

__all__ = [
    "AugmentError",
    "AugmentParams",
    "DRAWN_FIELDS",
    "DaliAugment",
    "TorchAugment",
    "dali_import_error",
    "draw",
    "make_augment",
]

BACKENDS = ("torch", "dali", "auto")


def make_augment(
    params: AugmentParams | str,
    table: LayoutTable,
    backend: str = "auto",
    device: torch.device | str | None = None,
    **dali_options,
) -> TorchAugment | DaliAugment:
    """The augmenter for `params` (or a preset name) on `device` (default: cuda if available, else cpu).

    backend "auto": DALI when the device is a GPU and nvidia.dali imports, torch otherwise.
    `.name` of the result says which one was chosen. dali_options (num_threads, seed,
    prefetch) go to DaliAugment.
    """
    if isinstance(params, str):
        params = AugmentParams.preset(params)
    if not isinstance(params, AugmentParams):
        raise AugmentError(f"make_augment: params must be AugmentParams or a preset name, got {type(params).__name__}")
    if not isinstance(table, LayoutTable):
        raise AugmentError(f"make_augment: table must be a msclr.skeletons.LayoutTable, got {type(table).__name__}")
    if backend not in BACKENDS:
        raise AugmentError(f"make_augment: unknown backend {backend!r}; choose one of {BACKENDS}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if backend == "auto":
        backend = "dali" if device.type == "cuda" and not dali_import_error() else "torch"
    if backend == "dali":
        return DaliAugment(params, table, device, **dali_options)
    if dali_options:
        raise AugmentError(f"make_augment: options {sorted(dali_options)} only apply to the dali backend")
    return TorchAugment(params, table, device)
