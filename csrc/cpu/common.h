// Helpers shared by the CPU kernels (csrc/cpu/*_kernel.cpp); every CPU kernel includes it.
//
// GEMMs: gemm.h (libtorch's Fortran BLAS, weak-linked sgemm_/dgemm_, kept sequential per worker
// thread by SequentialBlas), for graph_conv and infonce alike.
// exp: one, exp_nonpositive in infonce_kernel.cpp (its only user; every argument is u - running max <= 0).
// Vectors: GCC vector extensions inside MSCLR_MULTIVERSION clones, not at::vec::Vectorized. ATen builds
// Vectorized's AVX2 code only in its own per-CPU_CAPABILITY units; in an extension compiled for the
// baseline x86-64 it is the generic (scalar-loop) fallback, so one build could not pick AVX2 at load time.
#pragma once

#include <ATen/Parallel.h>

// at::parallel_for is a header template: under torch's OpenMP backend it only runs in parallel
// when this file is compiled with -fopenmp (setup.py, CMakeLists.txt). Without it every kernel
// silently ran on one thread (measured: the graph conv gained nothing from a second core).
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "msclr's CPU kernels must be compiled with -fopenmp (at::parallel_for would run serially)"
#endif

// MSCLR_MULTIVERSION: the function is compiled twice, for x86-64-v3 and for the baseline the
// extension is built for, and the loader picks one for the CPU at hand (GCC target_clones; a no-op
// with other compilers and architectures). One target for every kernel: "arch=x86-64-v3" (AVX2,
// FMA, BMI1/2, F16C, ...) because infonce's vector loops are written for AVX2 with FMA; batch_norm's
// dropout hash is integer work and float products only (nothing an FMA could contract).
// Measured together on 2026-12-06 (AVX-512 Xeon) and not kept: an x86-64-v4 clone plus clones of
// graph_conv's aggregation loops (no gain beyond run-to-run noise at any encoder shape).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MSCLR_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MSCLR_MULTIVERSION
#endif

// Always inlined: the small helpers that MSCLR_MULTIVERSION functions call are then compiled
// inside each clone, for its target.
#define MSCLR_INLINE inline __attribute__((always_inline))
