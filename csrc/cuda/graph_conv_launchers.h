// Raw-pointer launchers of the masked graph convolution's CUDA kernels (graph_conv_kernel.cu).
// No ATen here (docs/architecture.md section 5); tensors, checks and the neighbour tables are prepared in
// graph_conv_register.cpp.
//
// Conventions shared by all launchers:
// * x / inputs / outputs / grads are contiguous (N, C, T, V) of `dtype`; "acc" pointers
//   (weights, bias, coefficients, partial sums) are float, or double when dtype is float64.
// * Neighbour tables (L, K, V, V): for destination joint j of layout l and partition k, the
//   slots s < deg[l*K + k] hold the source joint src[...] and coefficient coef[...] (zero
//   coefficients are skipped); layout ids outside [0, L) aggregate nothing.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace msclr {

enum class GraphConvDtype : int { kFloat32, kFloat16, kBFloat16, kFloat64 };

// Output-channel tile height of the mix and dW kernels, by the number of output channels: the
// encoder runs 16 to 256 channels, and a fixed 64-row tile left 75 % of the FMAs on padding at 16.
constexpr int graph_conv_tile_rows(int64_t rows) { return rows <= 16 ? 16 : rows <= 32 ? 32 : 64; }
// Input channels per dW tile of height `tile_rows` (each thread keeps tile_rows/16 x this/16 sums).
constexpr int graph_conv_weight_grad_inputs(int tile_rows) { return tile_rows == 16 ? 16 : 32; }

struct GraphConvTables {
  const int32_t* src;
  const void* coef;  // acc
  const int32_t* deg;
};

// out[n,o,t*V+j] = sum_k sum_c W(k,o,c) sum_s coef * in[n,c,t*V+src] (+ bias[k,o] * sum_s coef),
// with W(k,o,c) = w[k*sw_k + o*sw_o + c*sw_c] (acc); bias (K, C_out) acc or null.
cudaError_t graph_conv_mix_cuda(GraphConvDtype dtype, const void* in, void* out, const void* w, int64_t sw_k,
                                int64_t sw_o, int64_t sw_c, const void* bias, GraphConvTables tables,
                                const int64_t* layout, int64_t N, int64_t C_in, int64_t C_out, int64_t T, int64_t V,
                                int64_t K, int64_t L, cudaStream_t stream);

// Partial weight/bias gradients over `splits` interleaved groups of samples:
// gw_part (splits, K, O, C) = sum gy[n,o,col] XA[n,k,c,col]; gb_part (splits, K, O) = sum gy * colsum
// (written only when has_bias). Forward tables.
cudaError_t graph_conv_weight_grad_cuda(GraphConvDtype dtype, const void* x, const void* gy, GraphConvTables tables,
                                        const int64_t* layout, void* gw_part, void* gb_part, bool has_bias, int64_t N,
                                        int64_t C, int64_t O, int64_t T, int64_t V, int64_t K, int64_t L,
                                        int64_t splits, cudaStream_t stream);

// g_part (N, K, V, V), zero on entry: g_part[n,k,w,s] = sum_t sum_o z[n,k,o,t,src] gy[n,o,t,w] for the
// slots s < deg of the forward tables, z = W_k x + b_k; w (K, O, C) contiguous acc, bias (K, O) or null.
cudaError_t graph_conv_importance_grad_cuda(GraphConvDtype dtype, const void* x, const void* gy, const void* w,
                                            const void* bias, GraphConvTables tables, const int64_t* layout,
                                            void* g_part, int64_t N, int64_t C, int64_t O, int64_t T, int64_t V,
                                            int64_t K, int64_t L, cudaStream_t stream);

}  // namespace msclr
