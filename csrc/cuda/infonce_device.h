// Device helpers shared by the two streaming InfoNCE kernels (infonce_kernel.cu: SIMT fp32,
// infonce_tensor_core_kernel.cu: 16-bit tensor cores) and their common finalize kernel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "infonce_launchers.h"

namespace msclr {

__device__ __forceinline__ float neg_inf() { return -__int_as_float(0x7f800000); }

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// max that returns NaN when either is NaN (fmaxf drops a NaN), so that a NaN logit reaches the loss
// as it does in the reference's logsumexp.
__device__ __forceinline__ float nan_maxf(float a, float b) { return (a > b || a != a) ? a : b; }

// Running top-k list, sorted descending, held in registers (KMAX unrolled, K <= KMAX at run time;
// csrc/topk.h's topk_insert indexes the list at run time, which puts it in local memory).
// (v, i) enters before the first entry it beats; equal values keep the lower index first, so
// the list is the same whatever order the candidates come in. NaN never enters; empty slots
// hold (-inf, -1). Returns the new K-th value (the bar a later candidate has to clear).
template <int KMAX, typename Index>
__device__ __forceinline__ float topk_push(float v, Index i, float (&vals)[KMAX], Index (&idx)[KMAX], int K) {
  float kth = neg_inf();
#pragma unroll
  for (int r = 0; r < KMAX; ++r) {
    if (r < K && (v > vals[r] || (v == vals[r] && i >= 0 && (idx[r] < 0 || i < idx[r])))) {
      const float tv = vals[r];
      const Index ti = idx[r];
      vals[r] = v, idx[r] = i;
      v = tv, i = ti;
    }
    if (r == K - 1) kth = vals[r];
  }
  return kth;
}

// The queue rows [start, end) that split `split` streams: its tiles of `tile_rows`, clipped to the
// filled part of the ring buffer (read on the device: no host synchronisation).
struct QueueRange {
  int64_t start, end;
};
__device__ __forceinline__ QueueRange split_rows(const InfoNCEProblem& prob, int64_t split, int64_t tile_rows) {
  const int64_t filled = *prob.valid;
  const int64_t valid = filled < 0 ? 0 : (filled > prob.Q ? prob.Q : filled);
  const int64_t start = split * prob.tiles_per_split * tile_rows;
  const int64_t stop = start + prob.tiles_per_split * tile_rows;
  return {start, stop < valid ? stop : valid};
}

// Launches a streaming kernel (grid: query blocks of `block_rows` x queue splits) with `smem` bytes of
// dynamic shared memory; with blocks_per_sm it launches nothing and reports the kernel's occupancy.
template <typename T>
cudaError_t launch_streaming(void (*kernel)(InfoNCEProblem, const T*, InfoNCESplitState), int threads,
                             size_t smem, int64_t block_rows, const InfoNCEProblem& prob,
                             const InfoNCESplitState& state, cudaStream_t stream, int* blocks_per_sm) {
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  if (blocks_per_sm != nullptr) return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, kernel, threads, smem);
  const dim3 grid(static_cast<unsigned>((prob.N + block_rows - 1) / block_rows), static_cast<unsigned>(prob.splits));
  kernel<<<grid, threads, smem, stream>>>(prob, static_cast<const T*>(prob.queue), state);
  return cudaGetLastError();
}

// f(std::integral_constant<int, KMAX>{}) for the top-k capacity the kernels are compiled for: 0, 1
// (AimCLR's nearest neighbour) or kInfoNCECudaMaxTopk (any K up to it).
template <typename F>
cudaError_t with_topk_capacity(int k, F&& f) {
  if (k == 0) return f(std::integral_constant<int, 0>{});
  if (k == 1) return f(std::integral_constant<int, 1>{});
  return f(std::integral_constant<int, static_cast<int>(kInfoNCECudaMaxTopk)>{});
}

// f(static_cast<T*>(nullptr)) for the queue's element type T.
template <typename F>
cudaError_t with_queue_type(InfoNCEQueueDtype dtype, F&& f) {
  switch (dtype) {
    case InfoNCEQueueDtype::kFloat32:
      return f(static_cast<float*>(nullptr));
    case InfoNCEQueueDtype::kFloat16:
      return f(static_cast<__half*>(nullptr));
    case InfoNCEQueueDtype::kBFloat16:
      return f(static_cast<__nv_bfloat16*>(nullptr));
  }
  return cudaErrorInvalidValue;
}

}  // namespace msclr
