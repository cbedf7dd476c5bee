// Row-major GEMM for float and double: C = alpha·op(A)·op(B) + beta·C, where op(X) is X or Xᵀ.
// M, N, K are the sizes of op(A) (M, K), op(B) (K, N) and C (M, N).
#pragma once

#include <cstddef>

namespace xgrad::blas {

void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
          const float* A, const float* B, float beta, float* C);
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, double alpha,
          const double* A, const double* B, double beta, double* C);

// OpenBLAS's thread count (it starts one per core).
void set_num_threads(int n);
int num_threads();

}  // namespace xgrad::blas
