// Running top-K list of the CPU InfoNCE kernel (nearest-neighbour mining). The CUDA kernels keep
// theirs in registers (cuda/infonce_device.h, topk_push) with the same rule: among equal values
// the lower queue index comes first.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define MSCLR_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MSCLR_HOST_DEVICE inline
#endif

namespace msclr {

// Insert (v, index) into the descending list (vals, idx) of length K if it beats the last entry.
// Strict comparisons: among equal values the earlier-inserted (lower queue index) entry stays first.
template <typename T, typename Int>
MSCLR_HOST_DEVICE void topk_insert(T v, int64_t index, T* vals, int64_t* idx, Int K) {
  if (!(v > vals[K - 1])) return;
  Int pos = K - 1;
  while (pos > 0 && vals[pos - 1] < v) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    --pos;
  }
  vals[pos] = v;
  idx[pos] = index;
}

}  // namespace msclr
