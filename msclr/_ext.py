"""Loading the compiled extension msclr._C, refusing one built against another torch.

The extension registers the C++/CUDA kernels of the `msclr` op namespace
(TORCH_LIBRARY) when imported. It is optional: without it the ops fall back to
the `reference` backend with one warning (see msclr.ops.backends).
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType

import torch


@functools.cache
def _load() -> tuple[ModuleType | None, str]:
    try:
        info = importlib.import_module("msclr._build_info")
    except ImportError:
        return None, "msclr._C is not built (run `pip install --no-build-isolation -e .`)"
    if info.TORCH_VERSION != torch.__version__:
        # Importing a library built against another libtorch can crash or misbehave: refuse.
        return None, (
            f"msclr._C was built against torch {info.TORCH_VERSION} but torch {torch.__version__} "
            "is imported; refusing to load it. Rebuild with `pip install --no-build-isolation -e .`"
        )
    try:
        mod = importlib.import_module("msclr._C")
    except ImportError as e:
        return None, f"msclr._C failed to load: {e}"
    return mod, ""


def extension() -> ModuleType | None:
    """The loaded extension module, or None (see `load_error`)."""
    return _load()[0]


def has_op(name: str) -> bool:
    """Whether the extension loaded and registered torch.ops.msclr.<name>."""
    return extension() is not None and hasattr(torch.ops.msclr, name)


def load_error() -> str:
    """Why the extension is unavailable ('' when it loaded)."""
    return _load()[1]


def built_with_cuda() -> bool:
    mod = extension()
    return bool(mod is not None and mod.built_with_cuda())
