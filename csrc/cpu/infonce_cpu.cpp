// msclr::infonce_queue: schema, shared argument checks and the CPU kernel.
//
// Cross-skeleton InfoNCE with a queue of negatives (DESIGN.md 3.2), its gradient and the
// optional top-k / AimCLR divergence outputs, in ONE streaming pass over the queue. The
// gradient is produced here, in the forward, because the training step overwrites the
// queue (enqueue) before backward runs: the autograd backward (msclr/ops/infonce.py) only
// scales dq / dq2 by the incoming per-sample gradients and never reads the queue.
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
// CPU layout of the work: the queue is cut into `splits` contiguous ranges (one per thread
// when Q is large) and the queries into `groups`; each (group, split) work item streams its
// queue range in tiles of kQueueTile rows: one small GEMM gives the logits of a block of
// queries against the tile (held in a bounded scratch buffer, never N x Q), a vectorised row
// pass does the online softmax, and a second GEMM adds exp-weights @ tile into `a`. The
// per-split states are merged per query at the end (same algebra as the online update).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

TORCH_LIBRARY_FRAGMENT(msclr, m) {
  // losses (N,), lse (N,), topk_idx (N, topk) int64 (-1 where fewer valid entries), div (N,) or
  // empty, dq (N, D) = d losses_i / d q_i or empty, dq2 (N, D) = d div_i / d q2_i or empty.
  // Float outputs are float32 (float64 for float64 q). Rows >= valid of the queue are ignored.
  m.def(
      "infonce_queue(Tensor q, Tensor k, Tensor queue, Tensor valid, float tau, int topk, Tensor? q2, "
      "bool with_grad) -> (Tensor losses, Tensor lse, Tensor topk_idx, Tensor div, Tensor dq, Tensor dq2)");
}

namespace msclr {

// Shared by the CPU and CUDA registrations (declared again in csrc/cuda/infonce_cuda_register.cpp).
void check_infonce_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& queue, const at::Tensor& valid,
                        double tau, int64_t topk, const std::optional<at::Tensor>& q2) {
  TORCH_CHECK(q.dim() == 2, "msclr::infonce_queue: q must be (N, D), got ", q.sizes());
  const int64_t N = q.size(0), D = q.size(1);
  TORCH_CHECK(k.dim() == 3 && k.size(0) == N && k.size(2) == D, "msclr::infonce_queue: k must be (", N, ", P, ", D,
              "), got ", k.sizes());
  TORCH_CHECK(k.size(1) >= 1, "msclr::infonce_queue: k needs at least one positive per query (P >= 1)");
  TORCH_CHECK(queue.dim() == 2 && queue.size(1) == D, "msclr::infonce_queue: queue must be (Q, ", D, "), got ",
              queue.sizes());
  TORCH_CHECK(queue.is_contiguous(), "msclr::infonce_queue: the queue must be contiguous (it is read in place)");
  TORCH_CHECK(valid.numel() == 1 && valid.scalar_type() == at::kLong,
              "msclr::infonce_queue: valid must be one int64 element (the number of filled queue rows), got ",
              valid.scalar_type(), " with ", valid.numel(), " elements");
  TORCH_CHECK(tau > 0, "msclr::infonce_queue: tau must be > 0, got ", tau);
  TORCH_CHECK(topk >= 0 && topk <= 16, "msclr::infonce_queue: topk must be in 0..16, got ", topk);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"q", &q}, {"k", &k}, {"queue", &queue}}) {
    const auto st = t->scalar_type();
    TORCH_CHECK(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
                "msclr::infonce_queue: ", name, " must be float32/float16/bfloat16/float64, got ", st);
    TORCH_CHECK(t->device() == queue.device(), "msclr::infonce_queue: ", name, " is on ", t->device(),
                " but the queue is on ", queue.device());
  }
  if (q2.has_value()) {
    TORCH_CHECK(q2->sizes() == q.sizes(), "msclr::infonce_queue: q2 must have q's shape ", q.sizes(), ", got ",
                q2->sizes());
    TORCH_CHECK(q2->device() == queue.device(), "msclr::infonce_queue: q2 is on ", q2->device(),
                " but the queue is on ", queue.device());
    const auto st = q2->scalar_type();
    TORCH_CHECK(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
                "msclr::infonce_queue: q2 must be float32/float16/bfloat16/float64, got ", st);
  }
}

