// CUDA kernels of msclr::infonce_queue: one streaming pass over the queue (docs/architecture.md 3.2).
//
// Same contract and formulas as msclr/ops/reference.py infonce_queue_forward and the CPU kernel
// (csrc/cpu/infonce_kernel.cpp): loss, lse, top-k, the AimCLR divergence and the gradients
// dq = d loss_i/d q_i, dq2 = d div_i/d q2_i in one pass over the queue (docs/architecture.md 3.2).
//
// infonce_stream_kernel, grid (query blocks of 64, queue splits), 256 threads: the block keeps
// its 64 queries (pre-scaled by 1/tau) in shared memory and streams its split of the queue in
// tiles of 64 rows (converted to fp32 on load). Per tile: logits 64x64 in registers (4x4 per
// thread; the N x Q logits never exist), online max/sum per query (flash-attention), the
// exp-weights go to shared memory and a += exp-weights @ tile accumulates in registers (4 rows x
// D/16 columns per thread). With q2 the same runs for q2's logits, plus the cross term
// t = sum_j exp(u_j - m) u2_j. Top-k: the raw logits pass through shared memory once more and
// one thread per query inserts the entries that beat its k-th best into a sorted list.
// infonce_finalize_kernel, one warp per query: merges the splits and adds the P positives.
// 16-bit queues with queries of the same dtype take the tensor-core streaming kernel instead
// (infonce_tensor_core_kernel.cu, same split state); the finalize kernel serves both.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "infonce_device.h"
#include "infonce_launchers.h"

