// Device helpers shared by the two streaming InfoNCE kernels (infonce_kernel.cu: SIMT fp32,
// infonce_tensor_core_kernel.cu: 16-bit tensor cores) and their common finalize kernel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace msclr {

__device__ __forceinline__ float neg_inf() { return -__int_as_float(0x7f800000); }

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

// max that returns NaN when either is NaN (fmaxf drops a NaN), so that a NaN logit reaches the loss
// as it does in the reference's logsumexp.
__device__ __forceinline__ float nan_maxf(float a, float b) { return (a > b || a != a) ? a : b; }

}  // namespace msclr
