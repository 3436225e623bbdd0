"""From drawn per-sample parameters to what the kernels consume, shared by both backends.

Everything here is small (per-sample matrices, index vectors, kernels) and batched: no
per-sample Python loop. The torch backend uses all of it; the DALI backend uses the
gather indices and masks, and builds the 3x3 geometry and the blur kernel with its own
operators (fn.transforms.*, dali.math) from the same drawn scalars, which the tests
compare against `geometry_matrix` and `blur_kernel` here.
"""

from __future__ import annotations

import math

import torch

from ..skeletons import LayoutTable
from .params import AugmentError, AugmentParams, draw

# Fields `apply` needs, with their per-sample shapes given (N, T, V, M).
_REQUIRED = {
    "crop_start": lambda n, t, v, m: (n,),
    "crop_length": lambda n, t, v, m: (n,),
    "shear": lambda n, t, v, m: (n, 3, 2),
    "flip": lambda n, t, v, m: (n,),
    "rotate": lambda n, t, v, m: (n, 3),
    "time_flip": lambda n, t, v, m: (n,),
    "noise_std": lambda n, t, v, m: (n,),
    "blur": lambda n, t, v, m: (n,),
    "blur_sigma": lambda n, t, v, m: (n,),
    "axis_mask": lambda n, t, v, m: (n,),
    "joint_keep": lambda n, t, v, m: (n, v),
    "frame_keep": lambda n, t, v, m: (n, t),
}
_OPTIONAL = {"noise": lambda n, t, v, m: (n, 3, t, v, m), "scale": lambda n, t, v, m: (n, 3)}


