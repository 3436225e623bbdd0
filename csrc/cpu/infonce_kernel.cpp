// msclr::infonce_queue: the CPU kernel and its registration (schema in csrc/infonce.cpp, argument
// checks in csrc/infonce.h).
//
// Cross-skeleton InfoNCE with a queue of negatives (docs/architecture.md 3.2), its gradient and the
// optional top-k / AimCLR divergence outputs, in ONE streaming pass over the queue (why the
// gradient comes out of the forward: docs/architecture.md 3.2).
//
// Per query i the pass keeps flash-attention style running state over queue rows j < valid:
//   m, l   running max / sum of exp(u_ij - m),   u_ij = q_i . queue_j / tau
//   a      sum_j exp(u_ij - m) queue_j                   (dq; also dq2's target part)
//   t      sum_j exp(u_ij - m) u2_ij,  u2_ij = q2_i . queue_j / tau  (divergence cross term)
//   m2, l2, a2   the same online softmax state for u2                 (divergence, dq2)
//   top-k  the k largest u_ij and their indices (insertion into a sorted list)
// and the positives k_ip enter only at the end (finalize), where the state is turned into
// loss, lse, divergence, dq and dq2 with the formulas of msclr/ops/reference.py.
//
// CPU layout of the work: queries are cut into blocks of kQueryBlock (grouped per work item) and
// the queue into `splits` contiguous ranges; work items (group, split), a few per thread, are
// handed out dynamically. Each item streams its queue range in tiles of kQueueTile rows: a BLAS
// GEMM (gemm.h, sequential in each worker thread) gives the tile's logits for a query block,
// transposed (queue row x query, in a bounded scratch buffer, never N x Q), a vectorised pass along
// the queries does the online softmax, and a second GEMM adds exp-weights^T @ tile into `a`. The
// per-split states are merged per query at the end (the same algebra as the online update).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "../infonce.h"
#include "../topk.h"
#include "common.h"
#include "gemm.h"

namespace msclr {

namespace {

constexpr int64_t kQueueTile = 256;   // queue rows per tile: 128 KiB of fp32 rows at D = 128, stays in L2
constexpr int64_t kQueryBlock = 128;  // queries per block: a 256 x 128 fp32 logits tile is 128 KiB

// ------------------------------------------------------------------ vectorisable kernels
// Plain loops that the compiler vectorises without -ffast-math; on x86-64 with GCC they are also
// compiled for AVX2+FMA and picked at run time (MSCLR_MULTIVERSION, common.h). The GEMMs are
// gemm_rm (gemm.h), kept sequential per worker thread by SequentialBlas.

// exp(x) for x <= 0 (every argument here is u - running max), within ~1 ulp (Cephes expf
// polynomial); exactly 0 below -87 where float underflows. Branch-free so that loops vectorise.
MSCLR_INLINE float exp_nonpositive(float x) {
  const float xc = x < -87.0f ? -87.0f : x;
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;             // two-part ln 2
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < -87.0f ? 0.0f : y * scale;
}
MSCLR_INLINE double exp_nonpositive(double x) { return std::exp(x); }

// max(a, b) that returns NaN when either is NaN (as torch.logsumexp sees a NaN logit); std::max and
// a plain `a > b ? a : b` drop a NaN unless it comes last.
template <typename T>
MSCLR_INLINE T nan_max(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// mx[r] = max_j u[j * ld + r] (j < rows, r < n), NaN if any is: one query per column, vectorised across queries.
template <typename T>
MSCLR_INLINE void col_max_impl(const T* __restrict__ u, int64_t rows, int64_t n, int64_t ld, T* __restrict__ mx) {
  for (int64_t r = 0; r < n; ++r) mx[r] = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < rows; ++j) {
    const T* __restrict__ row = u + j * ld;
    for (int64_t r = 0; r < n; ++r) mx[r] = nan_max(mx[r], row[r]);
  }
}

// u <- exp(u - shift[r]) column-wise; sum[r] = sum_j u; when y != nullptr, dot[r] = sum_j u * y.
template <typename T>
MSCLR_INLINE void col_exp_sum_impl(T* __restrict__ u, const T* __restrict__ y, int64_t rows, int64_t n, int64_t ld,
                                   const T* __restrict__ shift, T* __restrict__ sum, T* __restrict__ dot) {
  for (int64_t r = 0; r < n; ++r) sum[r] = 0, dot[r] = 0;
  for (int64_t j = 0; j < rows; ++j) {
    T* __restrict__ row = u + j * ld;
    if (y == nullptr) {
      for (int64_t r = 0; r < n; ++r) {
        const T e = exp_nonpositive(row[r] - shift[r]);
        row[r] = e;
        sum[r] += e;
      }
    } else {
      const T* __restrict__ yrow = y + j * ld;
      for (int64_t r = 0; r < n; ++r) {
        const T e = exp_nonpositive(row[r] - shift[r]);
        row[r] = e;
        sum[r] += e;
        dot[r] += e == 0 ? T(0) : e * yrow[r];  // a zero weight adds 0, also to an infinite logit
      }
    }
  }
}

// float: explicit 8-wide vectors (GCC does not if-convert the scalar exp on its own): 32 bytes, one
// AVX register, or two SSE ones in the default clone. The helpers are always inlined, so the
// vector-ABI note GCC gives for the default (SSE) clone does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

MSCLR_INLINE v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
MSCLR_INLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof(v)); }

