// CUDA registration of msclr::enqueue_: tensors in, raw pointers and the current stream out to
// enqueue_kernel.cu (schema in csrc/enqueue.cpp, argument checks in csrc/enqueue.h).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../enqueue.h"
#include "enqueue_launchers.h"

namespace msclr {

void enqueue_cuda(at::Tensor& queue, at::Tensor& ptr, const at::Tensor& keys) {
  check_enqueue_args(queue, ptr, keys);
  const c10::cuda::CUDAGuard guard(queue.device());
  const cudaError_t err =
      enqueue_rows_cuda(queue.data_ptr(), ptr.data_ptr<int64_t>(), keys.data_ptr(), keys.size(0), queue.size(0),
                        queue.size(1) * queue.element_size(), c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "msclr::enqueue_ (CUDA): ", cudaGetErrorString(err));
}

}  // namespace msclr

TORCH_LIBRARY_IMPL(msclr, CUDA, m) { m.impl("enqueue_", &msclr::enqueue_cuda); }
