// CUDA kernels of msclr::masked_graph_conv(_backward) (docs/architecture.md 3.1). Raw pointers only.
//
// The aggregation over a joint's few neighbours is a gather from the neighbour tables
// (see graph_conv_launchers.h) into shared memory; the channel mixing is a shared-memory tiled
// product with 4x4 (4x2) register tiles per thread. Nothing of the (N, K*C_out, T, V)
// intermediate is written to global memory. float/half/bfloat16 accumulate in float, double
// in double.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "graph_conv_launchers.h"

namespace msclr {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(double* p, double v) { *p = v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// The layout of sample n, or -1 (aggregate nothing) when it is not in [0, L).
__device__ __forceinline__ int64_t layout_of(const int64_t* layout, int64_t n, int64_t L) {
  const int64_t l = layout[n];
  return (l >= 0 && l < L) ? l : -1;
}

// sum over the neighbour slots of destination joint j: coef * row[src]   (row: one frame of one channel)
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ acc_t aggregate(const scalar_t* __restrict__ row, const int32_t* __restrict__ src,
                                           const acc_t* __restrict__ coef, int64_t slots, int d) {
  acc_t s = 0;
  for (int q = 0; q < d; ++q) {
    const acc_t a = coef[slots + q];
    if (a != acc_t(0)) s += a * to_acc(row[src[slots + q]]);
  }
  return s;
}

// Output-channel tile heights by C_out (graph_conv_tile_rows). A thread keeps up to 16 sums:
// narrower tiles take more columns (mix) or fewer input channels (dW).
template <int BO>
constexpr int kMixCols = 4096 / BO;  // mix: BO x kMixCols outputs per block, (BO/16) x (kMixCols/16) per thread

// ------------------------------------------------------------------ out = sum_k W_k (in A_k)
constexpr int kMixBC = 16;

// Minimum two blocks per SM (at most 128 registers), as for the gradient kernels below: without it
// ptxas gave those as few as 48 registers and spilled.
template <typename scalar_t, typename acc_t, int BO>
__global__ void __launch_bounds__(kThreads, 2)
    mix_kernel(const scalar_t* __restrict__ in, scalar_t* __restrict__ out, const acc_t* __restrict__ w, int64_t sw_k,
               int64_t sw_o, int64_t sw_c, const acc_t* __restrict__ bias, const int32_t* __restrict__ src,
               const acc_t* __restrict__ coef, const int32_t* __restrict__ deg, const int64_t* __restrict__ layout,
               int64_t CI, int64_t CO, int64_t T, int64_t V, int64_t K, int64_t L) {
  constexpr int BJ = kMixCols<BO>, RI = BO / 16, RJ = BJ / 16;
  __shared__ acc_t xa[kMixBC][BJ];  // aggregated inputs of this block's columns
  // W_k tile, [c][o]; one column of padding: the fill below walks c fastest, and rows of exactly
  // 64 words would put all 16 of a warp's c on one bank (16-way conflict on every store)
  __shared__ acc_t ws[kMixBC][BO + 1];
  __shared__ acc_t colsum[BJ];
  const int Vi = static_cast<int>(V), TV = static_cast<int>(T * V);  // T * V < 2^31 (checked by the host)
  const int64_t n = blockIdx.x;  // samples on grid x: y and z stop at 65535
  const int j0 = blockIdx.y * BJ;
  const int64_t o0 = static_cast<int64_t>(blockIdx.z) * BO;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t lay = layout_of(layout, n, L);
  const scalar_t* in_n = in + n * CI * TV;
  acc_t acc[RI][RJ];
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int j = 0; j < RJ; ++j) acc[i][j] = 0;

