"""A skeleton convention: joint names, bones, centre joint, left/right flip map, unit.

Conventions are immutable and validated on construction, so every later stage
(adjacency, padding, augmentation flips, bone streams) can trust them.
"""

from __future__ import annotations

import json
import numbers
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UNITS = ("m", "mm", "px")


class ConventionError(ValueError):
    """A skeleton convention is malformed (the message names the source and the field)."""


@dataclass(frozen=True)
class Convention:
    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]  # (child, parent) joint indices
    centre: int
    flip: tuple[int, ...]  # flip[v] = index of v's mirror twin (itself if not lateral)
    unit: str = "m"
    description: str = ""
    source: str = ""
    derived_from: str | None = None  # set when the data of this convention is derived from another
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of a joint by name (ConventionError if unknown)."""
        try:
            return self._index[joint]
        except KeyError:
            raise ConventionError(f"convention {self.name!r}: unknown joint {joint!r}") from None

    @property
    def parents(self) -> tuple[int, ...]:
        """Parent of every joint in the breadth-first tree rooted at the centre (centre -> itself).

        For ST-GCN's ntu25 bone list this reproduces its (child, parent) orientation exactly;
        it is what the bone stream (x[v] - x[parent[v]]) uses.
        """
        adj: list[list[int]] = [[] for _ in self.joints]
        for a, b in self.bones:
            adj[a].append(b)
            adj[b].append(a)
        parent = [-1] * self.num_joints
        parent[self.centre] = self.centre
        todo = deque([self.centre])
        while todo:
            u = todo.popleft()
            for w in adj[u]:
                if parent[w] < 0:
                    parent[w] = u
                    todo.append(w)
        return tuple(parent)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that `from_dict` reads back (the JSON/YAML file format)."""
        pairs = [(self.joints[v], self.joints[f]) for v, f in enumerate(self.flip) if v < f]
        d = dict(
            name=self.name,
            joints=list(self.joints),
            bones=[[self.joints[a], self.joints[b]] for a, b in self.bones],
            centre=self.joints[self.centre],
            flip_pairs=[list(p) for p in pairs],
            unit=self.unit,
            description=self.description,
            source=self.source,
        )
        if self.derived_from:
            d["derived_from"] = self.derived_from
        return d


def _fail(where: str, msg: str) -> None:
    raise ConventionError(f"{where}: {msg}")


def _joint_ref(ref: Any, index: dict[str, int], where: str, what: str) -> int:
    """Resolve a joint given by name or by 0-based index."""
    if isinstance(ref, bool):
        _fail(where, f"{what}: {ref!r} is not a joint name or index")
    if isinstance(ref, numbers.Integral):  # int, numpy integers
        ref = int(ref)
        if not 0 <= ref < len(index):
            _fail(where, f"{what}: joint index {ref} out of range 0..{len(index) - 1}")
        return ref
    if isinstance(ref, str):
        if ref not in index:
            _fail(where, f"{what}: unknown joint {ref!r}")
        return index[ref]
    _fail(where, f"{what}: {ref!r} is not a joint name or index")
    raise AssertionError  # unreachable


def _joint_index(joints: tuple, where: str) -> dict[str, int]:
    """{joint name: index}; the names must be non-empty strings, each once."""
    index: dict[str, int] = {}
    for i, j in enumerate(joints):
        if not isinstance(j, str) or not j:
            _fail(where, f"field 'joints': entry {i} ({j!r}) is not a non-empty string")
        if j in index:
            _fail(where, f"field 'joints': duplicate joint name {j!r} (entries {index[j]} and {i})")
        index[j] = i
    return index


def _bone_list(
    bones: Iterable[Sequence[Any]], index: dict[str, int], joints: tuple, where: str
) -> list[tuple[int, int]]:
    """The bones as pairs of joint indices; each links two different joints."""
    bone_list: list[tuple[int, int]] = []
    for n, bone in enumerate(bones):
        if len(bone) != 2:
            _fail(where, f"field 'bones': entry {n} ({bone!r}) is not a pair of joints")
        a = _joint_ref(bone[0], index, where, f"field 'bones' entry {n}")
        b = _joint_ref(bone[1], index, where, f"field 'bones' entry {n}")
        if a == b:
            _fail(where, f"field 'bones': entry {n} links joint {joints[a]!r} to itself")
        bone_list.append((a, b))
    return bone_list


