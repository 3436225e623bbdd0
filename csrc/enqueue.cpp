// msclr::enqueue_: the op schema. Kernels register per dispatch key in
// csrc/cpu/enqueue_kernel.cpp and csrc/cuda/enqueue_register.cpp; the fake (meta) registration
// lives in msclr/ops/enqueue.py.
#include <torch/library.h>

#include "enqueue.h"

TORCH_LIBRARY_FRAGMENT(msclr, m) {
  // Ring-buffer enqueue: rows ptr..ptr+B-1 (mod Q) of `queue` <- keys; ptr += B (mod Q).
  m.def("enqueue_(Tensor(a!) queue, Tensor(b!) ptr, Tensor keys) -> ()");
}
