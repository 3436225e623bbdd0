// CUDA registration of msclr::infonce_queue: checks, fp32 copies of the small inputs, the
// per-split state, then raw pointers and the current stream to csrc/cuda/infonce_kernel.cu. Schema in
// csrc/infonce.cpp; argument checks and output allocation (shared with the CPU kernel) in csrc/infonce.h.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include "../infonce.h"
#include "infonce_launchers.h"

namespace msclr {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> infonce_queue_cuda(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& queue, const at::Tensor& valid, double tau,
    int64_t topk, const std::optional<at::Tensor>& q2, bool with_grad) {
  check_infonce_args(q, k, queue, valid, tau, topk, q2);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"q", &q}, {"k", &k}, {"queue", &queue}}) {
    TORCH_CHECK(t->scalar_type() != at::kDouble, "msclr::infonce_queue (cuda): ", name,
                " is float64; the CUDA kernels take float32/float16/bfloat16 (use the cpu or reference backend)");
  }
  TORCH_CHECK(!q2.has_value() || q2->scalar_type() != at::kDouble,
              "msclr::infonce_queue (cuda): q2 is float64; the CUDA kernels take float32/float16/bfloat16");
  const int64_t N = q.size(0), D = q.size(1), P = k.size(1), Q = queue.size(0);
  TORCH_CHECK(D <= kInfoNCECudaMaxDim, "msclr::infonce_queue (cuda): the embedding dimension ", D,
              " exceeds the CUDA kernels' maximum of ", kInfoNCECudaMaxDim, " (use the triton backend)");
  const c10::cuda::CUDAGuard guard(queue.device());
  int device = 0, optin = 0, major = 0, sm_count = 0;  // the queue's device (the guard made it current)
  // (ATen/cuda/CUDAContext.h would pull in cuSPARSE headers this toolkit may lack)
  TORCH_CHECK(cudaGetDevice(&device) == cudaSuccess &&
                  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) == cudaSuccess &&
                  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess &&
                  cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device) == cudaSuccess,
              "msclr::infonce_queue (cuda): cannot read the device's attributes");
  // Tensor cores when the queue is 16-bit and the queries share its dtype (converting them is exact),
  // as the Triton kernel decides, or when all are fp32 and torch allows TF32 in matmuls (off by
  // default) and the fp32 tiles fit in shared memory; otherwise the SIMT kernel computes in fp32.
  const auto qt = queue.scalar_type();
  const bool same = q.scalar_type() == qt && (!q2.has_value() || q2->scalar_type() == qt);
  const bool lowp = qt == at::kHalf || qt == at::kBFloat16;
  const int64_t elem = lowp ? 2 : 4;
  const bool tf32 = qt == at::kFloat && at::globalContext().allowTF32CuBLAS() &&
                    infonce_tensor_core_smem_bytes(elem, q2.has_value()) <= optin;
  const bool tensor_cores = (lowp || tf32) && same && major >= 8 && Q < (int64_t{1} << 31) &&
                            infonce_tensor_core_binary_arch() >= 80;
  // The SIMT kernel's AimCLR variant (q2) at D > 64 needs 129 KiB of shared memory per block:
  // sm_80/90 have it, sm_86/89 (99 KiB) do not. Say so, instead of a bare launch error.
  const int64_t smem = tensor_cores ? infonce_tensor_core_smem_bytes(elem, q2.has_value())
                                    : infonce_stream_smem_bytes(D <= 64 ? 64 : 128, q2.has_value());
  const int64_t smem_max = optin;
  TORCH_CHECK(smem <= smem_max, "msclr::infonce_queue (cuda): ", q2.has_value() ? "with q2 " : "", "at D = ", D,
              " the kernel needs ", smem / 1024, " KiB of shared memory per block and this GPU allows ", smem_max / 1024,
              " KiB; use backend='triton' (or 'reference')");
  auto out = alloc_infonce_outputs(q, topk, q2.has_value(), with_grad);
  if (N == 0) return {out[0], out[1], out[2], out[3], out[4], out[5]};

  // q, k, q2 are small (N x P x D): fp32 copies keep the kernels templated on the queue's dtype only.
  const at::Tensor qf = q.to(at::kFloat).contiguous();
  const at::Tensor kf = k.to(at::kFloat).contiguous();
  const at::Tensor q2f = q2.has_value() ? q2->to(at::kFloat).contiguous() : at::Tensor();
  // The fill count stays on the device (read by the kernel): no synchronisation with the host.
  const at::Tensor valid_dev = valid.reshape({1}).to(queue.device(), at::kLong).contiguous();

  InfoNCEProblem prob{};
  prob.q = qf.data_ptr<float>();
  prob.q2 = q2.has_value() ? q2f.data_ptr<float>() : nullptr;
  prob.k = kf.data_ptr<float>();
  prob.queue = queue.data_ptr();
  prob.valid = valid_dev.data_ptr<int64_t>();
  prob.N = N, prob.P = P, prob.Q = Q, prob.D = D;
  prob.inv_tau = static_cast<float>(1.0 / tau);
  prob.topk = static_cast<int>(topk);
  prob.with_grad = with_grad;
  prob.tensor_cores = tensor_cores;
  const auto dtype = qt == at::kHalf       ? InfoNCEQueueDtype::kFloat16
                     : qt == at::kBFloat16 ? InfoNCEQueueDtype::kBFloat16
                                           : InfoNCEQueueDtype::kFloat32;

  // Split the queue so that small batches still fill the GPU (merged in finalize): as many blocks as
  // are resident at once (occupancy API), rounded down so that the grid is one full wave, not a wave
  // and a tail.
  int per_sm = 0;
  const cudaError_t occ = infonce_stream_blocks_per_sm(prob, dtype, &per_sm);
  TORCH_CHECK(occ == cudaSuccess, "msclr::infonce_queue (cuda): ", cudaGetErrorString(occ));
  const int64_t slots = std::max<int64_t>(int64_t{sm_count} * per_sm, 1);
  const int64_t tiles = (Q + kInfoNCECudaQueueTile - 1) / kInfoNCECudaQueueTile;
  const int64_t blocks = (N + kInfoNCECudaQueryBlock - 1) / kInfoNCECudaQueryBlock;
  int64_t splits = std::clamp<int64_t>(slots / blocks, 1, std::max<int64_t>(tiles, 1));
  const int64_t tiles_per_split = tiles == 0 ? 0 : (tiles + splits - 1) / splits;
  splits = tiles == 0 ? 1 : (tiles + tiles_per_split - 1) / tiles_per_split;
  prob.splits = splits, prob.tiles_per_split = tiles_per_split;

  const auto f32 = q.options().dtype(at::kFloat);
  at::Tensor stats = at::empty({5, splits, N}, f32);  // m, l, t, m2, l2
  at::Tensor acc = with_grad ? at::empty({splits, N, D}, f32) : at::Tensor();
  at::Tensor acc2 = with_grad && q2.has_value() ? at::empty({splits, N, D}, f32) : at::Tensor();
  at::Tensor topv = at::empty({splits, N, std::max<int64_t>(topk, 1)}, f32);
  at::Tensor topi = at::empty({splits, N, std::max<int64_t>(topk, 1)}, q.options().dtype(at::kLong));

  InfoNCESplitState state{stats[0].data_ptr<float>(),
                          stats[1].data_ptr<float>(),
                          stats[2].data_ptr<float>(),
                          stats[3].data_ptr<float>(),
                          stats[4].data_ptr<float>(),
                          with_grad ? acc.data_ptr<float>() : nullptr,
                          with_grad && q2.has_value() ? acc2.data_ptr<float>() : nullptr,
                          topv.data_ptr<float>(),
                          topi.data_ptr<int64_t>()};
  InfoNCEOutputs outs{out[0].data_ptr<float>(),
                      out[1].data_ptr<float>(),
                      out[2].data_ptr<int64_t>(),
                      q2.has_value() ? out[3].data_ptr<float>() : nullptr,
                      with_grad ? out[4].data_ptr<float>() : nullptr,
                      with_grad && q2.has_value() ? out[5].data_ptr<float>() : nullptr};
  const cudaError_t err =
      infonce_queue_cuda_launch(prob, dtype, state, outs, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(err == cudaSuccess, "msclr::infonce_queue (cuda): ", cudaGetErrorString(err));
  return {out[0], out[1], out[2], out[3], out[4], out[5]};
}

}  // namespace
}  // namespace msclr

TORCH_LIBRARY_IMPL(msclr, CUDA, m) { m.impl("infonce_queue", &msclr::infonce_queue_cuda); }