namespace msclr {
namespace {

constexpr int kThreads = 256;
constexpr int BM = static_cast<int>(kInfoNCECudaQueryBlock);  // queries per block
constexpr int BQ = static_cast<int>(kInfoNCECudaQueueTile);   // queue rows per tile
constexpr int kMaxTopk = static_cast<int>(kInfoNCECudaMaxTopk);
constexpr int kFinalizeWarps = 4;

// Reductions over the 16 lanes that share a query row (lanes 0-15 and 16-31 of a warp).
__device__ __forceinline__ float max16(float v) {
  for (int o = 8; o > 0; o >>= 1) v = nan_maxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float sum16(float v) {
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float sum32(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <int DMAX, bool HAS_Q2>
constexpr size_t stream_smem_bytes() {
  return static_cast<size_t>(infonce_stream_smem_bytes(DMAX, HAS_Q2));
}

template <typename T, int DMAX, bool HAS_Q2, int KMAX>
__global__ void __launch_bounds__(kThreads)
    infonce_stream_kernel(InfoNCEProblem prob, const T* __restrict__ queue, InfoNCESplitState st) {
  constexpr int LD = DMAX + 1;  // padded rows: threads of a warp read one column of 16 rows without conflicts
  constexpr int LE = BQ + 1;
  constexpr int DC = DMAX / 16;  // accumulator columns per thread
  constexpr int R2 = HAS_Q2 ? 4 : 1;
  extern __shared__ float smem[];
  float* qs = smem;                                 // [BM][LD] queries / tau
  float* q2s = qs + BM * LD;                        // [BM][LD] (HAS_Q2)
  float* ts = q2s + (HAS_Q2 ? BM * LD : 0);         // [BQ][LD] queue tile, fp32
  float* es = ts + BQ * LD;                         // [BM][LE] exp-weights (raw logits for top-k first)
  float* e2s = es + BM * LE;                        // [BM][LE] (HAS_Q2)

  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int64_t N = prob.N, D = prob.D;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t split = blockIdx.y;
  const auto [start, end] = split_rows(prob, split, BQ);
  const bool with_grad = prob.with_grad;
  const int K = prob.topk;

  for (int x = tid; x < BM * DMAX; x += kThreads) {
    const int r = x / DMAX, d = x % DMAX;
    const int64_t i = row0 + r;
    const bool ok = i < N && d < D;
    qs[r * LD + d] = ok ? prob.q[i * D + d] * prob.inv_tau : 0.f;
    if (HAS_Q2) q2s[r * LD + d] = ok ? prob.q2[i * D + d] * prob.inv_tau : 0.f;
  }

  float m[4], l[4], t[4], m2[4], l2[4];
  float acc[4][DC], acc2[R2][HAS_Q2 ? DC : 1];
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    m[a] = m2[a] = neg_inf();
    l[a] = l2[a] = t[a] = 0.f;
#pragma unroll
    for (int c = 0; c < DC; ++c) acc[a][c] = 0.f;
  }
#pragma unroll
  for (int a = 0; a < R2; ++a)
#pragma unroll
    for (int c = 0; c < (HAS_Q2 ? DC : 1); ++c) acc2[a][c] = 0.f;
  constexpr int KR = KMAX > 0 ? KMAX : 1;
  float best_v[KR], kth = neg_inf();  // thread tid < BM keeps the top-k list of query row tid
  int64_t best_i[KR];
#pragma unroll
  for (int r = 0; r < KR; ++r) best_v[r] = neg_inf(), best_i[r] = -1;

  for (int64_t j0 = start; j0 < end; j0 += BQ) {
    __syncthreads();  // every thread is done with the previous tile
    for (int x = tid; x < BQ * DMAX; x += kThreads) {
      const int r = x / DMAX, d = x % DMAX;
      const int64_t j = j0 + r;
      ts[r * LD + d] = (j < end && d < D) ? to_float(queue[j * D + d]) : 0.f;
    }
    __syncthreads();

    float u[4][4], u2[R2][4];
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int b = 0; b < 4; ++b) u[a][b] = 0.f;
#pragma unroll
    for (int a = 0; a < R2; ++a)
#pragma unroll
      for (int b = 0; b < 4; ++b) u2[a][b] = 0.f;
    for (int d = 0; d < D; ++d) {
      float qa[4], q2a[R2], tb[4];
#pragma unroll
      for (int a = 0; a < 4; ++a) qa[a] = qs[(ty * 4 + a) * LD + d];
#pragma unroll
      for (int a = 0; a < R2; ++a) q2a[a] = HAS_Q2 ? q2s[(ty * 4 + a) * LD + d] : 0.f;
#pragma unroll
      for (int b = 0; b < 4; ++b) tb[b] = ts[(tx + 16 * b) * LD + d];
#pragma unroll
      for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) u[a][b] = fmaf(qa[a], tb[b], u[a][b]);
      if (HAS_Q2) {
#pragma unroll
        for (int a = 0; a < R2; ++a)
#pragma unroll
          for (int b = 0; b < 4; ++b) u2[a][b] = fmaf(q2a[a], tb[b], u2[a][b]);
      }
    }
    bool col_ok[4];
#pragma unroll
    for (int b = 0; b < 4; ++b) col_ok[b] = j0 + tx + 16 * b < end;

    if (KMAX > 0) {
#pragma unroll
      for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) es[(ty * 4 + a) * LE + tx + 16 * b] = col_ok[b] ? u[a][b] : neg_inf();
      __syncthreads();
      if (tid < BM && row0 + tid < N) {
        for (int c = 0; c < BQ; ++c) {
          const float v = es[tid * LE + c];
          if (v > kth) kth = topk_push<KR, int64_t>(v, j0 + c, best_v, best_i, K);
        }
      }
      __syncthreads();
    }

    float alpha[4], alpha2[4] = {1.f, 1.f, 1.f, 1.f};
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      float mx = neg_inf();
#pragma unroll
      for (int b = 0; b < 4; ++b) mx = col_ok[b] ? nan_maxf(mx, u[a][b]) : mx;
      const float m_new = nan_maxf(m[a], max16(mx));  // NaN sticks; +inf: lse is +inf (finalize)
      // every logit so far -inf: sums stay 0 (shift 0, alpha 1) instead of exp(-inf + inf) = NaN
      const float sh = m_new == neg_inf() ? 0.f : m_new;
      alpha[a] = m_new == neg_inf() ? 1.f : __expf(m[a] - m_new);  // 0 on the first finite tile
      float rs = 0.f, cross = 0.f;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const float e = col_ok[b] ? __expf(u[a][b] - sh) : 0.f;
        es[(ty * 4 + a) * LE + tx + 16 * b] = e;
        rs += e;
        if (HAS_Q2 && e != 0.f) cross += e * u2[a < R2 ? a : 0][b];  // 0 weight x inf logit adds 0
      }
      l[a] = l[a] * alpha[a] + sum16(rs);
      m[a] = m_new;
      if (HAS_Q2) {
        t[a] = t[a] * alpha[a] + sum16(cross);
        float mx2 = neg_inf();
#pragma unroll
        for (int b = 0; b < 4; ++b) mx2 = col_ok[b] ? nan_maxf(mx2, u2[a < R2 ? a : 0][b]) : mx2;
        const float m2_new = nan_maxf(m2[a], max16(mx2));
        const float sh2 = m2_new == neg_inf() ? 0.f : m2_new;
        alpha2[a] = m2_new == neg_inf() ? 1.f : __expf(m2[a] - m2_new);
        float rs2 = 0.f;
#pragma unroll
        for (int b = 0; b < 4; ++b) {
          const float e2 = col_ok[b] ? __expf(u2[a < R2 ? a : 0][b] - sh2) : 0.f;
          e2s[(ty * 4 + a) * LE + tx + 16 * b] = e2;
          rs2 += e2;
        }
        l2[a] = l2[a] * alpha2[a] + sum16(rs2);
        m2[a] = m2_new;
      }
    }
    __syncthreads();  // exp-weights of the whole block are in shared memory

