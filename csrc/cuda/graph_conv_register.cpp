// CUDA registration of msclr::masked_graph_conv(_backward): checks, neighbour tables and
// reductions with ATen (no host synchronisation), kernels from graph_conv_kernel.cu. Schemas in
// csrc/graph_conv.cpp, argument checks (shared with the CPU kernels) in csrc/graph_conv.h.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <torch/library.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "../graph_conv.h"
#include "graph_conv_launchers.h"

namespace msclr {
namespace {

GraphConvDtype dtype_of(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat:
      return GraphConvDtype::kFloat32;
    case at::kHalf:
      return GraphConvDtype::kFloat16;
    case at::kBFloat16:
      return GraphConvDtype::kBFloat16;
    case at::kDouble:
      return GraphConvDtype::kFloat64;
    default:
      TORCH_CHECK(false, "msclr::masked_graph_conv (CUDA): unsupported dtype ", x.scalar_type());
  }
}

at::ScalarType acc_type(const at::Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// Neighbour tables with every row's nonzeros first, in joint order (stable sort of the zero
// flags); deg is the longest row per (layout, partition). Forward: destination w, source v;
// transposed: destination v, source w. Coefficients are A_eff, in the accumulation type.
struct Tables {
  at::Tensor src, coef, deg;
  GraphConvTables view() const {
    return {src.data_ptr<int32_t>(), coef.data_ptr(), deg.data_ptr<int32_t>()};
  }
};

// What depends on A's nonzero pattern only: the slot order (as gather indices), src and deg.
struct PatternTables {
  at::Tensor order, src, deg;
};

PatternTables build_pattern_tables(const at::Tensor& A, bool transposed) {
  auto pattern = A.ne(0);
  if (!transposed) pattern = pattern.transpose(2, 3);
  const auto order = std::get<1>(at::sort(pattern.logical_not().to(at::kByte), /*stable=*/true, -1, false));
  return {order, order.to(at::kInt).contiguous(), pattern.sum(-1).amax(-1).to(at::kInt).contiguous()};
}

// The pattern tables of the last few adjacencies, each kept with a reference to its A, A's version
// counter and storage, and the stream that built them: the encoder passes the same A buffer every
// call, so the sort and reductions (about 15 small launches per table, three tables per layer and
// step) run once. An in-place change of A bumps its version, a new storage (`A.data = ...`) changes
// its pointer, sizes or strides: both rebuild. Tables are used only on the stream that built them,
// so freeing them (eviction, rebuild) is ordered after their last use. Not cached: inference
// tensors (no version counter) and calls under CUDA-graph capture (the building kernels would only
// be recorded).
// Writes through `A.data` keep A's version and pointer and are not seen (as for the Triton cache).
class PatternCache {
 public:
  PatternTables get(const at::Tensor& A, bool transposed, cudaStream_t stream) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess) {
      (void)cudaGetLastError();  // not left for the next launch check to report as its own
      return build_pattern_tables(A, transposed);
    }
    if (A.is_inference() || capture != cudaStreamCaptureStatusNone) return build_pattern_tables(A, transposed);
    const uint32_t version = A.unsafeGetTensorImpl()->version_counter().current_version();
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto& e : entries_) {
      if (e.a.unsafeGetTensorImpl() == A.unsafeGetTensorImpl() && e.transposed == transposed && e.stream == stream) {
        if (e.version != version || e.data != A.data_ptr() || e.sizes != A.sizes() || e.strides != A.strides()) {
          e.tables = build_pattern_tables(A, transposed);
          e.version = version, e.data = A.data_ptr(), e.sizes = A.sizes().vec(), e.strides = A.strides().vec();
        }
        return e.tables;
      }
    }
    if (entries_.size() == kEntries) entries_.erase(entries_.begin());  // oldest first out
    entries_.push_back({A, transposed, stream, version, A.data_ptr(), A.sizes().vec(), A.strides().vec(),
                        build_pattern_tables(A, transposed)});
    return entries_.back().tables;
  }

 private:
  static constexpr size_t kEntries = 16;  // two directions of a few adjacencies (one per model in use)
  struct Entry {
    at::Tensor a;  // held, so that no other tensor can take its address while cached
    bool transposed;
    cudaStream_t stream;
    uint32_t version;
    const void* data;  // with sizes and strides: `A.data = other` swaps the storage under the same tensor
    std::vector<int64_t> sizes, strides;
    PatternTables tables;
  };
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

