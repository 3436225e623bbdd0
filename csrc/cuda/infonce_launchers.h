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
constexpr int64_t kInfoNCECudaMaxTopk = 16;

// The tensor-core kernel (infonce_tensor_core_kernel.cu; sm_80+; 16-bit queue and queries, or fp32
// ones with TF32 allowed): row strides in elements of its shared arrays, padded by 16 bytes against
// bank conflicts and kept multiples of 16 bytes (WMMA tiles must start 32-byte aligned: 16 rows of
// any of them are).
constexpr int64_t infonce_tensor_core_row(int64_t elem_bytes) {  // q, q2, queue tiles
  return kInfoNCECudaMaxDim + 16 / elem_bytes;
}
constexpr int64_t kInfoNCETensorCoreRowLogits = kInfoNCECudaQueueTile + 4;   // logits (fp32)
constexpr int64_t kInfoNCETensorCoreRowWeights = kInfoNCECudaQueueTile + 8;  // exp-weights (16-bit)
// Its dynamic shared memory: queries (and q2), two queue tiles, the logits and, in 16 bits, the
// exp-weights (fp32 writes them over the logits). 16-bit: 94 KiB with q2, 77 KiB without (within
// sm_86/89's 99 KiB); fp32: 149 / 116 KiB (sm_80/90 only).
constexpr int64_t infonce_tensor_core_smem_bytes(int64_t elem_bytes, bool has_q2) {
  return elem_bytes * ((has_q2 ? 2 : 1) * kInfoNCECudaQueryBlock + 2 * kInfoNCECudaQueueTile) *
             infonce_tensor_core_row(elem_bytes) +
         4 * kInfoNCECudaQueryBlock * kInfoNCETensorCoreRowLogits +
         (elem_bytes == 4 ? 0 : elem_bytes * kInfoNCECudaQueryBlock * kInfoNCETensorCoreRowWeights);
}

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
  int topk;  // 0..kInfoNCECudaMaxTopk
  bool with_grad;
  bool tensor_cores;  // the tensor-core kernel (sm_80+, Q < 2^31; 16-bit, or fp32 with TF32 allowed)
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

// How many blocks of the streaming kernel `prob` selects fit on one SM (occupancy API): the host
// sizes the splits so that the grid is one full wave. prob.splits is not read.
cudaError_t infonce_stream_blocks_per_sm(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype, int* blocks);

// The virtual architecture (x10) the tensor-core kernel's code for the current device was compiled
// for, 0 if none: it needs >= 80 (else the host takes the SIMT kernel).
int infonce_tensor_core_binary_arch();

// The tensor-core streaming kernel alone (infonce_tensor_core_kernel.cu); with blocks_per_sm it
// launches nothing and reports its occupancy instead.
cudaError_t infonce_tensor_core_stream_launch(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype,
                                              const InfoNCESplitState& state, cudaStream_t stream,
                                              int* blocks_per_sm);

}  // namespace msclr
