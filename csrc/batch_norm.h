// msclr::masked_bn_stats / masked_bn_apply (+ backwards) (docs/architecture.md 3.3): the argument
// checks of every registration (host code only; the messages name the op and the offending tensor).
//
//   schemas      csrc/batch_norm.cpp
//   CPU kernels  csrc/cpu/batch_norm_kernel.cpp (+ registration)
//   CUDA         no C++ kernels (msclr/ops/batch_norm.py lists the backends there are)
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace msclr {

// x (N, C, T, V) floating point with its joint mask (N, V).
inline void check_bn_x_mask(const char* op, const at::Tensor& x, const at::Tensor& mask) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be (N, C, T, V), got ", x.sizes());
  TORCH_CHECK(mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(3), op,
              ": mask must be (N, V) = (", x.size(0), ", ", x.size(3), "), got ", mask.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ", x.scalar_type());
}

// float64 for float64 x, else float32: the type of scale/shift and of the kernels' sums.
inline at::ScalarType bn_acc_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// A per-channel vector (C,) in the accumulation type (scale, shift).
inline void check_bn_channel_vec(const char* op, const char* name, const at::Tensor& t, int64_t C,
                                 at::ScalarType acc) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == C, op, ": ", name, " must be (", C, "), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == acc, op, ": ", name, " must be ", acc, " (the accumulation type of x), got ",
              t.scalar_type());
}

// masked_bn_stats_backward: grad of the (2, C) sums.
inline void check_bn_stats_grad(const at::Tensor& grad, int64_t C) {
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == 2 && grad.size(1) == C,
              "msclr::masked_bn_stats_backward: grad must be (2, ", C, "), got ", grad.sizes());
}

// masked_bn_apply: scale and shift (C,) in the accumulation type, residual like x; x and mask
// checked before (check_bn_x_mask).
inline void check_bn_apply_args(const char* op, const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift,
                                const std::optional<at::Tensor>& residual) {
  const auto acc = bn_acc_type(x);
  check_bn_channel_vec(op, "scale", scale, x.size(1), acc);
  check_bn_channel_vec(op, "shift", shift, x.size(1), acc);
  if (residual.has_value())
    TORCH_CHECK(residual->sizes() == x.sizes() && residual->scalar_type() == x.scalar_type(), op,
                ": residual must match x (", x.sizes(), ", ", x.scalar_type(), "), got ", residual->sizes(), ", ",
                residual->scalar_type());
}

// masked_bn_apply_backward: scale as in the forward; grad and out like x.
inline void check_bn_apply_backward_args(const char* op, const at::Tensor& grad, const at::Tensor& out,
                                         const at::Tensor& x, const at::Tensor& scale) {
  check_bn_channel_vec(op, "scale", scale, x.size(1), bn_acc_type(x));
  TORCH_CHECK(grad.sizes() == x.sizes() && out.sizes() == x.sizes(), op, ": grad and out must be ", x.sizes());
  TORCH_CHECK(grad.scalar_type() == x.scalar_type() && out.scalar_type() == x.scalar_type(), op,
              ": grad and out must have x's dtype ", x.scalar_type());
}

// Whether the call drops anything (a seed and p > 0); then p must be below 1 and the seed one
// int64 on the CPU (it is read on the host). The messages name masked_bn_apply for the backward too.
inline bool check_bn_dropout(const std::optional<at::Tensor>& seed, double p) {
  if (!seed.has_value() || p <= 0.0) return false;
  TORCH_CHECK(p < 1.0, "msclr::masked_bn_apply: dropout probability must be in [0, 1), got ", p);
  TORCH_CHECK(seed->numel() == 1 && seed->scalar_type() == at::kLong && seed->device().is_cpu(),
              "msclr::masked_bn_apply: seed must be one int64 element on the CPU");
  return true;
}

}  // namespace msclr
