// msclr::masked_bn_stats / masked_bn_apply (+ backwards): CPU kernels and their registration
// (schemas in csrc/batch_norm.cpp, argument checks in csrc/batch_norm.h).
//
// The masked BatchNorm of the encoder (msclr.models.layers.MaskedBatchNorm) split in two ops, so
// that the per-channel sums can be all-reduced between them under DDP (synchronised BN):
//
//   stats[0,c] = sum_{n,t,v} m[n,v] x[n,c,t,v]      stats[1,c] = sum_{n,t,v} m[n,v] x[n,c,t,v]^2   (float64)
//   out = act( (x * scale[c] + shift[c]) * keep/(1-p) * m[n,v] + residual )   act = relu or identity
//
// Everything the eager version does in ~10 passes (centre, square, mask, scale, shift, dropout,
// mask again, residual add, relu) is one pass over x here, and the backward is one pass too
// (plus the stats backward). Work items are (sample, channel) planes of T*V elements spread over
// at::parallel_for; per-plane partial sums go to a buffer reduced in a fixed order, so results do
// not depend on the number of threads. No BLAS is called.
//
// Dropout keep bits come from a counter-based hash of (seed, flat element index), so the backward
// regenerates them instead of storing a mask, and any thread split draws the same bits. The hash
// (the "lowbias32" integer finaliser, see Dropout) is written out in msclr/ops/reference.py too.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "../batch_norm.h"
#include "common.h"

namespace msclr {
namespace {

// Planes per work item: enough elements that a chunk is worth a thread wake-up.
constexpr int64_t kGrainElements = 1 << 15;

inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Dropout of one call: element i is kept iff mix32(lo32(i) ^ key(hi32(i))) >= threshold, with
// key(h) = lo32(seed) ^ mix32(h ^ hi32(seed)): one hash round per element (32-bit lanes, so it
// vectorises), the key once per row.
struct Dropout {
  bool on = false;
  uint32_t s0 = 0, s1 = 0;
  uint32_t threshold = 0;
  double keep_scale = 1.0;

  Dropout(const std::optional<at::Tensor>& seed, double p) {
    if (!check_bn_dropout(seed, p)) return;
    const auto s = static_cast<uint64_t>(seed->item<int64_t>());
    on = true;
    s0 = static_cast<uint32_t>(s);
    s1 = static_cast<uint32_t>(s >> 32);
    threshold = static_cast<uint32_t>(p * 4294967296.0);  // p < 1: fits
    keep_scale = 1.0 / (1.0 - p);
  }

  uint32_t key(uint64_t i) const { return s0 ^ mix32(static_cast<uint32_t>(i >> 32) ^ s1); }
};

// f[v] = keep(base + v) ? m[v] * ks : 0 for one row. Built for x86-64-v3 and the baseline, chosen
// at load time (MSCLR_MULTIVERSION, common.h; the extension is compiled for the baseline x86-64
// only); the hash is the hot part.
template <typename acc_t>
inline void dropout_row_impl(uint32_t lo, uint32_t key, uint32_t threshold, acc_t ks, const acc_t* m, int64_t V,
                             acc_t* f) {
  // branch-free, 32-bit counter: the form GCC vectorises
  const auto n = static_cast<uint32_t>(V);
  for (uint32_t v = 0; v < n; ++v) {
    const acc_t keep = static_cast<acc_t>(mix32((lo + v) ^ key) >= threshold);
    f[v] = m[v] * ks * keep;
  }
}

MSCLR_MULTIVERSION void dropout_row(uint32_t lo, uint32_t key, uint32_t thr, float ks, const float* m, int64_t V,
                                    float* f) {
  dropout_row_impl(lo, key, thr, ks, m, V, f);
}

MSCLR_MULTIVERSION void dropout_row(uint32_t lo, uint32_t key, uint32_t thr, double ks, const double* m, int64_t V,
                                    double* f) {
  dropout_row_impl(lo, key, thr, ks, m, V, f);
}

struct Shape {
  int64_t N, C, T, V;
  int64_t planes() const { return N * C; }
  int64_t plane() const { return T * V; }
  int64_t grain() const { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, T * V)); }
};

