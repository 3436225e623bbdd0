"""Skeleton conventions: built-in ones, user-defined ones, adjacency and the layout table.

The built-in conventions are YAML files in msclr/skeletons/conventions/, read by the same
loader as user-defined ones (`load_file`); see msclr.skeletons.builtin.

>>> from msclr import skeletons
>>> ntu = skeletons.get("ntu25")
>>> ntu.num_joints, ntu.joints[ntu.centre]
(25, 'spine_shoulder')
>>> skeletons.adjacency("ntu25").shape
(3, 25, 25)
>>> table = skeletons.LayoutTable([skeletons.get(n) for n in ("ntu25", "smplx42")])
>>> tuple(table.A.shape)
(2, 3, 42, 42)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .builtin import BUILTIN_SPECS, load_builtin
from .convention import Convention, ConventionError, from_dict, load_file, make_convention
from .graph import STRATEGIES, adjacency_from_edges, convention_adjacency, hop_distance
from .layout import LayoutTable, pad_joints, unpad_joints

__all__ = [
    "Convention",
    "ConventionError",
    "LayoutTable",
    "STRATEGIES",
    "adjacency",
    "adjacency_from_edges",
    "available",
    "from_dict",
    "get",
    "hop_distance",
    "load_file",
    "make_convention",
    "pad_joints",
    "register",
    "unpad_joints",
]

_registry: dict[str, Convention] = {}


def register(conv: Convention, overwrite: bool = False) -> Convention:
    """Make a (user-defined) convention available to `get` by its name."""
    if not isinstance(conv, Convention):
        raise TypeError(f"register() expects a Convention, got {type(conv).__name__}")
    if conv.name in BUILTIN_SPECS or (conv.name in _registry and not overwrite):
        raise ConventionError(f"a convention named {conv.name!r} already exists")
    _registry[conv.name] = conv
    return conv


def available() -> list[str]:
    """Names of the built-in and registered conventions."""
    return sorted(set(BUILTIN_SPECS) | set(_registry))


def get(name: str | Path | Convention) -> Convention:
    """A convention by name, or from a .json/.yaml file path, or passed through."""
    if isinstance(name, Convention):
        return name
    key = str(name)
    if key in _registry:
        return _registry[key]
    if key in BUILTIN_SPECS:
        conv = load_builtin(key)
        _registry[key] = conv
        return conv
    if Path(key).suffix.lower() in (".json", ".yaml", ".yml"):
        if not Path(key).is_file():
            raise ConventionError(f"convention file {key} does not exist")
        return load_file(key)
    raise ConventionError(f"unknown skeleton convention {key!r}; available: {available()}")


def adjacency(
    convention: str | Convention, strategy: str = "spatial", max_hop: int = 1, dilation: int = 1
) -> np.ndarray:
    """(K, V, V) float32 ST-GCN partition adjacency of a convention (see msclr.skeletons.graph)."""
    return convention_adjacency(get(convention), strategy, max_hop, dilation)
