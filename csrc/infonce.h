// msclr::infonce_queue (docs/architecture.md 3.2): the argument checks and the output allocation
// shared by the CPU and CUDA registrations (host code only).
//
//   schema       csrc/infonce.cpp
//   CPU kernel   csrc/cpu/infonce_kernel.cpp (+ registration)
//   CUDA         csrc/cuda/infonce_kernel.cu (raw pointers), csrc/cuda/infonce_launchers.h,
//                csrc/cuda/infonce_register.cpp (tensors, checks, launches, registration)
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <utility>
#include <vector>

namespace msclr {

// Checks every backend makes, with the same messages; backend limits (dtype, D) are checked by the
// backend's own registration after this.
inline void check_infonce_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& queue,
                               const at::Tensor& valid, double tau, int64_t topk, const std::optional<at::Tensor>& q2) {
  TORCH_CHECK(q.dim() == 2, "msclr::infonce_queue: q must be (N, D), got ", q.sizes());
  const int64_t N = q.size(0), D = q.size(1);
  TORCH_CHECK(k.dim() == 3 && k.size(0) == N && k.size(2) == D, "msclr::infonce_queue: k must be (", N, ", P, ", D,
              "), got ", k.sizes());
  TORCH_CHECK(k.size(1) >= 1, "msclr::infonce_queue: k needs at least one positive per query (P >= 1)");
  TORCH_CHECK(queue.dim() == 2 && queue.size(1) == D, "msclr::infonce_queue: queue must be (Q, ", D, "), got ",
              queue.sizes());
  TORCH_CHECK(queue.is_contiguous(), "msclr::infonce_queue: the queue must be contiguous (it is read in place)");
  TORCH_CHECK(valid.numel() == 1 && valid.scalar_type() == at::kLong,
              "msclr::infonce_queue: valid must be one int64 element (the number of filled queue rows), got ",
              valid.scalar_type(), " with ", valid.numel(), " elements");
  TORCH_CHECK(tau > 0, "msclr::infonce_queue: tau must be > 0, got ", tau);
  TORCH_CHECK(topk >= 0 && topk <= 16, "msclr::infonce_queue: topk must be in 0..16, got ", topk);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"q", &q}, {"k", &k}, {"queue", &queue}}) {
    const auto st = t->scalar_type();
    TORCH_CHECK(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
                "msclr::infonce_queue: ", name, " must be float32/float16/bfloat16/float64, got ", st);
    TORCH_CHECK(t->device() == queue.device(), "msclr::infonce_queue: ", name, " is on ", t->device(),
                " but the queue is on ", queue.device());
  }
  if (q2.has_value()) {
    TORCH_CHECK(q2->sizes() == q.sizes(), "msclr::infonce_queue: q2 must have q's shape ", q.sizes(), ", got ",
                q2->sizes());
    TORCH_CHECK(q2->device() == queue.device(), "msclr::infonce_queue: q2 is on ", q2->device(),
                " but the queue is on ", queue.device());
    const auto st = q2->scalar_type();
    TORCH_CHECK(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
                "msclr::infonce_queue: q2 must be float32/float16/bfloat16/float64, got ", st);
  }
}

// The six outputs, allocated with the reference's conventions (empty tensors where not asked for).
inline std::vector<at::Tensor> alloc_infonce_outputs(const at::Tensor& q, int64_t topk, bool has_q2,
                                                     bool with_grad) {
  const int64_t N = q.size(0), D = q.size(1);
  const auto acc = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto opts = q.options().dtype(acc);
  return {at::empty({N}, opts),
          at::empty({N}, opts),
          at::empty({N, topk}, q.options().dtype(at::kLong)),
          at::empty({has_q2 ? N : 0}, opts),
          with_grad ? at::empty({N, D}, opts) : at::empty({0}, opts),
          with_grad && has_q2 ? at::empty({N, D}, opts) : at::empty({0}, opts)};
}

}  // namespace msclr