Tables neighbour_tables(const at::Tensor& A, const at::Tensor& a_eff, bool transposed) {
  static PatternCache* cache = new PatternCache();  // never destroyed: no CUDA frees after the runtime's teardown
  const PatternTables p = cache->get(A, transposed, c10::cuda::getCurrentCUDAStream().stream());
  const auto mat = transposed ? a_eff : a_eff.transpose(2, 3);
  return {p.src, at::gather(mat, -1, p.order).contiguous(), p.deg};
}

at::Tensor effective_adjacency(const at::Tensor& A, const std::optional<at::Tensor>& importance, at::ScalarType acc) {
  auto a = A.to(acc);
  if (importance.has_value()) a = a * importance->to(acc);
  return a.contiguous();
}

void check_cuda(const char* op, const at::Tensor& x, const GraphConvShape& s) {
  TORCH_CHECK(x.is_cuda(), op, " (CUDA): x must be a CUDA tensor");
  // every kernel keeps the samples on grid x (2^31 - 1); y and z stop at 65535
  TORCH_CHECK(s.N < (int64_t{1} << 31), op, " (CUDA): at most 2^31 - 1 samples per call, got ", s.N);
  // the kernels index frames x joints in 32 bits (64-bit division is a long software routine)
  TORCH_CHECK(s.T * s.V < (int64_t{1} << 31), op, " (CUDA): T * V must be below 2^31, got ", s.T, " x ", s.V);
}

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, " (CUDA): ", cudaGetErrorString(err));
}

