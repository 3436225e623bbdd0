// CUDA kernel of msclr::enqueue_. The pointer lives on the device, so the
// enqueue never synchronises with the host.
#include <cstdint>

#include "enqueue_launchers.h"

namespace msclr {
namespace {

// ptr is device state the host cannot check without a sync: take it modulo Q (floor, as
// Python's %), so a corrupted pointer still lands inside the queue instead of out of bounds.
__device__ __forceinline__ int64_t ring_row(int64_t p, int64_t Q) {
  const int64_t r = p % Q;
  return r < 0 ? r + Q : r;
}

// One block per key row, copied in the widest word that both rows' addresses allow.
template <typename Word>
__global__ void copy_rows(char* __restrict__ queue, const int64_t* __restrict__ ptr, const char* __restrict__ keys,
                          int64_t Q, int64_t row_bytes) {
  const int64_t b = blockIdx.x;
  const int64_t row = ring_row(ptr[0] + b, Q);
  auto* dst = reinterpret_cast<Word*>(queue + row * row_bytes);
  const auto* src = reinterpret_cast<const Word*>(keys + b * row_bytes);
  const int64_t words = row_bytes / static_cast<int64_t>(sizeof(Word));
  for (int64_t i = threadIdx.x; i < words; i += blockDim.x) dst[i] = src[i];
}

// Runs after copy_rows on the same stream, so every block has read the old pointer.
__global__ void advance(int64_t* ptr, int64_t B, int64_t Q) { ptr[0] = ring_row(ptr[0] + B, Q); }

// Every row starts at base + k * row_bytes: a word size serves when both bases and the row
// length are multiples of it (an odd-offset bf16 view of a queue is not 4-byte aligned).
bool aligned_to(const void* queue, const void* keys, int64_t row_bytes, int64_t word) {
  const auto q = reinterpret_cast<std::uintptr_t>(queue), k = reinterpret_cast<std::uintptr_t>(keys);
  return q % word == 0 && k % word == 0 && row_bytes % word == 0;
}

}  // namespace

cudaError_t enqueue_rows_cuda(void* queue, int64_t* ptr, const void* keys, int64_t B, int64_t Q, int64_t row_bytes,
                              cudaStream_t stream) {
  if (B > 0) {
    const int threads = 128;
    auto* q = static_cast<char*>(queue);
    const auto* k = static_cast<const char*>(keys);
    if (aligned_to(queue, keys, row_bytes, 16)) {
      copy_rows<uint4><<<B, threads, 0, stream>>>(q, ptr, k, Q, row_bytes);
    } else if (aligned_to(queue, keys, row_bytes, 4)) {
      copy_rows<uint32_t><<<B, threads, 0, stream>>>(q, ptr, k, Q, row_bytes);
    } else {
      copy_rows<unsigned char><<<B, threads, 0, stream>>>(q, ptr, k, Q, row_bytes);
    }
  }
  advance<<<1, 1, 0, stream>>>(ptr, B, Q);
  return cudaGetLastError();
}

}  // namespace msclr
