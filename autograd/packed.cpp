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

// The register block: kRows rows of A by kVecs registers of B's panel. 4 × 3 takes 12
// accumulators, 3 registers of B and one broadcast: 16 of the 16 AVX2 registers. Each k reads
// 3 vectors of B and 4 of A for 12 FMAs; rows 16 and 32 (a recurrent step's batch) are whole blocks.
constexpr std::size_t kRows = 4;
constexpr std::size_t kVecs = 3;
template <class T>
constexpr std::size_t kPanel = kVecs * Vec<T>::kWidth;

// C[0..rows) × [0..cols) = a·b + beta·C over K, a: K groups of kRows values (A's rows
// interleaved), b: K groups of one panel's width. rows <= kRows, cols <= kPanel<T>.
template <class T>
XGRAD_AVX2 void block(std::size_t K, const T* a, const T* b, T beta, T* C, std::size_t ldc, std::size_t rows,
                      std::size_t cols) {
  using V = Vec<T>;
  constexpr std::size_t w = V::kWidth;
  typename V::R acc[kRows][kVecs];
  #pragma GCC unroll 4
  for (std::size_t r = 0; r < kRows; ++r)
    #pragma GCC unroll 4
    for (std::size_t v = 0; v < kVecs; ++v) acc[r][v] = V::zero();
  for (std::size_t k = 0; k < K; ++k) {
    typename V::R bv[kVecs];
    #pragma GCC unroll 4
    for (std::size_t v = 0; v < kVecs; ++v) bv[v] = V::load(b + v * w);
    #pragma GCC unroll 4
    for (std::size_t r = 0; r < kRows; ++r) {
      const typename V::R ar = V::broadcast(a + r);
      #pragma GCC unroll 4
      for (std::size_t v = 0; v < kVecs; ++v) acc[r][v] = V::fma(ar, bv[v], acc[r][v]);
    }
    a += kRows;
    b += kPanel<T>;
  }
  if (rows == kRows && cols == kPanel<T>) {
    const typename V::R vb = V::set1(beta);
    #pragma GCC unroll 4
    for (std::size_t r = 0; r < kRows; ++r)
      #pragma GCC unroll 4
      for (std::size_t v = 0; v < kVecs; ++v) {
        T* c = C + r * ldc + v * w;
        V::store(c, beta == T(0) ? acc[r][v] : V::fma(vb, V::load(c), acc[r][v]));
      }
    return;
  }
  alignas(32) T tile[kRows][kPanel<T>];
  #pragma GCC unroll 4
  for (std::size_t r = 0; r < kRows; ++r)
    #pragma GCC unroll 4
    for (std::size_t v = 0; v < kVecs; ++v) V::store(&tile[r][v * w], acc[r][v]);
  #pragma GCC unroll 4
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) {
      T* c = C + r * ldc + j;
      *c = beta == T(0) ? tile[r][j] : tile[r][j] + beta * *c;
    }
}

// A (M, K) as blocks of kRows rows, each K groups of kRows values (zeros past row M).
template <class T>
const T* pack_rows(std::size_t M, std::size_t K, const T* A) {
  thread_local std::vector<T> buffer;
  const std::size_t blocks = (M + kRows - 1) / kRows;
  buffer.resize(blocks * kRows * K);
  T* out = buffer.data();
  for (std::size_t i0 = 0; i0 < M; i0 += kRows, out += kRows * K) {
    const std::size_t rows = std::min(kRows, M - i0);
#if defined(__SSE__)
    if constexpr (std::is_same_v<T, float> && kRows == 4) {
      if (rows == kRows) {  // 4 values of each row at a time, turned into 4 groups of 4 (a 4×4 transpose)
        const float *r0 = A + i0 * K, *r1 = r0 + K, *r2 = r1 + K, *r3 = r2 + K;
        std::size_t k = 0;
        for (; k + 4 <= K; k += 4) {
          __m128 x0 = _mm_loadu_ps(r0 + k), x1 = _mm_loadu_ps(r1 + k), x2 = _mm_loadu_ps(r2 + k),
                 x3 = _mm_loadu_ps(r3 + k);
          _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
          _mm_storeu_ps(out + k * 4, x0);
          _mm_storeu_ps(out + k * 4 + 4, x1);
          _mm_storeu_ps(out + k * 4 + 8, x2);
          _mm_storeu_ps(out + k * 4 + 12, x3);
        }
        for (; k < K; ++k) {
          out[k * 4] = r0[k];
          out[k * 4 + 1] = r1[k];
          out[k * 4 + 2] = r2[k];
          out[k * 4 + 3] = r3[k];
        }
        continue;
      }
    }
#endif
    for (std::size_t r = 0; r < rows; ++r) {
      const T* row = A + (i0 + r) * K;
      for (std::size_t k = 0; k < K; ++k) out[k * kRows + r] = row[k];
    }
    for (std::size_t r = rows; r < kRows; ++r)
      for (std::size_t k = 0; k < K; ++k) out[k * kRows + r] = T(0);
  }
  return buffer.data();
}

// The same block without AVX2: the sums in the same order, one multiply and add at a time.
template <class T>
void block_portable(std::size_t K, const T* a, const T* b, T beta, T* C, std::size_t ldc, std::size_t rows,
                    std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < cols; ++j) {
      T s = T(0);
      for (std::size_t k = 0; k < K; ++k) s += a[k * kRows + r] * b[k * kPanel<T> + j];
      T* c = C + r * ldc + j;
      *c = beta == T(0) ? s : s + beta * *c;
    }
}

template <class T>
void product(std::size_t M, const T* A, const Packed<T>& B, T beta, T* C, bool fast) {
  const std::size_t K = B.K(), N = B.N(), width = kPanel<T>;
  if (M == 0 || N == 0) return;
  const T* a = pack_rows(M, K, A);
  const std::size_t panels = (N + width - 1) / width;
  // Split by panels: each thread reads its own part of the packed weight. (Splitting by
  // (panel, row block) items instead, for balance when there are few panels, measured slower
  // on 2 threads at W3's shapes: 115–140 against 130–158 GFLOP/s.)
  auto run = [&](std::size_t begin, std::size_t end) {
    for (std::size_t p = begin; p < end; ++p) {
      const T* b = B.panels() + p * K * width;
      const std::size_t j0 = p * width, cols = std::min(width, N - j0);
      for (std::size_t i0 = 0; i0 < M; i0 += kRows)
        (fast ? block<T> : block_portable<T>)(K, a + i0 * K, b, beta, C + i0 * N + j0, N, std::min(kRows, M - i0), cols);
    }
  };
  if (threads_for(2.0 * double(M) * double(N) * double(K)) == 1) return run(0, panels);
  parallel::parallel_for(panels, 1, run);
}

}  // namespace

template <class T>
void Packed<T>::pack(bool trans_b, std::size_t N, std::size_t K, const T* B) {
  constexpr std::size_t width = kPanel<T>;
  const std::size_t panels = (N + width - 1) / width;
  panels_.resize(panels * K * width);
  N_ = N;
  K_ = K;
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
  product(M, A, B, beta, C, packed_available());
}

void gemm_packed(std::size_t M, const double* A, const Packed<double>& B, double beta, double* C) {
  product(M, A, B, beta, C, packed_available());
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
