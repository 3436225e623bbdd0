// CUDA kernel of msclr::enqueue_. The pointer lives on the device, so the
// enqueue never synchronises with the host.
#include "launchers.h"

namespace msclr {
namespace {

// One block per key row; 4-byte words when the row allows it, bytes otherwise.
template <typename Word>
__global__ void copy_rows(char* __restrict__ queue, const int64_t* __restrict__ ptr, const char* __restrict__ keys,
                          int64_t Q, int64_t row_bytes) {
  const int64_t b = blockIdx.x;
  const int64_t row = (ptr[0] + b) % Q;
  auto* dst = reinterpret_cast<Word*>(queue + row * row_bytes);
  const auto* src = reinterpret_cast<const Word*>(keys + b * row_bytes);
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  for (int64_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
}

// Runs after copy_rows on the same stream, so every block has read the old pointer.
__global__ void advance(int64_t* ptr, int64_t B, int64_t Q) { ptr[0] = (ptr[0] + B) % Q; }

}  // namespace

cudaError_t enqueue_rows_cuda(void* queue, int64_t* ptr, const void* keys, int64_t B, int64_t Q, int64_t row_bytes,
                              cudaStream_t stream) {
  if (B > 0) {
    const int threads = 128;
    if (row_bytes % 4 == 0) {
      copy_rows<uint32_t><<<B, threads, 0, stream>>>(static_cast<char*>(queue), ptr, static_cast<const char*>(keys), Q,
                                                     row_bytes);
    } else {
      copy_rows<unsigned char><<<B, threads, 0, stream>>>(static_cast<char*>(queue), ptr,
                                                          static_cast<const char*>(keys), Q, row_bytes);
    }
  }
  advance<<<1, 1, 0, stream>>>(ptr, B, Q);
  return cudaGetLastError();
}

}  // namespace msclr