// exp_nonpositive on 8 lanes.
MSCLR_INLINE v8f exp_nonpositive(v8f x) {
  const v8f lo = v8f{} - 87.0f;
  const v8f xc = x < lo ? lo : x;
  const v8f n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const v8f r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  v8f p = v8f{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const v8f y = p * r * r + r + 1.0f;
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  v8f scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < lo ? v8f{} : y * scale;
}

MSCLR_MULTIVERSION void col_max(const float* __restrict__ u, int64_t rows, int64_t n, int64_t ld,
                                float* __restrict__ mx) {
  int64_t r = 0;
  for (; r + 8 <= n; r += 8) {
    v8f m = v8f{} - std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < rows; ++j) {
      const v8f x = load8(u + j * ld + r);
      m = (m > x) | (m != m) ? m : x;  // nan_max on 8 lanes
    }
    store8(mx + r, m);
  }
  if (r < n) col_max_impl<float>(u + r, rows, n - r, ld, mx + r);
}

MSCLR_MULTIVERSION void col_exp_sum(float* __restrict__ u, const float* __restrict__ y, int64_t rows, int64_t n,
                                    int64_t ld, const float* __restrict__ shift, float* __restrict__ sum,
                                    float* __restrict__ dot) {
  int64_t r = 0;
  for (; r + 8 <= n; r += 8) {
    const v8f sh = load8(shift + r);
    v8f s = v8f{}, d = v8f{};
    for (int64_t j = 0; j < rows; ++j) {
      const v8f e = exp_nonpositive(load8(u + j * ld + r) - sh);
      store8(u + j * ld + r, e);
      s += e;
      if (y != nullptr) d += e == v8f{} ? v8f{} : e * load8(y + j * ld + r);
    }
    store8(sum + r, s);
    store8(dot + r, d);
  }
  if (r < n) col_exp_sum_impl<float>(u + r, y == nullptr ? nullptr : y + r, rows, n - r, ld, shift + r, sum + r, dot + r);
}
// float64 (tests, gradcheck): the same loops, compiled once.
void col_max(const double* u, int64_t rows, int64_t n, int64_t ld, double* mx) {
  col_max_impl<double>(u, rows, n, ld, mx);
}
void col_exp_sum(double* u, const double* y, int64_t rows, int64_t n, int64_t ld, const double* shift, double* sum,
                 double* dot) {
  col_exp_sum_impl<double>(u, y, rows, n, ld, shift, sum, dot);
}