  for (int64_t k = 0; k < K; ++k) {
    const int d = lay >= 0 ? deg[lay * K + k] : 0;
    const int64_t table = (lay >= 0 ? lay * K + k : 0) * V;
    for (int64_t c0 = 0; c0 < CI; c0 += kMixBC) {
      for (int e = tid; e < kMixBC * BJ; e += kThreads) {
        const int cc = e / BJ, jj = e % BJ, col = j0 + jj;
        const int64_t c = c0 + cc;
        acc_t s = 0;
        if (c < CI && col < TV) {
          const int t = col / Vi, j = col - t * Vi;  // 32-bit: 64-bit division is a long software routine
          s = aggregate(in_n + c * TV + t * Vi, src, coef, (table + j) * V, d);
        }
        xa[cc][jj] = s;
      }
      for (int e = tid; e < kMixBC * BO; e += kThreads) {
        const int cc = e % kMixBC, oo = e / kMixBC;
        const int64_t c = c0 + cc, o = o0 + oo;
        ws[cc][oo] = (c < CI && o < CO) ? w[k * sw_k + o * sw_o + c * sw_c] : acc_t(0);
      }
      __syncthreads();
#pragma unroll
      for (int cc = 0; cc < kMixBC; ++cc) {
        acc_t a[RI], b[RJ];
#pragma unroll
        for (int i = 0; i < RI; ++i) a[i] = ws[cc][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < RJ; ++j) b[j] = xa[cc][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < RI; ++i)
#pragma unroll
          for (int j = 0; j < RJ; ++j) acc[i][j] += a[i] * b[j];
      }
      __syncthreads();
    }
    if (bias != nullptr) {
      // bias enters through the column sums of A_eff: sum_v A[k,v,w] b[k,o]
      for (int jj = tid; jj < BJ; jj += kThreads) {
        const int col = j0 + jj;
        acc_t s = 0;
        if (col < TV) {
          const int64_t slots = (table + col % Vi) * V;
          for (int q = 0; q < d; ++q) s += coef[slots + q];
        }
        colsum[jj] = s;
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < RI; ++i) {
        const int64_t o = o0 + ty + 16 * i;
        const acc_t b = o < CO ? bias[k * CO + o] : acc_t(0);
#pragma unroll
        for (int j = 0; j < RJ; ++j) acc[i][j] += b * colsum[tx + 16 * j];
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int i = 0; i < RI; ++i) {
    const int64_t o = o0 + ty + 16 * i;
#pragma unroll
    for (int j = 0; j < RJ; ++j) {
      const int col = j0 + tx + 16 * j;
      if (o < CO && col < TV) store(out + (n * CO + o) * TV + col, acc[i][j]);
    }
  }
}

// ------------------------------------------------------------------ dW, db (partial over sample groups)
constexpr int kWgBJ = 32;
template <int BO>
constexpr int kWgInputs = graph_conv_weight_grad_inputs(BO);  // dW tile: BO output x kWgInputs<BO> input channels

template <typename scalar_t, typename acc_t, int BO>
__global__ void __launch_bounds__(kThreads, 2)
    weight_grad_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ gy,
                       const int32_t* __restrict__ src, const acc_t* __restrict__ coef,
                       const int32_t* __restrict__ deg, const int64_t* __restrict__ layout, acc_t* __restrict__ gw_part,
                       acc_t* __restrict__ gb_part, bool has_bias, int64_t N, int64_t C, int64_t O, int64_t T,
                       int64_t V, int64_t K, int64_t L, int64_t splits) {
  constexpr int BC = kWgInputs<BO>, RI = BO / 16, RJ = BC / 16;
  __shared__ acc_t gys[kWgBJ][BO + 1];  // [col][o], padded against bank conflicts
  __shared__ acc_t xas[kWgBJ][BC + 1];  // [col][c]
  __shared__ acc_t colsum[kWgBJ];
  const int Vi = static_cast<int>(V), TV = static_cast<int>(T * V);  // T * V < 2^31 (checked by the host)
  const int c_tiles = static_cast<int>((C + BC - 1) / BC);
  const int64_t o0 = static_cast<int64_t>(blockIdx.x / c_tiles) * BO;
  const int c_tile = blockIdx.x % c_tiles;
  const int64_t c0 = static_cast<int64_t>(c_tile) * BC;
  const int64_t k = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const bool bias_lane = has_bias && c_tile == 0 && tid < BO;
  acc_t acc[RI][RJ];
#pragma unroll
  for (int i = 0; i < RI; ++i)
#pragma unroll
    for (int j = 0; j < RJ; ++j) acc[i][j] = 0;
  acc_t acc_b = 0;
  for (int64_t n = split; n < N; n += splits) {
    const int64_t lay = layout_of(layout, n, L);
    const int d = lay >= 0 ? deg[lay * K + k] : 0;
    const int64_t table = (lay >= 0 ? lay * K + k : 0) * V;
    const scalar_t* x_n = x + n * C * TV;
    const scalar_t* gy_n = gy + n * O * TV;
    for (int j0 = 0; j0 < TV; j0 += kWgBJ) {
      for (int e = tid; e < BO * kWgBJ; e += kThreads) {
        const int oo = e / kWgBJ, jj = e % kWgBJ, col = j0 + jj;
        const int64_t o = o0 + oo;
        gys[jj][oo] = (o < O && col < TV) ? to_acc(gy_n[o * TV + col]) : acc_t(0);
      }
      for (int e = tid; e < BC * kWgBJ; e += kThreads) {
        const int cc = e / kWgBJ, jj = e % kWgBJ, col = j0 + jj;
        const int64_t c = c0 + cc;
        acc_t s = 0;
        if (c < C && col < TV) {
          const int t = col / Vi, j = col - t * Vi;  // 32-bit: 64-bit division is a long software routine
          s = aggregate(x_n + c * TV + t * Vi, src, coef, (table + j) * V, d);
        }
        xas[jj][cc] = s;
      }
      if (has_bias && c_tile == 0) {
        for (int jj = tid; jj < kWgBJ; jj += kThreads) {
          const int col = j0 + jj;
          acc_t s = 0;
          if (col < TV) {
            const int64_t slots = (table + col % Vi) * V;
            for (int q = 0; q < d; ++q) s += coef[slots + q];
          }
          colsum[jj] = s;
        }
      }
      __syncthreads();
#pragma unroll 4
      for (int jj = 0; jj < kWgBJ; ++jj) {
        acc_t a[RI], b[RJ];
#pragma unroll
        for (int i = 0; i < RI; ++i) a[i] = gys[jj][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < RJ; ++j) b[j] = xas[jj][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < RI; ++i)
#pragma unroll
          for (int j = 0; j < RJ; ++j) acc[i][j] += a[i] * b[j];
      }
      if (bias_lane)
        for (int jj = 0; jj < kWgBJ; ++jj) acc_b += gys[jj][tid] * colsum[jj];
      __syncthreads();
    }
  }
  const int64_t base = (split * K + k) * O;
#pragma unroll
  for (int i = 0; i < RI; ++i) {
    const int64_t o = o0 + ty + 16 * i;
#pragma unroll
    for (int j = 0; j < RJ; ++j) {
      const int64_t c = c0 + tx + 16 * j;
      if (o < O && c < C) gw_part[(base + o) * C + c] = acc[i][j];
    }
  }
  if (bias_lane && o0 + tid < O) gb_part[base + o0 + tid] = acc_b;
}

// ------------------------------------------------------------------ d importance (per sample, partition, edge)
constexpr int kIgBO = 32, kIgEdges = 8;  // a block owns up to kThreads * kIgEdges table slots

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads, 2)
    importance_grad_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ gy,
                           const acc_t* __restrict__ w, const acc_t* __restrict__ bias,
                           const int32_t* __restrict__ src, const int32_t* __restrict__ deg,
                           const int64_t* __restrict__ layout, acc_t* __restrict__ g_part, int64_t C, int64_t O,
                           int64_t T, int64_t V, int64_t K, int64_t L) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  acc_t* zs = reinterpret_cast<acc_t*>(smem_raw);  // [kIgBO][V]: z = W_k x_t + b_k
  acc_t* gs = zs + kIgBO * V;                       // [kIgBO][V]: gy_t
  const int64_t n = blockIdx.x, k = blockIdx.y;
  const int64_t lay = layout_of(layout, n, L);
  const int d = lay >= 0 ? deg[lay * K + k] : 0;
  const int64_t entries = V * d, first = static_cast<int64_t>(blockIdx.z) * kThreads * kIgEdges;
  if (first >= entries) return;  // uniform over the block, before any barrier
  const int tid = threadIdx.x;
  int src_v[kIgEdges], dst_w[kIgEdges];
  acc_t acc[kIgEdges];
