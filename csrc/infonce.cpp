// msclr::infonce_queue: the op schema (docs/architecture.md 3.2). Kernels register per dispatch
// key in csrc/cpu/infonce_kernel.cpp and csrc/cuda/infonce_register.cpp; fake (meta) and autograd
// registrations live in msclr/ops/infonce.py.
#include <torch/library.h>

#include "infonce.h"

TORCH_LIBRARY_FRAGMENT(msclr, m) {
  // losses (N,), lse (N,), topk_idx (N, topk) int64 (-1 where fewer valid entries), div (N,) or
  // empty, dq (N, D) = d losses_i / d q_i or empty, dq2 (N, D) = d div_i / d q2_i or empty.
  // Float outputs are float32 (float64 for float64 q). Rows >= valid of the queue are ignored.
  m.def(
      "infonce_queue(Tensor q, Tensor k, Tensor queue, Tensor valid, float tau, int topk, Tensor? q2, "
      "bool with_grad) -> (Tensor losses, Tensor lse, Tensor topk_idx, Tensor div, Tensor dq, Tensor dq2)");
}
