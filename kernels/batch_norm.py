"""Triton kernels of msclr::masked_bn_stats / masked_bn_apply and their backwards.

Same contract and formulas as msclr.ops.reference (masked_bn_stats, masked_bn_apply and the two
backwards), including the hash dropout: element i (flat index into x) is kept iff
mix32(lo32(i) ^ lo32(seed) ^ mix32(hi32(i) ^ hi32(seed))) >= floor(p * 2^32), so the backward
regenerates the keep mask instead of storing it, and every backend drops the same elements.

Every kernel has the grid (channels, sample chunks): a program owns one channel c (its scale and
shift are scalars) and a contiguous run of samples, and walks the T*V contiguous values of
x[n, c] in BLOCK tiles, reading the joint mask m[n, v] (v = column % V). Per-channel sums
(statistics, d scale, d shift) are written per chunk and summed by torch in a fixed order:
run-to-run identical, no atomics. Accumulation in float32 (float64 for float64 x, and the
statistics always in float64, as the reference). Under TRITON_INTERPRET=1 everything runs on CPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import INTERPRET, on_tensor_device, require_runnable

BLOCK = 256 if INTERPRET else 1024


@triton.jit
def _mix32(x):
    """The "lowbias32" integer finaliser (C. Wellons) on uint32, as csrc/cpu/batch_norm_kernel.cpp."""
    x = x ^ (x >> 16)
    x = x * tl.full([], 0x7FEB352D, tl.uint32)  # uint32 products wrap mod 2^32, as the hash needs
    x = x ^ (x >> 15)
    x = x * tl.full([], 0x846CA68B, tl.uint32)
    return x ^ (x >> 16)


@triton.jit
def _keep_factor(i, seed_lo, seed_hi, threshold, inv_keep):
    """keep / (1 - p) for flat indices i (int64): inv_keep where the hash clears the threshold, else 0."""
    lo = (i & 0xFFFFFFFF).to(tl.uint32)
    hi = (i >> 32).to(tl.uint32)
    key = seed_lo.to(tl.uint32) ^ _mix32(hi ^ seed_hi.to(tl.uint32))
    h = _mix32(lo ^ key)
    return tl.where(h.to(tl.int64) >= threshold, inv_keep, 0.0)


@triton.jit
def _apply_factor(mask_ptr, mask_off, i, ok, seed_lo, seed_hi, threshold, inv_keep, DROPOUT: tl.constexpr,
                  ACC: tl.constexpr):  # fmt: skip
    """m[n, v] * keep(i) / (1 - p) at flat indices i: what apply multiplies by and its backward
    differentiates through (one definition, so both drop the same elements)."""
    f = tl.load(mask_ptr + mask_off, mask=ok, other=0.0).to(ACC)
    if DROPOUT:
        f = f * _keep_factor(i, seed_lo, seed_hi, threshold, inv_keep).to(ACC)
    return f


@triton.jit
def _stats_kernel(x_ptr, mask_ptr, part_ptr, N, C, TV, V, per_chunk, BLOCK: tl.constexpr):
    """part[chunk, 0/1, c] = sum of m x and m x^2 over the chunk's samples, in float64."""
    c = tl.program_id(0)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    s1 = tl.zeros([BLOCK], tl.float64)
    s2 = tl.zeros([BLOCK], tl.float64)
    for n in range(chunk * per_chunk, tl.minimum(N, (chunk + 1) * per_chunk)):
        n64 = n + tl.zeros([], tl.int64)  # 64-bit offsets (n is a plain int under the interpreter)
        base = (n64 * C + c) * TV
        for j0 in range(0, TV, BLOCK):
            j = j0 + cols
            ok = j < TV
            xv = tl.load(x_ptr + base + j, mask=ok, other=0.0).to(tl.float64)
            m = tl.load(mask_ptr + n64 * V + j % V, mask=ok, other=0.0).to(tl.float64)
            s1 += m * xv
            s2 += m * xv * xv
    out = part_ptr + chunk.to(tl.int64) * 2 * C + c
    tl.store(out, tl.sum(s1, 0))
    tl.store(out + C, tl.sum(s2, 0))