    if (with_grad) {
#pragma unroll
      for (int a = 0; a < 4; ++a) {
#pragma unroll
        for (int c = 0; c < DC; ++c) acc[a][c] *= alpha[a];
        if (HAS_Q2) {
#pragma unroll
          for (int c = 0; c < DC; ++c) acc2[a < R2 ? a : 0][c] *= alpha2[a];
        }
      }
      for (int j = 0; j < BQ; ++j) {
        float ea[4], e2a[R2], tv[DC];
#pragma unroll
        for (int a = 0; a < 4; ++a) ea[a] = es[(ty * 4 + a) * LE + j];
#pragma unroll
        for (int a = 0; a < R2; ++a) e2a[a] = HAS_Q2 ? e2s[(ty * 4 + a) * LE + j] : 0.f;
#pragma unroll
        for (int c = 0; c < DC; ++c) tv[c] = ts[j * LD + tx + 16 * c];
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
          for (int c = 0; c < DC; ++c) acc[a][c] = fmaf(ea[a], tv[c], acc[a][c]);
        if (HAS_Q2) {
#pragma unroll
          for (int a = 0; a < R2; ++a)
#pragma unroll
            for (int c = 0; c < DC; ++c) acc2[a][c] = fmaf(e2a[a], tv[c], acc2[a][c]);
        }
      }
    }
  }

  // Per-split state of this block's queries.
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int64_t i = row0 + ty * 4 + a;
    if (i >= N) continue;
    const int64_t x = split * N + i;
    if (tx == 0) {
      st.m[x] = m[a];
      st.l[x] = l[a];
      if (HAS_Q2) st.t[x] = t[a], st.m2[x] = m2[a], st.l2[x] = l2[a];
    }
    if (with_grad) {
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int64_t d = tx + 16 * c;
        if (d < D) {
          st.a[x * D + d] = acc[a][c];
          if (HAS_Q2) st.a2[x * D + d] = acc2[a < R2 ? a : 0][c];
        }
      }
    }
  }
  if (KMAX > 0 && tid < BM && row0 + tid < N) {
    const int64_t x = split * N + row0 + tid;
#pragma unroll
    for (int r = 0; r < KR; ++r)
      if (r < K) st.topv[x * K + r] = best_v[r], st.topi[x * K + r] = best_i[r];
  }
}

// One warp per query: merge the splits (rescaled to a common max), add the P positives, write outputs.
template <int DMAX, int KMAX>
__global__ void __launch_bounds__(32 * kFinalizeWarps)
    infonce_finalize_kernel(InfoNCEProblem prob, InfoNCESplitState st, InfoNCEOutputs out) {
  constexpr int DL = DMAX / 32;  // embedding entries per lane
  const int lane = threadIdx.x % 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kFinalizeWarps + threadIdx.x / 32;
  const int64_t N = prob.N, D = prob.D, P = prob.P;
  if (i >= N) return;  // the whole warp leaves together
  const bool has_q2 = prob.q2 != nullptr, with_grad = prob.with_grad;
  const float inv_tau = prob.inv_tau;

  float M = neg_inf(), l = 0.f, t = 0.f, M2 = neg_inf(), l2 = 0.f, a[DL], a2[DL];
#pragma unroll
  for (int c = 0; c < DL; ++c) a[c] = a2[c] = 0.f;
  for (int64_t s = 0; s < prob.splits; ++s) {
    const int64_t x = s * N + i;
    const float ms = st.m[x];
    const float M_new = nan_maxf(M, ms);
    const float ref = M_new == neg_inf() ? 0.f : M_new;  // all splits so far empty: their sums are 0
    const float w_old = expf(M - ref), w_s = expf(ms - ref);
    l = l * w_old + w_s * st.l[x];
    if (has_q2) t = t * w_old + w_s * st.t[x];
    if (with_grad) {
#pragma unroll
      for (int c = 0; c < DL; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < D) a[c] = a[c] * w_old + w_s * st.a[x * D + d];
      }
    }
    M = M_new;
    if (has_q2) {
      const float m2s = st.m2[x];
      const float M2_new = nan_maxf(M2, m2s);
      const float ref2 = M2_new == neg_inf() ? 0.f : M2_new;
      const float w2_old = expf(M2 - ref2), w2_s = expf(m2s - ref2);
      l2 = l2 * w2_old + w2_s * st.l2[x];
      if (with_grad) {
#pragma unroll
        for (int c = 0; c < DL; ++c) {
          const int64_t d = lane + 32 * c;
          if (d < D) a2[c] = a2[c] * w2_old + w2_s * st.a2[x * D + d];
        }
      }
      M2 = M2_new;
    }
  }
  const float Ms = M == neg_inf() ? 0.f : M, M2s = M2 == neg_inf() ? 0.f : M2;
  // NaN if a logit was NaN, +inf if one was +inf (l is then NaN: inf - inf), as torch.logsumexp
  const float lse = (M != M || M == -neg_inf()) ? M : (l > 0.f ? Ms + logf(l) : neg_inf());

  float qv[DL], q2v[DL], gk[DL];
