"""Triton kernels of the masked spatial graph convolution (docs/architecture.md 3.1).

    y[n,o,t,w] = sum_k sum_v A_eff[l_n,k,v,w] (sum_c W[k,o,c] x[n,c,t,v] + b[k,o]),  A_eff = A * importance

The graph is handed to the kernels as neighbour tables built on the device without a host
sync (`neighbour_tables`): for each layout, partition and destination joint, the source joints
with A != 0 first (width V, so a dense adjacency is simply a full table) and their
coefficients, plus the largest degree per (layout, partition), which bounds the loops. The
aggregation is a gather over those few neighbours, done in registers; nothing of the
(N, K*C_out, T, V) intermediate of the eager version is ever written.

Kernels (x is contiguous (N, C, T, V); columns are the flattened (t, v) of one sample):
* `_mix_kernel`: out[n,o,col] = sum_k sum_c W_k[o,c] * (sum_s a_s in[n,c,t,src_s]) (+ b[k,o] colsum).
  The forward pass (in = x, the forward table) and the gradient of x (in = grad, W transposed
  through its strides, the transposed table) are both this kernel.
* `_weight_grad_kernel`: dW[k] = sum_n grad_n XA_nk^T and db, split over samples into partial
  sums that torch reduces in a fixed order (deterministic).
* `_importance_grad_kernel`: G[n,k] = sum_t z_t^T grad_t (V x V per sample and partition) with
  z = W x + b recomputed; d importance = A * (G summed per layout).

Accumulation is float32. float32 inputs use IEEE float32 dots; float16/bfloat16 inputs use
tensor-core dots in their own dtype on a GPU, and float32 under TRITON_INTERPRET=1 (the
interpreter's bfloat16 arithmetic is wrong). On a GPU the block sizes are autotuned; the
interpreter runs one fixed configuration. Layout ids outside [0, L) give zero rows (no
neighbours) instead of reading out of bounds: checking them would need a host sync.
"""

from __future__ import annotations

import weakref

import torch
import triton
import triton.language as tl

from . import INTERPRET, on_tensor_device

_INTERPRET = INTERPRET  # read by msclr.ops.backends and the tests


@triton.jit
def _mix_kernel(
    inp,
    out,
    w_ptr,
    bias_ptr,
    src_ptr,
    coef_ptr,
    deg_ptr,
    layout_ptr,
    CI,
    CO,
    T,
    V,
    K,
    L,
    sw_k,
    sw_o,
    sw_c,
    HAS_BIAS: tl.constexpr,
    LOWP_DOT: tl.constexpr,
    FP32_DOT: tl.constexpr,
    BO: tl.constexpr,
    BC: tl.constexpr,
    BJ: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)  # samples on grid dim 0: dims 1 and 2 stop at 65535
    pid_j = tl.program_id(1)
    pid_o = tl.program_id(2)
    TV = T * V
    cols = pid_j * BJ + tl.arange(0, BJ)
    col_ok = cols < TV
    t = cols // V
    w = cols % V
    o = pid_o * BO + tl.arange(0, BO)
    o_ok = o < CO
    lay = tl.load(layout_ptr + n)
    lay_ok = (lay >= 0) & (lay < L)
    lay = tl.where(lay_ok, lay, 0)
    inp_n = inp + n * CI * TV
    acc = tl.zeros((BO, BJ), dtype=tl.float32)
    for k in range(K):
        deg = tl.where(lay_ok, tl.load(deg_ptr + lay * K + k), 0)
        row = ((lay * K + k) * V + w) * V  # this column's neighbour slots
        for c0 in range(0, CI, BC):
            c = c0 + tl.arange(0, BC)
            c_ok = c < CI
            xa = tl.zeros((BC, BJ), dtype=tl.float32)
            for s in range(deg):
                a = tl.load(coef_ptr + row + s, mask=col_ok, other=0.0)
                src = tl.load(src_ptr + row + s, mask=col_ok, other=0)
                m = c_ok[:, None] & (col_ok & (a != 0.0))[None, :]
                xv = tl.load(inp_n + c[:, None] * TV + (t * V + src)[None, :], mask=m, other=0.0)
                xa += xv.to(tl.float32) * a[None, :]
            wk = tl.load(
                w_ptr + k * sw_k + o[:, None] * sw_o + c[None, :] * sw_c,
                mask=o_ok[:, None] & c_ok[None, :],
                other=0.0,
            )
            if LOWP_DOT:
                acc += tl.dot(wk.to(inp.dtype.element_ty), xa.to(inp.dtype.element_ty))
            else:
                acc += tl.dot(wk.to(tl.float32), xa, input_precision=FP32_DOT)
        if HAS_BIAS:
            colsum = tl.zeros((BJ,), dtype=tl.float32)
            for s in range(deg):
                colsum += tl.load(coef_ptr + row + s, mask=col_ok, other=0.0)
            b = tl.load(bias_ptr + k * CO + o, mask=o_ok, other=0.0).to(tl.float32)
            acc += b[:, None] * colsum[None, :]
    out_ptrs = out + n * CO * TV + o[:, None] * TV + cols[None, :]
    tl.store(out_ptrs, acc.to(out.dtype.element_ty), mask=o_ok[:, None] & col_ok[None, :])


