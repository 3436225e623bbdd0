"""masked_graph_conv: the public function, its custom ops, fake and autograd registrations."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import _ext
from . import reference
from .backends import dtype_name, register_backend, resolve

# ---------------------------------------------------------------- reference backend as custom ops


@torch.library.custom_op("msclr::masked_graph_conv_ref", mutates_args=())
def _ref_forward(
    x: Tensor, layout: Tensor, A: Tensor, weight: Tensor, bias: Tensor | None, importance: Tensor | None
) -> Tensor:
    reference.check_layout_ids("msclr::masked_graph_conv", layout, A.shape[0])  # as the cpu backend
    # contiguous: the fake (meta) function promises contiguous outputs to torch.compile
    return reference.masked_graph_conv_forward(x, layout, A, weight, bias, importance).contiguous()


@torch.library.custom_op("msclr::masked_graph_conv_ref_backward", mutates_args=())
def _ref_backward(
    grad: Tensor,
    x: Tensor,
    layout: Tensor,
    A: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    importance: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    reference.check_layout_ids("msclr::masked_graph_conv_backward", layout, A.shape[0])
    grads = reference.masked_graph_conv_backward(grad.contiguous(), x, layout, A, weight, bias, importance)
    return tuple(g.contiguous() for g in grads)


@_ref_forward.register_fake
def _(x, layout, A, weight, bias, importance):
    n, _, t, v = x.shape
    return x.new_empty(n, weight.shape[1], t, v)


@_ref_backward.register_fake
def _(grad, x, layout, A, weight, bias, importance):
    gb = weight.new_empty(weight.shape[:2]) if bias is None else torch.empty_like(bias)
    gi = torch.empty_like(A) if importance is None else torch.empty_like(importance)
    return torch.empty_like(x), torch.empty_like(weight), gb, gi


def _setup_context(ctx, inputs, output):
    x, layout, A, weight, bias, importance = inputs
    ctx.save_for_backward(x, layout, A, weight, bias, importance)


def _make_backward(backward_op):
    def backward(ctx, grad):
        x, layout, A, weight, bias, importance = ctx.saved_tensors
        gx, gw, gb, gi = backward_op(grad, x, layout, A, weight, bias, importance)
        need = ctx.needs_input_grad
        return (
            gx if need[0] else None,
            None,
            None,
            gw if need[3] else None,
            gb if bias is not None and need[4] else None,
            gi if importance is not None and need[5] else None,
        )

    return backward


_ref_forward.register_autograd(_make_backward(_ref_backward), setup_context=_setup_context)

# backend name -> forward custom op (each with autograd registered)
_FORWARD = {"reference": _ref_forward}
register_backend("masked_graph_conv", "reference")


# ---------------------------------------------------------------- C++ backends (cpu, cuda): msclr._C
# One schema, msclr::masked_graph_conv(_backward), declared in csrc/graph_conv.cpp (argument checks in
# csrc/graph_conv.h), CPU kernels in csrc/cpu/graph_conv_kernel.cpp and CUDA kernels in
# csrc/cuda/graph_conv_kernel.cu (registered by csrc/cuda/graph_conv_register.cpp); shapes and autograd here.
def _fake_forward(x, layout, A, weight, bias, importance):
    n, _, t, v = x.shape
    return x.new_empty(n, weight.shape[1], t, v)


def _fake_backward(grad, x, layout, A, weight, bias, importance):
    gb = weight.new_empty(weight.shape[:2]) if bias is None else bias.new_empty(bias.shape)
    gi = A.new_empty(A.shape) if importance is None else importance.new_empty(importance.shape)
    return x.new_empty(x.shape), weight.new_empty(weight.shape), gb, gi


if _ext.has_op("masked_graph_conv_backward"):
    torch.library.register_fake("msclr::masked_graph_conv")(_fake_forward)
    torch.library.register_fake("msclr::masked_graph_conv_backward")(_fake_backward)
    torch.library.register_autograd(
        "msclr::masked_graph_conv",
        _make_backward(torch.ops.msclr.masked_graph_conv_backward),
        setup_context=_setup_context,
    )
    _FORWARD["cpu"] = _FORWARD["cuda"] = torch.ops.msclr.masked_graph_conv
    register_backend("masked_graph_conv", "cpu")
    register_backend("masked_graph_conv", "cuda")  # backends.why_unavailable says if CUDA was not built


# ---------------------------------------------------------------- triton backend: kernels/graph_conv.py
# Opaque custom ops around the Triton launches (docs/architecture.md section 4). The kernel module is
# imported on first use: Triton reads TRITON_INTERPRET when the kernels are defined.
@torch.library.custom_op("msclr::masked_graph_conv_triton", mutates_args=())
def _triton_forward(
    x: Tensor, layout: Tensor, A: Tensor, weight: Tensor, bias: Tensor | None, importance: Tensor | None
) -> Tensor:
    from ..kernels import graph_conv as kernels

    return kernels.forward(x, layout, A, weight, bias, importance)


@torch.library.custom_op("msclr::masked_graph_conv_triton_backward", mutates_args=())
def _triton_backward(
    grad: Tensor,
    x: Tensor,
    layout: Tensor,
    A: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    importance: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from ..kernels import graph_conv as kernels

    return kernels.backward(grad, x, layout, A, weight, bias, importance)


_triton_forward.register_fake(_fake_forward)
_triton_backward.register_fake(_fake_backward)
_triton_forward.register_autograd(_make_backward(_triton_backward), setup_context=_setup_context)
_FORWARD["triton"] = _triton_forward
register_backend("masked_graph_conv", "triton")  # backends.why_unavailable says when Triton cannot run


def _check(x: Tensor, layout: Tensor, A: Tensor, weight: Tensor, bias, importance) -> None:
    if x.dim() != 4:
        raise ValueError(f"masked_graph_conv: x must be (N, C_in, T, V), got shape {tuple(x.shape)}")
    n, c_in, _, v = x.shape
    if A.dim() != 4 or A.shape[2] != v or A.shape[3] != v:
        raise ValueError(f"masked_graph_conv: A must be (L, K, {v}, {v}), got {tuple(A.shape)}")
    k = A.shape[1]
    if weight.dim() != 3 or weight.shape[0] != k or weight.shape[2] != c_in:
        raise ValueError(f"masked_graph_conv: weight must be ({k}, C_out, {c_in}), got {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != tuple(weight.shape[:2]):
        raise ValueError(f"masked_graph_conv: bias must be {tuple(weight.shape[:2])}, got {tuple(bias.shape)}")
    if importance is not None and importance.shape != A.shape:
        raise ValueError(f"masked_graph_conv: importance must be {tuple(A.shape)}, got {tuple(importance.shape)}")
    if layout.shape != (n,) or layout.dtype != torch.int64:
        raise ValueError(
            f"masked_graph_conv: layout must be int64 of shape ({n},), got {layout.dtype} {tuple(layout.shape)}"
        )


def masked_graph_conv(
    x: Tensor,
    layout: Tensor,
    A: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    importance: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """Masked spatial graph convolution over per-sample skeleton layouts (docs/architecture.md 3.1).

    y[n,o,t,w] = sum_k sum_v (A*importance)[l_n,k,v,w] (sum_c W[k,o,c] x[n,c,t,v] + b[k,o])

    Backends: "reference" (pure torch), "cpu" (C++, csrc/cpu/graph_conv_kernel.cpp), "cuda" (CUDA C++,
    csrc/cuda/graph_conv_kernel.cu) and "triton" (kernels/graph_conv.py); "auto" picks the fastest
    available for x's device. The fused backends never build the (N, K*C_out, T, V) intermediate
    and exploit the few neighbours per joint. They read x as contiguous (N, C, T, V): another
    layout (e.g. channels-last or a transposed view) is copied to that first. float64 runs on
    reference and cpu (and cuda); triton takes float32/float16/bfloat16. Layout ids outside
    [0, L): the reference and cpu backends raise the same RuntimeError naming the sample; cuda and
    triton, which cannot check without synchronising with the host, give such samples no edges
    (zero output).

    Args:
        x: (N, C_in, T, V_max), float32/float16/bfloat16/float64.
        layout: (N,) int64 layout id of each sample (indexes A).
        A: (L, K, V_max, V_max) normalised partition adjacency, zero on padded rows/columns.
        weight: (K, C_out, C_in); bias: (K, C_out) or None; importance: like A, or None (ones).
        backend: "auto", "reference", "cpu", "cuda" or "triton".
    Returns (N, C_out, T, V_max) in x's dtype, accumulated in float32; padded joints are 0.
    Gradients flow to x, weight, bias and importance (not to A or layout).
    """
    _check(x, layout, A, weight, bias, importance)
    which = resolve("masked_graph_conv", backend, x.device.type, dtype_name(x))
    return _FORWARD[which](x.contiguous(), layout, A.contiguous(), weight.contiguous(), bias, importance)
