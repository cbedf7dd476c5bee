#include "packed.hpp"

#include <algorithm>
#include <type_traits>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "blas.hpp"
#include "parallel.hpp"
#include "simd.hpp"

namespace xgrad::blas {
namespace {

using simd::Vec;
using simd::Vec512;

// A kernel's layout: A's rows interleaved in blocks of `rows`, op(B)'s columns in panels of `width`.
struct Layout {
  std::size_t rows, width;
};

// The register blocks. AVX2: 4 rows of A by 3 registers of B's panel, 12 accumulators, 3
// registers of B and one broadcast: 16 of the 16 registers; each k reads 3 vectors of B and 4 of
// A for 12 FMAs. AVX-512: 8 rows by 2 registers, 16 accumulators of the 32 registers, 2 vectors
// of B and 8 of A for 16 FMAs of twice the width. A recurrent step's 16 or 32 rows are whole blocks
// of either, and its 4·n, 3·n or n columns whole panels of the AVX-512 kernel when n is a
// multiple of 32.
template <class T>
Layout layout(PackedKernel kernel) {
  if (kernel == PackedKernel::avx512) return {8, 2 * Vec512<T>::kWidth};
  return {4, 3 * Vec<T>::kWidth};
}

// The register block of each kernel (packed_block.inc), compiled for its instructions.
namespace avx2 {
#define XGRAD_KERNEL_TARGET XGRAD_AVX2
#include "packed_block.inc"
#undef XGRAD_KERNEL_TARGET
}  // namespace avx2
namespace avx512 {
#define XGRAD_KERNEL_TARGET XGRAD_AVX512
#include "packed_block.inc"
#undef XGRAD_KERNEL_TARGET
}  // namespace avx512

// A (M, K) as blocks of R rows, each K groups of R values (zeros past row M).
template <class T>
const T* pack_rows(std::size_t M, std::size_t K, const T* A, std::size_t R) {
  thread_local std::vector<T> buffer;
  const std::size_t blocks = (M + R - 1) / R;
  buffer.resize(blocks * R * K);
  T* out = buffer.data();
  for (std::size_t i0 = 0; i0 < M; i0 += R, out += R * K) {
    const std::size_t rows = std::min(R, M - i0);
    std::size_t r = 0;
#if defined(__SSE__)
    if constexpr (std::is_same_v<T, float>) {
      for (; r + 4 <= rows; r += 4) {  // 4 values of 4 rows at a time, turned into 4 groups of 4 (a 4×4 transpose)
        const float *r0 = A + (i0 + r) * K, *r1 = r0 + K, *r2 = r1 + K, *r3 = r2 + K;
        float* o = out + r;
        std::size_t k = 0;
        for (; k + 4 <= K; k += 4) {
          __m128 x0 = _mm_loadu_ps(r0 + k), x1 = _mm_loadu_ps(r1 + k), x2 = _mm_loadu_ps(r2 + k),
                 x3 = _mm_loadu_ps(r3 + k);
          _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
          _mm_storeu_ps(o + k * R, x0);
          _mm_storeu_ps(o + (k + 1) * R, x1);
          _mm_storeu_ps(o + (k + 2) * R, x2);
          _mm_storeu_ps(o + (k + 3) * R, x3);
        }
        for (; k < K; ++k) {
          o[k * R] = r0[k];
          o[k * R + 1] = r1[k];
          o[k * R + 2] = r2[k];
          o[k * R + 3] = r3[k];
        }
      }
    }
#endif
    for (; r < rows; ++r) {
      const T* row = A + (i0 + r) * K;
      for (std::size_t k = 0; k < K; ++k) out[k * R + r] = row[k];
    }
    for (r = rows; r < R; ++r)
      for (std::size_t k = 0; k < K; ++k) out[k * R + r] = T(0);
  }
  return buffer.data();
}

// A block of either layout without the kernels: the sums in the same order, one multiply and
// add at a time.
template <class T>
void block_portable(const Layout& l, std::size_t K, const T* a, const T* b, T beta, T* C, std::size_t ldc,
                    std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) {
      T s = T(0);
      for (std::size_t k = 0; k < K; ++k) s += a[k * l.rows + r] * b[k * l.width + j];
      T* c = C + r * ldc + j;
      *c = beta == T(0) ? s : s + beta * *c;
    }
}

bool runs(PackedKernel kernel) { return kernel == PackedKernel::avx512 ? simd::avx512() : simd::avx2(); }

template <class T>
void product(std::size_t M, const T* A, const Packed<T>& B, T beta, T* C, bool fast) {
  const std::size_t K = B.K(), N = B.N();
  if (M == 0 || N == 0) return;
  const Layout l = layout<T>(B.kernel());
  // A's rows as they are when every block is whole (a recurrent step's 16 or 32 rows): a block
  // broadcasts from R rows K apart, R streams the cache holds. Otherwise (and for the portable
  // loops) interleaved in blocks of R, zeros past row M. Reading A in place made W1 on 2 threads
  // 8–13% faster than interleaving it first (AVX-512 Xeon, 3 alternated rounds, either kernel),
  // W3 3%.
  const bool direct = fast && M % l.rows == 0;
  const T* a = direct ? A : pack_rows(M, K, A, l.rows);
  const std::size_t rs = direct ? K : 1, ks = direct ? 1 : l.rows;  // a row's and a k's stride
  const std::size_t panels = (N + l.width - 1) / l.width;
  const bool avx512 = B.kernel() == PackedKernel::avx512;
  // Split by panels: each thread reads its own part of the packed weight. (Splitting by
  // (panel, row block) items instead, for balance when there are few panels, measured slower
  // on 2 threads at W3's shapes: 115–140 against 130–158 GFLOP/s.)
  auto run = [&](std::size_t begin, std::size_t end) {
    for (std::size_t p = begin; p < end; ++p) {
      const T* b = B.panels() + p * K * l.width;
      const std::size_t j0 = p * l.width, cols = std::min(l.width, N - j0);
      for (std::size_t i0 = 0; i0 < M; i0 += l.rows) {
        const std::size_t rows = std::min(l.rows, M - i0);
        if (!fast)
          block_portable(l, K, a + i0 * K, b, beta, C + i0 * N + j0, N, rows, cols);
        else if (avx512)
          avx512::block<Vec512<T>, 8, 2>(K, a + i0 * K, rs, ks, b, beta, C + i0 * N + j0, N, rows, cols);
        else
          avx2::block<Vec<T>, 4, 3>(K, a + i0 * K, rs, ks, b, beta, C + i0 * N + j0, N, rows, cols);
      }
    }
  };
  if (threads_for(2.0 * double(M) * double(N) * double(K)) == 1) return run(0, panels);
  parallel::parallel_for(panels, 1, run);
}

}  // namespace

