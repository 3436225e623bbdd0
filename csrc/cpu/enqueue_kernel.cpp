// CPU kernel of msclr::enqueue_ and its registration: copy the keys into the ring buffer with
// wrap-around (schema in csrc/enqueue.cpp, argument checks in csrc/enqueue.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>

#include "../enqueue.h"
#include "common.h"

namespace msclr {

void enqueue_cpu(at::Tensor& queue, at::Tensor& ptr, const at::Tensor& keys) {
  check_enqueue_args(queue, ptr, keys);
  const int64_t Q = queue.size(0), B = keys.size(0);
  const int64_t row_bytes = queue.size(1) * queue.element_size();
  const int64_t start = ptr.data_ptr<int64_t>()[0];
  TORCH_CHECK(start >= 0 && start < Q, "msclr::enqueue_: ptr ", start, " is outside the queue of ", Q, " rows");
  auto* dst = static_cast<char*>(queue.data_ptr());
  const auto* src = static_cast<const char*>(keys.data_ptr());
  at::parallel_for(0, B, 64, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      std::memcpy(dst + ((start + b) % Q) * row_bytes, src + b * row_bytes, row_bytes);
    }
  });
  ptr.data_ptr<int64_t>()[0] = (start + B) % Q;
}

}  // namespace msclr

TORCH_LIBRARY_IMPL(msclr, CPU, m) { m.impl("enqueue_", &msclr::enqueue_cpu); }
