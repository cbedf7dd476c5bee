// Row-major GEMM for float and double: C = alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ.
// M, N, K are the sizes of op(A) (M, K), op(B) (K, N) and C (M, N); A, B and C are dense
// (leading dimensions K or M, N or K, and N). beta = 0 never reads C (NaN in C is overwritten).
//
// Products of a vector (M = 1 or N = 1) run as GEMV and outer products (K = 1) as GER:
// OpenBLAS's GEMM at M = 1 reaches a fraction of GEMV's rate, and the results are the same
// sums in the same order up to rounding.
//
// Threads: the user sets an upper bound (set_num_threads, or OPENBLAS_NUM_THREADS before the
// program starts; otherwise one per core). Each product then picks its own count from its size:
// 1 thread below kParallelFlops (2·M·N·K), the bound above it. Handing a small product to a
// second thread costs more than it saves (a 32×128×128 product takes ~20 µs), so a program that
// never sets a count is never slower than with 1 thread. OpenBLAS has one process-wide setting;
// it is changed only when a product's choice differs from the current one, an int compare per
// call otherwise. Threads of the caller's own that multiply at the same time may see each other's
// choice: the results do not depend on it, only the speed.
#pragma once

#include <cstddef>

namespace xgrad::blas {

void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
          const float* A, const float* B, float beta, float* C);
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, double alpha,
          const double* A, const double* B, double beta, double* C);

// The product size (2·M·N·K flops) from which a product uses more than one thread. Measured with
// bench/bench_gemm at the workloads' shapes on 2 shared cores: a second thread lost or broke even
// at every shape up to 2048×65×512 (136 MFLOP) and gained 1.5× at 1024³ (docs/design.md, 8.1).
inline constexpr double kParallelFlops = 1.0e8;

// The upper bound on threads of BLAS products and of the library's parallel loops
// (autograd/parallel.hpp). n >= 1; n = 0 goes back to the default (OPENBLAS_NUM_THREADS as the
// program started, else one per core). Throws ValueError for n < 0.
void set_num_threads(int n);
// The upper bound in force (>= 1).
int num_threads();
// How many threads a product of `flops` floating-point operations uses under the bound.
int threads_for(double flops);

}  // namespace xgrad::blas