// The shared checks of x and mask (csrc/batch_norm.h), then this backend's: CPU tensors.
Shape check_x_mask(const char* op, const at::Tensor& x, const at::Tensor& mask) {
  check_bn_x_mask(op, x, mask);
  TORCH_CHECK(x.device().is_cpu() && mask.device().is_cpu(), op, ": the cpu kernels take CPU tensors");
  return {x.size(0), x.size(1), x.size(2), x.size(3)};
}

// Per-plane partials (planes, 2) summed over samples in order: (2, C) float64.
at::Tensor reduce_planes(const std::vector<double>& part, int64_t N, int64_t C, const at::TensorOptions& opt) {
  auto out = at::zeros({2, C}, opt.dtype(at::kDouble));
  double* o = out.data_ptr<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      o[c] += part[(n * C + c) * 2];
      o[C + c] += part[(n * C + c) * 2 + 1];
    }
  return out;
}

// ------------------------------------------------------------------------------------------ stats
at::Tensor masked_bn_stats_cpu(const at::Tensor& x_, const at::Tensor& mask_) {
  const Shape s = check_x_mask("msclr::masked_bn_stats", x_, mask_);
  const auto x = x_.contiguous();
  std::vector<double> part(s.planes() * 2, 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "masked_bn_stats_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto mask = mask_.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const acc_t* mp = mask.data_ptr<acc_t>();
    at::parallel_for(0, s.planes(), s.grain(), [&](int64_t begin, int64_t end) {
      for (int64_t pl = begin; pl < end; ++pl) {
        const scalar_t* xr = xp + pl * s.plane();
        const acc_t* m = mp + (pl / s.C) * s.V;
        double sum = 0, sq = 0;
        for (int64_t t = 0; t < s.T; ++t, xr += s.V) {
          // a row of V joints in acc_t (vectorised), rows accumulated in double
          acc_t rs = 0, rq = 0;
          for (int64_t v = 0; v < s.V; ++v) {
            const acc_t xv = static_cast<acc_t>(xr[v]);
            const acc_t xm = xv * m[v];
            rs += xm;
            rq += xm * xv;
          }
          sum += rs;
          sq += rq;
        }
        part[pl * 2] = sum;
        part[pl * 2 + 1] = sq;
      }
    });
  });
  return reduce_planes(part, s.N, s.C, x.options());
}

at::Tensor masked_bn_stats_backward_cpu(const at::Tensor& grad, const at::Tensor& x_, const at::Tensor& mask_) {
  const Shape s = check_x_mask("msclr::masked_bn_stats_backward", x_, mask_);
  check_bn_stats_grad(grad, s.C);
  const auto x = x_.contiguous();
  auto dx = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "masked_bn_stats_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto acc = c10::CppTypeToScalarType<acc_t>::value;
    const auto mask = mask_.to(acc).contiguous();
    const auto g = grad.to(acc).contiguous();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* dp = dx.data_ptr<scalar_t>();
    const acc_t* mp = mask.data_ptr<acc_t>();
    const acc_t* gp = g.data_ptr<acc_t>();
    at::parallel_for(0, s.planes(), s.grain(), [&](int64_t begin, int64_t end) {
      for (int64_t pl = begin; pl < end; ++pl) {
        const int64_t c = pl % s.C;
        const acc_t a = gp[c], b = 2 * gp[s.C + c];
        const scalar_t* xr = xp + pl * s.plane();
        scalar_t* dr = dp + pl * s.plane();
        const acc_t* m = mp + (pl / s.C) * s.V;
        for (int64_t t = 0; t < s.T; ++t, xr += s.V, dr += s.V)
          for (int64_t v = 0; v < s.V; ++v) dr[v] = static_cast<scalar_t>(m[v] * (a + b * static_cast<acc_t>(xr[v])));
      }
    });
  });
  return dx;
}

