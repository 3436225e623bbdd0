// msclr::masked_graph_conv(_backward): the op schemas (docs/architecture.md 3.1). Kernels
// register per dispatch key in csrc/cpu/graph_conv_kernel.cpp and csrc/cuda/graph_conv_register.cpp;
// fake (meta) and autograd registrations live in msclr/ops/graph_conv.py.
#include <torch/library.h>

#include "graph_conv.h"

TORCH_LIBRARY_FRAGMENT(msclr, m) {
  // Masked spatial graph convolution over per-sample layouts; see msclr.ops.masked_graph_conv.
  m.def(
      "masked_graph_conv(Tensor x, Tensor layout, Tensor A, Tensor weight, Tensor? bias, Tensor? importance) "
      "-> Tensor");
  // Gradients (x, weight, bias, importance); bias/importance gradients are zeros when absent.
  m.def(
      "masked_graph_conv_backward(Tensor grad, Tensor x, Tensor layout, Tensor A, Tensor weight, Tensor? bias, "
      "Tensor? importance) -> (Tensor, Tensor, Tensor, Tensor)");
}