@triton.jit
def _stats_backward_kernel(g_ptr, x_ptr, mask_ptr, dx_ptr, N, C, TV, V, per_chunk, ACC: tl.constexpr,
                           BLOCK: tl.constexpr):  # fmt: skip
    """dx = m * (g[0, c] + 2 g[1, c] x)."""
    c = tl.program_id(0)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    g0 = tl.load(g_ptr + c).to(ACC)
    g1 = tl.load(g_ptr + C + c).to(ACC)
    for n in range(chunk * per_chunk, tl.minimum(N, (chunk + 1) * per_chunk)):
        n64 = n + tl.zeros([], tl.int64)  # 64-bit offsets (n is a plain int under the interpreter)
        base = (n64 * C + c) * TV
        for j0 in range(0, TV, BLOCK):
            j = j0 + cols
            ok = j < TV
            xv = tl.load(x_ptr + base + j, mask=ok, other=0.0).to(ACC)
            m = tl.load(mask_ptr + n64 * V + j % V, mask=ok, other=0.0).to(ACC)
            tl.store(dx_ptr + base + j, (m * (g0 + 2 * g1 * xv)).to(dx_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _apply_kernel(x_ptr, mask_ptr, scale_ptr, shift_ptr, res_ptr, out_ptr, N, C, TV, V, per_chunk,
                  seed_lo, seed_hi, threshold, inv_keep, HAS_RES: tl.constexpr, DROPOUT: tl.constexpr,
                  RELU: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """out = act((x scale[c] + shift[c]) * m * keep/(1-p) + residual)."""
    c = tl.program_id(0)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    sc = tl.load(scale_ptr + c).to(ACC)
    sh = tl.load(shift_ptr + c).to(ACC)
    for n in range(chunk * per_chunk, tl.minimum(N, (chunk + 1) * per_chunk)):
        n64 = n + tl.zeros([], tl.int64)  # 64-bit offsets (n is a plain int under the interpreter)
        base = (n64 * C + c) * TV
        for j0 in range(0, TV, BLOCK):
            j = j0 + cols
            ok = j < TV
            xv = tl.load(x_ptr + base + j, mask=ok, other=0.0).to(ACC)
            f = _apply_factor(mask_ptr, n64 * V + j % V, base + j, ok, seed_lo, seed_hi, threshold, inv_keep,
                              DROPOUT, ACC)  # fmt: skip
            z = (xv * sc + sh) * f
            if HAS_RES:
                z += tl.load(res_ptr + base + j, mask=ok, other=0.0).to(ACC)
            if RELU:
                z = tl.maximum(z, 0.0)
            tl.store(out_ptr + base + j, z.to(out_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _apply_backward_kernel(g_ptr, out_ptr, x_ptr, mask_ptr, scale_ptr, dx_ptr, dres_ptr, part_ptr, N, C, TV, V,
                           per_chunk, seed_lo, seed_hi, threshold, inv_keep, HAS_RES: tl.constexpr,
                           DROPOUT: tl.constexpr, RELU: tl.constexpr, ACC: tl.constexpr,
                           BLOCK: tl.constexpr):  # fmt: skip
    """g' = g (out > 0 under ReLU); gz = g' * factor; dx = gz scale[c]; dres = g';
    part[chunk, 0/1, c] = sum gz x, sum gz (d scale, d shift)."""
    c = tl.program_id(0)
    chunk = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    sc = tl.load(scale_ptr + c).to(ACC)
    ds = tl.zeros([BLOCK], ACC)
    db = tl.zeros([BLOCK], ACC)
    for n in range(chunk * per_chunk, tl.minimum(N, (chunk + 1) * per_chunk)):
        n64 = n + tl.zeros([], tl.int64)  # 64-bit offsets (n is a plain int under the interpreter)
        base = (n64 * C + c) * TV
        for j0 in range(0, TV, BLOCK):
            j = j0 + cols
            ok = j < TV
            g = tl.load(g_ptr + base + j, mask=ok, other=0.0).to(ACC)
            if RELU:
                o = tl.load(out_ptr + base + j, mask=ok, other=0.0).to(ACC)
                g = tl.where(o > 0, g, 0.0)
            f = _apply_factor(mask_ptr, n64 * V + j % V, base + j, ok, seed_lo, seed_hi, threshold, inv_keep,
                              DROPOUT, ACC)  # fmt: skip
            gz = g * f
            xv = tl.load(x_ptr + base + j, mask=ok, other=0.0).to(ACC)
            tl.store(dx_ptr + base + j, (gz * sc).to(dx_ptr.dtype.element_ty), mask=ok)
            if HAS_RES:
                tl.store(dres_ptr + base + j, g.to(dres_ptr.dtype.element_ty), mask=ok)
            ds += gz * xv
            db += gz
    out = part_ptr + chunk.to(tl.int64) * 2 * C + c
    tl.store(out, tl.sum(ds, 0))
    tl.store(out + C, tl.sum(db, 0))


# ------------------------------------------------------------------------------------ launchers
def _check(x: torch.Tensor, name: str) -> None:
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        raise TypeError(f"{name} (triton): x must be float32, float16, bfloat16 or float64, got {x.dtype}")
    require_runnable(x.device, name)


def _acc(x: torch.Tensor):
    return (tl.float64, torch.float64) if x.dtype == torch.float64 else (tl.float32, torch.float32)


def _chunks(N: int, C: int, device: torch.device) -> tuple[int, int]:
    """(chunks, samples per chunk): enough programs to fill the GPU; a fixed split for a given shape."""
    if N == 0:
        return 1, 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1
    chunks = max(1, min(N, 65535, triton.cdiv(4 * sms, max(C, 1))))
    per = triton.cdiv(N, chunks)
    return triton.cdiv(N, per), per


def _dropout_args(seed: torch.Tensor | None, p: float) -> tuple[int, int, int, float, bool]:
    """(seed_lo, seed_hi, threshold, 1/(1-p), dropout on) for the kernels' hash (host values: the
    seed is a CPU scalar, so reading it costs no device sync)."""
    if seed is None or p <= 0:
        return 0, 0, 0, 1.0, False
    s = int(seed.reshape(()).item()) & 0xFFFFFFFFFFFFFFFF
    return s & 0xFFFFFFFF, s >> 32, int(p * 4294967296.0), 1.0 / (1.0 - p), True


def _mask_as(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return mask.to(device=x.device, dtype=torch.float32).contiguous()


@on_tensor_device
def masked_bn_stats(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(2, C) float64 [sum m x, sum m x^2], as reference.masked_bn_stats."""
    _check(x, "masked_bn_stats")
    x = x.contiguous()
    N, C, T, V = x.shape
    chunks, per = _chunks(N, C, x.device)
    part = torch.zeros(chunks, 2, C, dtype=torch.float64, device=x.device)
    if x.numel():
        _stats_kernel[(C, chunks)](x, _mask_as(mask, x), part, N, C, T * V, V, per, BLOCK=BLOCK)
    return part.sum(0)


@on_tensor_device
def masked_bn_stats_backward(grad: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    _check(x, "masked_bn_stats_backward")
    x = x.contiguous()
    N, C, T, V = x.shape
    ACC, acc = _acc(x)
    dx = torch.empty_like(x)
    if x.numel():
        chunks, per = _chunks(N, C, x.device)
        g = grad.to(device=x.device, dtype=acc).contiguous()
        _stats_backward_kernel[(C, chunks)](g, x, _mask_as(mask, x), dx, N, C, T * V, V, per, ACC=ACC, BLOCK=BLOCK)
    return dx


@on_tensor_device
def masked_bn_apply(x, mask, scale, shift, residual, seed, p: float, relu: bool) -> torch.Tensor:
    """As reference.masked_bn_apply."""
    _check(x, "masked_bn_apply")
    x = x.contiguous()
    N, C, T, V = x.shape
    ACC, acc = _acc(x)
    out = torch.empty_like(x)
    if x.numel():
        chunks, per = _chunks(N, C, x.device)
        lo, hi, thr, inv, drop = _dropout_args(seed, p)
        res = residual.contiguous() if residual is not None else x
        _apply_kernel[(C, chunks)](
            x, _mask_as(mask, x), scale.to(acc).contiguous(), shift.to(acc).contiguous(), res, out,
            N, C, T * V, V, per, lo, hi, thr, inv,
            HAS_RES=residual is not None, DROPOUT=drop, RELU=relu, ACC=ACC, BLOCK=BLOCK,
        )  # fmt: skip
    return out


@on_tensor_device
def masked_bn_apply_backward(grad, out, x, mask, scale, seed, p: float, relu: bool, has_residual: bool):
    """(d x, d scale, d shift, d residual) as reference.masked_bn_apply_backward."""
    _check(x, "masked_bn_apply_backward")
    x = x.contiguous()
    N, C, T, V = x.shape
    ACC, acc = _acc(x)
    dx = torch.empty_like(x)
    dres = torch.empty_like(x) if has_residual else x.new_empty(0)
    chunks, per = _chunks(N, C, x.device)
    part = torch.zeros(chunks, 2, C, dtype=acc, device=x.device)
    if x.numel():
        lo, hi, thr, inv, drop = _dropout_args(seed, p)
        _apply_backward_kernel[(C, chunks)](
            grad.contiguous(), out.contiguous(), x, _mask_as(mask, x), scale.to(acc).contiguous(), dx,
            dres if has_residual else dx, part, N, C, T * V, V, per, lo, hi, thr, inv,
            HAS_RES=has_residual, DROPOUT=drop, RELU=relu, ACC=ACC, BLOCK=BLOCK,
        )  # fmt: skip
    # two separate sums: views of one result would alias each other (custom ops must not)
    return dx, part[:, 0].sum(0).to(scale.dtype), part[:, 1].sum(0).to(scale.dtype), dres
