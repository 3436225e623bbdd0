// msclr::masked_bn_stats / masked_bn_apply (+ backwards): the op schemas (docs/architecture.md
// 3.3). Kernels register per dispatch key in csrc/cpu/batch_norm_kernel.cpp; fake (meta) and
// autograd registrations live in msclr/ops/batch_norm.py.
#include <torch/library.h>

#include "batch_norm.h"

TORCH_LIBRARY_FRAGMENT(msclr, m) {
  // Per-channel masked sums [sum m x, sum m x^2] of x (N, C, T, V) over valid joints: (2, C) float64.
  m.def("masked_bn_stats(Tensor x, Tensor mask) -> Tensor");
  // d x = m * (grad[0,c] + 2 grad[1,c] x)
  m.def("masked_bn_stats_backward(Tensor grad, Tensor x, Tensor mask) -> Tensor");
  // act((x*scale + shift) * dropout * m + residual); see msclr.ops.masked_bn_apply.
  m.def(
      "masked_bn_apply(Tensor x, Tensor mask, Tensor scale, Tensor shift, Tensor? residual, Tensor? seed, float p, "
      "bool relu) -> Tensor");
  // Gradients (x, scale, shift, residual); the residual gradient is empty (0,) when has_residual is false.
  m.def(
      "masked_bn_apply_backward(Tensor grad, Tensor out, Tensor x, Tensor mask, Tensor scale, Tensor? seed, "
      "float p, bool relu, bool has_residual) -> (Tensor, Tensor, Tensor, Tensor)");
}
