// The one GEMM of the CPU kernels (graph_conv, infonce): libtorch's Fortran BLAS (MKL or OpenBLAS),
// called from inside our worker threads, each call sequential (SequentialBlas).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <type_traits>

// Row-major C (M x N, ldc) = alpha op(A) op(B) + beta C, through the column-major Fortran
// BLAS that libtorch exports (MKL or OpenBLAS): C^T = op(B)^T op(A)^T. Called from inside
// worker threads (sequentially, see SequentialBlas). ATen's cpublas::gemm would be the natural
// entry point, but its float/double overloads are not exported from libtorch_cpu; a torch
// without these symbols gets the (slower) at::addmm_ fallback.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
// MKL only (its C entry point; the lower-case symbols are the Fortran ones): the calling thread's BLAS thread count (returns the previous one, 0 = global setting).
int MKL_Set_Num_Threads_Local(int threads) __attribute__((weak));
}

namespace msclr {

// Keeps the BLAS calls of the current thread sequential. Our threads each run their own small
// GEMMs; MKL would otherwise start a thread team per call, even from inside our parallel
// region (measured here: seconds of spinning in libgomp on a busy 2-core machine). Construct one
// per worker thread, inside the parallel region, before its first gemm_rm.
struct SequentialBlas {
  int previous = -1;
  SequentialBlas() {
    if (MKL_Set_Num_Threads_Local != nullptr) previous = MKL_Set_Num_Threads_Local(1);
  }
  ~SequentialBlas() {
    if (previous >= 0) MKL_Set_Num_Threads_Local(previous);
  }
  SequentialBlas(const SequentialBlas&) = delete;
  SequentialBlas& operator=(const SequentialBlas&) = delete;
};

template <typename acc_t>
void gemm_fallback(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, acc_t alpha, const acc_t* A,
                   int64_t lda, const acc_t* B, int64_t ldb, acc_t beta, acc_t* C, int64_t ldc) {
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<acc_t>::value);
  auto a = trans_a ? at::from_blob(const_cast<acc_t*>(A), {K, M}, {lda, 1}, opt).t()
                   : at::from_blob(const_cast<acc_t*>(A), {M, K}, {lda, 1}, opt);
  auto b = trans_b ? at::from_blob(const_cast<acc_t*>(B), {N, K}, {ldb, 1}, opt).t()
                   : at::from_blob(const_cast<acc_t*>(B), {K, N}, {ldb, 1}, opt);
  at::from_blob(C, {M, N}, {ldc, 1}, opt).addmm_(a, b, beta, alpha);  // beta == 0 ignores C
}

template <typename acc_t>
void gemm_rm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, acc_t alpha, const acc_t* A, int64_t lda,
             const acc_t* B, int64_t ldb, acc_t beta, acc_t* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == acc_t(0) ? acc_t(0) : beta * C[i * ldc + j];
    return;
  }
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
  const int la = static_cast<int>(lda), lb = static_cast<int>(ldb), lc = static_cast<int>(ldc);
  if constexpr (std::is_same_v<acc_t, float>) {
    if (sgemm_ != nullptr) return sgemm_(&tb, &ta, &m, &n, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
  } else {
    if (dgemm_ != nullptr) return dgemm_(&tb, &ta, &m, &n, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
  }
  gemm_fallback(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace msclr