def _check_connected(joints: tuple, bone_list: list[tuple[int, int]], c: int, where: str) -> None:
    """Connected: every joint reachable from the centre through bones."""
    adj: list[set[int]] = [set() for _ in joints]
    for a, b in bone_list:
        adj[a].add(b)
        adj[b].add(a)
    seen = {c}
    todo = [c]
    while todo:
        for w in adj[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    if len(seen) != len(joints):
        missing = [joints[v] for v in range(len(joints)) if v not in seen]
        _fail(
            where,
            f"skeleton not connected: joints {missing} cannot be reached from the centre "
            f"{joints[c]!r} through the bones",
        )


def _flip_from_pairs(flip_pairs, index: dict[str, int], joints: tuple, where: str) -> list[int]:
    """The permutation that swaps each left/right pair (other joints map to themselves)."""
    perm = list(range(len(joints)))
    for n, pair in enumerate(flip_pairs or ()):
        if len(pair) != 2:
            _fail(where, f"field 'flip_pairs': entry {n} ({pair!r}) is not a pair")
        a = _joint_ref(pair[0], index, where, f"field 'flip_pairs' entry {n}")
        b = _joint_ref(pair[1], index, where, f"field 'flip_pairs' entry {n}")
        for v in (a, b):
            if perm[v] != v:
                _fail(
                    where,
                    f"flip map is not an involution: joint {joints[v]!r} appears in more than one flip pair",
                )
        perm[a], perm[b] = b, a
    return perm


def _flip_map(flip, flip_pairs, index: dict[str, int], joints: tuple, where: str) -> list[int]:
    """The flip permutation from `flip` or `flip_pairs` (one of them); it must be an involution."""
    if flip is not None and flip_pairs is not None:
        _fail(where, "give either 'flip' or 'flip_pairs', not both")
    if flip is not None:
        if len(flip) != len(joints):
            _fail(where, f"field 'flip': {len(flip)} entries for {len(joints)} joints")
        perm = [_joint_ref(f, index, where, f"field 'flip' entry {i}") for i, f in enumerate(flip)]
    else:
        perm = _flip_from_pairs(flip_pairs, index, joints, where)
    for v, f in enumerate(perm):
        if perm[f] != v:
            _fail(
                where,
                f"flip map is not an involution: {joints[v]!r} -> {joints[f]!r} -> {joints[perm[f]]!r}",
            )
    return perm


def make_convention(
    name: str,
    joints: Sequence[str],
    bones: Iterable[Sequence[Any]],
    centre: Any,
    flip_pairs: Iterable[Sequence[Any]] | None = None,
    flip: Sequence[Any] | None = None,
    unit: str = "m",
    description: str = "",
    source: str = "",
    derived_from: str | None = None,
    where: str | None = None,
) -> Convention:
    """Build and validate a convention. Joints in bones/centre/flip may be names or indices.

    The flip map is given either as `flip_pairs` (left/right twins; others map to themselves)
    or as a full permutation `flip` (one entry per joint). `where` names the source in errors.
    """
    where = where or f"convention {name!r}"
    if not isinstance(name, str) or not name:
        _fail(where, "field 'name' must be a non-empty string")
    joints = tuple(joints)
    if not joints:
        _fail(where, "field 'joints' is empty")
    index = _joint_index(joints, where)
    if unit not in UNITS:
        _fail(where, f"field 'unit': {unit!r} is not one of {UNITS}")
    bone_list = _bone_list(bones, index, joints, where)
    c = _joint_ref(centre, index, where, "field 'centre'")
    _check_connected(joints, bone_list, c, where)
    perm = _flip_map(flip, flip_pairs, index, joints, where)
    return Convention(
        name=name,
        joints=joints,
        bones=tuple(bone_list),
        centre=c,
        flip=tuple(perm),
        unit=unit,
        description=description,
        source=source,
        derived_from=derived_from,
        _index=index,
    )


_FIELDS = {"name", "joints", "bones", "centre", "flip_pairs", "flip", "unit", "description"}
_FIELDS |= {"source", "derived_from"}


def from_dict(spec: dict[str, Any], where: str = "convention") -> Convention:
    """Build a convention from the file format (the keys of `make_convention`)."""
    if not isinstance(spec, dict):
        raise ConventionError(f"{where}: expected a mapping, got {type(spec).__name__}")
    unknown = set(spec) - _FIELDS
    if unknown:
        raise ConventionError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(_FIELDS)}")
    for key in ("name", "joints", "bones", "centre"):
        if key not in spec:
            raise ConventionError(f"{where}: missing field {key!r}")
    return make_convention(**spec, where=where)


def load_file(path: str | Path) -> Convention:
    """Read a user-defined convention from a .json or .yaml/.yml file."""
    path = Path(path)
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
    except Exception as e:  # parse errors: name the file
        raise ConventionError(f"{path}: cannot parse: {e}") from e
    return from_dict(spec, where=str(path))