@triton.jit
def _weight_grad_kernel(
    x,
    gy,
    src_ptr,
    coef_ptr,
    deg_ptr,
    layout_ptr,
    gw_part,
    gb_part,
    N,
    C,
    O,
    T,
    V,
    K,
    L,
    SPLITS,
    HAS_BIAS: tl.constexpr,
    LOWP_DOT: tl.constexpr,
    FP32_DOT: tl.constexpr,
    BO: tl.constexpr,
    BC: tl.constexpr,
    BJ: tl.constexpr,
):
    # partial dW[split, k, o, c] = sum over this split's samples and all columns of gy[o, col] XA[c, col]
    num_c = tl.cdiv(C, BC)
    pid_o = tl.program_id(0) // num_c
    pid_c = tl.program_id(0) % num_c
    k = tl.program_id(1)
    split = tl.program_id(2)
    TV = T * V
    o = pid_o * BO + tl.arange(0, BO)
    o_ok = o < O
    c = pid_c * BC + tl.arange(0, BC)
    c_ok = c < C
    acc = tl.zeros((BO, BC), dtype=tl.float32)
    acc_b = tl.zeros((BO,), dtype=tl.float32)
    for i in range(0, tl.cdiv(N - split, SPLITS)):
        n = (split + i * SPLITS).to(tl.int64)
        lay = tl.load(layout_ptr + n)
        lay_ok = (lay >= 0) & (lay < L)
        lay = tl.where(lay_ok, lay, 0)
        deg = tl.where(lay_ok, tl.load(deg_ptr + lay * K + k), 0)
        for j0 in range(0, TV, BJ):
            cols = j0 + tl.arange(0, BJ)
            col_ok = cols < TV
            t = cols // V
            w = cols % V
            row = ((lay * K + k) * V + w) * V
            xa = tl.zeros((BC, BJ), dtype=tl.float32)
            colsum = tl.zeros((BJ,), dtype=tl.float32)
            for s in range(deg):
                a = tl.load(coef_ptr + row + s, mask=col_ok, other=0.0)
                src = tl.load(src_ptr + row + s, mask=col_ok, other=0)
                m = c_ok[:, None] & (col_ok & (a != 0.0))[None, :]
                xv = tl.load(x + n * C * TV + c[:, None] * TV + (t * V + src)[None, :], mask=m, other=0.0)
                xa += xv.to(tl.float32) * a[None, :]
                colsum += a
            g = tl.load(
                gy + n * O * TV + o[:, None] * TV + cols[None, :], mask=o_ok[:, None] & col_ok[None, :], other=0.0
            )
            if LOWP_DOT:
                acc += tl.dot(g, tl.trans(xa.to(gy.dtype.element_ty)))
            else:
                acc += tl.dot(g.to(tl.float32), tl.trans(xa), input_precision=FP32_DOT)
            if HAS_BIAS:
                acc_b += tl.sum(g.to(tl.float32) * colsum[None, :], axis=1)
    base = (split * K + k) * O
    tl.store(gw_part + (base + o[:, None]) * C + c[None, :], acc, mask=o_ok[:, None] & c_ok[None, :])
    if HAS_BIAS:
        tl.store(gb_part + base + o, acc_b, mask=o_ok & (pid_c == 0))