#pragma unroll
  for (int r = 0; r < kIgEdges; ++r) {
    const int64_t e = first + tid + static_cast<int64_t>(r) * kThreads;
    acc[r] = 0;
    src_v[r] = -1;
    dst_w[r] = 0;
    if (e < entries) {
      dst_w[r] = static_cast<int>(e / d);
      src_v[r] = src[((lay * K + k) * V + e / d) * V + e % d];
    }
  }
  const int64_t TV = T * V;
  const scalar_t* x_n = x + n * C * TV;
  const scalar_t* gy_n = gy + n * O * TV;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t o0 = 0; o0 < O; o0 += kIgBO) {
      for (int64_t e = tid; e < kIgBO * V; e += kThreads) {
        const int64_t oo = e / V, v = e % V, o = o0 + oo;
        acc_t z = 0, g = 0;
        if (o < O) {
          const acc_t* w_row = w + (k * O + o) * C;
          for (int64_t c = 0; c < C; ++c) z += w_row[c] * to_acc(x_n[c * TV + t * V + v]);
          if (bias != nullptr) z += bias[k * O + o];
          g = to_acc(gy_n[o * TV + t * V + v]);
        }
        zs[e] = z;
        gs[e] = g;
      }
      __syncthreads();
#pragma unroll
      for (int r = 0; r < kIgEdges; ++r) {
        if (src_v[r] < 0) continue;
        acc_t s = 0;
#pragma unroll 4  // fully unrolled (x kIgEdges) the loads in flight spilled at 128 registers
        for (int oo = 0; oo < kIgBO; ++oo) s += zs[oo * V + src_v[r]] * gs[oo * V + dst_w[r]];
        acc[r] += s;
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int r = 0; r < kIgEdges; ++r) {
    const int64_t e = first + tid + static_cast<int64_t>(r) * kThreads;
    if (e < entries) g_part[((n * K + k) * V + e / d) * V + e % d] = acc[r];
  }
}

