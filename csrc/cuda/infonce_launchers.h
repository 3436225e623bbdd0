// Raw-pointer launchers of the msclr::infonce_queue CUDA kernels (csrc/cuda/infonce_kernel.cu).
// No ATen here: tensors, checks and registration live in infonce_register.cpp.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace msclr {

enum class InfoNCEQueueDtype { kFloat32, kFloat16, kBFloat16 };

// Queue rows per tile and queries per block of the streaming kernel (the host sizes the splits with them).
constexpr int64_t kInfoNCECudaQueueTile = 64;
constexpr int64_t kInfoNCECudaQueryBlock = 64;

// Dynamic shared memory of the streaming kernel for embedding width dmax (64 or 128): queries
// (and q2) [64][dmax+1], one queue tile [64][dmax+1], exp-weights (and q2's) [64][65], floats.
// One formula for the launch and for the registration's check against the device's limit.
constexpr int64_t infonce_stream_smem_bytes(int64_t dmax, bool has_q2) {
  return 4 * ((has_q2 ? 2 : 1) * kInfoNCECudaQueryBlock * (dmax + 1) + kInfoNCECudaQueueTile * (dmax + 1) +
              (has_q2 ? 2 : 1) * kInfoNCECudaQueryBlock * (kInfoNCECudaQueueTile + 1));
}
// Largest embedding dimension the CUDA kernels accept (accumulators live in registers).
constexpr int64_t kInfoNCECudaMaxDim = 128;

// Per-split running state, arrays indexed [split][query] (a, a2: [split][query][d]; topv/topi:
// [split][query][r]), written by the streaming kernel and read by the finalize kernel.
struct InfoNCESplitState {
  float* m;
  float* l;
  float* t;
  float* m2;
  float* l2;
  float* a;   // nullptr without with_grad
  float* a2;  // nullptr without q2 or with_grad
  float* topv;
  int64_t* topi;
};

struct InfoNCEProblem {
  const float* q;   // (N, D) float32
  const float* q2;  // (N, D) float32 or nullptr
  const float* k;   // (N, P, D) float32
  const void* queue;  // (Q, D) in `queue_dtype`, read in place
  const int64_t* valid;  // one int64 on the device: rows >= valid are ignored
  int64_t N, P, Q, D;
  float inv_tau;
  int topk;  // 0..16
  bool with_grad;
  int64_t splits, tiles_per_split;
};

struct InfoNCEOutputs {
  float* losses;
  float* lse;
  int64_t* topk_idx;
  float* div;  // nullptr without q2
  float* dq;   // nullptr without with_grad
  float* dq2;  // nullptr without q2 or with_grad
};

// Streams the queue (grid: query blocks x splits) into `state`, then merges the splits and writes `out`.
cudaError_t infonce_queue_cuda_launch(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype,
                                      const InfoNCESplitState& state, const InfoNCEOutputs& out,
                                      cudaStream_t stream);

}  // namespace msclr
