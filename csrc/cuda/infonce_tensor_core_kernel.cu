// Tensor-core streaming kernel of msclr::infonce_queue (docs/architecture.md 3.2).
//
// Same per-split state as infonce_stream_kernel (infonce_kernel.cu), which also finalizes; taken on
// sm_80+ when the queue is float16/bfloat16 and the queries share its dtype (so converting them is
// exact), or when all are float32 and torch allows TF32 in matmuls
// (torch.backends.cuda.matmul.allow_tf32, off by default: the SIMT kernel computes in fp32 then).
// The two products of a queue tile run on tensor cores (WMMA m16n16k16 in 16 bits, m16n16k8 in
// TF32, fp32 accumulation):
//
//   logits  S = q . tile^T            (64 queries x 64 queue rows, per warp 16 x 64)
//   a      += exp(S/tau - m) . tile   (the dq accumulator, 16 x D per warp, kept in fragments)
//
// Block: 4 warps, 64 queries (16 rows per warp), queue tiles of 64 rows double-buffered in shared
// memory by cp.async (16-byte copies when rows and base are 16-byte aligned, else plain loads).
// Every step after the tile lands is warp-local: a warp's logits go to its 16 rows of shared memory,
// and two lanes per row (32 logits each) read them twice, for the max and top-k, then for the
// exp-weights, which they write in the storage type for the second product (flash-attention's
// choice; the sums l stay fp32; in fp32 over the logits, in place). Holding no logits in registers leaves them to the accumulators (a and, for
// AimCLR, a2: 2 x 64 per lane at D = 128). AimCLR's cross term t = sum_j exp(u_j - m) u2_j equals
// q2 . a / tau, so it comes from the accumulator after the last tile instead of a per-tile sum.
// Rescaling the accumulator fragments by a per-row factor needs each fragment element's row; WMMA
// leaves that layout opaque, so it is read once from a fragment loaded from a matrix whose entries
// are their own row numbers.
//
// Precision against the SIMT and Triton kernels: the logits are the same up to fp32 summation order;
// a and a2 use 16-bit weights (relative error 2^-9 in bf16, 2^-12 in fp16), and so does the cross
// term, which the others sum from fp32 weights: its error in the divergence is at most
// 2^-9 max|u2| in bf16 (0.03 at tau = 0.07 for unit vectors), typically far less. With a
// non-finite queue row t follows a (NaN) where the others skip zero weights. TF32 rounds queries,
// queue rows and weights to 10 mantissa bits (relative 2^-11), as torch's TF32 matmuls do.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <mma.h>

#include <cstdint>
#include <type_traits>

#include "infonce_device.h"
#include "infonce_launchers.h"

