"""Batched torch implementation of the augmentation suite (any device, no per-sample loop).

Per batch: one gather of (frame, joint) indices (crop + resize + flip + time flip), one
batched 3x3 matmul (shear + rotation), one fused noise add, one batched banded matmul
(temporal blur), one multiply by the keep masks. Steps whose probability is zero are
skipped statically (decided from the parameters, never from the data).
"""

from __future__ import annotations

import torch

from ..skeletons import LayoutTable
from . import plan
from .params import AugmentError, AugmentParams


class TorchAugment(plan.AugmenterBase):
    """`aug(x, layout, generator)` -> augmented copy of the padded batch x (N, 3, T, V_max, M)."""

    name = "torch"

    def __init__(self, params: AugmentParams, table: LayoutTable, device: torch.device | str | None = None):
        if not isinstance(params, AugmentParams):
            raise AugmentError(f"make_augment: params must be AugmentParams, got {type(params).__name__}")
        self.params = params
        self.table = table
        self.device = torch.device(device) if device is not None else None
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __repr__(self) -> str:
        return f"TorchAugment({self.params.name}, device={self.device})"

    def __call__(self, x: torch.Tensor, layout: torch.Tensor, generator: torch.Generator | None = None):
        plan.check_input(x, layout, self.table)
        n, _, t, _, _ = x.shape
        gen_device = generator.device if generator is not None else x.device
        drawn = self.draw(n, generator, frames=t, device=gen_device)
        drawn = {k: v.to(x.device, non_blocking=True) for k, v in drawn.items()}
        noise = None
        if self.params.noise_p > 0:
            noise = torch.randn(x.shape, generator=generator, device=gen_device, dtype=torch.float32)
            noise = noise.to(x.device, non_blocking=True)
        return self._apply(x, layout, drawn, noise)

    def apply(self, x: torch.Tensor, layout: torch.Tensor, drawn: dict, generator: torch.Generator | None = None):
        """Apply fixed parameters; without drawn["noise"] a fresh unit noise field is drawn from `generator`."""
        plan.check_input(x, layout, self.table)
        n, _, t, v, m = x.shape
        plan.check_drawn(drawn, self.params, n, t, v, m)
        plan.check_crop(drawn, self.params, t)
        drawn = {k: val.to(x.device) for k, val in drawn.items()}
        noise = drawn.get("noise")
        if noise is None and self.params.noise_p > 0:
            gen_device = generator.device if generator is not None else x.device
            noise = torch.randn(x.shape, generator=generator, device=gen_device, dtype=torch.float32).to(x.device)
        return self._apply(x, layout, drawn, noise)

    def _table_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The layout table's flip maps and joint masks on `device` (copied once per device)."""
        if device not in self._tables:
            self._tables[device] = (self.table.flip.to(device), self.table.joint_mask.to(device))
        return self._tables[device]

    def _apply(self, x, layout, drawn, noise):
        p = self.params
        n, c, t, v, m = x.shape
        out_dtype = x.dtype
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        y = x.to(work)
        layout = layout.to(x.device).long()
        flip_table, joint_mask = self._table_on(x.device)

        # 1 + 3 + 5: crop/resize, joint flip and time flip as one gather over (frame, joint).
        if p.crop_p > 0 or p.flip_p > 0 or p.time_flip_p > 0:
            i0, i1, w = plan.source_frames(drawn, p, t)
            joints = plan.joint_sources(drawn, layout, flip_table)
            y = y.contiguous()
            y0 = _take_rows(y, plan.gather_index(i0, joints))
            if p.interpolates:
                y1 = _take_rows(y, plan.gather_index(i1, joints))
                wv = w.to(work).repeat_interleave(v, dim=1).reshape(n, 1, t, v, 1)
                y0 = y0 + wv * (y1 - y0)
            y = y0

        # 2 + 4: shear then rotation, one 3x3 matrix per sample.
        if p.geometric:
            geo = plan.geometry_matrix(drawn, work)
            y = torch.bmm(geo, y.reshape(n, c, t * v * m)).reshape(n, c, t, v, m)

        # 6: noise (the masks below zero it again on padded joints).
        if noise is not None and p.noise_p > 0:
            y = torch.addcmul(y, drawn["noise_std"].to(work)[:, None, None, None, None], noise.to(work))

        # 7: temporal blur as a banded (T, T) matrix per sample.
        if p.blur_p > 0:
            band = plan.blur_matrix(plan.blur_kernel(drawn, p, work), t)
            y = torch.matmul(band[:, None], y.reshape(n, c, t, v * m)).reshape(n, c, t, v, m)

        # 8-10 and the layout's padding: one multiply by the keep masks.
        if plan.needs_masks(p):
            frame, joint, axis = plan.keep_masks(drawn, layout, joint_mask)
            keep = frame[:, None, :, None] * joint[:, None, None, :] * axis[:, :, None, None]
            y = y * keep.to(work)[..., None]
        return y.to(out_dtype)


_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _take_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """out[n, c, i] = x[n, c, index[n, i]] over the flattened (T*V) axis of a contiguous (N, C, T, V, M) x.

    A (frame, joint) row of M values moves as one integer word when it fills 1/2/4/8 bytes
    (M=2 float32 is one int64): half the elements of a gather over M, and bit-exact.
    """
    n, c, t, v, m = x.shape
    word = _INT_OF_SIZE.get(m * x.element_size())
    if word is not None:
        words = x.view(-1).view(torch.uint8).view(word).view(n, c, t * v)
        out = torch.gather(words, 2, index[:, None, :].expand(n, c, t * v))
        return out.view(-1).view(torch.uint8).view(x.dtype).view(n, c, t, v, m)
    flat = x.view(n, c, t * v, m)
    return torch.gather(flat, 2, index[:, None, :, None].expand(n, c, t * v, m)).view(n, c, t, v, m)