template <typename T>
T softplus(T x) {  // log(1 + exp(x)), stable; softplus(-inf) = 0
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

template <typename T>
T sigmoid(T x) {  // sigmoid(-inf) = 0
  if (x >= 0) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// The online-softmax step from running max m_old to m_new: the shift the tile's exps subtract and the
// factor alpha on the sums so far. While every logit seen is -inf (m_new = -inf) the sums stay 0:
// shift 0 (exp(-inf) = 0, not exp(-inf + inf) = NaN) and alpha 1.
template <typename T>
inline void st_shift(T m_old, T m_new, T& shift, T& alpha) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  shift = m_new == neg_inf ? T(0) : m_new;
  alpha = m_new == neg_inf ? T(1) : std::exp(m_old - m_new);  // 0 on the first finite tile (m_old = -inf)
}

// log sum exp from the merged max M and the sum l of exp(logit - M): NaN if a logit was NaN, +inf if
// one was +inf (then l itself is NaN: inf - inf), -inf when there was none, as torch.logsumexp.
template <typename T>
inline T lse_of(T M, T l) {
  if (M != M || M == std::numeric_limits<T>::infinity()) return M;
  return l > 0 ? M + std::log(l) : -std::numeric_limits<T>::infinity();
}

// One positive's term log(exp(s) + exp(lse)) - s, with the reference's value at s = +inf (inf - inf).
template <typename T>
inline T nce_term(T lse, T s) {
  if (s == std::numeric_limits<T>::infinity()) return std::numeric_limits<T>::quiet_NaN();
  return softplus(lse - s);
}

template <typename T>
T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

// Running state of every split: arrays indexed [split][query] (and [.., d] / [.., r]).
template <typename T>
struct States {
  int64_t N, D, K;
  T *m, *l, *t, *m2, *l2, *a, *a2, *topv;
  int64_t* topi;
};

template <typename T>
void infonce_cpu_impl(const at::Tensor& q, const at::Tensor& k, const at::Tensor& queue, int64_t Qv, double tau,
                      int64_t K, const std::optional<at::Tensor>& q2_opt, bool with_grad,
                      std::vector<at::Tensor>& out) {
  const auto acc = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t N = q.size(0), D = q.size(1), P = k.size(1);
  const bool has_q2 = q2_opt.has_value();
  const T inv_tau = static_cast<T>(1.0 / tau);
  // Queries pre-scaled by 1/tau, so that every logit is a plain dot product (small: N x D).
  const at::Tensor qs = (q.to(acc) * (1.0 / tau)).contiguous();
  const at::Tensor q2s = has_q2 ? (q2_opt->to(acc) * (1.0 / tau)).contiguous() : at::Tensor();
  const at::Tensor kf = k.to(acc).contiguous();
  // The same queries transposed per block of kQueryBlock, zero padded: (blocks, D, kQueryBlock). The
  // logits of a tile come out transposed, u[j][r] (queue row j, query r), so that the online
  // softmax runs along contiguous queries and the second GEMM reads u without a copy.
  const int64_t qblocks = (N + kQueryBlock - 1) / kQueryBlock;
  auto blocked_t = [&](const at::Tensor& x) {
    return at::constant_pad_nd(x, {0, 0, 0, qblocks * kQueryBlock - N})
        .view({qblocks, kQueryBlock, D})
        .transpose(1, 2)
        .contiguous();
  };
  const at::Tensor qt = blocked_t(qs);
  const at::Tensor q2t = has_q2 ? blocked_t(q2s) : at::Tensor();
  const bool convert_tiles = queue.scalar_type() != acc;

  // Work items (query group x queue split), a few per thread and handed out dynamically, so that
  // a thread slowed down by other processes on a shared machine does not hold the others up.
  // Query groups first (each reads the queue once more, from cache or memory), then queue splits
  // (each adds a split state of N x D).
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t target_items = threads == 1 ? 1 : 4 * threads;
  const int64_t tiles = (Qv + kQueueTile - 1) / kQueueTile;
  const int64_t groups = std::max<int64_t>(1, std::min(qblocks, target_items));
  const int64_t blocks_per_group = (qblocks + groups - 1) / groups;
  const int64_t splits = std::max<int64_t>(1, std::min(tiles, (target_items + groups - 1) / groups));
  const int64_t tiles_per_split = tiles == 0 ? 0 : (tiles + splits - 1) / splits;
  const int64_t items = groups * splits;
  std::atomic<int64_t> next_item{0};

  // Per-split state: O(splits * N * D), independent of Q.
  const auto opts = q.options().dtype(acc);
  at::Tensor stats = at::empty({5, splits, N}, opts);
  at::Tensor acc_a = with_grad ? at::zeros({splits, N, D}, opts) : at::Tensor();
  at::Tensor acc_a2 = with_grad && has_q2 ? at::zeros({splits, N, D}, opts) : at::Tensor();
  at::Tensor topv = at::empty({splits, N, std::max<int64_t>(K, 1)}, opts);
  at::Tensor topi = at::empty({splits, N, std::max<int64_t>(K, 1)}, q.options().dtype(at::kLong));
  States<T> st{N,
               D,
               K,
               stats[0].data_ptr<T>(),
               stats[1].data_ptr<T>(),
               stats[2].data_ptr<T>(),
               stats[3].data_ptr<T>(),
               stats[4].data_ptr<T>(),
               with_grad ? acc_a.data_ptr<T>() : nullptr,
               with_grad && has_q2 ? acc_a2.data_ptr<T>() : nullptr,
               topv.data_ptr<T>(),
               topi.data_ptr<int64_t>()};
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T* qt_p = qt.data_ptr<T>();
  const T* q2t_p = has_q2 ? q2t.data_ptr<T>() : nullptr;
  const auto queue_type = queue.scalar_type();
  const void* queue_p = queue.data_ptr();
  constexpr int64_t LD = kQueryBlock;  // leading dimension of the transposed logits and queries

  // ---------------------------------------------------------------- streaming pass
  at::parallel_for(0, std::min(threads, items), 1, [&](int64_t, int64_t) {
    // Bounded scratch of this thread: transposed logits tiles, one converted queue tile, per-query vectors.
    // (ATen allocations, so that memory profilers see them too.)
    const SequentialBlas sequential;  // our threads each run their own GEMMs
    at::Tensor ut_buf = at::empty({kQueueTile * LD}, opts);
    at::Tensor u2t_buf = at::empty({has_q2 ? kQueueTile * LD : 0}, opts);
    at::Tensor tile_t = at::empty({convert_tiles ? kQueueTile * D : 0}, opts);
    T* ut = ut_buf.data_ptr<T>();
    T* u2t = u2t_buf.data_ptr<T>();
    T* tile_buf = tile_t.data_ptr<T>();
    std::vector<T> mx(LD), shift(LD), alpha(LD), sum(LD), cross(LD), dummy(LD);
    for (int64_t w = next_item++; w < items; w = next_item++) {
      const int64_t g = w / splits, s = w % splits;
      const int64_t b_begin = g * blocks_per_group, b_end = std::min(qblocks, b_begin + blocks_per_group);
      const int64_t r0 = std::min(N, b_begin * kQueryBlock), r1 = std::min(N, b_end * kQueryBlock);
      const int64_t j_begin = std::min(Qv, s * tiles_per_split * kQueueTile);
      const int64_t j_end = std::min(Qv, j_begin + tiles_per_split * kQueueTile);
      const int64_t so = s * N;  // offset of this split in the [split][query] arrays
      for (int64_t i = so + r0; i < so + r1; ++i) {
        st.m[i] = st.m2[i] = neg_inf;
        st.l[i] = st.l2[i] = st.t[i] = 0;
        for (int64_t r = 0; r < K; ++r) st.topv[i * K + r] = neg_inf, st.topi[i * K + r] = -1;
      }

      for (int64_t j0 = j_begin; j0 < j_end; j0 += kQueueTile) {
        const int64_t tq = std::min(kQueueTile, j_end - j0);
        const T* tile;  // (tq, D) row-major, accumulation dtype
        if (!convert_tiles) {
          tile = static_cast<const T*>(queue_p) + j0 * D;
        } else {
          AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, queue_type, "infonce_queue_cpu_tile", [&] {
            const scalar_t* src = static_cast<const scalar_t*>(queue_p) + j0 * D;
            for (int64_t x = 0; x < tq * D; ++x) tile_buf[x] = static_cast<T>(src[x]);
          });
          tile = tile_buf;
        }
        for (int64_t b = b_begin; b < b_end; ++b) {
          const int64_t i0 = b * kQueryBlock, bn = std::min(kQueryBlock, N - i0);
          const int64_t x0 = so + i0;  // state index of the block's first query
          // u[j][r] = queue_j . q_r / tau
          gemm_rm<T>(false, false, tq, bn, D, 1, tile, D, qt_p + b * D * LD, LD, 0, ut, LD);
          if (has_q2) gemm_rm<T>(false, false, tq, bn, D, 1, tile, D, q2t_p + b * D * LD, LD, 0, u2t, LD);
          if (K > 0) {
            for (int64_t j = 0; j < tq; ++j) {
              const T* row = ut + j * LD;
              for (int64_t r = 0; r < bn; ++r) {
                T* vals = st.topv + (x0 + r) * K;
                if (row[r] > vals[K - 1]) topk_insert(row[r], j0 + j, vals, st.topi + (x0 + r) * K, K);
              }
            }
          }
          // Online softmax over the tile, one query per column.
          col_max(ut, tq, bn, LD, mx.data());
          for (int64_t r = 0; r < bn; ++r) {
            const T m_new = nan_max(st.m[x0 + r], mx[r]);  // NaN sticks; +inf: lse is +inf (finalize)
            st_shift(st.m[x0 + r], m_new, shift[r], alpha[r]);
            mx[r] = m_new;
          }
          col_exp_sum(ut, has_q2 ? u2t : nullptr, tq, bn, LD, shift.data(), sum.data(), cross.data());
          for (int64_t r = 0; r < bn; ++r) {
            const int64_t x = x0 + r;
            st.l[x] = st.l[x] * alpha[r] + sum[r];
            st.t[x] = st.t[x] * alpha[r] + cross[r];
            st.m[x] = mx[r];
            if (with_grad && alpha[r] != T(1))
              for (T *a = st.a + x * D, *e = a + D; a < e; ++a) *a *= alpha[r];
          }
          // a[r] += sum_j exp(u_jr - m_r) queue_j, i.e. a += u^T tile (u now holds the exp-weights)
          if (with_grad) gemm_rm<T>(true, false, bn, D, tq, 1, ut, LD, tile, D, 1, st.a + x0 * D, D);
          if (has_q2) {
            col_max(u2t, tq, bn, LD, mx.data());
            for (int64_t r = 0; r < bn; ++r) {
              const T m_new = nan_max(st.m2[x0 + r], mx[r]);
              st_shift(st.m2[x0 + r], m_new, shift[r], alpha[r]);
              mx[r] = m_new;
            }
            col_exp_sum(u2t, static_cast<const T*>(nullptr), tq, bn, LD, shift.data(), sum.data(),
                        dummy.data());
            for (int64_t r = 0; r < bn; ++r) {
              const int64_t x = x0 + r;
              st.l2[x] = st.l2[x] * alpha[r] + sum[r];
              st.m2[x] = mx[r];
              if (with_grad && alpha[r] != T(1))
                for (T *a = st.a2 + x * D, *e = a + D; a < e; ++a) *a *= alpha[r];
            }
            if (with_grad) gemm_rm<T>(true, false, bn, D, tq, 1, u2t, LD, tile, D, 1, st.a2 + x0 * D, D);
          }
        }
      }
    }
  });

  // ---------------------------------------------------------------- merge splits, finalize
  // Where a row's log-sum-exp is not finite the reference zeroes its softmax weights, and its
  // gradient gets 0 x queue: NaN in the columns where a filled queue row is NaN/inf. Those columns
  // are found only then (a row whose merged running max is not finite), outside the hot loop.
  std::vector<uint8_t> bad_col;
  bool any_nonfinite_max = false;
  for (int64_t i = 0; with_grad && i < N && !any_nonfinite_max; ++i) {
    T M = neg_inf;
    for (int64_t sp = 0; sp < splits; ++sp) M = nan_max(M, st.m[sp * N + i]);
    any_nonfinite_max = !std::isfinite(M);
  }
  if (any_nonfinite_max) {
    const at::Tensor bad = at::isfinite(queue.narrow(0, 0, Qv)).logical_not().any(0);
    const at::Tensor bad_cpu = bad.to(at::kByte).contiguous();
    bad_col.assign(bad_cpu.data_ptr<uint8_t>(), bad_cpu.data_ptr<uint8_t>() + D);
  }
  const T nan = std::numeric_limits<T>::quiet_NaN();
  auto zero_times_queue = [&](int64_t d) { return !bad_col.empty() && bad_col[d] ? nan : T(0); };
  T* losses = out[0].data_ptr<T>();
  T* lse_out = out[1].data_ptr<T>();
  int64_t* idx_out = out[2].data_ptr<int64_t>();
  T* div_out = has_q2 ? out[3].data_ptr<T>() : nullptr;
  T* dq = with_grad ? out[4].data_ptr<T>() : nullptr;
  T* dq2 = with_grad && has_q2 ? out[5].data_ptr<T>() : nullptr;
  const T* qsp = qs.data_ptr<T>();
  const T* q2sp = has_q2 ? q2s.data_ptr<T>() : nullptr;
  const T* kp = kf.data_ptr<T>();

  at::parallel_for(0, N, 16, [&](int64_t n0, int64_t n1) {
    std::vector<T> a(with_grad ? D : 0), a2(with_grad && has_q2 ? D : 0), s(P), s2(P);
    std::vector<T> best_v(K);
    std::vector<int64_t> best_i(K);
    for (int64_t i = n0; i < n1; ++i) {
      // Merge the splits: rescale each split's sums to the common maximum.
      T M = neg_inf, M2 = neg_inf;
      for (int64_t sp = 0; sp < splits; ++sp) M = nan_max(M, st.m[sp * N + i]), M2 = nan_max(M2, st.m2[sp * N + i]);
      const T Ms = std::isinf(M) ? T(0) : M, M2s = std::isinf(M2) ? T(0) : M2;  // all splits empty: sums are 0
      T l = 0, t = 0, l2 = 0;
      std::fill(a.begin(), a.end(), T(0));
      std::fill(a2.begin(), a2.end(), T(0));
      for (int64_t sp = 0; sp < splits; ++sp) {
        const int64_t x = sp * N + i;
        const T w = std::exp(st.m[x] - Ms), w2 = std::exp(st.m2[x] - M2s);
        l += w * st.l[x];
        t += w * st.t[x];
        l2 += w2 * st.l2[x];
        if (with_grad && w != T(0))
          for (int64_t d = 0; d < D; ++d) a[d] += w * st.a[x * D + d];
        if (with_grad && has_q2 && w2 != T(0))
          for (int64_t d = 0; d < D; ++d) a2[d] += w2 * st.a2[x * D + d];
      }
      if (K > 0) {  // splits in queue order, so ties keep the lower index as in one sequential scan
        T* bv = best_v.data();
        int64_t* bi = best_i.data();
        std::fill(bv, bv + K, neg_inf);
        std::fill(bi, bi + K, int64_t(-1));
        for (int64_t sp = 0; sp < splits; ++sp)
          for (int64_t r = 0; r < K; ++r) {
            const int64_t x = (sp * N + i) * K + r;
            if (st.topi[x] >= 0) topk_insert(st.topv[x], st.topi[x], bv, bi, K);
          }
        std::copy(bi, bi + K, idx_out + i * K);
      }

      const T lse = lse_of(M, l);  // l is relative to Ms = M wherever M is finite
      lse_out[i] = lse;
      const T* qi = qsp + i * D;
      const T* ki = kp + i * P * D;
      T loss = 0, sig_sum = 0;
      for (int64_t p = 0; p < P; ++p) {
        s[p] = dot(qi, ki + p * D, D);
        loss += nce_term(lse, s[p]);  // log(exp(s) + exp(lse)) - s
      }
      losses[i] = loss / P;
      if (with_grad) {
        // dq_i = 1/(P tau) sum_p sig_ip [a / l - k_ip],  sig_ip = sigmoid(lse_i - s_ip)
        T* g = dq + i * D;
        for (int64_t d = 0; d < D; ++d) g[d] = 0;
        for (int64_t p = 0; p < P; ++p) {
          const T sg = sigmoid(lse - s[p]);
          sig_sum += sg;
          for (int64_t d = 0; d < D; ++d) g[d] -= sg * ki[p * D + d];
        }
        const T c = inv_tau / static_cast<T>(P);
        if (std::isfinite(lse)) {
          const T neg_scale = sig_sum / l;
          for (int64_t d = 0; d < D; ++d) g[d] = (g[d] + neg_scale * a[d]) * c;
        } else {  // softmax weights 0, as the reference
          for (int64_t d = 0; d < D; ++d) g[d] = (g[d] + sig_sum * zero_times_queue(d)) * c;
        }
      }
      if (has_q2) {
        // Candidates [k_i, queue]: p = softmax of q's logits (m1, L1), softmax of q2's logits (mq2, L2).
        const T* q2i = q2sp + i * D;
        T m1 = M, mq2 = M2;
        for (int64_t p = 0; p < P; ++p) {
          s2[p] = dot(q2i, ki + p * D, D);
          m1 = nan_max(m1, s[p]);
          mq2 = nan_max(mq2, s2[p]);
        }
        // an empty queue (M = -inf) has l = t = a = 0: weight it 0, as exp(0 - m1) overflows when the
        // positives' logits are very negative (small tau) and 0 * inf would be NaN
        const T ninf = -std::numeric_limits<T>::infinity();
        const T w = M == ninf ? T(0) : std::exp(Ms - m1), w2 = M2 == ninf ? T(0) : std::exp(M2s - mq2);
        T L1 = l * w, L2 = l2 * w2, cross = t * w;
        for (int64_t p = 0; p < P; ++p) {
          const T e1 = std::exp(s[p] - m1);
          L1 += e1;
          cross += e1 == 0 ? T(0) : e1 * s2[p];
          L2 += std::exp(s2[p] - mq2);
        }
        // a softmax whose log-sum-exp is not finite is 0, as the reference's (p then adds nothing)
        const bool ok1 = std::isfinite(lse_of(m1, L1)), ok2 = std::isfinite(lse_of(mq2, L2));
        div_out[i] = lse_of(mq2, L2) - (ok1 ? cross / L1 : T(0));
        if (with_grad) {
          // dq2_i = 1/tau [ sum_c softmax(l2)_c c - sum_c p_c c ]
          T* g = dq2 + i * D;
          const T c1 = ok1 ? w / L1 : T(0), c2 = ok2 ? w2 / L2 : T(0);
          for (int64_t d = 0; d < D; ++d)
            g[d] = (ok2 ? c2 * a2[d] : zero_times_queue(d)) - (ok1 ? c1 * a[d] : zero_times_queue(d));
          for (int64_t p = 0; p < P; ++p) {
            const T coef = (ok2 ? std::exp(s2[p] - mq2) / L2 : T(0)) - (ok1 ? std::exp(s[p] - m1) / L1 : T(0));
            for (int64_t d = 0; d < D; ++d) g[d] += coef * ki[p * D + d];
          }
          for (int64_t d = 0; d < D; ++d) g[d] *= inv_tau;
        }
      }
    }
  });
}

}  // namespace