@triton.jit
def _importance_grad_kernel(
    x,
    gy,
    w_ptr,
    bias_ptr,
    g_part,
    C,
    O,
    T,
    V,
    K,
    HAS_BIAS: tl.constexpr,
    LOWP_DOT: tl.constexpr,
    FP32_DOT: tl.constexpr,
    BV: tl.constexpr,
    BO: tl.constexpr,
    BC: tl.constexpr,
):
    # G[n, k, v, w] = sum_t sum_o z[k, o, t, v] gy[o, t, w],  z = W_k x_t + b_k recomputed per frame
    n = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1)
    TV = T * V
    v = tl.arange(0, BV)
    v_ok = v < V
    G = tl.zeros((BV, BV), dtype=tl.float32)
    for t in range(T):
        for o0 in range(0, O, BO):
            o = o0 + tl.arange(0, BO)
            o_ok = o < O
            z = tl.zeros((BO, BV), dtype=tl.float32)
            for c0 in range(0, C, BC):
                c = c0 + tl.arange(0, BC)
                c_ok = c < C
                wk = tl.load(
                    w_ptr + (k * O + o[:, None]) * C + c[None, :], mask=o_ok[:, None] & c_ok[None, :], other=0.0
                )
                xt = tl.load(
                    x + n * C * TV + c[:, None] * TV + t * V + v[None, :], mask=c_ok[:, None] & v_ok[None, :], other=0.0
                )
                if LOWP_DOT:
                    z += tl.dot(wk, xt)
                else:
                    z += tl.dot(wk.to(tl.float32), xt.to(tl.float32), input_precision=FP32_DOT)
            if HAS_BIAS:
                b = tl.load(bias_ptr + k * O + o, mask=o_ok, other=0.0).to(tl.float32)
                z += b[:, None] * v_ok[None, :].to(tl.float32)
            g = tl.load(
                gy + n * O * TV + o[:, None] * TV + t * V + v[None, :], mask=o_ok[:, None] & v_ok[None, :], other=0.0
            )
            if LOWP_DOT:
                G += tl.dot(tl.trans(z.to(gy.dtype.element_ty)), g)
            else:
                G += tl.dot(tl.trans(z), g.to(tl.float32), input_precision=FP32_DOT)
    out = g_part + ((n * K + k) * V + v[:, None]) * V + v[None, :]
    tl.store(out, G, mask=v_ok[:, None] & v_ok[None, :])


def _configs(names_values):
    return [triton.Config(dict(zip(("BO", "BC", "BJ"), vals)), num_warps=nw) for vals, nw in names_values]


# Autotuned launchers on a GPU (keyed by the channel counts and joints); the interpreter runs
# one fixed configuration of the plain kernels.
_MIX_CONFIGS = _configs(
    [
        ((32, 16, 64), 4),
        ((64, 16, 64), 4),
        ((64, 32, 64), 4),
        ((32, 32, 128), 4),
        ((64, 32, 128), 8),
        ((128, 32, 64), 8),
    ]
)
_WGRAD_CONFIGS = _configs([((32, 16, 64), 4), ((64, 32, 64), 4), ((64, 64, 64), 8), ((32, 32, 128), 4)])
_mix_tuned = triton.autotune(_MIX_CONFIGS, key=["CI", "CO", "V", "LOWP_DOT", "FP32_DOT"])(_mix_kernel)
_wgrad_tuned = triton.autotune(_WGRAD_CONFIGS, key=["C", "O", "V", "LOWP_DOT", "FP32_DOT"], reset_to_zero=[])(
    _weight_grad_kernel
)
_FIXED = {"BO": 32, "BC": 32, "BJ": 128}


def _next_pow2(v: int) -> int:
    return 1 << max(4, (v - 1).bit_length())


# Sort order, int32 sources and degrees of A's nonzero pattern, per adjacency tensor: they depend
# on the pattern only (not on the learned importance), and building them takes ~15 small launches,
# three times per layer and step. Keyed by the tensor (a weak reference: a freed tensor whose id is
# reused cannot hit) and its version counter (an in-place change of A rebuilds them).
_PATTERNS: dict[tuple[int, bool], tuple] = {}
_PATTERNS_MAX = 256