#pragma unroll
  for (int c = 0; c < DL; ++c) {
    const int64_t d = lane + 32 * c;
    qv[c] = d < D ? prob.q[i * D + d] : 0.f;
    q2v[c] = has_q2 && d < D ? prob.q2[i * D + d] : 0.f;
    gk[c] = 0.f;
  }
  const float* ki = prob.k + i * P * D;
  // loss_i = 1/P sum_p softplus(lse - s_p); dq_i = 1/(P tau) sum_p sig_p (a/l - k_p), sig_p = sigmoid(lse - s_p)
  float loss = 0.f, sig_sum = 0.f, m1 = M, mq2 = M2;
  for (int64_t p = 0; p < P; ++p) {
    float kv[DL], part = 0.f, part2 = 0.f;
#pragma unroll
    for (int c = 0; c < DL; ++c) {
      const int64_t d = lane + 32 * c;
      kv[c] = d < D ? ki[p * D + d] : 0.f;
      part += qv[c] * kv[c];
      part2 += q2v[c] * kv[c];
    }
    const float s = sum32(part) * inv_tau;
    const float x = lse - s;
    const float z = expf(-fabsf(x));  // 0 when lse = -inf (empty queue)
    // log(exp(s) + exp(lse)) - s; at s = +inf the reference's inf - inf = NaN (fmaxf would drop a NaN x)
    loss += s == -neg_inf() || x != x ? __int_as_float(0x7fc00000) : fmaxf(x, 0.f) + log1pf(z);
    const float sig = x >= 0.f ? 1.f / (1.f + z) : z / (1.f + z);
    sig_sum += sig;
#pragma unroll
    for (int c = 0; c < DL; ++c) gk[c] += sig * kv[c];
    if (has_q2) {
      m1 = nan_maxf(m1, s);
      mq2 = nan_maxf(mq2, sum32(part2) * inv_tau);
    }
  }
  if (lane == 0) {
    out.losses[i] = loss / static_cast<float>(P);
    out.lse[i] = lse;
  }
  if (with_grad) {
    const float neg = l > 0.f ? sig_sum / l : 0.f;
    const float scale = inv_tau / static_cast<float>(P);
#pragma unroll
    for (int c = 0; c < DL; ++c) {
      const int64_t d = lane + 32 * c;
      if (d < D) out.dq[i * D + d] = (neg * a[c] - gk[c]) * scale;
    }
  }

  if (has_q2) {
    // Candidates [k_i, queue]: p = softmax of q's logits (max m1, sum L1), softmax of q2's (mq2, L2).
    // an empty queue (M = -inf) has l = t = a = 0: weight 0, as exp(0 - m1) overflows at small tau
    const float w = M == neg_inf() ? 0.f : expf(Ms - m1), w2 = M2 == neg_inf() ? 0.f : expf(M2s - mq2);
    float L1 = l * w, L2 = l2 * w2, cross = t * w, b1[DL], b2[DL];
#pragma unroll
    for (int c = 0; c < DL; ++c) b1[c] = a[c] * w, b2[c] = a2[c] * w2;
    for (int64_t p = 0; p < P; ++p) {
      float kv[DL], part = 0.f, part2 = 0.f;
#pragma unroll
      for (int c = 0; c < DL; ++c) {
        const int64_t d = lane + 32 * c;
        kv[c] = d < D ? ki[p * D + d] : 0.f;
        part += qv[c] * kv[c];
        part2 += q2v[c] * kv[c];
      }
      const float s = sum32(part) * inv_tau, s2 = sum32(part2) * inv_tau;
      const float e1 = expf(s - m1), e2 = expf(s2 - mq2);
      L1 += e1;
      L2 += e2;
      if (e1 != 0.f) cross += e1 * s2;
#pragma unroll
      for (int c = 0; c < DL; ++c) b1[c] += e1 * kv[c], b2[c] += e2 * kv[c];
    }
    if (lane == 0) out.div[i] = mq2 + logf(L2) - cross / L1;
    if (with_grad) {
#pragma unroll
      for (int c = 0; c < DL; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < D) out.dq2[i * D + d] = (b2[c] / L2 - b1[c] / L1) * inv_tau;
      }
    }
  }

  const int K = prob.topk;
  constexpr int KR = KMAX > 0 ? KMAX : 1;
  if (KMAX > 0 && lane == 0) {  // ties keep the lower index
    float bv[KR];
    int64_t bi[KR];
#pragma unroll
    for (int r = 0; r < KR; ++r) bv[r] = neg_inf(), bi[r] = -1;
    for (int64_t s = 0; s < prob.splits; ++s)
      for (int r = 0; r < K; ++r) {
        const int64_t x = (s * N + i) * K + r;
        if (st.topi[x] >= 0) topk_push<KR, int64_t>(st.topv[x], st.topi[x], bv, bi, K);
      }
#pragma unroll
    for (int r = 0; r < KR; ++r)
      if (r < K) out.topk_idx[i * K + r] = bi[r];
  }
}

