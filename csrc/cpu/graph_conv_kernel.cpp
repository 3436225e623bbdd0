// msclr::masked_graph_conv(_backward): CPU kernels and their registration (docs/architecture.md 3.1;
// schemas in csrc/graph_conv.cpp, argument checks in csrc/graph_conv.h).
//
//   y[n,o,t,w] = sum_k sum_v A_eff[l_n,k,v,w] (sum_c W[k,o,c] x[n,c,t,v] + b[k,o]),  A_eff = A * importance
//
// Work is split into (sample, block of frames) items, spread over at::parallel_for; each
// item runs in buffers that stay in L2. Inside a block the frames are stored channel-last
// ([t][v][c]) so that the graph aggregation is a sum of contiguous channel vectors over a
// joint's few neighbours, and the channel mixing is one BLAS GEMM over the block. The bias
// rides along as an extra input channel of ones (its aggregate is the column sum of A_eff),
// so it needs no pass of its own, and the bias gradient falls out of the weight GEMM.
//
// Order of evaluation per shape (same GEMM flops either way; the aggregation and the
// intermediate scale with the channels aggregated):
//   C_in <= C_out: aggregate first, y = W (X A): XA[t][w][k][c] then y = W' XA^T
//   C_in  > C_out: transform first, y = (W X) A: Z[t][v][k][o] then y = sum_k A^T Z
// Neighbour lists of A != 0 are built once per call; layouts whose adjacency is dense use
// small GEMMs for the aggregation instead. The (N, K*C_out, T, V) intermediate of the eager
// version never exists; low precision inputs are converted per block and accumulated in
// float32 (float64 stays float64).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../graph_conv.h"
#include "common.h"
#include "gemm.h"

namespace msclr {
namespace {

// Neighbour lists of every layout: for destination joint j of layout l, the entries
// off[l*V + j] .. off[l*V + j + 1] hold (source joint, partition, coefficient). Built from
// the pattern A != 0 (so the importance gradient sees every edge, even where importance is 0).
template <typename acc_t>
struct Neighbours {
  std::vector<int64_t> off;
  std::vector<int32_t> src, part;
  std::vector<acc_t> coef;
};

// The graph of one call: lists in both directions, and per layout whether it is dense
// enough for GEMMs, with its matrices M[l][k][dst][src].
template <typename acc_t>
struct Graph {
  int64_t L, K, V;
  Neighbours<acc_t> fwd;  // destination w, source v: coefficient A_eff[l,k,v,w]
  Neighbours<acc_t> bwd;  // destination v, source w: coefficient A_eff[l,k,v,w]
  std::vector<char> dense;
  at::Tensor m_fwd, m_bwd;  // (L, K, V, V): A_eff^T and A_eff, for the dense layouts

  const acc_t* mat_fwd(int64_t l) const { return m_fwd.data_ptr<acc_t>() + l * K * V * V; }
  const acc_t* mat_bwd(int64_t l) const { return m_bwd.data_ptr<acc_t>() + l * K * V * V; }
};

// A layout is aggregated with GEMMs when more than this fraction of its K*V*V entries is nonzero.
constexpr double kDenseFraction = 0.2;
// Frame blocks are made small enough that a call has at least this many work items.
constexpr int64_t kMinItems = 16;
// The backward sums weight/importance gradients per group of items, in a fixed number of
// groups reduced in order: the result does not depend on the threads or their timing.
constexpr int64_t kReduceGroups = 32;
// Calls with fewer multiply-adds than this (about 0.1 ms of work) are not parallelised.
constexpr double kParallelWork = 1 << 20;

template <typename acc_t>
Graph<acc_t> build_graph(const at::Tensor& A, const at::Tensor& a_eff) {
  Graph<acc_t> g;
  g.L = A.size(0);
  g.K = A.size(1);
  g.V = A.size(2);
  const int64_t L = g.L, K = g.K, V = g.V;
  const auto pattern = (A != 0).contiguous();
  const bool* nz = pattern.data_ptr<bool>();
  const acc_t* a = a_eff.data_ptr<acc_t>();
  auto fill = [&](Neighbours<acc_t>& nb, bool transposed) {
    nb.off.assign(L * V + 1, 0);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = 0; j < V; ++j) {
        for (int64_t k = 0; k < K; ++k)
          for (int64_t i = 0; i < V; ++i) {
            // forward: destination w=j, source v=i reads A[l,k,i,j]; backward the transpose
            const int64_t idx = ((l * K + k) * V + (transposed ? j : i)) * V + (transposed ? i : j);
            if (!nz[idx]) continue;
            nb.src.push_back(static_cast<int32_t>(i));
            nb.part.push_back(static_cast<int32_t>(k));
            nb.coef.push_back(a[idx]);
          }
        nb.off[l * V + j + 1] = static_cast<int64_t>(nb.src.size());
      }
  };
  fill(g.fwd, false);
  fill(g.bwd, true);
  g.dense.assign(L, 0);
  bool any_dense = false;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t nnz = g.fwd.off[(l + 1) * V] - g.fwd.off[l * V];
    g.dense[l] = nnz > kDenseFraction * static_cast<double>(K * V * V);
    any_dense = any_dense || g.dense[l];
  }
  if (any_dense) {
    g.m_bwd = a_eff;
    g.m_fwd = a_eff.transpose(2, 3).contiguous();
  }
  return g;
}

