"""Built-in skeleton conventions: joint order, bones, centre, left/right pairs.

The data lives in ``conventions/<name>.yaml`` next to this module, one file per
convention, and is read with the loader of user-defined conventions
(`convention.load_file`, which validates through `convention.from_dict` and
`convention.make_convention`). Built-in and user files follow one format.
`msclr.skeletons.get(name)` loads a built-in file on first use and caches the
`Convention`. Fields:

* ``name``: the convention's name; it equals the file name without ``.yaml``.
* ``joints``: joint names (lower_snake_case, unique), in the order of the data.
* ``bones``: ``[child, parent]`` name pairs. They form one tree over all joints
  (exactly V-1 bones, connected). The bone stream does not read the direction
  from here: it uses the breadth-first tree rooted at ``centre``
  (`Convention.parents`).
* ``centre``: the root joint for the ST-GCN spatial partition.
* ``flip_pairs``: every left/right pair. Joints that are not listed map to
  themselves.
* ``unit``: coordinate unit of the data source (``m``, ``mm`` or ``px``).
* ``description``: one line for people.
* ``source``: where the joint order and the bones come from.

Where the original edge list is not a tree over all joints, the comments in the
file say which edges were changed and why. The names are our own; ``source``
gives the original name scheme.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .convention import Convention, ConventionError, load_file

CONVENTIONS_DIR = Path(__file__).resolve().parent / "conventions"

__all__ = ["BUILTIN_SPECS", "CONVENTIONS_DIR", "builtin_names", "builtin_path", "load_builtin"]


@cache
def builtin_names() -> tuple[str, ...]:
    """Names of the built-in conventions (the stems of conventions/*.yaml), sorted."""
    return tuple(sorted(p.stem for p in CONVENTIONS_DIR.glob("*.yaml")))


def builtin_path(name: str) -> Path:
    """The YAML file of a built-in convention (ConventionError if there is none)."""
    if name not in builtin_names():
        raise ConventionError(f"no built-in convention {name!r}; built-in: {list(builtin_names())}")
    return CONVENTIONS_DIR / f"{name}.yaml"


@cache
def load_builtin(name: str) -> Convention:
    """The validated built-in convention `name`, read once through `load_file`."""
    conv = load_file(builtin_path(name))
    if conv.name != name:
        raise ConventionError(f"{builtin_path(name)}: field 'name' is {conv.name!r}, expected {name!r}")
    return conv


@cache
def _raw_spec(name: str) -> dict[str, Any]:
    return yaml.safe_load(builtin_path(name).read_text())


class _BuiltinSpecs(Mapping):
    """name -> plain spec dict (the file's fields without ``name``), read lazily from the YAML.

    Membership and iteration only list the files; a file is read on first access, and each
    access returns a fresh copy (the cached data cannot be changed through it).
    """

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in builtin_names():
            raise KeyError(name)
        spec = copy.deepcopy(_raw_spec(name))
        spec.pop("name", None)
        return spec

    def __contains__(self, name: object) -> bool:
        return name in builtin_names()

    def __iter__(self) -> Iterator[str]:
        return iter(builtin_names())

    def __len__(self) -> int:
        return len(builtin_names())

    def __repr__(self) -> str:
        return f"BUILTIN_SPECS({list(builtin_names())})"


BUILTIN_SPECS: Mapping[str, dict[str, Any]] = _BuiltinSpecs()