inline unsigned blocks_for(int64_t count, int64_t per_block) {
  return static_cast<unsigned>((count + per_block - 1) / per_block);
}

// f(std::integral_constant<int, BO>{}) for the tile height of `rows` output channels (graph_conv_tile_rows).
template <typename F>
cudaError_t with_tile_rows(int64_t rows, F&& f) {
  switch (graph_conv_tile_rows(rows)) {
    case 16:
      return f(std::integral_constant<int, 16>{});
    case 32:
      return f(std::integral_constant<int, 32>{});
    default:
      return f(std::integral_constant<int, 64>{});
  }
}

template <typename scalar_t>
cudaError_t launch_mix(const void* in, void* out, const void* w, int64_t sw_k, int64_t sw_o, int64_t sw_c,
                       const void* bias, GraphConvTables tab, const int64_t* layout, int64_t N, int64_t CI,
                       int64_t CO, int64_t T, int64_t V, int64_t K, int64_t L, cudaStream_t stream) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  return with_tile_rows(CO, [&](auto rows) {
    constexpr int BO = decltype(rows)::value;
    const dim3 grid(static_cast<unsigned>(N), blocks_for(T * V, kMixCols<BO>), blocks_for(CO, BO));
    mix_kernel<scalar_t, acc_t, BO><<<grid, kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(in), static_cast<scalar_t*>(out), static_cast<const acc_t*>(w), sw_k, sw_o, sw_c,
        static_cast<const acc_t*>(bias), tab.src, static_cast<const acc_t*>(tab.coef), tab.deg, layout, CI, CO, T, V,
        K, L);
    return cudaGetLastError();
  });
}

