// msclr::masked_graph_conv(_backward) (docs/architecture.md 3.1): the argument checks shared by
// the CPU and CUDA registrations (host code only; the messages name the offending tensor).
//
//   schemas      csrc/graph_conv.cpp
//   CPU kernels  csrc/cpu/graph_conv_kernel.cpp (+ registration)
//   CUDA         csrc/cuda/graph_conv_kernel.cu (raw pointers), csrc/cuda/graph_conv_launchers.h,
//                csrc/cuda/graph_conv_register.cpp (tensors, checks, launches, registration)
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace msclr {

struct GraphConvShape {
  int64_t N, C, T, V, L, K, O;
};

inline GraphConvShape check_graph_conv_args(const char* op, const at::Tensor& x, const at::Tensor& layout,
                                            const at::Tensor& A, const at::Tensor& weight,
                                            const std::optional<at::Tensor>& bias,
                                            const std::optional<at::Tensor>& importance) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be (N, C_in, T, V), got shape ", x.sizes());
  const int64_t N = x.size(0), C = x.size(1), T = x.size(2), V = x.size(3);
  TORCH_CHECK(A.dim() == 4 && A.size(2) == V && A.size(3) == V, op, ": A must be (L, K, ", V, ", ", V, "), got ",
              A.sizes());
  const int64_t L = A.size(0), K = A.size(1);
  TORCH_CHECK(weight.dim() == 3 && weight.size(0) == K && weight.size(2) == C, op, ": weight must be (", K,
              ", C_out, ", C, "), got ", weight.sizes());
  const int64_t O = weight.size(1);
  TORCH_CHECK(layout.dim() == 1 && layout.size(0) == N && layout.scalar_type() == at::kLong, op,
              ": layout must be int64 of shape (", N, ",), got ", layout.scalar_type(), " ", layout.sizes());
  const auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16 || dt == at::kDouble, op,
              ": x must be float32, float16, bfloat16 or float64, got ", dt);
  TORCH_CHECK(at::isFloatingType(A.scalar_type()) && at::isFloatingType(weight.scalar_type()), op,
              ": A and weight must be floating point, got ", A.scalar_type(), " and ", weight.scalar_type());
  const auto dev = x.device();
  TORCH_CHECK(layout.device() == dev && A.device() == dev && weight.device() == dev, op,
              ": x, layout, A and weight must be on one device, got ", dev, ", ", layout.device(), ", ", A.device(),
              ", ", weight.device());
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 2 && bias->size(0) == K && bias->size(1) == O, op, ": bias must be (", K, ", ", O,
                "), got ", bias->sizes());
    TORCH_CHECK(bias->device() == dev && at::isFloatingType(bias->scalar_type()), op,
                ": bias must be a floating tensor on ", dev);
  }
  if (importance.has_value()) {
    TORCH_CHECK(importance->sizes() == A.sizes(), op, ": importance must be ", A.sizes(), " like A, got ",
                importance->sizes());
    TORCH_CHECK(importance->device() == dev && at::isFloatingType(importance->scalar_type()), op,
                ": importance must be a floating tensor on ", dev);
  }
  return {N, C, T, V, L, K, O};
}

inline void check_graph_conv_grad(const char* op, const at::Tensor& grad, const GraphConvShape& s,
                                  const at::Tensor& x) {
  TORCH_CHECK(grad.dim() == 4 && grad.size(0) == s.N && grad.size(1) == s.O && grad.size(2) == s.T &&
                  grad.size(3) == s.V,
              op, ": grad must be (", s.N, ", ", s.O, ", ", s.T, ", ", s.V, "), got ", grad.sizes());
  TORCH_CHECK(grad.device() == x.device(), op, ": grad must be on ", x.device(), ", got ", grad.device());
}

}  // namespace msclr