def _pattern_tables(A: torch.Tensor, transposed: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    key = (id(A), transposed)
    try:
        version = A._version
    except RuntimeError:  # inference-mode tensors keep no version counter: no caching
        version = None
    hit = _PATTERNS.get(key)
    if version is not None and hit is not None and hit[0]() is A and hit[1] == version:
        return hit[2]
    pattern = A != 0
    if not transposed:
        pattern = pattern.transpose(2, 3)
    order = torch.sort((~pattern).to(torch.uint8), dim=-1, stable=True).indices
    tables = (order, order.to(torch.int32).contiguous(), pattern.sum(-1).amax(-1).to(torch.int32).contiguous())
    if version is not None:
        if len(_PATTERNS) >= _PATTERNS_MAX:
            _PATTERNS.clear()
        _PATTERNS[key] = (weakref.ref(A), version, tables)
    return tables


def neighbour_tables(A: torch.Tensor, a_eff: torch.Tensor, transposed: bool):
    """(src int32, coef float32, deg int32) for aggregating along A; no host synchronisation.

    Not transposed (forward): destination w, sources v with coefficient A_eff[l,k,v,w].
    Transposed (gradient of x): destination v, sources w with coefficient A_eff[l,k,v,w].
    src/coef are (L, K, V, V) with each row's nonzeros first (in joint order); deg (L, K) is the
    largest number of nonzeros of a row, which bounds the kernels' neighbour loops. Only coef
    (one gather) is computed per call; the rest is cached per A (`_pattern_tables`).
    """
    order, src, deg = _pattern_tables(A, transposed)
    mat = a_eff if transposed else a_eff.transpose(2, 3)
    coef = torch.gather(mat.float(), -1, order).contiguous()  # zero beyond the row's degree
    return src, coef, deg


def _prepare(x, A, importance):
    a_eff = (A.float() * importance.float()) if importance is not None else A.float()
    return a_eff.contiguous()


def _lowp(x: torch.Tensor) -> bool:
    return x.dtype in (torch.float16, torch.bfloat16) and not _INTERPRET


def _fp32_dot() -> str:
    """How fp32 dots run: "tf32" (tensor cores, 10-bit mantissa inputs) when the user allowed TF32
    for matmuls (torch.backends.cuda.matmul.allow_tf32, as torch's own matmuls do), else "ieee"."""
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 and not _INTERPRET else "ieee"


def _check_dtype(x: torch.Tensor) -> None:
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"masked_graph_conv (triton): x must be float32, float16 or bfloat16, got {x.dtype}")


def mix_grid(N: int, T: int, V: int, CO: int, meta: dict) -> tuple[int, int, int]:
    """_mix_kernel's grid: (samples, column blocks, output-channel blocks); only dim 0 may exceed 65535."""
    return (N, triton.cdiv(T * V, meta["BJ"]), triton.cdiv(CO, meta["BO"]))


def _mix(inp, out, w, w_strides, bias, tables, layout, L):
    """Launch _mix_kernel: out (N, CO, T, V) from inp (N, CI, T, V) along the given tables."""
    N, CI, T, V = inp.shape
    CO = out.shape[1]
    K = tables[2].shape[1]
    src, coef, deg = tables
    args = (inp, out, w, bias if bias is not None else w, src, coef, deg, layout, CI, CO, T, V, K, L, *w_strides)
    if _INTERPRET:
        grid = mix_grid(N, T, V, CO, _FIXED)
        _mix_kernel[grid](*args, HAS_BIAS=bias is not None, LOWP_DOT=False, FP32_DOT="ieee", **_FIXED)
    else:

        def grid(meta):
            return mix_grid(N, T, V, CO, meta)

        _mix_tuned[grid](*args, HAS_BIAS=bias is not None, LOWP_DOT=_lowp(inp), FP32_DOT=_fp32_dot())


