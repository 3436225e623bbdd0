// Raw-pointer launcher of the msclr::enqueue_ CUDA kernel (enqueue_kernel.cu). No ATen here: .cu
// files stay fast to compile and independent of torch's headers (docs/architecture.md section 5);
// tensors, checks and registration live in enqueue_register.cpp.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

namespace msclr {

// queue: Q rows of row_bytes bytes; ptr: one int64 on the device, read and advanced by B mod Q.
cudaError_t enqueue_rows_cuda(void* queue, int64_t* ptr, const void* keys, int64_t B, int64_t Q, int64_t row_bytes,
                              cudaStream_t stream);

}  // namespace msclr