namespace msclr {
namespace {

using namespace nvcuda;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int BM = static_cast<int>(kInfoNCECudaQueryBlock);  // 64 queries: 16 per warp
constexpr int BQ = static_cast<int>(kInfoNCECudaQueueTile);   // 64 queue rows per tile
constexpr int DMAX = static_cast<int>(kInfoNCECudaMaxDim);    // 128
constexpr int RW = 16;                                        // query rows per warp
constexpr int LDS = static_cast<int>(kInfoNCETensorCoreRowLogits);  // fp32 logit rows
constexpr int NF = DMAX / 16;  // accumulator fragments per warp (16 x 16 each)
constexpr int LANE_COLS = BQ / 2;  // logits per lane: lanes 2r and 2r+1 share row r of the warp's 16
static_assert(BM == kWarps * RW, "one warp per 16 query rows");

// Per storage type T: the WMMA element type, the k-depth of one product, the row strides of the
// q / q2 / tile arrays (LDH) and of the exp-weights (LDE; fp32 writes them over the logits).
template <typename T>
struct Mma {
  using Elem = T;
  static constexpr int K = 16;
  static constexpr int LDH = static_cast<int>(infonce_tensor_core_row(sizeof(T)));
  static constexpr int LDE = static_cast<int>(kInfoNCETensorCoreRowWeights);
};
template <>
struct Mma<float> {
  using Elem = wmma::precision::tf32;
  static constexpr int K = 8;
  static constexpr int LDH = static_cast<int>(infonce_tensor_core_row(sizeof(float)));
  static constexpr int LDE = LDS;
};

template <typename T>
using FragC = wmma::fragment<wmma::accumulator, 16, 16, Mma<T>::K, float>;
template <typename T, typename Layout>
using FragA = wmma::fragment<wmma::matrix_a, 16, 16, Mma<T>::K, typename Mma<T>::Elem, Layout>;
template <typename T, typename Layout>
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, Mma<T>::K, typename Mma<T>::Elem, Layout>;
constexpr int FE = FragC<float>::num_elements;
static_assert(FragC<__half>::num_elements == FE, "one accumulator layout per fragment size");

// Loads an operand fragment; fp32 values are rounded to TF32 as the tensor cores require.
template <typename T, typename Frag>
__device__ __forceinline__ void load_operand(Frag& f, const T* p, int ldm) {
  wmma::load_matrix_sync(f, p, ldm);
  if constexpr (std::is_same_v<T, float>) {
#pragma unroll
    for (int e = 0; e < f.num_elements; ++e) f.x[e] = wmma::__float_to_tf32(f.x[e]);
  }
}

__device__ __forceinline__ float pair_max(float v) { return nan_maxf(v, __shfl_xor_sync(0xffffffffu, v, 1)); }
__device__ __forceinline__ float pair_sum(float v) { return v + __shfl_xor_sync(0xffffffffu, v, 1); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Four consecutive weights: one float4, or two 16-bit pairs.
__device__ __forceinline__ void store4(float* p, float a, float b, float c, float d) {
  *reinterpret_cast<float4*>(p) = make_float4(a, b, c, d);
}
__device__ __forceinline__ void store4(__half* p, float a, float b, float c, float d) {
  __half2* h = reinterpret_cast<__half2*>(p);
  h[0] = __floats2half2_rn(a, b);
  h[1] = __floats2half2_rn(c, d);
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, float a, float b, float c, float d) {
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(p);
  h[0] = __floats2bfloat162_rn(a, b);
  h[1] = __floats2bfloat162_rn(c, d);
}

// One queue tile [BQ][LDH] of rows [j0, end): 16-byte cp.async copies when `async16` (rows of a whole
// number of 16-byte chunks and a 16-byte aligned queue; the columns >= D were zeroed once), else
// plain loads.
template <typename T>
__device__ __forceinline__ void load_tile(T* dst, const T* __restrict__ queue, int64_t j0, int64_t end, int D,
                                          bool async16) {
  constexpr int LDH = Mma<T>::LDH, PER_CHUNK = 16 / sizeof(T);
  if (async16) {
    const int chunks = D / PER_CHUNK;
    for (int x = threadIdx.x; x < BQ * chunks; x += kThreads) {
      const int r = x / chunks, c = x - r * chunks;
      T* d = dst + r * LDH + c * PER_CHUNK;
      if (j0 + r < end)
        __pipeline_memcpy_async(d, queue + (j0 + r) * D + c * PER_CHUNK, 16);
      else
        *reinterpret_cast<uint4*>(d) = make_uint4(0u, 0u, 0u, 0u);
    }
  } else {
    for (int x = threadIdx.x; x < BQ * DMAX; x += kThreads) {
      const int r = x / DMAX, d = x - r * DMAX;
      dst[r * LDH + d] = (j0 + r < end && d < D) ? queue[(j0 + r) * D + d] : from_float<T>(0.f);
    }
  }
}

// S = rows (16 x D) . tile^T (D x 64) on tensor cores, written to this warp's 16 logit rows.
template <typename T>
__device__ __forceinline__ void warp_logits(const T* rows, const T* tile, float* out, int ksteps) {
  constexpr int KD = Mma<T>::K, LDH = Mma<T>::LDH;
#pragma unroll
  for (int n = 0; n < BQ / 16; ++n) {
    FragC<T> c;
    wmma::fill_fragment(c, 0.f);
#pragma unroll
    for (int k = 0; k < DMAX / KD; ++k) {
      if (k < ksteps) {
        FragA<T, wmma::row_major> a;
        FragB<T, wmma::col_major> b;  // tile^T: column j = queue row j
        load_operand(a, rows + k * KD, LDH);
        load_operand(b, tile + n * 16 * LDH + k * KD, LDH);
        wmma::mma_sync(c, a, b, c);
      }
    }
    wmma::store_matrix_sync(out + n * 16, c, LDS, wmma::mem_row_major);
  }
}

// acc = acc * scale(row) + weights (16 x 64) . tile (64 x D); scale[e] is the factor of element e's row.
// One weights fragment live at a time (k outer): the registers go to the accumulators.
template <typename T>
__device__ __forceinline__ void warp_accumulate(FragC<T> (&acc)[NF], const float (&scale)[FE], const T* weights,
                                                const T* tile, int D) {
  constexpr int KD = Mma<T>::K, LDH = Mma<T>::LDH;
  // TF32 takes twice the k-steps: unrolled, their operands spilled beside AimCLR's two accumulators
  constexpr int kUnroll = std::is_same_v<T, float> ? 1 : BQ / KD;
#pragma unroll
  for (int n = 0; n < NF; ++n)
#pragma unroll
    for (int e = 0; e < FE; ++e) acc[n].x[e] *= scale[e];
#pragma unroll kUnroll
  for (int k = 0; k < BQ / KD; ++k) {
    FragA<T, wmma::row_major> a;
    load_operand(a, weights + k * KD, Mma<T>::LDE);
#pragma unroll
    for (int n = 0; n < NF; ++n) {
      if (n * 16 < D) {
        FragB<T, wmma::row_major> b;
        load_operand(b, tile + k * KD * LDH + n * 16, LDH);
        wmma::mma_sync(acc[n], a, b, acc[n]);
      }
    }
  }
}

// A lane reads 32 of its row's 64 logits, as 8 float4 at columns 4g..4g+3, g = half + 2i.
__device__ __forceinline__ int lane_column(int i, int half) { return 4 * (half + 2 * i); }

// Pass 1 over this warp's logit row: max of (logit / tau) over the columns before the split's end,
// and those logits offered to the lane's running top-k.
template <int KR, bool TOPK>
__device__ __forceinline__ float row_max(const float* row, int half, int ncols, float inv_tau, int j0, bool rank,
                                         float (&best_v)[KR], int (&best_i)[KR], float& kth, int K) {
  float mx = neg_inf();
#pragma unroll
  for (int i = 0; i < LANE_COLS / 4; ++i) {
    const int c = lane_column(i, half);
    const float4 v = *reinterpret_cast<const float4*>(row + c);
    const float w[4] = {v.x * inv_tau, v.y * inv_tau, v.z * inv_tau, v.w * inv_tau};
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      if (c + x < ncols) {
        mx = nan_maxf(mx, w[x]);
        if (TOPK && rank && w[x] > kth) kth = topk_push<KR, int>(w[x], j0 + c + x, best_v, best_i, K);
      }
    }
  }
  return mx;
}

// Online softmax step of one row (the two lanes together; same guards as infonce_stream_kernel:
// NaN sticks, all -inf keeps the sums 0). Pass 2 over the logit row writes the exp-weights
// exp(u - m_new) in T (0 past the end), m and l are updated; returns the rescale factor of the
// previous state.
template <typename T>
__device__ __forceinline__ float online_softmax(const float* row, T* weights, int half, int ncols, float inv_tau,
                                                float mx, float& m, float& l) {
  const float m_new = nan_maxf(m, pair_max(mx));
  const float sh = m_new == neg_inf() ? 0.f : m_new;
  const float alpha = m_new == neg_inf() ? 1.f : __expf(m - m_new);
  float rs = 0.f;
#pragma unroll
  for (int i = 0; i < LANE_COLS / 4; ++i) {
    const int c = lane_column(i, half);
    const float4 v = *reinterpret_cast<const float4*>(row + c);
    const float e0 = c + 0 < ncols ? __expf(v.x * inv_tau - sh) : 0.f;
    const float e1 = c + 1 < ncols ? __expf(v.y * inv_tau - sh) : 0.f;
    const float e2 = c + 2 < ncols ? __expf(v.z * inv_tau - sh) : 0.f;
    const float e3 = c + 3 < ncols ? __expf(v.w * inv_tau - sh) : 0.f;
    rs += (e0 + e1) + (e2 + e3);
    store4(weights + c, e0, e1, e2, e3);
  }
  l = l * alpha + pair_sum(rs);
  m = m_new;
  return alpha;
}

// The factor of each accumulator element's row: lanes 2r and 2r+1 hold row r's factor.
__device__ __forceinline__ void row_factors(float f, const int (&row_of)[FE], float (&scale)[FE]) {
#pragma unroll
  for (int e = 0; e < FE; ++e) scale[e] = __shfl_sync(0xffffffffu, f, 2 * row_of[e]);
}

// Accumulator fragments -> `stage` (16 x DMAX floats of this warp, row-major).
template <typename T>
__device__ __forceinline__ void stage_accumulator(const FragC<T> (&acc)[NF], float* stage) {
#pragma unroll
  for (int n = 0; n < NF; ++n) wmma::store_matrix_sync(stage + n * 16, acc[n], DMAX, wmma::mem_row_major);
  __syncwarp();
}

// The first `rows` (<= 16) staged rows -> dst (row stride D).
__device__ __forceinline__ void write_staged(const float* stage, float* __restrict__ dst, int64_t rows, int D,
                                             int lane) {
  for (int x = lane; x < RW * D; x += 32) {
    const int r = x / D, d = x - r * D;
    if (r < rows) dst[static_cast<int64_t>(r) * D + d] = stage[r * DMAX + d];
  }
}

// At least two resident blocks still allows 255 registers; without the minimum, ptxas capped the
// plain variant at 128 registers and spilled.
template <typename T, bool HAS_Q2, int KMAX>
__global__ void __launch_bounds__(kThreads, 2)
    infonce_tensor_core_kernel(InfoNCEProblem prob, const T* __restrict__ queue, InfoNCESplitState st) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // the host takes this kernel only on sm_80+ (bfloat16 WMMA, cp.async)
#else
  extern __shared__ __align__(128) unsigned char smem[];
  constexpr int LDH = Mma<T>::LDH, LDE = Mma<T>::LDE;
  constexpr bool kFp32 = std::is_same_v<T, float>;
  T* qs = reinterpret_cast<T*>(smem);                  // [BM][LDH] queries (exact: they share T)
  T* q2s = qs + (HAS_Q2 ? BM * LDH : 0);               // [BM][LDH] (q2s = qs without HAS_Q2)
  T* tiles = q2s + BM * LDH;                           // [2][BQ][LDH] double-buffered queue tiles
  float* ss = reinterpret_cast<float*>(tiles + 2 * BQ * LDH);  // [BM][LDS] logits
  // [BM][LDE] exp-weights; in fp32 the logits' own array (each lane overwrites what it has read)
  T* es = kFp32 ? reinterpret_cast<T*>(ss) : reinterpret_cast<T*>(ss + BM * LDS);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int rr = lane / 2, half = lane % 2;  // this lane's row within the warp, and which half of its columns
  const int64_t N = prob.N;
  const int D = static_cast<int>(prob.D);
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t split = blockIdx.y;
  const auto [start, end] = split_rows(prob, split, BQ);
  const int64_t ntiles = end > start ? (end - start + BQ - 1) / BQ : 0;
  const bool with_grad = prob.with_grad;
  const int K = prob.topk;
  const int ksteps = (D + Mma<T>::K - 1) / Mma<T>::K;
  const bool async16 = D % (16 / sizeof(T)) == 0 && reinterpret_cast<uintptr_t>(queue) % 16 == 0;

