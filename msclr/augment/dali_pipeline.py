"""DALI implementation of the augmentation suite: one pipeline, GPU or CPU (device_id=None).

Per sample the pipeline works on (T, V, M, C) (channels last, what coord_transform and
filter want):

    x (C,T,V,M) --transpose--> (T,V,M,C) --reshape--> (T*V, M, C)
      --sequence_rearrange(new_order = frame*V + joint)-->   crop/resize + flip + time flip
      [second rearrange and a blend when the crop window is resized]
      --coord_transform(MT = transforms.rotation(z, y, x) o transforms.shear [o scale])-->   geometry
      + noise_std * (random.normal | fed unit noise)                             noise
      --reshape (T, V*M, C) "HWC"--> filter(kernel (K, 1), border="constant")    temporal blur
      * frame_keep (T,1,1,1) * joint_keep (1,V,1,1) * axis_keep (1,1,1,C)       masks
      --transpose--> (C,T,V,M)

What comes from outside the pipeline, as external sources: the batch, the drawn scalars
(shear factors, angles, noise std, blur on/off and sigma, masked axis, frame and joint
keep flags), and the flat gather indices with the resize weights. The indices are
computed by msclr.augment.plan (shared with the torch backend) because DALI has no
operator that builds an index vector (arange / reflect mapping) from a scalar. The 3x3
geometry matrix and the blur kernel are built inside the pipeline from the drawn
scalars (fn.transforms.shear/rotation/combine, dali.math.exp). No python_function is
used anywhere.

Random draws: the per-sample parameters come from `draw` (torch, the caller's
generator), so both backends share one definition of the distribution. The unit noise
field comes, per `noise_source`, from fn.random.normal inside the pipeline (seeded by
`seed`; the default on a GPU) or from torch.randn with the caller's generator, fed in
(the default on a CPU, where DALI's normal generator is ~10x slower than torch's; it
also makes CPU runs reproducible under the generator). `apply` with drawn["noise"]
always feeds that fixed field. DALI only adds noise_std * unit noise either way.

Outputs reach torch zero-copy through DLPack on CPU (the dynamic executor never reuses
a buffer that is still referenced) and through feed_ndarray on the GPU.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from ..skeletons import LayoutTable
from . import plan
from .params import AugmentError, AugmentParams
from .plan import needs_masks


def dali_import_error() -> str:
    """'' when nvidia.dali (and its torch plugin) imports, else the reason."""
    try:
        import nvidia.dali  # noqa: F401
        import nvidia.dali.plugin.pytorch  # noqa: F401
    except Exception as e:  # ImportError, or a CUDA library problem at import
        return f"nvidia.dali is not importable ({type(e).__name__}: {e})"
    return ""


def _build_pipeline(
    params: AugmentParams,
    *,
    batch_size: int,
    frames: int,
    joints: int,
    persons: int,
    device_id: int | None,
    num_threads: int,
    seed: int,
    fixed_noise: bool,
    prefetch: int,
):
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali import math as dmath

    p = params
    t_, v_, m_, c_ = frames, joints, persons, 3
    gpu = device_id is not None
    dev = "gpu" if gpu else "cpu"
    gather = p.crop_p > 0 or p.flip_p > 0 or p.time_flip_p > 0
    geometry = p.geometric
    noise_on = p.noise_p > 0
    blur_on = p.blur_p > 0
    masks = needs_masks(p)

    def data(name, dtype=types.FLOAT, device="cpu", big=False):
        # The batch and the noise field are read in place on CPU (the caller keeps them alive
        # until the iteration's outputs are out); everything else is small and copied.
        return fn.external_source(name=name, device=device, batch=True, dtype=dtype, no_copy=big and not gpu)

    def on_device(node):
        return node.gpu() if gpu else node

    @pipeline_def(
        batch_size=batch_size,
        num_threads=num_threads,
        device_id=device_id,
        seed=seed,
        prefetch_queue_depth=prefetch,
        exec_dynamic=True,
    )
    def pipe():
        x = data("x", device=dev, big=True)
        y = fn.transpose(x, perm=[1, 2, 3, 0])  # (T, V, M, C)

        if gather:
            flat = fn.reshape(y, shape=[t_ * v_, m_, c_], layout="FMC")
            g0 = fn.sequence_rearrange(flat, new_order=data("idx0", types.INT32))
            if p.interpolates:
                g1 = fn.sequence_rearrange(flat, new_order=data("idx1", types.INT32))
                w = on_device(data("w"))  # (T*V, 1, 1)
                g0 = g0 + w * (g1 - g0)
            y = fn.reshape(g0, shape=[t_, v_, m_, c_])

        if geometry:
            rot = -data("rotate")  # AimCLR rotates by minus the angle (right-handed convention)
            shear = data("shear")  # (3, 2) factors -> 3x4 [S | 0]
            if p.scale_p > 0:  # the per-axis scale first: S diag(f) (transforms.shear(m) shears after m)
                mt = fn.transforms.shear(fn.transforms.scale(scale=data("scale")), shear=shear)
            else:
                mt = fn.transforms.shear(shear=shear)
            mt = fn.transforms.rotation(mt, angle=rot[0], axis=[1.0, 0.0, 0.0])
            mt = fn.transforms.rotation(mt, angle=rot[1], axis=[0.0, 1.0, 0.0])
            mt = fn.transforms.rotation(mt, angle=rot[2], axis=[0.0, 0.0, 1.0])
            y = fn.coord_transform(y, MT=mt)

        if noise_on:
            if fixed_noise:
                unit = fn.transpose(data("noise", device=dev, big=True), perm=[1, 2, 3, 0])
            else:
                unit = fn.random.normal(device=dev, shape=[t_, v_, m_, c_], dtype=types.FLOAT)
            y = y + on_device(data("noise_std")) * unit

        if blur_on:
            r = p.blur_kernel // 2
            k = types.Constant(np.arange(-r, r + 1, dtype=np.float32))
            sigma = data("blur_sigma")
            on = data("blur")  # 0.0 / 1.0
            gauss = dmath.exp(-(k * k) / (sigma * sigma * 2.0))
            if p.blur_normalize:
                gauss = gauss / fn.reductions.sum(gauss)
            delta = types.Constant((np.arange(-r, r + 1) == 0).astype(np.float32))
            kernel = fn.reshape(on * gauss + (1.0 - on) * delta, shape=[p.blur_kernel, 1])
            img = fn.reshape(y, shape=[t_, v_ * m_, c_], layout="HWC")
            img = fn.filter(img, on_device(kernel), border="constant")
            y = fn.reshape(img, shape=[t_, v_, m_, c_])

        if masks:
            frame = fn.reshape(data("frame_keep"), shape=[t_, 1, 1, 1])
            joint = fn.reshape(data("joint_keep"), shape=[1, v_, 1, 1])
            axis_idx = data("axis_mask", types.INT32)
            axis = fn.cast(axis_idx != types.Constant(np.arange(3, dtype=np.int32)), dtype=types.FLOAT)
            keep = frame * joint * fn.reshape(axis, shape=[1, 1, 1, c_])
            y = y * on_device(keep)
        return fn.transpose(y, perm=[3, 0, 1, 2])

    return pipe()


class DaliAugment(plan.AugmenterBase):
    """`aug(x, layout, generator)` through a DALI pipeline; same contract as TorchAugment.

    device: "cpu" runs a CPU pipeline (device_id=None); "cuda[:i]" a GPU pipeline on GPU i.
    The result is a torch tensor on x's device with x's dtype (the pipeline computes in float32).
    """

    name = "dali"

    def __init__(
        self,
        params: AugmentParams,
        table: LayoutTable,
        device: torch.device | str | None = None,
        *,
        num_threads: int = 2,
        seed: int | None = None,
        prefetch: int = 2,
        noise_source: str = "auto",
    ):
        if not isinstance(params, AugmentParams):
            raise AugmentError(f"make_augment: params must be AugmentParams, got {type(params).__name__}")
        err = dali_import_error()
        if err:
            raise AugmentError(f"the dali augmentation backend is unavailable: {err}")
        device = torch.device(device if device is not None else "cpu")
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise AugmentError("the dali augmentation backend was asked for a GPU, but CUDA is not available")
            self.device_id = device.index if device.index is not None else torch.cuda.current_device()
            device = torch.device("cuda", self.device_id)
        elif device.type == "cpu":
            self.device_id = None
        else:
            raise AugmentError(f"the dali augmentation backend runs on cpu or cuda, not {device}")
        if prefetch < 1:
            raise AugmentError(f"DaliAugment: prefetch = {prefetch} must be >= 1")
        if noise_source not in ("auto", "dali", "torch"):
            raise AugmentError(f"DaliAugment: noise_source = {noise_source!r} must be 'auto', 'dali' or 'torch'")
        # fn.random.normal on a CPU is ~10x slower than torch.randn (and not driven by the
        # caller's generator), so CPU pipelines are fed torch's noise unless told otherwise.
        if noise_source == "auto":
            noise_source = "dali" if self.device_id is not None else "torch"
        self.noise_source = noise_source
        self.params = params
        self.table = table
        self.device = device
        self.num_threads = int(num_threads)
        self.seed = int(seed) if seed is not None else int(torch.randint(0, 2**31 - 1, (1,)).item())
        self.prefetch = int(prefetch)  # batches in flight in iterate()
        self._pipes: dict[tuple, object] = {}
        self._builds = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = "cpu (device_id=None)" if self.device_id is None else f"cuda:{self.device_id}"
        return f"DaliAugment({self.params.name}, {where})"

    # ---- the shared contract -----------------------------------------------------------------

    def __call__(self, x: torch.Tensor, layout: torch.Tensor, generator: torch.Generator | None = None):
        plan.check_input(x, layout, self.table)
        n, _, t, _, _ = x.shape
        if generator is not None and generator.device.type != "cpu":
            raise AugmentError(
                f"the dali backend draws its parameters on the CPU; got a generator on {generator.device}"
            )
        drawn = self.draw(n, generator, frames=t, persons=self._fed_noise_persons(x))
        return self._run(x, layout, drawn)

    def apply(self, x: torch.Tensor, layout: torch.Tensor, drawn: dict, generator: torch.Generator | None = None):
        """Apply fixed parameters. With drawn["noise"] the noise is fed in (exact); otherwise DALI draws it."""
        plan.check_input(x, layout, self.table)
        n, _, t, v, m = x.shape
        plan.check_drawn(drawn, self.params, n, t, v, m)
        drawn = {k: val.cpu() for k, val in drawn.items()}
        plan.check_crop(drawn, self.params, t)
        return self._run(x, layout, drawn)

    def iterate(
        self, batches: Iterable, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Augment a stream of (x, layout) batches, keeping `prefetch` batches in flight.

        Yields (x, layout, x_aug). While the caller works on one batch, the pipeline's
        worker threads (or the GPU) already process the next ones. Later batches may be
        smaller than the first `prefetch` ones, not larger.
        """
        source = iter(batches)
        pending: deque = deque()

        def pull():
            try:
                x, layout = next(source)
            except StopIteration:
                return None
            plan.check_input(x, layout, self.table)
            return x, layout, self.draw(x.shape[0], generator, frames=x.shape[2], persons=self._fed_noise_persons(x))

        while len(pending) < self.prefetch:
            item = pull()
            if item is None:
                break
            pending.append(item)
        if not pending:
            return
        x0 = pending[0][0]
        max_n = max(item[0].shape[0] for item in pending)
        # A fresh pipeline whose queue depth is the number of batches in flight: its first
        # schedule_run starts all of them, each later one starts one more.
        fixed_noise = "noise" in pending[0][2]
        pipe = self._new_pipeline(max_n, x0.shape[2], x0.shape[4], fixed_noise=fixed_noise, depth=len(pending))
        fed = deque(self._feed(pipe, x, layout, drawn) for x, layout, drawn in pending)
        pipe.schedule_run()
        while pending:
            x, layout, _ = pending.popleft()
            (out,) = pipe.outputs()
            y = self._to_torch(out, x)
            fed.popleft()  # its inputs are consumed now
            item = pull()
            if item is not None:
                xn = item[0]
                if xn.shape[0] > max_n or xn.shape[2] != x0.shape[2] or xn.shape[4] != x0.shape[4]:
                    raise AugmentError(
                        f"DaliAugment.iterate: batch of shape {tuple(xn.shape)} does not fit the pipeline built for "
                        f"at most {max_n} samples of shape {tuple(x0.shape[1:])}"
                    )
                fed.append(self._feed(pipe, *item))
                pipe.schedule_run()
                pending.append(item)
            yield x, layout, y

    # ---- internals ---------------------------------------------------------------------------

    def _new_pipeline(self, n: int, t: int, m: int, fixed_noise: bool, depth: int):
        # Every pipeline gets its own noise seed: a fresh iterate() pipeline per epoch must
        # not replay the previous epoch's noise.
        seed = (self.seed + 1_000_003 * self._builds) % (2**31 - 1)
        self._builds += 1
        pipe = _build_pipeline(
            self.params,
            batch_size=n,
            frames=t,
            joints=self.table.v_max,
            persons=m,
            device_id=self.device_id,
            num_threads=self.num_threads,
            seed=seed,
            fixed_noise=fixed_noise,
            prefetch=depth,
        )
        pipe.build()
        return pipe

    def _pipeline(self, n: int, t: int, m: int, fixed_noise: bool):
        """The synchronous (queue depth 1) pipeline for these shapes; its batch size grows by doubling."""
        key = (t, m, fixed_noise)
        entry = self._pipes.get(key)
        if entry is None or entry[0] < n:
            size = max(n, 2 * entry[0] if entry else n)
            entry = (size, self._new_pipeline(size, t, m, fixed_noise, depth=1))
            self._pipes[key] = entry
        return entry[1]

    def _fed_noise_persons(self, x: torch.Tensor) -> int | None:
        """M when the noise field is drawn by torch and fed in, None when DALI draws it."""
        return x.shape[4] if self.params.noise_p > 0 and self.noise_source == "torch" else None

    def _feed(self, pipe, x, layout, drawn) -> dict:
        """Feed one batch; returns the fed tensors, which must stay alive until its outputs are out."""
        p = self.params
        n, _, t, v, m = x.shape
        fixed_noise = "noise" in drawn
        layout_cpu = layout.detach().to("cpu", torch.int64)
        x_in = x.detach().to(torch.float32)
        x_in = x_in.to(self.device) if self.device_id is not None else x_in.cpu()
        feeds: dict[str, object] = {"x": x_in.contiguous()}

        if p.crop_p > 0 or p.flip_p > 0 or p.time_flip_p > 0:
            i0, i1, w = plan.source_frames(drawn, p, t)
            joints = plan.joint_sources(drawn, layout_cpu, self.table.flip)
            feeds["idx0"] = plan.gather_index(i0, joints).to(torch.int32)
            if p.interpolates:
                feeds["idx1"] = plan.gather_index(i1, joints).to(torch.int32)
                feeds["w"] = w.to(torch.float32).repeat_interleave(v, dim=1).reshape(n, t * v, 1, 1)
        if p.geometric:
            feeds["shear"] = drawn["shear"].to(torch.float32)
            feeds["rotate"] = drawn["rotate"].to(torch.float32)
            if p.scale_p > 0:
                feeds["scale"] = drawn["scale"].to(torch.float32)
        if p.noise_p > 0:
            feeds["noise_std"] = drawn["noise_std"].to(torch.float32)
            if fixed_noise:
                noise = drawn["noise"].to(torch.float32)
                feeds["noise"] = (noise.to(self.device) if self.device_id is not None else noise).contiguous()
        if p.blur_p > 0:
            feeds["blur"] = drawn["blur"].to(torch.float32)
            feeds["blur_sigma"] = drawn["blur_sigma"].to(torch.float32)
        if needs_masks(p):
            joint_keep = drawn["joint_keep"].bool() & self.table.joint_mask[layout_cpu]
            feeds["frame_keep"] = drawn["frame_keep"].to(torch.float32)
            feeds["joint_keep"] = joint_keep.to(torch.float32)
            feeds["axis_mask"] = drawn["axis_mask"].to(torch.int32)

        feeds = {name: value.contiguous() for name, value in feeds.items()}
        stream = torch.cuda.current_stream(self.device).cuda_stream if self.device_id is not None else None
        for name, value in feeds.items():
            if isinstance(value, torch.Tensor) and value.device.type == "cuda":
                pipe.feed_input(name, value, cuda_stream=stream)
            else:
                pipe.feed_input(name, value.numpy())
        return feeds

    def _run(self, x, layout, drawn):
        with self._lock:
            pipe = self._pipeline(x.shape[0], x.shape[2], x.shape[4], "noise" in drawn)
            fed = self._feed(pipe, x, layout, drawn)
            pipe.schedule_run()
            (out,) = pipe.outputs()
            del fed  # consumed
            return self._to_torch(out, x)

    def _to_torch(self, out, x) -> torch.Tensor:
        dense = out.as_tensor()
        if self.device_id is not None:
            from nvidia.dali.plugin.pytorch import feed_ndarray

            y = torch.empty(tuple(dense.shape()), dtype=torch.float32, device=self.device)
            feed_ndarray(dense, y, cuda_stream=torch.cuda.current_stream(self.device))
        else:
            # Zero-copy: the dynamic executor never reuses an output buffer that is still referenced.
            y = torch.from_dlpack(dense)
        return y.to(device=x.device, dtype=x.dtype)