template <int DMAX>
cudaError_t finalize(const InfoNCEProblem& prob, const InfoNCESplitState& state, const InfoNCEOutputs& out,
                     cudaStream_t stream) {
  return with_topk_capacity(prob.topk, [&](auto kmax) {
    const unsigned fin_blocks = static_cast<unsigned>((prob.N + kFinalizeWarps - 1) / kFinalizeWarps);
    infonce_finalize_kernel<DMAX, decltype(kmax)::value><<<fin_blocks, 32 * kFinalizeWarps, 0, stream>>>(prob, state, out);
    return cudaGetLastError();
  });
}

// The SIMT streaming kernel (or, with blocks_per_sm, its occupancy).
template <typename T, int DMAX, bool HAS_Q2>
cudaError_t launch_stream(const InfoNCEProblem& prob, const InfoNCESplitState& state, cudaStream_t stream,
                          int* blocks_per_sm) {
  return with_topk_capacity(prob.topk, [&](auto kmax) {
    return launch_streaming<T>(infonce_stream_kernel<T, DMAX, HAS_Q2, decltype(kmax)::value>, kThreads,
                               stream_smem_bytes<DMAX, HAS_Q2>(), BM, prob, state, stream, blocks_per_sm);
  });
}

template <typename T>
cudaError_t stream_dtype(const InfoNCEProblem& prob, const InfoNCESplitState& state, cudaStream_t stream,
                         int* blocks_per_sm) {
  const bool q2 = prob.q2 != nullptr;
  if (prob.D <= 64)
    return q2 ? launch_stream<T, 64, true>(prob, state, stream, blocks_per_sm)
              : launch_stream<T, 64, false>(prob, state, stream, blocks_per_sm);
  return q2 ? launch_stream<T, 128, true>(prob, state, stream, blocks_per_sm)
            : launch_stream<T, 128, false>(prob, state, stream, blocks_per_sm);
}

cudaError_t run_stream(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype, const InfoNCESplitState& state,
                       cudaStream_t stream, int* blocks_per_sm) {
  if (prob.tensor_cores) return infonce_tensor_core_stream_launch(prob, queue_dtype, state, stream, blocks_per_sm);
  return with_queue_type(queue_dtype, [&](auto* type) {
    return stream_dtype<std::remove_pointer_t<decltype(type)>>(prob, state, stream, blocks_per_sm);
  });
}

}  // namespace

cudaError_t infonce_stream_blocks_per_sm(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype, int* blocks) {
  if (prob.D > kInfoNCECudaMaxDim || prob.topk > kMaxTopk) return cudaErrorInvalidValue;
  return run_stream(prob, queue_dtype, InfoNCESplitState{}, nullptr, blocks);
}

cudaError_t infonce_queue_cuda_launch(const InfoNCEProblem& prob, InfoNCEQueueDtype queue_dtype,
                                      const InfoNCESplitState& state, const InfoNCEOutputs& out,
                                      cudaStream_t stream) {
  if (prob.N == 0) return cudaSuccess;
  if (prob.D > kInfoNCECudaMaxDim || prob.topk > kMaxTopk) return cudaErrorInvalidValue;
  const cudaError_t err = run_stream(prob, queue_dtype, state, stream, nullptr);
  if (err != cudaSuccess) return err;
  return prob.D <= 64 ? finalize<64>(prob, state, out, stream) : finalize<128>(prob, state, out, stream);
}

}  // namespace msclr
