// Op schemas of the `msclr` namespace, declared once. Kernels register per
// dispatch key in csrc/cpu/*.cpp and csrc/cuda/*_register.cpp; fake (meta)
// and autograd registrations live in Python (msclr/ops/).
#include <torch/library.h>

TORCH_LIBRARY(msclr, m) {
  // Ring-buffer enqueue: rows ptr..ptr+B-1 (mod Q) of `queue` <- keys; ptr += B (mod Q).
  m.def("enqueue_(Tensor(a!) queue, Tensor(b!) ptr, Tensor keys) -> ()");
}