// dst[t][j][k][:D] = sum over (i, k, a) in nb(l, j) of a * src[t][i][:D]   (t < tb, j < V)
template <typename acc_t>
void spread(const Graph<acc_t>& g, const Neighbours<acc_t>& nb, const acc_t* mats, int64_t l, const acc_t* src,
            acc_t* dst, int64_t tb, int64_t D) {
  const int64_t V = g.V, K = g.K, KD = K * D;
  if (g.dense[l]) {
    for (int64_t t = 0; t < tb; ++t)
      for (int64_t k = 0; k < K; ++k)
        gemm_rm<acc_t>(false, false, V, D, V, 1, mats + k * V * V, V, src + t * V * D, D, 0, dst + t * V * KD + k * D,
                       KD);
    return;
  }
  const int64_t* off = nb.off.data() + l * V;
  for (int64_t t = 0; t < tb; ++t) {
    const acc_t* in_t = src + t * V * D;
    for (int64_t j = 0; j < V; ++j) {
      acc_t* __restrict__ out = dst + (t * V + j) * KD;
      std::fill(out, out + KD, acc_t(0));
      for (int64_t e = off[j]; e < off[j + 1]; ++e) {
        const acc_t* __restrict__ in = in_t + nb.src[e] * D;
        acc_t* __restrict__ o = out + nb.part[e] * D;
        const acc_t a = nb.coef[e];
        for (int64_t d = 0; d < D; ++d) o[d] += a * in[d];
      }
    }
  }
}

// dst[t][j][:D] = sum over (i, k, a) in nb(l, j) of a * src[t][i][k][:D]
template <typename acc_t>
void gather(const Graph<acc_t>& g, const Neighbours<acc_t>& nb, const acc_t* mats, int64_t l, const acc_t* src,
            acc_t* dst, int64_t tb, int64_t D) {
  const int64_t V = g.V, K = g.K, KD = K * D;
  if (g.dense[l]) {
    for (int64_t t = 0; t < tb; ++t)
      for (int64_t k = 0; k < K; ++k)
        gemm_rm<acc_t>(false, false, V, D, V, 1, mats + k * V * V, V, src + t * V * KD + k * D, KD, k == 0 ? 0 : 1,
                       dst + t * V * D, D);
    return;
  }
  const int64_t* off = nb.off.data() + l * V;
  for (int64_t t = 0; t < tb; ++t) {
    const acc_t* in_t = src + t * V * KD;
    for (int64_t j = 0; j < V; ++j) {
      acc_t* __restrict__ out = dst + (t * V + j) * D;
      std::fill(out, out + D, acc_t(0));
      for (int64_t e = off[j]; e < off[j + 1]; ++e) {
        const acc_t* __restrict__ in = in_t + (nb.src[e] * K + nb.part[e]) * D;
        const acc_t a = nb.coef[e];
        for (int64_t d = 0; d < D; ++d) out[d] += a * in[d];
      }
    }
  }
}