def check_input(x: torch.Tensor, layout: torch.Tensor, table: LayoutTable) -> None:
    if not isinstance(x, torch.Tensor):
        raise AugmentError(f"augment: x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 5:
        raise AugmentError(f"augment: x must be a padded batch (N, C=3, T, V_max, M), got shape {tuple(x.shape)}")
    n, c, t, v, _ = x.shape
    if c != 3:
        raise AugmentError(f"augment: x has C = {c} channels; the augmentations need 3 (x, y, z)")
    if v != table.v_max:
        raise AugmentError(f"augment: x has V = {v} joints but the layout table pads to V_max = {table.v_max}")
    if t < 1:
        raise AugmentError("augment: x has no frames (T = 0)")
    if not x.is_floating_point():
        raise AugmentError(f"augment: x must be floating point, got {x.dtype}")
    if not isinstance(layout, torch.Tensor) or layout.shape != (n,):
        shape = tuple(layout.shape) if isinstance(layout, torch.Tensor) else type(layout).__name__
        raise AugmentError(f"augment: layout must be an (N,) = ({n},) tensor of layout ids, got {shape}")
    if layout.dtype not in (torch.int64, torch.int32):
        raise AugmentError(f"augment: layout must be int64, got {layout.dtype}")
    out_of_range = (layout < 0) | (layout >= len(table))
    if n and bool(out_of_range.any()):  # one host sync per batch
        bad = int(out_of_range.nonzero()[0, 0])
        raise AugmentError(
            f"augment: layout[{bad}] = {int(layout[bad])} is not a layout id of this table (0..{len(table) - 1})"
        )


def check_drawn(drawn: dict, params: AugmentParams, n: int, t: int, v: int, m: int) -> None:
    """Every field these params use, each of this batch's shape. "scale" is drawn only when
    scale_p > 0, so parameters drawn with other settings lack it."""
    if not isinstance(drawn, dict):
        raise AugmentError(f"augment.apply: drawn parameters must be a dict, got {type(drawn).__name__}")
    missing = sorted((set(_REQUIRED) | ({"scale"} if params.scale_p > 0 else set())) - set(drawn))
    if missing:
        raise AugmentError(f"augment.apply: drawn parameters lack field(s) {missing}")
    unknown = sorted(set(drawn) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise AugmentError(f"augment.apply: unknown drawn field(s) {unknown}")
    for key, shape_of in {**_REQUIRED, **_OPTIONAL}.items():
        if key not in drawn:
            continue
        val = drawn[key]
        want = shape_of(n, t, v, m)
        if not isinstance(val, torch.Tensor) or tuple(val.shape) != want:
            got = tuple(val.shape) if isinstance(val, torch.Tensor) else type(val).__name__
            raise AugmentError(f"augment.apply: drawn[{key!r}] must have shape {want} for this batch, got {got}")


def check_crop(drawn: dict, params: AugmentParams, frames: int) -> None:
    """Every crop window must lie inside the mirror-padded sequence (a host sync: `apply` only)."""
    padded = frames + 2 * params.crop_padding(frames)
    start, length = drawn["crop_start"].long(), drawn["crop_length"].long()
    bad = (start < 0) | (length < 1) | (start + length > padded)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise AugmentError(
            f"augment.apply: sample {i}: crop window (crop_start={int(start[i])}, crop_length={int(length[i])}) "
            f"leaves the {padded} mirror-padded frames"
        )


def source_frames(drawn: dict, params: AugmentParams, frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per output frame: the two source frames and the weight of the second, (N, T) each.

    Combines the mirror-padded crop window, its linear resize to T frames and the time flip.
    out[t] = x[i0[t]] + w[t] * (x[i1[t]] - x[i0[t]]).
    """
    pad = params.crop_padding(frames)
    padded = frames + 2 * pad
    start = drawn["crop_start"].long()
    length = drawn["crop_length"].long()
    device = start.device
    t = torch.arange(frames, device=device, dtype=torch.float64)
    step = (length - 1).to(torch.float64) / (frames - 1) if frames > 1 else torch.zeros_like(start, dtype=torch.float64)
    q = start[:, None].to(torch.float64) + t[None, :] * step[:, None]
    i0 = q.floor().long()
    w = q - i0  # float64; each backend casts to its working precision
    i1 = torch.clamp(i0 + 1, max=padded - 1)
    flip = drawn["time_flip"].bool()[:, None]
    i0, i1, w = (torch.where(flip, a.flip(1), a) for a in (i0, i1, w))

    def unpad(p: torch.Tensor) -> torch.Tensor:  # position in the padded sequence -> frame
        return torch.where(p < pad, pad - 1 - p, torch.where(p >= pad + frames, 2 * frames + pad - 1 - p, p - pad))

    return unpad(i0), unpad(i1), w


def joint_sources(drawn: dict, layout: torch.Tensor, flip_table: torch.Tensor) -> torch.Tensor:
    """(N, V_max) source joint of every output joint: the layout's flip map (table.flip) where flipped."""
    flip_map = flip_table.to(layout.device)[layout]
    ident = torch.arange(flip_table.shape[1], device=layout.device).expand_as(flip_map)
    return torch.where(drawn["flip"].bool().to(layout.device)[:, None], flip_map, ident)


def gather_index(i_t: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """(N, T*V) flat (frame, joint) source index: i_t (N, T) frames, j (N, V) joints."""
    v = j.shape[1]
    return (i_t[:, :, None] * v + j[:, None, :]).reshape(i_t.shape[0], -1)


def shear_matrix(shear: torch.Tensor) -> torch.Tensor:
    """(N, 3, 2) factors -> (N, 3, 3) [[1, s_xy, s_xz], [s_yx, 1, s_yz], [s_zx, s_zy, 1]] (float64)."""
    s = shear.to(torch.float64)
    n = s.shape[0]
    m = torch.eye(3, dtype=torch.float64, device=s.device).repeat(n, 1, 1)
    m[:, 0, 1], m[:, 0, 2] = s[:, 0, 0], s[:, 0, 1]
    m[:, 1, 0], m[:, 1, 2] = s[:, 1, 0], s[:, 1, 1]
    m[:, 2, 0], m[:, 2, 1] = s[:, 2, 0], s[:, 2, 1]
    return m


def rotation_matrices(angles_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AimCLR's Rx, Ry, Rz (N, 3, 3) float64 for angles (N, 3) in degrees.

    Rx = [[1,0,0],[0,c,s],[0,-s,c]], Ry = [[c,0,-s],[0,1,0],[s,0,c]], Rz = [[c,s,0],[-s,c,0],[0,0,1]]:
    each is the right-handed rotation by minus the angle.
    """
    a = angles_deg.to(torch.float64) * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    n = a.shape[0]
    one = torch.ones(n, dtype=torch.float64, device=a.device)
    zero = torch.zeros_like(one)

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    cx, sx, cy, sy, cz, sz = c[:, 0], s[:, 0], c[:, 1], s[:, 1], c[:, 2], s[:, 2]
    rx = mat([[one, zero, zero], [zero, cx, sx], [zero, -sx, cx]])
    ry = mat([[cy, zero, -sy], [zero, one, zero], [sy, zero, cy]])
    rz = mat([[cz, sz, zero], [-sz, cz, zero], [zero, zero, one]])
    return rx, ry, rz


def geometry_matrix(drawn: dict, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, 3, 3): rotation after shear, Rz Ry Rx S (AimCLR's order), built in float64; with the
    optional per-axis scale first: Rz Ry Rx S diag(f)."""
    rx, ry, rz = rotation_matrices(drawn["rotate"])
    m = rz @ ry @ rx @ shear_matrix(drawn["shear"])
    if "scale" in drawn:
        m = m * drawn["scale"].to(torch.float64)[:, None, :]  # M diag(f): column j times f_j
    return m.to(dtype)


def blur_kernel(drawn: dict, params: AugmentParams, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, K) temporal kernel per sample: the Gaussian where blurred, a unit impulse elsewhere.

    Computed as exp(-(k*k) / (sigma*sigma*2)), the expression the DALI pipeline evaluates
    (in float32 there), so both agree to the last bit or two.
    """
    k_size = params.blur_kernel
    sigma = drawn["blur_sigma"].to(dtype)
    k = torch.arange(-(k_size // 2), k_size // 2 + 1, dtype=dtype, device=sigma.device)
    g = torch.exp(-(k * k)[None, :] / (sigma * sigma * 2.0)[:, None])
    if params.blur_normalize:
        g = g / g.sum(1, keepdim=True)
    delta = (k == 0).to(dtype)[None, :]
    on = drawn["blur"].to(dtype)[:, None]
    return on * g + (1.0 - on) * delta


def blur_matrix(kernel: torch.Tensor, frames: int) -> torch.Tensor:
    """(N, T, T) banded matrix B with (B y)[s] = sum_j kernel[j] y[s + j - K//2] (zero outside)."""
    k_size = kernel.shape[1]
    r = k_size // 2
    t = torch.arange(frames, device=kernel.device)
    d = t[None, :] - t[:, None] + r  # column - row + r
    inside = (d >= 0) & (d < k_size)
    return kernel[:, d.clamp(0, k_size - 1)] * inside


def needs_masks(params: AugmentParams) -> bool:
    """Whether the final multiply by the keep masks can change anything.

    Without noise, masks or drops every step maps zeros to zeros and padding to padding
    (the flip maps are the identity there), so padded joints of a valid batch stay zero.
    """
    return max(params.noise_p, params.axis_mask_p, params.joint_drop_p, params.frame_drop_p) > 0


def keep_masks(
    drawn: dict, layout: torch.Tensor, joint_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float 0/1 masks: frames (N, T), joints (N, V) incl. the layout's padding (table.joint_mask), axes (N, 3)."""
    frame = drawn["frame_keep"].to(torch.float32)
    joint = (drawn["joint_keep"].bool() & joint_mask.to(layout.device)[layout]).to(torch.float32)
    axis_mask = drawn["axis_mask"].long()
    axes = torch.arange(3, device=axis_mask.device)
    axis = (axes[None, :] != axis_mask[:, None]).to(torch.float32)
    return frame, joint, axis


class AugmenterBase:
    """What the torch and DALI implementations share: their parameter set, layout table and `draw`."""

    params: AugmentParams
    table: LayoutTable

    def draw(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        frames: int,
        persons: int | None = None,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-sample parameters (msclr.augment.params.DRAWN_FIELDS); `persons` adds a fixed noise field."""
        return draw(
            self.params, n, frames=frames, joints=self.table.v_max, persons=persons, generator=generator, device=device
        )