// ------------------------------------------------------------------------------------------ apply
// The per-row factor m[v] * keep/(1-p) of the row starting at flat index `base`.
template <typename acc_t>
inline void row_factor(const Dropout& d, const acc_t* m, uint64_t base, int64_t V, acc_t* f) {
  if (!d.on) {
    for (int64_t v = 0; v < V; ++v) f[v] = m[v];
    return;
  }
  const acc_t ks = static_cast<acc_t>(d.keep_scale);
  const uint32_t lo = static_cast<uint32_t>(base);
  if (static_cast<uint64_t>(lo) + static_cast<uint64_t>(V) <= (uint64_t(1) << 32)) {
    dropout_row(lo, d.key(base), d.threshold, ks, m, V, f);  // the row stays within one key
    return;
  }
  for (int64_t v = 0; v < V; ++v) {  // a row across a multiple of 2^32 (huge tensors only)
    const uint64_t i = base + static_cast<uint64_t>(v);
    f[v] = mix32(static_cast<uint32_t>(i) ^ d.key(i)) >= d.threshold ? m[v] * ks : acc_t(0);
  }
}

template <typename scalar_t, typename acc_t, bool RES, bool RELU>
void apply_planes(const Shape& s, const Dropout& d, const scalar_t* xp, const acc_t* mp, const acc_t* sc,
                  const acc_t* sh, const scalar_t* rp, scalar_t* op, int64_t begin, int64_t end) {
  std::vector<acc_t> f(s.V);
  for (int64_t pl = begin; pl < end; ++pl) {
    const int64_t c = pl % s.C, off = pl * s.plane();
    const acc_t a = sc[c], b = sh[c];
    const acc_t* m = mp + (pl / s.C) * s.V;
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t o = off + t * s.V;
      row_factor(d, m, static_cast<uint64_t>(o), s.V, f.data());
      const scalar_t* xr = xp + o;
      scalar_t* orow = op + o;
      for (int64_t v = 0; v < s.V; ++v) {
        acc_t z = (static_cast<acc_t>(xr[v]) * a + b) * f[v];
        if constexpr (RES) z += static_cast<acc_t>(rp[o + v]);
        if constexpr (RELU) z = z > acc_t(0) ? z : acc_t(0);
        orow[v] = static_cast<scalar_t>(z);
      }
    }
  }
}

at::Tensor masked_bn_apply_cpu(const at::Tensor& x_, const at::Tensor& mask_, const at::Tensor& scale_,
                               const at::Tensor& shift_, const std::optional<at::Tensor>& residual_,
                               const std::optional<at::Tensor>& seed, double p, bool relu) {
  const char* op = "msclr::masked_bn_apply";
  const Shape s = check_x_mask(op, x_, mask_);
  check_bn_apply_args(op, x_, scale_, shift_, residual_);
  const auto acc = bn_acc_type(x_);
  const Dropout d(seed, p);
  const auto x = x_.contiguous();
  const auto scale = scale_.contiguous(), shift = shift_.contiguous();
  const at::Tensor residual = residual_.has_value() ? residual_->contiguous() : at::Tensor();
  auto out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "masked_bn_apply_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto mask = mask_.to(acc).contiguous();
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* rp = residual.defined() ? residual.data_ptr<scalar_t>() : nullptr;
    scalar_t* outp = out.data_ptr<scalar_t>();
    const acc_t *mp = mask.data_ptr<acc_t>(), *sc = scale.data_ptr<acc_t>(), *sh = shift.data_ptr<acc_t>();
    at::parallel_for(0, s.planes(), s.grain(), [&](int64_t begin, int64_t end) {
      if (rp && relu)
        apply_planes<scalar_t, acc_t, true, true>(s, d, xp, mp, sc, sh, rp, outp, begin, end);
      else if (rp)
        apply_planes<scalar_t, acc_t, true, false>(s, d, xp, mp, sc, sh, rp, outp, begin, end);
      else if (relu)
        apply_planes<scalar_t, acc_t, false, true>(s, d, xp, mp, sc, sh, rp, outp, begin, end);
      else
        apply_planes<scalar_t, acc_t, false, false>(s, d, xp, mp, sc, sh, rp, outp, begin, end);
    });
  });
  return out;
}