// Importance gradient of one block: G[k][v][w] += sum_t <P[t][v](k), Q[t][w](k)> over the
// edges (v, w, k) of the layout; P rows are [t][v][(k)][D], Q rows [t][w][(k)][D], where
// (k) is present when p_has_k / q_has_k.
template <typename acc_t>
void edge_dots(const Graph<acc_t>& g, int64_t l, const acc_t* P, bool p_has_k, const acc_t* Q, bool q_has_k,
               acc_t* G, int64_t tb, int64_t D) {
  const int64_t V = g.V, K = g.K;
  const int64_t p_row = (p_has_k ? K : 1) * D, q_row = (q_has_k ? K : 1) * D;
  if (g.dense[l]) {
    for (int64_t t = 0; t < tb; ++t)
      for (int64_t k = 0; k < K; ++k)
        gemm_rm<acc_t>(false, true, V, V, D, 1, P + t * V * p_row + (p_has_k ? k * D : 0), p_row,
                       Q + t * V * q_row + (q_has_k ? k * D : 0), q_row, 1, G + k * V * V, V);
    return;
  }
  const auto& nb = g.fwd;
  const int64_t* off = nb.off.data() + l * V;
  for (int64_t w = 0; w < V; ++w)
    for (int64_t e = off[w]; e < off[w + 1]; ++e) {
      const int64_t v = nb.src[e], k = nb.part[e];
      const acc_t* p = P + v * p_row + (p_has_k ? k * D : 0);
      const acc_t* q = Q + w * q_row + (q_has_k ? k * D : 0);
      acc_t s = 0;
      for (int64_t t = 0; t < tb; ++t) {
        const acc_t* __restrict__ pt = p + t * V * p_row;
        const acc_t* __restrict__ qt = q + t * V * q_row;
        for (int64_t d = 0; d < D; ++d) s += pt[d] * qt[d];
      }
      G[(k * V + v) * V + w] += s;
    }
}

// Channel-last copy of frames t0 .. t0+tb of sample n: out[t][v][c] = in[n][c][t0+t][v] for c < C,
// with channel C set to one when `ones` (the bias channel); out rows have D >= C (+1) entries.
template <typename scalar_t, typename acc_t>
void to_channel_last(const scalar_t* in, int64_t n, int64_t C, int64_t T, int64_t V, int64_t t0, int64_t tb,
                     acc_t* out, int64_t D, bool ones) {
  const int64_t rows = tb * V;
  for (int64_t c = 0; c < C; ++c) {
    const scalar_t* src = in + ((n * C + c) * T + t0) * V;
    for (int64_t r = 0; r < rows; ++r) out[r * D + c] = static_cast<acc_t>(src[r]);
  }
  if (ones)
    for (int64_t r = 0; r < rows; ++r) out[r * D + C] = acc_t(1);
}

// Inverse: out[n][c][t0+t][v] = in[t][v][c] for c < C (in rows have D entries).
template <typename scalar_t, typename acc_t>
void from_channel_last(const acc_t* in, int64_t D, scalar_t* out, int64_t n, int64_t C, int64_t T, int64_t V,
                       int64_t t0, int64_t tb) {
  const int64_t rows = tb * V;
  for (int64_t c = 0; c < C; ++c) {
    scalar_t* dst = out + ((n * C + c) * T + t0) * V;
    for (int64_t r = 0; r < rows; ++r) dst[r] = static_cast<scalar_t>(in[r * D + c]);
  }
}

// Frames t0 .. t0+tb of sample n as a (C, tb*V) matrix in the accumulation type: the tensor
// itself when it already is (leading dimension T*V), else a converted copy in `buf`.
template <typename scalar_t, typename acc_t>
const acc_t* block_matrix(const scalar_t* in, int64_t n, int64_t C, int64_t T, int64_t V, int64_t t0, int64_t tb,
                          acc_t* buf, int64_t& ld) {
  const scalar_t* src = in + (n * C * T + t0) * V;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    ld = T * V;
    return src;
  } else {
    const int64_t cols = tb * V;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < cols; ++r) buf[c * cols + r] = static_cast<acc_t>(src[c * T * V + r]);
    ld = cols;
    return buf;
  }
}