// The six outputs, allocated with the reference's conventions (empty tensors where not asked for).
std::vector<at::Tensor> alloc_infonce_outputs(const at::Tensor& q, int64_t topk, bool has_q2, bool with_grad) {
  const int64_t N = q.size(0), D = q.size(1);
  const auto acc = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto opts = q.options().dtype(acc);
  return {at::empty({N}, opts),
          at::empty({N}, opts),
          at::empty({N, topk}, q.options().dtype(at::kLong)),
          at::empty({has_q2 ? N : 0}, opts),
          with_grad ? at::empty({N, D}, opts) : at::empty({0}, opts),
          with_grad && has_q2 ? at::empty({N, D}, opts) : at::empty({0}, opts)};
}

namespace {

constexpr int64_t kQueueTile = 256;   // queue rows per tile: 128 KiB of fp32 rows at D = 128, stays in L2
constexpr int64_t kQueryBlock = 128;  // queries per GEMM block: a 128 x 256 fp32 logits tile is 128 KiB

// ------------------------------------------------------------------ vectorisable row kernels
// Plain loops over 8 independent lanes so that the compiler vectorises them without
// -ffast-math; on x86-64 with GCC they are also compiled for AVX2+FMA and picked at run time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MSCLR_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MSCLR_MULTIVERSION
#endif

constexpr int kLanes = 8;

// exp(x) for x <= 0 (every argument here is u - running max), within ~1 ulp (Cephes expf
// polynomial); exactly 0 below -87 where float underflows. Branch-free so that loops vectorise.
inline float exp_nonpositive(float x) {
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
inline double exp_nonpositive(double x) { return std::exp(x); }

MSCLR_MULTIVERSION float row_max(const float* x, int64_t n) {
  float lane[kLanes];
  for (int t = 0; t < kLanes; ++t) lane[t] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int t = 0; t < kLanes; ++t) lane[t] = lane[t] > x[j + t] ? lane[t] : x[j + t];
  float best = -std::numeric_limits<float>::infinity();
  for (; j < n; ++j) best = std::max(best, x[j]);
  for (int t = 0; t < kLanes; ++t) best = std::max(best, lane[t]);
  return best;
}

// x <- exp(x - shift); returns sum_j x_j and, when y != nullptr, *dot = sum_j x_j y_j.
MSCLR_MULTIVERSION float exp_shift_sum(float* x, const float* y, int64_t n, float shift, float* dot) {
  float sum[kLanes] = {}, dsum[kLanes] = {};
  int64_t j = 0;
  if (y == nullptr) {
    for (; j + kLanes <= n; j += kLanes)
      for (int t = 0; t < kLanes; ++t) {
        const float e = exp_nonpositive(x[j + t] - shift);
        x[j + t] = e;
        sum[t] += e;
      }
  } else {
    for (; j + kLanes <= n; j += kLanes)
      for (int t = 0; t < kLanes; ++t) {
        const float e = exp_nonpositive(x[j + t] - shift);
        x[j + t] = e;
        sum[t] += e;
        dsum[t] += e * y[j + t];
      }
  }
  for (; j < n; ++j) {
    const float e = exp_nonpositive(x[j] - shift);
    x[j] = e;
    sum[0] += e;
    if (y != nullptr) dsum[0] += e * y[j];
  }
  float s = 0, d = 0;
  for (int t = 0; t < kLanes; ++t) s += sum[t], d += dsum[t];
  if (dot != nullptr) *dot = d;
  return s;
}

// float64 versions (tests, gradcheck): plain loops.
double row_max(const double* x, int64_t n) {
  double best = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) best = std::max(best, x[j]);
  return best;
}

double exp_shift_sum(double* x, const double* y, int64_t n, double shift, double* dot) {
  double s = 0, d = 0;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = std::exp(x[j] - shift);
    s += x[j];
    if (y != nullptr) d += x[j] * y[j];
  }
  if (dot != nullptr) *dot = d;
  return s;
}

// Insert (v, index) into the descending list (vals, idx) of length K if it beats the last entry.
// Strict comparisons: among equal values the earlier-inserted (lower queue index) stays first.
template <typename T>
inline void topk_insert(T v, int64_t index, T* vals, int64_t* idx, int64_t K) {
  if (!(v > vals[K - 1])) return;
  int64_t pos = K - 1;
  while (pos > 0 && vals[pos - 1] < v) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    --pos;
  }
  vals[pos] = v;
  idx[pos] = index;
}

