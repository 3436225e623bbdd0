"""The augmentation suite as one parameter set, and the per-sample parameter draw.

Both implementations (torch_aug.TorchAugment, dali_pipeline.DaliAugment) read the
same `AugmentParams` and apply the same per-sample parameters (`draw`), so a run
can switch backend without changing what the encoder sees.

Order of operations (AimCLR's feeder/tools.py order, per sample, on (C, T, V, M)):

    1. temporal crop:  pad T//crop_padding_ratio frames on each end by mirroring
                       (frame order reversed, edge frame repeated), take a window of
                       length L (L = T unless crop_scale says otherwise) at a random
                       start, resize it to T frames (linear; with L = T an exact copy)
    2. shear:          x <- S x, S = [[1, s_xy, s_xz], [s_yx, 1, s_yz], [s_zx, s_zy, 1]],
                       s_* ~ U(-shear_amplitude, shear_amplitude); with scale_p > 0, first
                       x <- diag(f_x, f_y, f_z) x, f_* ~ U(1 - scale_amplitude, 1 + scale_amplitude)
                       per axis (PySKL's RandomScale; not in SkeletonCLR/AimCLR: off by default)
    3. left/right flip: joints permuted by the convention's flip map (no sign change,
                       as AimCLR)
    4. rotation:       x <- Rz(c) Ry(b) Rx(a) x with AimCLR's matrices (each a rotation by
                       minus the angle in the right-handed convention); one main axis drawn
                       uniformly gets U(0, rotate_main_deg), the others U(0, rotate_other_deg)
    5. time flip:      frames reversed
    6. Gaussian noise: x <- x + N(0, noise_std^2) on every valid joint
    7. temporal blur:  correlation along T with exp(-k^2 / (2 sigma^2)), k = -K//2..K//2,
                       sigma ~ U(blur_sigma), zero padding at both ends; NOT normalised by
                       default (AimCLR's kernel sums to up to ~5 for sigma = 2); set
                       blur_normalize=True for a unit-sum kernel
    8. axis mask:      one coordinate axis, drawn uniformly, set to zero
    9. joint drop:     each valid joint zeroed over all frames with prob. joint_drop_rate
   10. frame drop:     each frame zeroed with probability frame_drop_rate

Each step is applied to a sample with its probability `*_p`; padded joints stay exactly
zero throughout. Steps 2 and 4 are linear in the coordinates and fused into one 3x3
matrix; steps 1, 3 and 5 are fused into one gather of (frame, joint) indices.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["AugmentError", "AugmentParams", "draw", "DRAWN_FIELDS"]


class AugmentError(ValueError):
    """Invalid augmentation settings or inputs (the message names the field)."""


_PROBABILITIES = (
    "crop_p",
    "shear_p",
    "scale_p",
    "flip_p",
    "rotate_p",
    "time_flip_p",
    "noise_p",
    "blur_p",
    "axis_mask_p",
    "joint_drop_p",
    "frame_drop_p",
)


@dataclass
class AugmentParams:
    """Probabilities and amplitudes of every augmentation (see the module docstring)."""

    # 1. temporal crop (+ resize back to T)
    crop_p: float = 0.0
    crop_padding_ratio: int = 6  # pad T // ratio frames on each end; 0 = no padding
    crop_scale: tuple[float, float] = (1.0, 1.0)  # window length / T, drawn uniformly
    # 2. shear
    shear_p: float = 0.0
    shear_amplitude: float = 0.5
    # 2. per-axis scaling before the shear (an option: body size and proportions vary by person)
    scale_p: float = 0.0
    scale_amplitude: float = 0.2
    # 3. left/right flip
    flip_p: float = 0.0
    # 4. rotation
    rotate_p: float = 0.0
    rotate_main_deg: float = 30.0
    rotate_other_deg: float = 1.0
    # 5. time flip
    time_flip_p: float = 0.0
    # 6. Gaussian noise
    noise_p: float = 0.0
    noise_std: float = 0.01
    # 7. temporal Gaussian blur
    blur_p: float = 0.0
    blur_kernel: int = 15
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_normalize: bool = False
    # 8. axis mask
    axis_mask_p: float = 0.0
    # 9./10. joint and frame drop
    joint_drop_p: float = 0.0
    joint_drop_rate: float = 0.1
    frame_drop_p: float = 0.0
    frame_drop_rate: float = 0.1
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        self.crop_scale = _pair(self.crop_scale, "crop_scale")
        self.blur_sigma = _pair(self.blur_sigma, "blur_sigma")
        self._check_numbers()
        self._check_crop()
        self._check_blur()

    def _check_numbers(self) -> None:
        """Probabilities in [0, 1], amplitudes finite and >= 0, angles in [0, 180], drop rates in [0, 1)."""
        for f in _PROBABILITIES:
            p = _number(getattr(self, f), f)
            if not 0.0 <= p <= 1.0:
                raise AugmentError(f"AugmentParams.{f} = {p} is not a probability in [0, 1]")
            setattr(self, f, p)
        for f in ("shear_amplitude", "noise_std"):
            v = _number(getattr(self, f), f)
            if v < 0 or not math.isfinite(v):
                raise AugmentError(f"AugmentParams.{f} = {v} must be finite and >= 0")
            setattr(self, f, v)
        for f in ("rotate_main_deg", "rotate_other_deg"):
            v = _number(getattr(self, f), f)
            if not 0.0 <= v <= 180.0:
                raise AugmentError(f"AugmentParams.{f} = {v} must lie in [0, 180] degrees")
            setattr(self, f, v)
        for f in ("joint_drop_rate", "frame_drop_rate", "scale_amplitude"):
            v = _number(getattr(self, f), f)
            if not 0.0 <= v < 1.0:
                raise AugmentError(f"AugmentParams.{f} = {v} must lie in [0, 1)")
            setattr(self, f, v)

    @property
    def geometric(self) -> bool:
        """Whether the 3x3 coordinate transform (scale, shear, rotation) is applied at all."""
        return self.shear_p > 0 or self.rotate_p > 0 or self.scale_p > 0

    def _check_crop(self) -> None:
        """The padding ratio, and a window scale the padded sequence can hold."""
        r = self.crop_padding_ratio
        if isinstance(r, bool) or not isinstance(r, numbers.Integral) or r < 0:
            raise AugmentError(f"AugmentParams.crop_padding_ratio = {r!r} must be an integer >= 0 (0: no padding)")
        self.crop_padding_ratio = int(r)
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi:
            raise AugmentError(f"AugmentParams.crop_scale = {self.crop_scale} must satisfy 0 < min <= max")
        if self.crop_padding_ratio == 0 and hi > 1.0:
            raise AugmentError(
                f"AugmentParams.crop_scale = {self.crop_scale}: a window longer than T needs padding "
                "(crop_padding_ratio > 0)"
            )
        if self.crop_padding_ratio > 0 and hi > 1.0 + 2.0 / self.crop_padding_ratio:
            raise AugmentError(
                f"AugmentParams.crop_scale = {self.crop_scale}: max {hi} exceeds the padded length "
                f"(1 + 2/crop_padding_ratio = {1 + 2 / self.crop_padding_ratio:g})"
            )

    def _check_blur(self) -> None:
        """An odd kernel, a sigma range, and a boolean normalisation switch."""
        k = self.blur_kernel
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 or k % 2 == 0:
            raise AugmentError(f"AugmentParams.blur_kernel = {k!r} must be an odd integer >= 1")
        self.blur_kernel = int(k)
        lo, hi = self.blur_sigma
        if not 0.0 < lo <= hi:
            raise AugmentError(f"AugmentParams.blur_sigma = {self.blur_sigma} must satisfy 0 < min <= max")
        if not isinstance(self.blur_normalize, bool):
            raise AugmentError(f"AugmentParams.blur_normalize = {self.blur_normalize!r} must be true or false")

    # ---- presets ---------------------------------------------------------------------------

    @classmethod
    def none(cls) -> AugmentParams:
        """No augmentation at all (identity)."""
        return cls(name="none")

    @classmethod
    def normal(cls) -> AugmentParams:
        """SkeletonCLR/AimCLR "normal" view: temporal crop (T//6 mirrored padding) + shear 0.5."""
        return cls(crop_p=1.0, crop_padding_ratio=6, shear_p=1.0, shear_amplitude=0.5, name="normal")

    @classmethod
    def normal_scale(cls) -> AugmentParams:
        """The normal view plus PySKL's RandomScale (every axis x U(0.8, 1.2)): body size and
        proportions, a person's constant cue, differ between the two views of a sample."""
        return dataclasses.replace(cls.normal(), scale_p=1.0, scale_amplitude=0.2, name="normal_scale")

    @classmethod
    def aimclr(cls) -> AugmentParams:
        """AimCLR's `_strong_aug` exactly: normal + flip, rotation, time flip, noise, blur, axis mask.

        Probabilities from AimCLR's feeder/tools.py: rotation always, the others 0.5.
        """
        return dataclasses.replace(
            cls.normal(),
            flip_p=0.5,
            rotate_p=1.0,
            rotate_main_deg=30.0,
            rotate_other_deg=1.0,
            time_flip_p=0.5,
            noise_p=0.5,
            noise_std=0.01,
            blur_p=0.5,
            blur_kernel=15,
            blur_sigma=(0.1, 2.0),
            axis_mask_p=0.5,
            name="aimclr",
        )

    @classmethod
    def extreme(cls) -> AugmentParams:
        """The "extreme" view: AimCLR's strong augmentation plus random joint and frame drop.

        AimCLR has no joint/frame drop; they are applied with probability 0.5 (as AimCLR's
        other optional steps) and drop 10% of the joints / frames of a selected sample.
        """
        return dataclasses.replace(
            cls.aimclr(),
            joint_drop_p=0.5,
            joint_drop_rate=0.1,
            frame_drop_p=0.5,
            frame_drop_rate=0.1,
            name="extreme",
        )

    @classmethod
    def preset(cls, name: str) -> AugmentParams:
        presets = {
            "none": cls.none,
            "normal": cls.normal,
            "normal_scale": cls.normal_scale,
            "aimclr": cls.aimclr,
            "extreme": cls.extreme,
        }
        if name not in presets:
            raise AugmentError(f"unknown augmentation preset {name!r}; available: {sorted(presets)}")
        return presets[name]()

    # ---- (de)serialisation -----------------------------------------------------------------

    @classmethod
    def from_dict(cls, spec: dict[str, Any] | None, where: str = "augmentation settings") -> AugmentParams:
        """Build from a mapping; an optional key `preset` starts from a preset, other keys override it."""
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise AugmentError(f"{where}: expected a mapping, got {type(spec).__name__}")
        spec = dict(spec)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - known - {"preset"})
        if unknown:
            raise AugmentError(f"{where}: unknown field(s) {unknown}; known: {sorted(known | {'preset'})}")
        base = cls.preset(spec.pop("preset")) if "preset" in spec else cls()
        values = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls)}
        values.update(spec)
        if "preset" not in spec and "name" not in spec and spec:
            values["name"] = "custom" if base.name in ("custom", "none") else f"{base.name}+custom"
        try:
            return cls(**values)
        except AugmentError as e:
            raise AugmentError(f"{where}: {e}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> AugmentParams:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise AugmentError(f"augmentation config {path} does not exist")
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise AugmentError(f"{path}: cannot parse: {e}") from e
        return cls.from_dict(spec, where=str(path))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        d["blur_sigma"] = list(self.blur_sigma)
        return d

    # ---- derived facts used by both implementations ----------------------------------------

    @property
    def interpolates(self) -> bool:
        """Whether the crop window can differ from T frames (then resizing interpolates)."""
        return self.crop_p > 0 and self.crop_scale != (1.0, 1.0)

    def crop_padding(self, frames: int) -> int:
        return frames // self.crop_padding_ratio if self.crop_padding_ratio > 0 else 0

    def crop_length_range(self, frames: int) -> tuple[int, int]:
        """(min, max) crop window length for sequences of `frames` frames."""
        lo = max(1, round(self.crop_scale[0] * frames))
        hi = max(lo, round(self.crop_scale[1] * frames))
        longest = frames + 2 * self.crop_padding(frames)
        if hi > longest:
            raise AugmentError(
                f"crop_scale max {self.crop_scale[1]} gives a {hi}-frame window, longer than the "
                f"{longest} padded frames of a {frames}-frame sequence"
            )
        return lo, hi


def _number(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise AugmentError(f"AugmentParams.{name} = {v!r} is not a number")
    v = float(v)
    if math.isnan(v):
        raise AugmentError(f"AugmentParams.{name} is NaN")
    return v


def _pair(v: Any, name: str) -> tuple[float, float]:
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) != 2:
        raise AugmentError(f"AugmentParams.{name} = {v!r} must be a pair [min, max]")
    return (_number(v[0], name), _number(v[1], name))


# ---- the per-sample draw -------------------------------------------------------------------

DRAWN_FIELDS = {
    "crop_start": "(N,) int64: first frame of the window in the mirror-padded sequence",
    "crop_length": "(N,) int64: window length (resized to T)",
    "shear": "(N, 3, 2) float32: [[s_xy, s_xz], [s_yx, s_yz], [s_zx, s_zy]] (zeros: no shear)",
    "scale": "(N, 3) float32: per-axis factors (ones: no scaling); drawn only when scale_p > 0",
    "flip": "(N,) bool: left/right joint flip",
    "rotate": "(N, 3) float32: angles in degrees about x, y, z, AimCLR's sign (zeros: no rotation)",
    "time_flip": "(N,) bool: frames reversed",
    "noise_std": "(N,) float32: standard deviation of the added noise (0: none)",
    "blur": "(N,) bool: temporal blur applied",
    "blur_sigma": "(N,) float32: blur sigma (in frames)",
    "axis_mask": "(N,) int64: the coordinate axis set to zero, -1 for none",
    "joint_keep": "(N, V_max) bool: False for dropped joints (padding is handled by the layout)",
    "frame_keep": "(N, T) bool: False for dropped frames",
    "noise": "optional (N, 3, T, V_max, M) float32 unit normal field (noise = noise_std * noise)",
}


def _coin(p: float, n: int, g, device) -> torch.Tensor:
    # Always consumes n uniforms (rand < 1 always holds, rand < 0 never), so the stream
    # does not depend on the probabilities.
    return torch.rand(n, generator=g, device=device) < p


def _uniform(lo: float, hi: float, shape, g, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g, device=device)


def _randint(lo: torch.Tensor, hi: torch.Tensor, g, device) -> torch.Tensor:
    """Integers uniform in [lo, hi] (inclusive, per element)."""
    u = torch.rand(lo.shape, generator=g, device=device, dtype=torch.float64)
    span = (hi - lo + 1).to(torch.float64)
    return lo + torch.minimum((u * span).long(), hi - lo)


def draw(
    params: AugmentParams,
    n: int,
    *,
    frames: int,
    joints: int,
    persons: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Draw independent augmentation parameters for `n` samples (see DRAWN_FIELDS).

    Every field is drawn (one tensor each, no per-sample loop) whether or not it is used,
    so the random stream and therefore the result for a seed do not depend on which
    probabilities are zero. With `persons` set, a fixed unit-normal noise field of shape
    (n, 3, frames, joints, persons) is drawn too, which makes `apply` fully deterministic.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise AugmentError(f"draw: number of samples n = {n!r} must be an integer >= 0")
    if frames < 1 or joints < 1:
        raise AugmentError(f"draw: frames = {frames} and joints = {joints} must be >= 1")
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    device = torch.device(device)
    if generator is not None and generator.device.type != device.type:
        raise AugmentError(f"draw: the generator lives on {generator.device}, the parameters are drawn on {device}")
    g, p = generator, params
    f32 = torch.float32
    out: dict[str, torch.Tensor] = {}

    # 1. crop: window length then start, uniform over the valid starts.
    pad = p.crop_padding(frames)
    lo, hi = p.crop_length_range(frames)
    crop = _coin(p.crop_p, n, g, device)
    length = _randint(torch.full((n,), lo, device=device), torch.full((n,), hi, device=device), g, device)
    start = _randint(torch.zeros(n, dtype=torch.long, device=device), frames + 2 * pad - length, g, device)
    out["crop_length"] = torch.where(crop, length, torch.full_like(length, frames))
    out["crop_start"] = torch.where(crop, start, torch.full_like(start, pad))
    # 2. shear
    shear = _uniform(-p.shear_amplitude, p.shear_amplitude, (n, 3, 2), g, device)
    out["shear"] = shear * _coin(p.shear_p, n, g, device)[:, None, None]
    # 3. flip
    out["flip"] = _coin(p.flip_p, n, g, device)
    # 4. rotation: main axis uniform over x, y, z
    rot = _coin(p.rotate_p, n, g, device)
    main = torch.randint(0, 3, (n,), generator=g, device=device)
    u = torch.rand((n, 3), generator=g, device=device)
    is_main = torch.nn.functional.one_hot(main, 3).bool()
    angles = u * torch.where(is_main, p.rotate_main_deg, p.rotate_other_deg)
    out["rotate"] = (angles * rot[:, None]).to(f32)
    # 5. time flip
    out["time_flip"] = _coin(p.time_flip_p, n, g, device)
    # 6. noise
    out["noise_std"] = _coin(p.noise_p, n, g, device).to(f32) * p.noise_std
    # 7. blur
    out["blur"] = _coin(p.blur_p, n, g, device)
    out["blur_sigma"] = _uniform(p.blur_sigma[0], p.blur_sigma[1], (n,), g, device).to(f32)
    # 8. axis mask
    masked = _coin(p.axis_mask_p, n, g, device)
    axis = torch.randint(0, 3, (n,), generator=g, device=device)
    out["axis_mask"] = torch.where(masked, axis, torch.full_like(axis, -1))
    # 9./10. joint and frame drop
    jd = _coin(p.joint_drop_p, n, g, device)
    out["joint_keep"] = ~(jd[:, None] & (torch.rand((n, joints), generator=g, device=device) < p.joint_drop_rate))
    fd = _coin(p.frame_drop_p, n, g, device)
    out["frame_keep"] = ~(fd[:, None] & (torch.rand((n, frames), generator=g, device=device) < p.frame_drop_rate))
    if persons is not None:
        out["noise"] = torch.randn((n, 3, frames, joints, persons), generator=g, device=device)
    if p.scale_p > 0:  # drawn last and only when used: runs without it keep their random stream
        factors = 1.0 + _uniform(-p.scale_amplitude, p.scale_amplitude, (n, 3), g, device)
        out["scale"] = torch.where(_coin(p.scale_p, n, g, device)[:, None], factors, torch.ones_like(factors)).to(f32)
    return out