// Where a (C, tb*V) block result for sample n is written: straight into the output when its
// type is the accumulation type, else into `buf` (then store_block converts it).
template <typename scalar_t, typename acc_t>
acc_t* block_target(scalar_t* out, int64_t n, int64_t C, int64_t T, int64_t V, int64_t t0, int64_t tb, acc_t* buf,
                    int64_t& ld) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    ld = T * V;
    return out + (n * C * T + t0) * V;
  } else {
    ld = tb * V;
    return buf;
  }
}

template <typename scalar_t, typename acc_t>
void store_block(const acc_t* buf, scalar_t* out, int64_t n, int64_t C, int64_t T, int64_t V, int64_t t0,
                 int64_t tb) {
  if constexpr (!std::is_same_v<scalar_t, acc_t>) {
    const int64_t cols = tb * V;
    scalar_t* dst = out + (n * C * T + t0) * V;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < cols; ++r) dst[c * T * V + r] = static_cast<scalar_t>(buf[c * cols + r]);
  }
}

// Everything one call needs, in the accumulation type.
template <typename acc_t>
struct Problem {
  int64_t N, C, T, V, L, K, O;
  bool has_bias, has_importance, aggregate_first;
  int64_t Cp;  // input channels + the ones channel of the bias
  Graph<acc_t> graph;
  at::Tensor a_eff;  // (L, K, V, V)
  // aggregate first: (O, K*Cp), w[o][k*Cp + c] = W[k,o,c] (c == C: b[k,o]);
  // transform first: (K*O, Cp), w[k*O + o][c] = W[k,o,c] (c == C: b[k,o]).
  at::Tensor w;
  std::vector<int64_t> layout;
  int64_t tb, blocks;  // frames per work item, blocks per sample
  bool parallel;       // worth a thread team
};

template <typename acc_t>
Problem<acc_t> make_problem(const char* op, const at::Tensor& x, const at::Tensor& layout, const at::Tensor& A,
                            const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            const std::optional<at::Tensor>& importance, bool backward) {
  const auto s = check_graph_conv_args(op, x, layout, A, weight, bias, importance);
  TORCH_CHECK(x.device().is_cpu(), op, " (CPU): x must be a CPU tensor");
  Problem<acc_t> p;
  p.N = s.N, p.C = s.C, p.T = s.T, p.V = s.V, p.L = s.L, p.K = s.K, p.O = s.O;
  p.has_bias = bias.has_value();
  p.has_importance = importance.has_value();
  p.aggregate_first = p.C <= p.O;
  p.Cp = p.C + (p.has_bias ? 1 : 0);
  const auto acc = c10::CppTypeToScalarType<acc_t>::value;

  const auto lay = layout.contiguous();
  const int64_t* lp = lay.data_ptr<int64_t>();
  p.layout.assign(lp, lp + p.N);
  for (int64_t n = 0; n < p.N; ++n)
    TORCH_CHECK(p.layout[n] >= 0 && p.layout[n] < p.L, op, ": layout[", n, "] = ", p.layout[n],
                " is not a layout id in [0, ", p.L, ")");

  const auto A_acc = A.to(acc).contiguous();
  p.a_eff = importance.has_value() ? (A_acc * importance->to(acc)).contiguous() : A_acc;
  p.graph = build_graph<acc_t>(A, p.a_eff);

  auto w = weight.to(acc);  // (K, O, C)
  if (p.has_bias) w = at::cat({w, bias->to(acc).unsqueeze(2)}, 2);  // (K, O, Cp)
  p.w = p.aggregate_first ? w.permute({1, 0, 2}).reshape({p.O, p.K * p.Cp}).contiguous()
                          : w.reshape({p.K * p.O, p.Cp}).contiguous();

  // Frames per block: keep the block's buffers (floats per row of V joints) within ~256 KiB.
  const int64_t narrow = p.aggregate_first ? p.Cp : p.O;
  const int64_t per_frame = p.V * (p.K * narrow * (backward ? 2 : 1) + p.Cp + p.O + p.C);
  const int64_t budget = (256 * 1024) / static_cast<int64_t>(sizeof(acc_t));
  p.tb = std::clamp<int64_t>(budget / std::max<int64_t>(per_frame, 1), 1, std::max<int64_t>(p.T, 1));
  // Enough items to balance a few threads; a fixed count, so results do not depend on threads.
  while (p.tb > 1 && p.N * ((p.T + p.tb - 1) / p.tb) < kMinItems) p.tb = (p.tb + 1) / 2;
  p.blocks = p.T > 0 ? (p.T + p.tb - 1) / p.tb : 0;
  p.parallel = static_cast<double>(p.N) * p.T * p.V * p.K * p.Cp * p.O > kParallelWork;
  return p;
}