@on_tensor_device
def forward(x, layout, A, weight, bias, importance):
    """y (N, C_out, T, V) in x's dtype; x, A, weight contiguous."""
    _check_dtype(x)
    layout = layout.contiguous()  # read as a flat array by the kernels
    N, C, T, V = x.shape
    O = weight.shape[1]
    y = torch.empty(N, O, T, V, dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    w = weight.to(x.dtype).contiguous()
    b = bias.to(x.dtype).contiguous() if bias is not None else None
    tables = neighbour_tables(A, _prepare(x, A, importance), transposed=False)
    _mix(x, y, w, (w.stride(0), w.stride(1), w.stride(2)), b, tables, layout, A.shape[0])
    return y


@on_tensor_device
def backward(grad, x, layout, A, weight, bias, importance):
    """(grad_x, grad_weight, grad_bias, grad_importance) with reference.masked_graph_conv_backward's conventions."""
    _check_dtype(x)
    layout = layout.contiguous()
    N, C, T, V = x.shape
    L, K = A.shape[:2]
    O = weight.shape[1]
    dev = x.device
    gy = grad.to(x.dtype).contiguous()
    w = weight.to(x.dtype).contiguous()
    b = bias.to(x.dtype).contiguous() if bias is not None else None
    a_eff = _prepare(x, A, importance)
    gx = torch.zeros_like(x)
    gw = torch.zeros(K, O, C, dtype=torch.float32, device=dev)
    gb = torch.zeros(K, O, dtype=torch.float32, device=dev)
    gi = torch.zeros(A.shape, dtype=torch.float32, device=dev)
    if x.numel() > 0 and gy.numel() > 0:
        # d x: the same kernel over grad, with W^T (through strides) and the transposed graph
        _mix(gy, gx, w, (w.stride(0), w.stride(2), w.stride(1)), None, neighbour_tables(A, a_eff, True), layout, L)

        fwd_tables = neighbour_tables(A, a_eff, transposed=False)
        if _INTERPRET:
            splits = min(N, 2)
        else:
            sms = torch.cuda.get_device_properties(dev).multi_processor_count
            splits = max(1, min(N, (4 * sms) // max(1, K * triton.cdiv(O, 64) * triton.cdiv(C, 32))))
        gw_part = torch.empty(splits, K, O, C, dtype=torch.float32, device=dev)
        gb_part = torch.empty(splits, K, O, dtype=torch.float32, device=dev)
        args = (x, gy, *fwd_tables, layout, gw_part, gb_part, N, C, O, T, V, K, L, splits)
        if _INTERPRET:
            grid = (triton.cdiv(O, _FIXED["BO"]) * triton.cdiv(C, _FIXED["BC"]), K, splits)
            _weight_grad_kernel[grid](*args, HAS_BIAS=b is not None, LOWP_DOT=False, FP32_DOT="ieee", **_FIXED)
        else:

            def grid(meta):
                return (triton.cdiv(O, meta["BO"]) * triton.cdiv(C, meta["BC"]), K, splits)

            _wgrad_tuned[grid](*args, HAS_BIAS=b is not None, LOWP_DOT=_lowp(x), FP32_DOT=_fp32_dot())
        gw = gw_part.sum(0)
        if b is not None:
            gb = gb_part.sum(0)

        if importance is not None:
            g_part = torch.empty(N, K, V, V, dtype=torch.float32, device=dev)
            BV = _next_pow2(V)
            blocks = dict(BO=32, BC=32) if _INTERPRET else dict(BO=32, BC=32, num_warps=4)
            _importance_grad_kernel[(N, K)](
                x, gy, w, b if b is not None else w, g_part, C, O, T, V, K,
                HAS_BIAS=b is not None, LOWP_DOT=_lowp(x), FP32_DOT=_fp32_dot(), BV=BV, **blocks,
            )  # fmt: skip
            # summed per layout by masked reductions, not index_add_ (atomics on a GPU: run-to-run
            # different sums); invalid layout ids match no mask, so they add nothing without a sync
            ga = torch.stack([(g_part * (layout == l).float()[:, None, None, None]).sum(0) for l in range(L)])
            gi = ga * A.float()
    grad_bias = gb.to(bias.dtype) if bias is not None else gb.to(weight.dtype)
    grad_imp = gi.to(importance.dtype) if importance is not None else torch.zeros_like(A)
    return gx, gw.to(weight.dtype), grad_bias, grad_imp