template <typename scalar_t>
cudaError_t launch_weight_grad(const void* x, const void* gy, GraphConvTables tab, const int64_t* layout,
                               void* gw_part, void* gb_part, bool has_bias, int64_t N, int64_t C, int64_t O,
                               int64_t T, int64_t V, int64_t K, int64_t L, int64_t splits, cudaStream_t stream) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  return with_tile_rows(O, [&](auto rows) {
    constexpr int BO = decltype(rows)::value;
    const dim3 grid(blocks_for(O, BO) * blocks_for(C, kWgInputs<BO>), static_cast<unsigned>(K),
                    static_cast<unsigned>(splits));
    weight_grad_kernel<scalar_t, acc_t, BO><<<grid, kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(gy), tab.src,
        static_cast<const acc_t*>(tab.coef), tab.deg, layout, static_cast<acc_t*>(gw_part),
        static_cast<acc_t*>(gb_part), has_bias, N, C, O, T, V, K, L, splits);
    return cudaGetLastError();
  });
}

template <typename scalar_t>
cudaError_t launch_importance_grad(const void* x, const void* gy, const void* w, const void* bias,
                                   GraphConvTables tab, const int64_t* layout, void* g_part, int64_t N, int64_t C,
                                   int64_t O, int64_t T, int64_t V, int64_t K, int64_t L, cudaStream_t stream) {
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const size_t smem = 2 * kIgBO * static_cast<size_t>(V) * sizeof(acc_t);
  auto kernel = importance_grad_kernel<scalar_t, acc_t>;
  if (smem > 48 * 1024) {
    const cudaError_t err =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  // worst case V*V slots per (sample, partition); blocks past a layout's slots exit at once
  const dim3 grid(static_cast<unsigned>(N), static_cast<unsigned>(K), blocks_for(V * V, kThreads * kIgEdges));
  kernel<<<grid, kThreads, smem, stream>>>(static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(gy),
                                           static_cast<const acc_t*>(w), static_cast<const acc_t*>(bias), tab.src,
                                           tab.deg, layout, static_cast<acc_t*>(g_part), C, O, T, V, K, L);
  return cudaGetLastError();
}

}  // namespace

#define MSCLR_GC_DISPATCH(dtype, FN, ...)                        \
  switch (dtype) {                                               \
    case GraphConvDtype::kFloat32:                               \
      return FN<float>(__VA_ARGS__);                             \
    case GraphConvDtype::kFloat16:                               \
      return FN<__half>(__VA_ARGS__);                            \
    case GraphConvDtype::kBFloat16:                              \
      return FN<__nv_bfloat16>(__VA_ARGS__);                     \
    case GraphConvDtype::kFloat64:                               \
      return FN<double>(__VA_ARGS__);                            \
  }                                                              \
  return cudaErrorInvalidValue

cudaError_t graph_conv_mix_cuda(GraphConvDtype dtype, const void* in, void* out, const void* w, int64_t sw_k,
                                int64_t sw_o, int64_t sw_c, const void* bias, GraphConvTables tables,
                                const int64_t* layout, int64_t N, int64_t C_in, int64_t C_out, int64_t T, int64_t V,
                                int64_t K, int64_t L, cudaStream_t stream) {
  MSCLR_GC_DISPATCH(dtype, launch_mix, in, out, w, sw_k, sw_o, sw_c, bias, tables, layout, N, C_in, C_out, T, V, K, L,
                    stream);
}

cudaError_t graph_conv_weight_grad_cuda(GraphConvDtype dtype, const void* x, const void* gy, GraphConvTables tables,
                                        const int64_t* layout, void* gw_part, void* gb_part, bool has_bias, int64_t N,
                                        int64_t C, int64_t O, int64_t T, int64_t V, int64_t K, int64_t L,
                                        int64_t splits, cudaStream_t stream) {
  MSCLR_GC_DISPATCH(dtype, launch_weight_grad, x, gy, tables, layout, gw_part, gb_part, has_bias, N, C, O, T, V, K, L,
                    splits, stream);
}

cudaError_t graph_conv_importance_grad_cuda(GraphConvDtype dtype, const void* x, const void* gy, const void* w,
                                            const void* bias, GraphConvTables tables, const int64_t* layout,
                                            void* g_part, int64_t N, int64_t C, int64_t O, int64_t T, int64_t V,
                                            int64_t K, int64_t L, cudaStream_t stream) {
  MSCLR_GC_DISPATCH(dtype, launch_importance_grad, x, gy, w, bias, tables, layout, g_part, N, C, O, T, V, K, L,
                    stream);
}

#undef MSCLR_GC_DISPATCH

}  // namespace msclr