template <typename T>
void topk_scan(const T* u, int64_t n, int64_t base, T* vals, int64_t* idx, int64_t K) {
  for (int64_t j = 0; j < n; ++j)
    if (u[j] > vals[K - 1]) topk_insert(u[j], base + j, vals, idx, K);
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
  const bool convert_tiles = queue.scalar_type() != acc;

  // Work items (query group x queue split), a few per thread and handed out dynamically, so that
  // a thread slowed down by other processes on a shared machine does not hold the others up.
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t target_items = threads == 1 ? 1 : 4 * threads;
  const int64_t tiles = (Qv + kQueueTile - 1) / kQueueTile;
  const int64_t splits = std::max<int64_t>(1, std::min(target_items, tiles));
  const int64_t tiles_per_split = tiles == 0 ? 0 : (tiles + splits - 1) / splits;
  const int64_t groups = std::max<int64_t>(1, std::min((target_items + splits - 1) / splits, (N + 15) / 16));
  const int64_t group_rows = (N + groups - 1) / groups;
  const int64_t items = groups * splits;
  std::atomic<int64_t> next_item{0};

  // Per-split state: O(splits * N * D), independent of Q.
  const auto opts = q.options().dtype(acc);
  at::Tensor stats = at::empty({5, splits, N}, opts);
  at::Tensor acc_a = with_grad ? at::empty({splits, N, D}, opts) : at::Tensor();
  at::Tensor acc_a2 = with_grad && has_q2 ? at::empty({splits, N, D}, opts) : at::Tensor();
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

  // ---------------------------------------------------------------- streaming pass
  at::parallel_for(0, std::min(threads, items), 1, [&](int64_t, int64_t) {
    // Bounded scratch of this thread: logits tiles and one converted queue tile.
    at::Tensor logits = at::empty({kQueryBlock * kQueueTile}, opts);
    at::Tensor logits2 = has_q2 ? at::empty({kQueryBlock * kQueueTile}, opts) : at::Tensor();
    at::Tensor tile_buf = convert_tiles ? at::empty({kQueueTile, D}, opts) : at::Tensor();
    for (int64_t w = next_item++; w < items; w = next_item++) {
      const int64_t g = w / splits, s = w % splits;
      const int64_t r0 = g * group_rows, r1 = std::min(N, r0 + group_rows);
      const int64_t j_begin = std::min(Qv, s * tiles_per_split * kQueueTile);
      const int64_t j_end = std::min(Qv, j_begin + tiles_per_split * kQueueTile);
      const int64_t so = s * N;  // offset of this split in the [split][query] arrays
      for (int64_t i = r0; i < r1; ++i) {
        st.m[so + i] = st.m2[so + i] = neg_inf;
        st.l[so + i] = st.l2[so + i] = st.t[so + i] = 0;
        for (int64_t r = 0; r < K; ++r) st.topv[(so + i) * K + r] = neg_inf, st.topi[(so + i) * K + r] = -1;
      }
      if (with_grad) acc_a[s].narrow(0, r0, r1 - r0).zero_();
      if (with_grad && has_q2) acc_a2[s].narrow(0, r0, r1 - r0).zero_();

      for (int64_t j0 = j_begin; j0 < j_end; j0 += kQueueTile) {
        const int64_t tq = std::min(kQueueTile, j_end - j0);
        at::Tensor tile = queue.narrow(0, j0, tq);
        if (convert_tiles) tile = tile_buf.narrow(0, 0, tq).copy_(tile);
        const at::Tensor tile_t = tile.t();
        for (int64_t i0 = r0; i0 < r1; i0 += kQueryBlock) {
          const int64_t bn = std::min(kQueryBlock, r1 - i0);
          at::Tensor u = logits.narrow(0, 0, bn * tq).view({bn, tq});
          at::mm_out(u, qs.narrow(0, i0, bn), tile_t);
          at::Tensor u2;
          if (has_q2) {
            u2 = logits2.narrow(0, 0, bn * tq).view({bn, tq});
            at::mm_out(u2, q2s.narrow(0, i0, bn), tile_t);
          }
          T* up = u.data_ptr<T>();
          T* u2p = has_q2 ? u2.data_ptr<T>() : nullptr;
          for (int64_t r = 0; r < bn; ++r) {
            const int64_t i = so + i0 + r;
            T* ur = up + r * tq;
            T* u2r = has_q2 ? u2p + r * tq : nullptr;
            if (K > 0) topk_scan(ur, tq, j0, st.topv + i * K, st.topi + i * K, K);
            const T m_new = std::max(st.m[i], row_max(ur, tq));
            const T alpha = std::exp(st.m[i] - m_new);  // 0 on the first tile (m = -inf)
            T cross = 0;
            const T sum = exp_shift_sum(ur, u2r, tq, m_new, has_q2 ? &cross : nullptr);
            st.l[i] = st.l[i] * alpha + sum;
            st.t[i] = st.t[i] * alpha + cross;
            st.m[i] = m_new;
            if (with_grad && alpha != T(1))
              for (T *a = st.a + i * D, *e = a + D; a < e; ++a) *a *= alpha;
            if (has_q2) {
              const T m2_new = std::max(st.m2[i], row_max(u2r, tq));
              const T alpha2 = std::exp(st.m2[i] - m2_new);
              st.l2[i] = st.l2[i] * alpha2 + exp_shift_sum(u2r, static_cast<const T*>(nullptr), tq, m2_new, nullptr);
              st.m2[i] = m2_new;
              if (with_grad && alpha2 != T(1))
                for (T *a = st.a2 + i * D, *e = a + D; a < e; ++a) *a *= alpha2;
            }
          }
          if (with_grad) {
            // a[i] += sum_j exp(u_ij - m_i) queue_j for the block (u now holds the exp-weights)
            at::Tensor a_blk = acc_a[s].narrow(0, i0, bn);
            a_blk.addmm_(u, tile);
            if (has_q2) {
              at::Tensor a2_blk = acc_a2[s].narrow(0, i0, bn);
              a2_blk.addmm_(u2, tile);
            }
          }
        }
      }
    }
  });

  // ---------------------------------------------------------------- merge splits, finalize
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
      for (int64_t sp = 0; sp < splits; ++sp) M = std::max(M, st.m[sp * N + i]), M2 = std::max(M2, st.m2[sp * N + i]);
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

      const T lse = l > 0 ? Ms + std::log(l) : neg_inf;
      lse_out[i] = lse;
      const T* qi = qsp + i * D;
      const T* ki = kp + i * P * D;
      T loss = 0, sig_sum = 0;
      for (int64_t p = 0; p < P; ++p) {
        s[p] = dot(qi, ki + p * D, D);
        loss += softplus(lse - s[p]);  // log(exp(s) + exp(lse)) - s
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
        const T neg_scale = l > 0 ? sig_sum / l : T(0);
        const T c = inv_tau / static_cast<T>(P);
        for (int64_t d = 0; d < D; ++d) g[d] = (g[d] + neg_scale * a[d]) * c;
      }
      if (has_q2) {
        // Candidates [k_i, queue]: p = softmax of q's logits (m1, L1), softmax of q2's logits (mq2, L2).
        const T* q2i = q2sp + i * D;
        T m1 = M, mq2 = M2;
        for (int64_t p = 0; p < P; ++p) {
          s2[p] = dot(q2i, ki + p * D, D);
          m1 = std::max(m1, s[p]);
          mq2 = std::max(mq2, s2[p]);
        }
        const T w = std::exp(Ms - m1), w2 = std::exp(M2s - mq2);
        T L1 = l * w, L2 = l2 * w2, cross = t * w;
        for (int64_t p = 0; p < P; ++p) {
          const T e1 = std::exp(s[p] - m1);
          L1 += e1;
          cross += e1 * s2[p];
          L2 += std::exp(s2[p] - mq2);
        }
        div_out[i] = mq2 + std::log(L2) - cross / L1;
        if (with_grad) {
          // dq2_i = 1/tau [ sum_c softmax(l2)_c c - sum_c p_c c ]
          T* g = dq2 + i * D;
          const T c1 = w / L1, c2 = w2 / L2;
          for (int64_t d = 0; d < D; ++d) g[d] = c2 * a2[d] - c1 * a[d];
          for (int64_t p = 0; p < P; ++p) {
            const T coef = std::exp(s2[p] - mq2) / L2 - std::exp(s[p] - m1) / L1;
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
