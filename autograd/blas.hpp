// Row-major GEMM for float and double: C = alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ.
// M, N, K are the sizes of op(A) (M, K), op(B) (K, N) and C (M, N); A, B and C are dense
// (leading dimensions K or M, N or K, and N). beta = 0 never reads C (NaN in C is overwritten).
//
// Products of a vector (M = 1 or N = 1) run in the library's own AVX2/FMA kernels where the CPU
// has them (at a recurrent cell's sizes, ~100, OpenBLAS's GEMV spends as long on a call as on
// its sums; a matrix read by columns of more than 65,536 elements, where OpenBLAS is faster,
// excepted), else as OpenBLAS's GEMV; outer products (K = 1) as GER. alpha = 0 reads neither
// operand (C = beta·C). OpenBLAS's GEMM at M = 1
// reaches a fraction of GEMV's rate. The results are the same sums up to rounding.
//
// Threads: the user sets an upper bound (set_num_threads, or OPENBLAS_NUM_THREADS before the
// program starts; otherwise one per core). OpenBLAS itself runs on 1 thread; a product of at
// least kParallelFlops (2·M·N·K) is split by the library into strips of rows of C (or of
// columns, when C has few rows and K is large), one single-threaded GEMM per strip on the pool
// of parallel::parallel_for. Every element of C is one thread's sum over K (the same as on one
// thread up to rounding), and a program that never sets a count is never slower than with 1
// thread. Products from several threads of the
// caller's own at once are each right: one finding the pool busy runs on its caller's thread.
#pragma once

#include <cstddef>

namespace xgrad::blas {

void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
          const float* A, const float* B, float beta, float* C);
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, double alpha,
          const double* A, const double* B, double beta, double* C);

// out (c, r) = aᵀ for a row-major (r, c) matrix a, or with `add` out += aᵀ; in tiles that stay
// in cache.
template <class T>
void transpose(std::size_t r, std::size_t c, const T* a, T* out, bool add = false);

// The product size (2·M·N·K flops) from which a product is split over the threads. Measured
// with bench/bench_workloads on 2 shared cores, alternated: on the AVX-512 Xeon, with the
// packed products at ~150 GFLOP/s a core, 2 MFLOP against 1 MFLOP gave W1 (its 1.05 MFLOP
// recurrent products then on one thread) 641–645k against 561–578k tokens/s on 2 threads, S1
// and W3 equal within the spread; on the AMD EPYC with the AVX2 kernel 1 MFLOP had been the
// better (docs/design.md, 8.1).
inline constexpr double kParallelFlops = 2.0e6;

// The upper bound on threads of BLAS products and of the library's parallel loops
// (autograd/parallel.hpp). n >= 1; n = 0 goes back to the default (OPENBLAS_NUM_THREADS as the
// program started, else one per core). Throws ValueError for n < 0.
void set_num_threads(int n);
// The upper bound in force (>= 1).
int num_threads();
// How many threads a product of `flops` floating-point operations uses under the bound.
int threads_for(double flops);

// OpenBLAS's kernels. Debian's OpenBLAS chooses them when it starts, by the CPU's model; a model
// newer than its release falls back to its generic SSE3 kernels ("Prescott"), five to eight
// times slower (an AVX-512 Xeon of family 6, model 207, is one). Nothing a program does once
// it runs changes that choice: OpenBLAS reads OPENBLAS_CORETYPE before main. So at the first
// product, if OPENBLAS_CORETYPE is unset and OpenBLAS runs weaker kernels than the CPU's
// features allow, the library says so once on stderr, with the setting to use. The scripts
// (scripts/, bench/compare) set it themselves.
// openblas_core(): the kernels OpenBLAS runs, as it names them ("SkylakeX", "Haswell", ...).
// openblas_core_for_cpu(): the kernels OpenBLAS itself picks for the CPUs it knows with this
// CPU's features: AVX-512 F, CD, BW, DQ and VL -> "SkylakeX"; AVX2 and FMA -> "Haswell";
// otherwise "" (OpenBLAS's own choice stands).
const char* openblas_core();
const char* openblas_core_for_cpu();

namespace detail {
// Vector products through the library's kernels (on: the default, where the CPU has AVX2 and
// FMA) or OpenBLAS's GEMV (off), for the tests of both.
void use_own_vector_kernels(bool on);
}  // namespace detail

}  // namespace xgrad::blas