// g = relu ? grad * (out > 0) : grad;  gz = g * m * keep/(1-p)
// dx = gz * scale;  dscale = sum gz x;  dshift = sum gz;  dresidual = g
template <typename scalar_t, typename acc_t, bool RES, bool RELU>
void apply_backward_planes(const Shape& s, const Dropout& d, const scalar_t* gp, const scalar_t* outp,
                           const scalar_t* xp, const acc_t* mp, const acc_t* sc, scalar_t* dxp, scalar_t* drp,
                           double* part, int64_t begin, int64_t end) {
  std::vector<acc_t> f(s.V);
  for (int64_t pl = begin; pl < end; ++pl) {
    const int64_t c = pl % s.C, off = pl * s.plane();
    const acc_t a = sc[c];
    const acc_t* m = mp + (pl / s.C) * s.V;
    double dsc = 0, dsh = 0;
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t o = off + t * s.V;
      row_factor(d, m, static_cast<uint64_t>(o), s.V, f.data());
      acc_t rsc = 0, rsh = 0;
      for (int64_t v = 0; v < s.V; ++v) {
        acc_t g = static_cast<acc_t>(gp[o + v]);
        if constexpr (RELU) g = static_cast<acc_t>(outp[o + v]) > acc_t(0) ? g : acc_t(0);
        if constexpr (RES) drp[o + v] = static_cast<scalar_t>(g);
        const acc_t gz = g * f[v];
        dxp[o + v] = static_cast<scalar_t>(gz * a);
        rsc += gz * static_cast<acc_t>(xp[o + v]);
        rsh += gz;
      }
      dsc += rsc;
      dsh += rsh;
    }
    part[pl * 2] = dsc;
    part[pl * 2 + 1] = dsh;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> masked_bn_apply_backward_cpu(
    const at::Tensor& grad_, const at::Tensor& out_, const at::Tensor& x_, const at::Tensor& mask_,
    const at::Tensor& scale_, const std::optional<at::Tensor>& seed, double p, bool relu, bool has_residual) {
  const char* op = "msclr::masked_bn_apply_backward";
  const Shape s = check_x_mask(op, x_, mask_);
  check_bn_apply_backward_args(op, grad_, out_, x_, scale_);
  const auto acc = bn_acc_type(x_);
  const Dropout d(seed, p);
  const auto x = x_.contiguous(), grad = grad_.contiguous(), out = out_.contiguous(), scale = scale_.contiguous();
  auto dx = at::empty_like(x);
  auto dres = has_residual ? at::empty_like(x) : at::empty({0}, x.options());
  std::vector<double> part(s.planes() * 2, 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "masked_bn_apply_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto mask = mask_.to(acc).contiguous();
    const scalar_t *gp = grad.data_ptr<scalar_t>(), *op_ = out.data_ptr<scalar_t>(), *xp = x.data_ptr<scalar_t>();
    scalar_t* dxp = dx.data_ptr<scalar_t>();
    scalar_t* drp = has_residual ? dres.data_ptr<scalar_t>() : nullptr;
    const acc_t *mp = mask.data_ptr<acc_t>(), *sc = scale.data_ptr<acc_t>();
    double* pp = part.data();
    at::parallel_for(0, s.planes(), s.grain(), [&](int64_t begin, int64_t end) {
      if (has_residual && relu)
        apply_backward_planes<scalar_t, acc_t, true, true>(s, d, gp, op_, xp, mp, sc, dxp, drp, pp, begin, end);
      else if (has_residual)
        apply_backward_planes<scalar_t, acc_t, true, false>(s, d, gp, op_, xp, mp, sc, dxp, drp, pp, begin, end);
      else if (relu)
        apply_backward_planes<scalar_t, acc_t, false, true>(s, d, gp, op_, xp, mp, sc, dxp, drp, pp, begin, end);
      else
        apply_backward_planes<scalar_t, acc_t, false, false>(s, d, gp, op_, xp, mp, sc, dxp, drp, pp, begin, end);
    });
  });
  const auto sums = reduce_planes(part, s.N, s.C, x.options()).to(acc);
  return {dx, sums[0].clone(), sums[1].clone(), dres};  // clones: outputs must not share storage
}

}  // namespace
}  // namespace msclr

TORCH_LIBRARY_IMPL(msclr, CPU, m) {
  m.impl("masked_bn_stats", &msclr::masked_bn_stats_cpu);
  m.impl("masked_bn_stats_backward", &msclr::masked_bn_stats_backward_cpu);
  m.impl("masked_bn_apply", &msclr::masked_bn_apply_cpu);
  m.impl("masked_bn_apply_backward", &msclr::masked_bn_apply_backward_cpu);
}