  for (int x = tid; x < BM * DMAX; x += kThreads) {
    const int r = x / DMAX, d = x - r * DMAX;
    const bool ok = row0 + r < N && d < D;
    qs[r * LDH + d] = from_float<T>(ok ? prob.q[(row0 + r) * D + d] : 0.f);
    if (HAS_Q2) q2s[r * LDH + d] = from_float<T>(ok ? prob.q2[(row0 + r) * D + d] : 0.f);
  }
  if (async16 && D < DMAX) {  // the copies never write the columns >= D
    for (int x = tid; x < 2 * BQ * (DMAX - D); x += kThreads) {
      const int r = x / (DMAX - D), d = D + x - r * (DMAX - D);
      tiles[r * LDH + d] = from_float<T>(0.f);
    }
  }

  const T* my_q = qs + warp * RW * LDH;
  const T* my_q2 = q2s + warp * RW * LDH;
  float* my_s = ss + warp * RW * LDS;
  T* my_e = es + warp * RW * LDE;

  // Which row of the 16 each accumulator element holds (WMMA does not say): load a fragment
  // from a 16 x 16 matrix whose entries are their row numbers.
  int row_of[FE];
  {
    for (int x = lane; x < 16 * 16; x += 32) my_s[(x / 16) * LDS + x % 16] = static_cast<float>(x / 16);
    __syncwarp();
    FragC<T> probe;
    wmma::load_matrix_sync(probe, my_s, LDS, wmma::mem_row_major);
#pragma unroll
    for (int e = 0; e < FE; ++e) row_of[e] = static_cast<int>(probe.x[e]);
    __syncwarp();
  }