// Splits `items` into `groups` contiguous ranges; each thread builds its worker (its buffers)
// with make_worker() and then takes the next range from a shared counter until none is left,
// so a thread slowed by a busy core (this machine is shared) simply does fewer ranges.
// Small calls run on the calling thread: waking a thread team costs more than they do.
template <typename MakeWorker>
void run_groups(int64_t items, int64_t groups, bool parallel, const MakeWorker& make_worker) {
  if (groups <= 0) return;
  std::atomic<int64_t> next{0};
  auto body = [&](int64_t, int64_t) {
    const SequentialBlas sequential;
    auto work = make_worker();
    for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;)
      work(g, items * g / groups, items * (g + 1) / groups);
  };
  const int64_t threads = parallel ? std::min<int64_t>(at::get_num_threads(), groups) : 1;
  if (threads <= 1)
    body(0, 1);  // at::parallel_for would still open a (mostly idle) thread team
  else
    at::parallel_for(0, threads, 1, body);
}

template <typename scalar_t, typename acc_t>
void forward_kernel(const Problem<acc_t>& p, const scalar_t* x, scalar_t* y) {
  const int64_t V = p.V, K = p.K, O = p.O, C = p.C, Cp = p.Cp, T = p.T;
  const auto& g = p.graph;
  const acc_t* w = p.w.template data_ptr<acc_t>();
  const int64_t items = p.N * p.blocks;
  run_groups(items, items, p.parallel, [&] {
    const int64_t rows = p.tb * V;
    return [&, xt = std::vector<acc_t>(rows * Cp), mid = std::vector<acc_t>(rows * K * std::max(Cp, O)),
            out = std::vector<acc_t>(rows * O)](int64_t, int64_t i0, int64_t i1) mutable {
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t n = item / p.blocks, t0 = (item % p.blocks) * p.tb, tb = std::min(p.tb, T - t0);
      const int64_t l = p.layout[n], r = tb * V;
      to_channel_last(x, n, C, T, V, t0, tb, xt.data(), Cp, p.has_bias);
      if (p.aggregate_first) {
        // XA[t][w][k][c] = sum_v A[k,v,w] x[t][v][c];  y (O, r) = w (O, K*Cp) @ XA^T
        spread(g, g.fwd, g.dense[l] ? g.mat_fwd(l) : nullptr, l, xt.data(), mid.data(), tb, Cp);
        int64_t ldy;
        acc_t* dst = block_target<scalar_t, acc_t>(y, n, O, T, V, t0, tb, out.data(), ldy);
        gemm_rm<acc_t>(false, true, O, r, K * Cp, 1, w, K * Cp, mid.data(), K * Cp, 0, dst, ldy);
        store_block<scalar_t, acc_t>(out.data(), y, n, O, T, V, t0, tb);
      } else {
        // Z (r, K*O) = x^T (r, Cp) @ w^T;  y^T[t][w][o] = sum_k sum_v A[k,v,w] Z[t][v][k][o]
        gemm_rm<acc_t>(false, true, r, K * O, Cp, 1, xt.data(), Cp, w, Cp, 0, mid.data(), K * O);
        gather(g, g.fwd, g.dense[l] ? g.mat_fwd(l) : nullptr, l, mid.data(), out.data(), tb, O);
        from_channel_last(out.data(), O, y, n, O, T, V, t0, tb);
      }
    }
    };
  });
}