at::Tensor masked_graph_conv_cuda(const at::Tensor& x_in, const at::Tensor& layout_in, const at::Tensor& A,
                                  const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                  const std::optional<at::Tensor>& importance) {
  const char* op = "msclr::masked_graph_conv";
  const auto s = check_graph_conv_args(op, x_in, layout_in, A, weight, bias, importance);
  check_cuda(op, x_in, s);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto x = x_in.contiguous();
  const auto layout = layout_in.contiguous();
  auto y = at::empty({s.N, s.O, s.T, s.V}, x.options());
  if (y.numel() == 0) return y;
  const auto acc = acc_type(x);
  const auto tables = neighbour_tables(A, effective_adjacency(A, importance, acc), false);
  const auto w = weight.to(acc).contiguous();
  const auto b = bias.has_value() ? bias->to(acc).contiguous() : at::Tensor();
  check_launch(op, graph_conv_mix_cuda(dtype_of(x), x.data_ptr(), y.data_ptr(), w.data_ptr(), w.stride(0),
                                       w.stride(1), w.stride(2), b.defined() ? b.data_ptr() : nullptr, tables.view(),
                                       layout.data_ptr<int64_t>(), s.N, s.C, s.O, s.T, s.V, s.K, s.L,
                                       c10::cuda::getCurrentCUDAStream()));
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> masked_graph_conv_backward_cuda(
    const at::Tensor& grad, const at::Tensor& x_in, const at::Tensor& layout_in, const at::Tensor& A,
    const at::Tensor& weight, const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& importance) {
  const char* op = "msclr::masked_graph_conv_backward";
  const auto s = check_graph_conv_args(op, x_in, layout_in, A, weight, bias, importance);
  check_graph_conv_grad(op, grad, s, x_in);
  check_cuda(op, x_in, s);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const auto x = x_in.contiguous();
  const auto layout = layout_in.contiguous();
  const auto gy = grad.to(x.scalar_type()).contiguous();
  const auto acc = acc_type(x);
  const auto fopt = x.options().dtype(acc);
  // the dx launch below writes every element of gx: no zero fill unless nothing is launched
  const bool work = x.numel() > 0 && gy.numel() > 0;
  auto gx = work ? at::empty_like(x) : at::zeros_like(x);
  auto gw = at::zeros({s.K, s.O, s.C}, fopt);
  auto gb = at::zeros({s.K, s.O}, fopt);
  auto gi = at::zeros(A.sizes(), fopt);
  if (work) {
    const auto a_eff = effective_adjacency(A, importance, acc);
    const auto fwd = neighbour_tables(A, a_eff, false);
    const auto w = weight.to(acc).contiguous();
    const auto b = bias.has_value() ? bias->to(acc).contiguous() : at::Tensor();
    const auto dt = dtype_of(x);
    const int64_t* lay = layout.data_ptr<int64_t>();

    // d x: the forward kernel over grad with W^T (through strides) and the transposed graph
    const auto bwd = neighbour_tables(A, a_eff, true);
    check_launch(op, graph_conv_mix_cuda(dt, gy.data_ptr(), gx.data_ptr(), w.data_ptr(), w.stride(0), w.stride(2),
                                         w.stride(1), nullptr, bwd.view(), lay, s.N, s.O, s.C, s.T, s.V, s.K, s.L,
                                         stream));

    // d W, d b: partial sums over interleaved sample groups, reduced here in a fixed order
    int sms = 0;  // (ATen/cuda/CUDAContext.h would need cuSPARSE headers this toolkit may lack)
    check_launch(op, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, x.get_device()));
    const int rows = graph_conv_tile_rows(s.O), inputs = graph_conv_weight_grad_inputs(rows);
    const int64_t tiles = s.K * ((s.O + rows - 1) / rows) * ((s.C + inputs - 1) / inputs);
    const int64_t splits = std::clamp<int64_t>((4 * int64_t{sms} + tiles - 1) / tiles, 1, std::min<int64_t>(s.N, 65535));
    auto gw_part = at::empty({splits, s.K, s.O, s.C}, fopt);
    auto gb_part = at::empty({splits, s.K, s.O}, fopt);
    check_launch(op, graph_conv_weight_grad_cuda(dt, x.data_ptr(), gy.data_ptr(), fwd.view(), lay, gw_part.data_ptr(),
                                                 gb_part.data_ptr(), b.defined(), s.N, s.C, s.O, s.T, s.V, s.K, s.L,
                                                 splits, stream));
    gw = gw_part.sum(0);
    if (b.defined()) gb = gb_part.sum(0);

    if (importance.has_value()) {
      // per (sample, partition, table slot), then summed per layout and scattered to (v, w)
      auto g_part = at::zeros({s.N, s.K, s.V, s.V}, fopt);
      check_launch(op, graph_conv_importance_grad_cuda(dt, x.data_ptr(), gy.data_ptr(), w.data_ptr(),
                                                       b.defined() ? b.data_ptr() : nullptr, fwd.view(), lay,
                                                       g_part.data_ptr(), s.N, s.C, s.O, s.T, s.V, s.K, s.L, stream));
      // Summed per layout by masked reductions, not index_add_ (atomics on CUDA: run-to-run
      // different sums); invalid layout ids match no mask, so they add nothing without a sync.
      std::vector<at::Tensor> sums;
      for (int64_t l = 0; l < s.L; ++l) sums.push_back((g_part * layout.eq(l).to(acc).view({s.N, 1, 1, 1})).sum(0));
      auto per_layout = at::stack(sums);
      auto dense_wv = at::zeros({s.L, s.K, s.V, s.V}, fopt).scatter_add_(3, fwd.src.to(at::kLong), per_layout);
      gi = dense_wv.transpose(2, 3) * A.to(acc);
    }
  }
  auto grad_bias = bias.has_value() ? gb.to(bias->scalar_type()) : gb.to(weight.scalar_type());
  auto grad_importance = importance.has_value() ? gi.to(importance->scalar_type()).contiguous() : at::zeros_like(A);
  return {gx, gw.to(weight.scalar_type()), grad_bias, grad_importance};
}

}  // namespace
}  // namespace msclr

TORCH_LIBRARY_IMPL(msclr, CUDA, m) {
  m.impl("masked_graph_conv", &msclr::masked_graph_conv_cuda);
  m.impl("masked_graph_conv_backward", &msclr::masked_graph_conv_backward_cuda);
}
