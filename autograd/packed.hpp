// Products with a weight packed once: C (M, N) = A (M, K)·op(B) + beta·C for a B used in many
// products with few rows, the recurrent weight of a cell at each of T steps. A GEMM copies
// (packs) op(B) into the panels its kernel reads at every call; with M = 16 or 32 rows that copy
// of a (256, 1024) weight costs about as much as the product itself. Here op(B) is packed once
// (blas::Packed) and each product reads the panels as they are.
//
// Two kernels, each with its own layout of the panels: AVX2 and FMA (4 rows of A by 3 registers
// of 8 floats, panels of 24 floats or 12 doubles) and AVX-512F (8 rows by 2 registers of 16
// floats, panels of 32 floats or 16 doubles: twice the multiply-adds per instruction, and 32
// registers). A weight is packed for the best kernel the CPU runs (best_packed_kernel()); where
// the CPU runs none (packed_available() false), the same sums run in portable loops, several
// times slower, so the engine reads packed weights only where a kernel runs. Each element of C
// is one sum over k = 0..K-1 in order, the same whatever the thread count.
#pragma once

#include <cstddef>
#include <vector>

namespace xgrad::blas {

enum class PackedKernel { avx2, avx512 };

// avx512 where the CPU has AVX-512F (and AVX2 and FMA), else avx2.
PackedKernel best_packed_kernel();

// op(B) (K, N) in panels of width() columns: panel p holds, for k = 0..K-1, the values
// op(B)[k][p·w .. p·w + w) (zeros past column N).
template <class T>
class Packed {
 public:
  // Packs op(B) from B (K, N) row-major, or with trans_b from B (N, K) row-major, in the layout
  // of `kernel`'s panels.
  void pack(bool trans_b, std::size_t N, std::size_t K, const T* B, PackedKernel kernel = best_packed_kernel());
  std::size_t K() const { return K_; }
  std::size_t N() const { return N_; }
  PackedKernel kernel() const { return kernel_; }
  std::size_t width() const;  // columns per panel
  std::size_t bytes() const { return panels_.capacity() * sizeof(T); }
  const T* panels() const { return panels_.data(); }

 private:
  std::vector<T> panels_;
  std::size_t K_ = 0, N_ = 0;
  PackedKernel kernel_ = PackedKernel::avx2;
};

// The CPU runs a packed kernel (AVX2 and FMA).
bool packed_available();

// C (M, N) = A (M, K)·op(B) + beta·C, A row-major; beta = 0 never reads C. M, K >= 1; the
// product is split over the library's threads as blas::gemm splits one (kParallelFlops). It
// runs B's kernel where the CPU has it, else the portable loops over B's layout.
void gemm_packed(std::size_t M, const float* A, const Packed<float>& B, float beta, float* C);
void gemm_packed(std::size_t M, const double* A, const Packed<double>& B, double beta, double* C);

namespace detail {
// The portable loops over B's layout whatever the CPU (for the tests).
void gemm_packed_portable(std::size_t M, const float* A, const Packed<float>& B, float beta, float* C);
void gemm_packed_portable(std::size_t M, const double* A, const Packed<double>& B, double beta, double* C);
}  // namespace detail

}  // namespace xgrad::blas
