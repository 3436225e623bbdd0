"""The layout table: the conventions of one run stacked into padded tensors.

Layout id l indexes every per-convention tensor; a batch carries one layout id per
sample, so conventions can be mixed sample by sample. Joints >= V_l are padding:
their adjacency rows/columns are zero, their mask is False, they flip onto
themselves and are their own bone parent (so bone vectors there are zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .convention import Convention
from .graph import convention_adjacency


class LayoutTable:
    def __init__(
        self,
        conventions: Sequence[Convention],
        strategy: str = "spatial",
        max_hop: int = 1,
        dilation: int = 1,
        v_max: int | None = None,
    ):
        if not conventions:
            raise ValueError("LayoutTable needs at least one convention")
        names = [c.name for c in conventions]
        if len(set(names)) != len(names):
            raise ValueError(f"LayoutTable: duplicate convention names in {names}")
        self.conventions = tuple(conventions)
        self.names = tuple(names)
        self.strategy = strategy
        largest = max(c.num_joints for c in conventions)
        self.v_max = largest if v_max is None else int(v_max)
        if self.v_max < largest:
            raise ValueError(f"v_max={self.v_max} is smaller than the largest convention ({largest})")

        mats = [convention_adjacency(c, strategy, max_hop, dilation) for c in conventions]
        k = mats[0].shape[0]
        L, V = len(conventions), self.v_max
        A = np.zeros((L, k, V, V), np.float32)
        mask = np.zeros((L, V), bool)
        flip = np.tile(np.arange(V), (L, 1))
        parent = np.tile(np.arange(V), (L, 1))
        for l, (c, a) in enumerate(zip(conventions, mats)):
            v = c.num_joints
            A[l, :, :v, :v] = a
            mask[l, :v] = True
            flip[l, :v] = c.flip
            parent[l, :v] = c.parents
        self.A = torch.from_numpy(A)  # (L, K, V_max, V_max) float32
        self.joint_mask = torch.from_numpy(mask)  # (L, V_max) bool
        self.num_joints = torch.tensor([c.num_joints for c in conventions], dtype=torch.int64)
        self.flip = torch.from_numpy(flip).long()  # (L, V_max)
        self.parent = torch.from_numpy(parent).long()  # (L, V_max)

    def __len__(self) -> int:
        return len(self.conventions)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}:{c.num_joints}" for n, c in zip(self.names, self.conventions))
        return f"LayoutTable([{sizes}], V_max={self.v_max}, K={self.A.shape[1]}, strategy={self.strategy!r})"

    @property
    def num_partitions(self) -> int:
        return self.A.shape[1]

    def layout_id(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"convention {name!r} is not in this layout table {self.names}") from None

    def pad(self, x: torch.Tensor | np.ndarray, name: str):
        """Pad a (C, T, V_l, M) sample of convention `name` to (C, T, V_max, M) with zeros."""
        v = self.conventions[self.layout_id(name)].num_joints
        return pad_joints(x, self.v_max, expected=v)

    def unpad(self, x: torch.Tensor | np.ndarray, name: str):
        """Inverse of `pad`: keep the convention's own joints."""
        return unpad_joints(x, self.conventions[self.layout_id(name)].num_joints)

    def bones(self, x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        """Bone stream of a padded batch x (N, C, T, V_max, M): x[v] - x[parent[v]] per layout."""
        par = self.parent.to(x.device)[layout]  # (N, V)
        idx = par[:, None, None, :, None].expand_as(x)
        return x - torch.gather(x, 3, idx)


def pad_joints(x, v_max: int, expected: int | None = None):
    """Zero-pad axis 2 (joints) of a (C, T, V, M) array or tensor to v_max."""
    if x.ndim != 4:
        raise ValueError(f"expected a (C, T, V, M) sample, got shape {tuple(x.shape)}")
    v = x.shape[2]
    if expected is not None and v != expected:
        raise ValueError(f"sample has {v} joints, its convention has {expected}")
    if v > v_max:
        raise ValueError(f"sample has {v} joints, more than V_max={v_max}")
    if isinstance(x, np.ndarray):
        out = np.zeros(x.shape[:2] + (v_max,) + x.shape[3:], x.dtype)
    else:
        out = x.new_zeros(x.shape[:2] + (v_max,) + x.shape[3:])
    out[:, :, :v] = x
    return out


def unpad_joints(x, v: int):
    if x.ndim != 4:
        raise ValueError(f"expected a (C, T, V, M) sample, got shape {tuple(x.shape)}")
    return x[:, :, :v]