template <typename scalar_t, typename acc_t>
void backward_kernel(const Problem<acc_t>& p, const scalar_t* gy, const scalar_t* x, scalar_t* gx, acc_t* gw_total,
                     acc_t* gimp_total) {
  const int64_t V = p.V, K = p.K, O = p.O, C = p.C, Cp = p.Cp, T = p.T;
  const auto& g = p.graph;
  const acc_t* w = p.w.template data_ptr<acc_t>();
  const int64_t gw_size = p.w.numel(), gimp_size = p.has_importance ? p.L * K * V * V : 0;
  const int64_t items = p.N * p.blocks, groups = std::min(items, kReduceGroups);
  std::vector<acc_t> gw_parts(groups * gw_size, acc_t(0)), gimp_parts(groups * gimp_size, acc_t(0));
  run_groups(items, groups, p.parallel, [&] {
    const int64_t rows = p.tb * V, wide = K * std::max(Cp, O);
    constexpr bool same = std::is_same_v<scalar_t, acc_t>;
    return [&, xt = std::vector<acc_t>(rows * Cp), mid = std::vector<acc_t>(rows * wide),
            grad_mid = std::vector<acc_t>(rows * wide), narrow = std::vector<acc_t>(rows * std::max(Cp, O)),
            gy_buf = std::vector<acc_t>(same ? 0 : rows * O),
            gx_buf = std::vector<acc_t>(same ? 0 : rows * C)](int64_t group, int64_t i0, int64_t i1) mutable {
    acc_t* gw = gw_parts.data() + group * gw_size;
    acc_t* gimp = gimp_parts.data() + group * gimp_size;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t n = item / p.blocks, t0 = (item % p.blocks) * p.tb, tb = std::min(p.tb, T - t0);
      const int64_t l = p.layout[n], r = tb * V;
      const bool dense = g.dense[l];
      to_channel_last(x, n, C, T, V, t0, tb, xt.data(), Cp, p.has_bias);
      if (p.aggregate_first) {
        int64_t ldg;
        const acc_t* gyb = block_matrix<scalar_t, acc_t>(gy, n, O, T, V, t0, tb, gy_buf.data(), ldg);
        // XA as in forward; U (r, K*Cp) = gy^T (r, O) @ w (O, K*Cp): the gradient of XA
        spread(g, g.fwd, dense ? g.mat_fwd(l) : nullptr, l, xt.data(), mid.data(), tb, Cp);
        gemm_rm<acc_t>(true, false, r, K * Cp, O, 1, gyb, ldg, w, K * Cp, 0, grad_mid.data(), K * Cp);
        // d w (O, K*Cp) += gy (O, r) @ XA (r, K*Cp)
        gemm_rm<acc_t>(false, false, O, K * Cp, r, 1, gyb, ldg, mid.data(), K * Cp, 1, gw, K * Cp);
        // d x^T[t][v][c] = sum_k sum_w A[k,v,w] U[t][w][k][c]
        gather(g, g.bwd, dense ? g.mat_bwd(l) : nullptr, l, grad_mid.data(), narrow.data(), tb, Cp);
        from_channel_last(narrow.data(), Cp, gx, n, C, T, V, t0, tb);
        // d A_eff[k,v,w] += sum_t <x[t][v][:], U[t][w][k][:]>  (the ones channel carries the bias)
        if (p.has_importance) edge_dots(g, l, xt.data(), false, grad_mid.data(), true, gimp + l * K * V * V, tb, Cp);
      } else {
        // d Z[t][v][k][o] = sum_w A[k,v,w] gy^T[t][w][o]
        to_channel_last(gy, n, O, T, V, t0, tb, narrow.data(), O, false);
        spread(g, g.bwd, dense ? g.mat_bwd(l) : nullptr, l, narrow.data(), grad_mid.data(), tb, O);
        // d x (C, r) = w[:, :C]^T (C, K*O) @ dZ^T (K*O, r)
        int64_t ldx;
        acc_t* dst = block_target<scalar_t, acc_t>(gx, n, C, T, V, t0, tb, gx_buf.data(), ldx);
        gemm_rm<acc_t>(true, true, C, r, K * O, 1, w, Cp, grad_mid.data(), K * O, 0, dst, ldx);
        store_block<scalar_t, acc_t>(gx_buf.data(), gx, n, C, T, V, t0, tb);
        // d w (K*O, Cp) += dZ^T (K*O, r) @ x^T (r, Cp)
        gemm_rm<acc_t>(true, false, K * O, Cp, r, 1, grad_mid.data(), K * O, xt.data(), Cp, 1, gw, Cp);
        if (p.has_importance) {
          // d A_eff[k,v,w] += sum_t <Z[t][v][k][:], gy^T[t][w][:]>, Z recomputed
          gemm_rm<acc_t>(false, true, r, K * O, Cp, 1, xt.data(), Cp, w, Cp, 0, mid.data(), K * O);
          edge_dots(g, l, mid.data(), true, narrow.data(), false, gimp + l * K * V * V, tb, O);
        }
      }
    }
    };
  });
  for (int64_t c = 0; c < groups; ++c) {
    for (int64_t i = 0; i < gw_size; ++i) gw_total[i] += gw_parts[c * gw_size + i];
    for (int64_t i = 0; i < gimp_size; ++i) gimp_total[i] += gimp_parts[c * gimp_size + i];
  }
}