  float m = neg_inf(), l = 0.f, t = 0.f, m2 = neg_inf(), l2 = 0.f;  // t: from a, after the loop
  FragC<T> acc[NF], acc2[NF];  // acc2 (q2's) is dead code without HAS_Q2
#pragma unroll
  for (int n = 0; n < NF; ++n) wmma::fill_fragment(acc[n], 0.f), wmma::fill_fragment(acc2[n], 0.f);
  constexpr int KR = KMAX > 0 ? KMAX : 1;
  float best_v[KR], kth = neg_inf();
  int best_i[KR];  // queue rows fit int32 (the host takes this kernel only for Q < 2^31)
#pragma unroll
  for (int r = 0; r < KR; ++r) best_v[r] = neg_inf(), best_i[r] = -1;
  const bool row_valid = row0 + warp * RW + rr < N;

  if (ntiles > 0) load_tile(tiles, queue, start, end, D, async16);
  __pipeline_commit();
  for (int64_t it = 0; it < ntiles; ++it) {
    const int64_t j0 = start + it * BQ;
    T* tile = tiles + (it % 2) * BQ * LDH;
    __syncthreads();  // every warp is done with tile it-1, whose buffer the next copy reuses
    if (it + 1 < ntiles) load_tile(tiles + ((it + 1) % 2) * BQ * LDH, queue, j0 + BQ, end, D, async16);
    __pipeline_commit();
    __pipeline_wait_prior(1);  // this thread's copies of tile it have landed...
    __syncthreads();           // ...and every thread's
    const int ncols = end - j0 < BQ ? static_cast<int>(end - j0) : BQ;
    const float* srow = my_s + rr * LDS;
    T* erow = my_e + rr * LDE;

    // q: logits, top-k, exp-weights, then a = a * alpha + weights . tile. With q2 `a` is needed even
    // without the gradient: the cross term is t = sum_j exp(u_j - m) u2_j = q2 . a / tau (finalized below).
    warp_logits(my_q, tile, my_s, ksteps);
    __syncwarp();
    float mx = row_max<KR, (KMAX > 0)>(srow, half, ncols, prob.inv_tau, static_cast<int>(j0), row_valid, best_v,
                                       best_i, kth, K);
    const float alpha = online_softmax(srow, erow, half, ncols, prob.inv_tau, mx, m, l);
    __syncwarp();  // the weights are written, the logits read
    if (with_grad || HAS_Q2) {
      float scale[FE];
      row_factors(alpha, row_of, scale);
      warp_accumulate(acc, scale, my_e, tile, D);
    }
    if (HAS_Q2) {  // q2: logits, exp-weights, a2 (only for the gradient)
      __syncwarp();  // the product has read the weights
      warp_logits(my_q2, tile, my_s, ksteps);
      __syncwarp();
      mx = row_max<KR, false>(srow, half, ncols, prob.inv_tau, 0, false, best_v, best_i, kth, K);
      const float alpha2 = online_softmax(srow, erow, half, ncols, prob.inv_tau, mx, m2, l2);
      __syncwarp();
      if (with_grad) {
        float scale[FE];
        row_factors(alpha2, row_of, scale);
        warp_accumulate(acc2, scale, my_e, tile, D);
      }
    }
    __syncwarp();  // before the next tile's logits overwrite this one's
  }

