// msclr::enqueue_ (docs/architecture.md 3.4): the argument checks shared by the CPU and CUDA
// registrations (host code only).
//
//   schema       csrc/enqueue.cpp
//   CPU kernel   csrc/cpu/enqueue_kernel.cpp (+ registration)
//   CUDA         csrc/cuda/enqueue_kernel.cu (raw pointers), csrc/cuda/enqueue_launchers.h,
//                csrc/cuda/enqueue_register.cpp (tensors, checks, launch, registration)
#pragma once
#include <ATen/ATen.h>

namespace msclr {

inline void check_enqueue_args(const at::Tensor& queue, const at::Tensor& ptr, const at::Tensor& keys) {
  TORCH_CHECK(queue.dim() == 2 && keys.dim() == 2 && keys.size(1) == queue.size(1),
              "msclr::enqueue_: queue (Q, D) and keys (B, D) expected, got ", queue.sizes(), " and ", keys.sizes());
  TORCH_CHECK(keys.size(0) <= queue.size(0), "msclr::enqueue_: ", keys.size(0), " keys do not fit a queue of ",
              queue.size(0));
  TORCH_CHECK(queue.scalar_type() == keys.scalar_type(), "msclr::enqueue_: keys dtype ", keys.scalar_type(),
              " differs from the queue's ", queue.scalar_type());
  TORCH_CHECK(queue.is_contiguous() && keys.is_contiguous(), "msclr::enqueue_: queue and keys must be contiguous");
  TORCH_CHECK(ptr.numel() == 1 && ptr.scalar_type() == at::kLong, "msclr::enqueue_: ptr must be one int64 element");
  TORCH_CHECK(queue.device() == keys.device() && queue.device() == ptr.device(),
              "msclr::enqueue_: queue, ptr and keys must be on one device");
}

}  // namespace msclr