std::vector<at::Tensor> infonce_queue_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& queue,
                                          const at::Tensor& valid, double tau, int64_t topk,
                                          const std::optional<at::Tensor>& q2, bool with_grad) {
  check_infonce_args(q, k, queue, valid, tau, topk, q2);
  const int64_t Qv = std::clamp<int64_t>(valid.reshape({}).item<int64_t>(), 0, queue.size(0));
  auto out = alloc_infonce_outputs(q, topk, q2.has_value(), with_grad);
  if (q.scalar_type() == at::kDouble)
    infonce_cpu_impl<double>(q, k, queue, Qv, tau, topk, q2, with_grad, out);
  else
    infonce_cpu_impl<float>(q, k, queue, Qv, tau, topk, q2, with_grad, out);
  return out;
}

}  // namespace msclr

namespace {
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> infonce_queue_cpu_op(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& queue, const at::Tensor& valid, double tau,
    int64_t topk, const std::optional<at::Tensor>& q2, bool with_grad) {
  auto o = msclr::infonce_queue_cpu(q, k, queue, valid, tau, topk, q2, with_grad);
  return {o[0], o[1], o[2], o[3], o[4], o[5]};
}
}  // namespace

TORCH_LIBRARY_IMPL(msclr, CPU, m) { m.impl("infonce_queue", &infonce_queue_cpu_op); }
