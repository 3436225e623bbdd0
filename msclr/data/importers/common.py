"""What several importers share: the data-only unpickler, the guess of a convention from its
joint count, the NaN/inf check and the units."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ... import skeletons
from ...skeletons import Convention

MM = {"m": 1.0, "mm": 0.001, "px": 1.0}


class _SafeUnpickler(pickle.Unpickler):
    """Builds builtins containers and numpy arrays/scalars only."""

    ALLOWED = {
        ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"), ("builtins", "set"),
        ("builtins", "frozenset"), ("builtins", "str"), ("builtins", "bytes"), ("builtins", "int"),
        ("builtins", "float"), ("builtins", "complex"), ("builtins", "bool"), ("builtins", "slice"),
        ("collections", "OrderedDict"), ("collections", "defaultdict"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode"),
    }  # fmt: skip

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "numpy" and name.endswith("dtype")):
            return super().find_class(module, name)
        if module in ("numpy", "numpy.dtypes") and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a pickle (only data is allowed)")


def load_pickle(path: str | Path):
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _SafeUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: {e}") from e
    except (EOFError, OSError) as e:
        raise ValueError(f"{path}: cannot read the pickle: {e}") from e


def _convention_for(v: int, given: str | None, what: str) -> Convention:
    if given:
        conv = skeletons.get(given)
        if conv.num_joints != v:
            raise ValueError(f"{what}: {v} joints, convention {conv.name!r} has {conv.num_joints}")
        return conv
    guess = {25: "ntu25", 20: "kinect_v1_20", 18: "openpose18", 17: "coco17", 24: "smpl24", 42: "smplx42"}
    if v not in guess:
        raise ValueError(f"{what}: {v} joints; name the convention with --convention")
    return skeletons.get(guess[v])


def _check_finite(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{what}: NaN/inf value at index {tuple(int(i) for i in bad)}")