  // Per-split state of this block's queries.
  const int64_t my_row = row0 + warp * RW + rr;
  const int64_t x = split * N + my_row;
  const int64_t base = split * N + row0 + warp * RW;  // this warp's first row in the state arrays
  const int64_t rows_left = N - (row0 + warp * RW);
  float* stage = reinterpret_cast<float*>(tiles) + warp * RW * DMAX;
  if (with_grad || HAS_Q2) {
    __syncthreads();  // every warp is done with the tile buffers: they stage the accumulators
    stage_accumulator<T>(acc, stage);
    if (HAS_Q2) {  // t = q2 . a / tau for this lane's row, the two lanes of the row taking half of D each
      float dot = 0.f;
      for (int d = half; d < D; d += 2) dot += to_float(my_q2[rr * LDH + d]) * stage[rr * DMAX + d];
      t = pair_sum(dot) * prob.inv_tau;
    }
    if (with_grad) write_staged(stage, st.a + base * D, rows_left, D, lane);
    if (HAS_Q2 && with_grad) {
      __syncwarp();
      stage_accumulator<T>(acc2, stage);
      write_staged(stage, st.a2 + base * D, rows_left, D, lane);
    }
  }
  if (half == 0 && my_row < N) {
    st.m[x] = m;
    st.l[x] = l;
    if (HAS_Q2) st.t[x] = t, st.m2[x] = m2, st.l2[x] = l2;
  }
  if (KMAX > 0) {  // merge the odd lane's list into its even partner's
#pragma unroll
    for (int r = 0; r < KR; ++r) {
      const float v = __shfl_xor_sync(0xffffffffu, best_v[r], 1);
      const int i = __shfl_xor_sync(0xffffffffu, best_i[r], 1);
      if (half == 0) topk_push<KR, int>(v, i, best_v, best_i, K);
    }
    if (half == 0 && my_row < N) {
#pragma unroll
      for (int r = 0; r < KR; ++r)
        if (r < K) st.topv[x * K + r] = best_v[r], st.topi[x * K + r] = best_i[r];
    }
  }
#endif
}

template <typename T, bool HAS_Q2, int KMAX>
cudaError_t launch(const InfoNCEProblem& prob, const InfoNCESplitState& state, cudaStream_t stream,
                   int* blocks_per_sm) {
  const size_t smem = static_cast<size_t>(infonce_tensor_core_smem_bytes(sizeof(T), HAS_Q2));
  return launch_streaming<T>(infonce_tensor_core_kernel<T, HAS_Q2, KMAX>, kThreads, smem, BM, prob, state, stream,
                             blocks_per_sm);
}

template <typename T>
cudaError_t launch_dtype(const InfoNCEProblem& prob, const InfoNCESplitState& state, cudaStream_t stream,
                         int* blocks_per_sm) {
  const bool q2 = prob.q2 != nullptr;
  return with_topk_capacity(prob.topk, [&](auto kmax) {
    constexpr int KMAX = decltype(kmax)::value;
    return q2 ? launch<T, true, KMAX>(prob, state, stream, blocks_per_sm)
              : launch<T, false, KMAX>(prob, state, stream, blocks_per_sm);
  });
}

}  // namespace

int infonce_tensor_core_binary_arch() {
  // The virtual architecture the kernel's code for the current device was compiled from (its
  // __CUDA_ARCH__): a build without sm_80+ code (TORCH_CUDA_ARCH_LIST="7.5+PTX") JIT-compiles the
  // compute_75 PTX, whose body is the __trap(), even on an sm_80+ GPU (binaryVersion would say 80).
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, infonce_tensor_core_kernel<__nv_bfloat16, false, 0>) != cudaSuccess) {
    (void)cudaGetLastError();  // clear it: the caller falls back to the SIMT kernel
    return 0;
  }
  return attr.ptxVersion;
}

cudaError_t infonce_tensor_core_stream_launch(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype,
                                              const InfoNCESplitState& state, cudaStream_t stream,
                                              int* blocks_per_sm) {
  return with_queue_type(queue_dtype, [&](auto* type) {
    return launch_dtype<std::remove_pointer_t<decltype(type)>>(prob, state, stream, blocks_per_sm);
  });
}

}  // namespace msclr