PackedKernel best_packed_kernel() { return simd::avx512() ? PackedKernel::avx512 : PackedKernel::avx2; }

template <class T>
std::size_t Packed<T>::width() const {
  return layout<T>(kernel_).width;
}

template <class T>
void Packed<T>::pack(bool trans_b, std::size_t N, std::size_t K, const T* B, PackedKernel kernel) {
  const std::size_t width = layout<T>(kernel).width;
  const std::size_t panels = (N + width - 1) / width;
  panels_.resize(panels * K * width);
  N_ = N;
  K_ = K;
  kernel_ = kernel;
  for (std::size_t p = 0; p < panels; ++p) {
    T* out = panels_.data() + p * K * width;
    const std::size_t j0 = p * width, cols = std::min(width, N - j0);
    if (trans_b) {  // op(B)[k][j] = B[j][k]: read B's rows whole
      for (std::size_t j = 0; j < cols; ++j) {
        const T* row = B + (j0 + j) * K;
        for (std::size_t k = 0; k < K; ++k) out[k * width + j] = row[k];
      }
    } else {
      for (std::size_t k = 0; k < K; ++k) std::copy(B + k * N + j0, B + k * N + j0 + cols, out + k * width);
    }
    for (std::size_t k = 0; k < K; ++k) std::fill(out + k * width + cols, out + (k + 1) * width, T(0));
  }
}

bool packed_available() { return simd::avx2(); }

void gemm_packed(std::size_t M, const float* A, const Packed<float>& B, float beta, float* C) {
  product(M, A, B, beta, C, runs(B.kernel()));
}

void gemm_packed(std::size_t M, const double* A, const Packed<double>& B, double beta, double* C) {
  product(M, A, B, beta, C, runs(B.kernel()));
}

namespace detail {
void gemm_packed_portable(std::size_t M, const float* A, const Packed<float>& B, float beta, float* C) {
  product(M, A, B, beta, C, false);
}
void gemm_packed_portable(std::size_t M, const double* A, const Packed<double>& B, double beta, double* C) {
  product(M, A, B, beta, C, false);
}
}  // namespace detail

template class Packed<float>;
template class Packed<double>;

}  // namespace xgrad::blas