at::Tensor masked_graph_conv_cpu(const at::Tensor& x_in, const at::Tensor& layout, const at::Tensor& A,
                                 const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                 const std::optional<at::Tensor>& importance) {
  const char* op = "msclr::masked_graph_conv";
  check_graph_conv_args(op, x_in, layout, A, weight, bias, importance);
  const auto x = x_in.contiguous();
  auto y = at::empty({x.size(0), weight.size(1), x.size(2), x.size(3)}, x.options());
  if (y.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "masked_graph_conv_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto p = make_problem<acc_t>(op, x, layout, A, weight, bias, importance, false);
    forward_kernel<scalar_t, acc_t>(p, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>());
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> masked_graph_conv_backward_cpu(
    const at::Tensor& grad, const at::Tensor& x_in, const at::Tensor& layout, const at::Tensor& A,
    const at::Tensor& weight, const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& importance) {
  const char* op = "msclr::masked_graph_conv_backward";
  const auto s = check_graph_conv_args(op, x_in, layout, A, weight, bias, importance);
  check_graph_conv_grad(op, grad, s, x_in);
  const auto x = x_in.contiguous();
  const auto gy = grad.to(x.scalar_type()).contiguous();
  auto gx = at::zeros_like(x);
  const auto acc = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t Cp = s.C + (bias.has_value() ? 1 : 0);
  auto gw_acc = at::zeros({s.C <= s.O ? s.O : s.K * s.O, s.C <= s.O ? s.K * Cp : Cp}, x.options().dtype(acc));
  auto gimp_acc = importance.has_value() ? at::zeros(A.sizes(), x.options().dtype(acc))
                                         : at::empty({0}, x.options().dtype(acc));
  if (x.numel() > 0 && gy.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "masked_graph_conv_backward_cpu", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const auto p = make_problem<acc_t>(op, x, layout, A, weight, bias, importance, true);
      backward_kernel<scalar_t, acc_t>(p, gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                       gx.mutable_data_ptr<scalar_t>(), gw_acc.mutable_data_ptr<acc_t>(),
                                       gimp_acc.mutable_data_ptr<acc_t>());
    });
  }
  // Unpack the packed weight gradient into (K, O, C) and the bias column into (K, O).
  at::Tensor gw_koc;  // (K, O, Cp)
  if (s.C <= s.O)
    gw_koc = gw_acc.view({s.O, s.K, Cp}).permute({1, 0, 2});
  else
    gw_koc = gw_acc.view({s.K, s.O, Cp});
  auto grad_weight = gw_koc.narrow(2, 0, s.C).to(weight.scalar_type()).contiguous();
  auto grad_bias = bias.has_value() ? gw_koc.select(2, s.C).to(bias->scalar_type()).contiguous()
                                    : at::zeros({s.K, s.O}, weight.options());
  auto grad_importance = importance.has_value() ? (gimp_acc * A.to(acc)).to(importance->scalar_type())
                                                : at::zeros_like(A);
  return {gx, grad_weight, grad_bias, grad_importance};
}

}  // namespace
}  // namespace msclr

TORCH_LIBRARY_IMPL(msclr, CPU, m) {
  m.impl("masked_graph_conv", &msclr::masked_graph_conv_cpu);
  m.impl("masked_graph_conv_backward", &msclr::masked_graph_conv_backward_cpu);
}
