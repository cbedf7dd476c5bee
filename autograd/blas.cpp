#include "blas.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <cblas.h>

#include "errors.hpp"
#include "parallel.hpp"
#include "simd.hpp"

namespace xgrad::blas {
namespace {

// The default bound: what OpenBLAS started with (it reads OPENBLAS_NUM_THREADS, else one per
// core), read once before this file ever changes the setting.
int default_threads() {
  static const int n = [] {
    const int v = openblas_get_num_threads();
    return v > 0 ? v : int(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return n;
}

std::atomic<int> g_bound{0};  // the user's bound; 0: the default

// blas.hpp, openblas_core_for_cpu().
const char* core_for_cpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

// blas.hpp: whether OpenBLAS runs kernels below what this CPU allows, said once.
void check_openblas_core() {
  static const bool checked = [] {
    const std::string best = core_for_cpu(), running = openblas_get_corename();
    if (!best.empty() && std::getenv("OPENBLAS_CORETYPE") == nullptr &&
        (running == "Prescott" || running == "Core2" || running == "Penryn" || running == "Dunnington" ||
         running == "Nehalem" || running == "Sandybridge"))
      std::fprintf(stderr,
                   "xgrad: OpenBLAS does not know this CPU and runs its %s kernels, several times slower than "
                   "the CPU allows; start the program with OPENBLAS_CORETYPE=%s set\n",
                   running.c_str(), best.c_str());
    return true;
  }();
  (void)checked;
}

// OpenBLAS runs every call on the calling thread; the library splits the large products over
// its own threads (below). Set once, at the first product, after default_threads() has read
// OpenBLAS's own start count.
void single_threaded_openblas() {
  static const bool set = [] {
    check_openblas_core();
    default_threads();
    openblas_set_num_threads(1);
    return true;
  }();
  (void)set;
}

// C (M, N) = beta·C, the whole product when K = 0 (BLAS would reject the leading dimension 0).
// Rows (or columns) of C per unit of a split product: a multiple of OpenBLAS's register blocks.
constexpr std::size_t kStrip = 16;

template <class T>
void scale(std::size_t count, T beta, T* C) {
  if (beta == T(0))
    for (std::size_t i = 0; i < count; ++i) C[i] = T(0);
  else if (beta != T(1))
    for (std::size_t i = 0; i < count; ++i) C[i] *= beta;
}

// The OpenBLAS entry points of one element type, so that the routing below is written once.
template <class T>
struct Cblas;
template <>
struct Cblas<float> {
  // One declaration each: a declaration of several `auto`s must deduce one type (clang holds to it).
  static constexpr auto gemm = cblas_sgemm;
  static constexpr auto gemv = cblas_sgemv;
  static constexpr auto ger = cblas_sger;
};
template <>
struct Cblas<double> {
  static constexpr auto gemm = cblas_dgemm;
  static constexpr auto gemv = cblas_dgemv;
  static constexpr auto ger = cblas_dger;
};

// ---- Products with a vector, the library's own (AVX2 and FMA) ----
// At a recurrent cell's sizes a GEMV call's own cost rivals its sums: (100, 100) took OpenBLAS
// 700–940 ns against 660–690 here, the (65, 100) output layer 530–605 against 355–405 (one core
// of an AMD EPYC, alternated); a sampling step (W5) makes two. Each element of y is one sum in a
// fixed order whatever the thread count: kWidth lanes over k, the last register of a row masked,
// then the lanes added.

std::atomic<bool> g_own_vectors{true};  // detail::use_own_vector_kernels

// y[r] = alpha·(A's row r · x) + beta·y[r], r < R, A (R, K) with rows lda apart. R sums at once
// keep the FMA units busy while each waits on its last.
template <class T, std::size_t R>
XGRAD_AVX2 void dot_rows(std::size_t K, const T* A, std::size_t lda, const T* x, T alpha, T beta, T* y) {
  using V = simd::Vec<T>;
  constexpr std::size_t w = V::kWidth;
  typename V::R acc[R];
  #pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) acc[r] = V::zero();
  std::size_t k = 0;
  for (; k + w <= K; k += w) {
    const typename V::R xv = V::load(x + k);
    #pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = V::fma(V::load(A + r * lda + k), xv, acc[r]);
  }
  if (k < K) {
    const typename V::M m = V::mask(K - k);
    const typename V::R xv = V::load(x + k, m);
    #pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) acc[r] = V::fma(V::load(A + r * lda + k, m), xv, acc[r]);
  }
  #pragma GCC unroll 8
  for (std::size_t r = 0; r < R; ++r) {
    const T s = alpha * V::sum(acc[r]);
    y[r] = beta == T(0) ? s : s + beta * y[r];
  }
}

// y[j] = alpha·Σ_k x[k]·A[k][j] + beta·y[j] for the `cols` columns of one block, A (K, ·) with
// rows lda apart: Regs registers, the last masked to what is left of cols.
template <class T, std::size_t Regs>
XGRAD_AVX2 void axpy_cols(std::size_t K, const T* A, std::size_t lda, const T* x, T alpha, T beta, T* y,
                          std::size_t cols) {
  using V = simd::Vec<T>;
  constexpr std::size_t w = V::kWidth;
  const typename V::M m = V::mask(cols - (Regs - 1) * w);
  typename V::R acc[Regs];
  #pragma GCC unroll 8
  for (std::size_t v = 0; v < Regs; ++v) acc[v] = V::zero();
  for (std::size_t k = 0; k < K; ++k, A += lda) {
    const typename V::R xk = V::broadcast(x + k);
    #pragma GCC unroll 8
    for (std::size_t v = 0; v + 1 < Regs; ++v) acc[v] = V::fma(xk, V::load(A + v * w), acc[v]);
    acc[Regs - 1] = V::fma(xk, V::load(A + (Regs - 1) * w, m), acc[Regs - 1]);
  }
  const typename V::R va = V::set1(alpha), vb = V::set1(beta);
  #pragma GCC unroll 8
  for (std::size_t v = 0; v < Regs; ++v) {
    T* out = y + v * w;
    typename V::R r = V::mul(va, acc[v]);
    if (v + 1 < Regs) {
      V::store(out, beta == T(0) ? r : V::fma(vb, V::load(out), r));
    } else {
      V::store(out, m, beta == T(0) ? r : V::fma(vb, V::load(out, m), r));
    }
  }
}

// The kernels' blocks: rows of y by 8 (then 4, then 1), columns by 8 registers.
constexpr std::size_t kDotRows = 8, kAxpyRegs = 8;

// y (N) = alpha·A·x + beta·y, A (N, K) row-major.
template <class T>
void vector_rows(std::size_t N, std::size_t K, T alpha, const T* A, const T* x, T beta, T* y) {
  auto run = [&](std::size_t begin, std::size_t end) {
    std::size_t n = begin * kDotRows;
    const std::size_t stop = std::min(end * kDotRows, N);
    for (; n + kDotRows <= stop; n += kDotRows) dot_rows<T, kDotRows>(K, A + n * K, K, x, alpha, beta, y + n);
    for (; n + 4 <= stop; n += 4) dot_rows<T, 4>(K, A + n * K, K, x, alpha, beta, y + n);
    for (; n < stop; ++n) dot_rows<T, 1>(K, A + n * K, K, x, alpha, beta, y + n);
  };
  const std::size_t blocks = (N + kDotRows - 1) / kDotRows;
  if (threads_for(2.0 * double(N) * double(K)) == 1) return run(0, blocks);
  parallel::parallel_for(blocks, 1, run);
}

// A (K, N) read by columns: the library's kernel while A is at most kOwnColsElements (it loses to
// OpenBLAS's GEMV on larger ones: 1×100×100 472–684 against 574–756 ns, 1×256×1024 24.2 against
// 21.1–21.8 µs).
constexpr std::size_t kOwnColsElements = 65536;
// y (N) = alpha·Aᵀ·x + beta·y, A (K, N) row-major.
template <class T>
void vector_cols(std::size_t N, std::size_t K, T alpha, const T* A, const T* x, T beta, T* y) {
  // One column is a contiguous vector: a dot product, not a chain of one-lane FMAs.
  if (N == 1) return vector_rows(std::size_t(1), K, alpha, A, x, beta, y);
  using Block = void (*)(std::size_t, const T*, std::size_t, const T*, T, T, T*, std::size_t);
  static constexpr Block kBlocks[kAxpyRegs] = {axpy_cols<T, 1>, axpy_cols<T, 2>, axpy_cols<T, 3>, axpy_cols<T, 4>,
                                               axpy_cols<T, 5>, axpy_cols<T, 6>, axpy_cols<T, 7>, axpy_cols<T, 8>};
  constexpr std::size_t w = simd::Vec<T>::kWidth, width = kAxpyRegs * w;
  // On one thread: it takes A of at most kOwnColsElements, below kParallelFlops.
  for (std::size_t j0 = 0; j0 < N; j0 += width) {
    const std::size_t cols = std::min(width, N - j0);
    kBlocks[(cols + w - 1) / w - 1](K, A + j0, N, x, alpha, beta, y + j0, cols);
  }
}

bool own_vectors() { return simd::avx2() && g_own_vectors.load(std::memory_order_relaxed); }

bool own_cols(std::size_t N, std::size_t K) { return own_vectors() && N * K <= kOwnColsElements; }

template <class T>
void product(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
             const T* B, T beta, T* C) {
  if (M == 0 || N == 0) return;
  // alpha = 0: C = beta·C, A and B not read (an inf or NaN in them does not reach C), on every path.
  if (K == 0 || alpha == T(0)) return scale(M * N, beta, C);
  single_threaded_openblas();
  const auto m = static_cast<blasint>(M), n = static_cast<blasint>(N), k = static_cast<blasint>(K);
  // A vector operand of length K is contiguous whichever way it is transposed: op(A) (1, K) is
  // stored (1, K) or (K, 1); op(B) (K, 1) likewise. C (1, N) or (M, 1) is contiguous too.
  // beta = 0 zero-fills first so that C is never read, as GEMM guarantees.
  if (M == 1) {
    // cᵀ = op(B)ᵀ·a: B stored (K, N) is read transposed, B stored (N, K) as it is.
    if (trans_b ? own_vectors() : own_cols(N, K))
      return trans_b ? vector_rows(N, K, alpha, B, A, beta, C) : vector_cols(N, K, alpha, B, A, beta, C);
    if (beta == T(0)) scale(N, beta, C);
    if (trans_b)
      Cblas<T>::gemv(CblasRowMajor, CblasNoTrans, n, k, alpha, B, k, A, 1, beta, C, 1);
    else
      Cblas<T>::gemv(CblasRowMajor, CblasTrans, k, n, alpha, B, n, A, 1, beta, C, 1);
    return;
  }
  if (N == 1) {
    // c = op(A)·b: A stored (M, K) as it is, A stored (K, M) transposed.
    if (trans_a ? own_cols(M, K) : own_vectors())
      return trans_a ? vector_cols(M, K, alpha, A, B, beta, C) : vector_rows(M, K, alpha, A, B, beta, C);
    if (beta == T(0)) scale(M, beta, C);
    if (trans_a)
      Cblas<T>::gemv(CblasRowMajor, CblasTrans, k, m, alpha, A, m, B, 1, beta, C, 1);
    else
      Cblas<T>::gemv(CblasRowMajor, CblasNoTrans, m, k, alpha, A, k, B, 1, beta, C, 1);
    return;
  }
  if (K == 1) {
    // C = beta·C + alpha·a·bᵀ, a = op(A) (M, 1) and b = op(B) (1, N) both contiguous.
    scale(M * N, beta, C);
    Cblas<T>::ger(CblasRowMajor, m, n, alpha, A, 1, B, 1, C, n);
    return;
  }
  const auto ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
  const blasint lda = trans_a ? m : k, ldb = trans_b ? k : n;
  if (threads_for(2.0 * double(M) * double(N) * double(K)) == 1)
    return Cblas<T>::gemm(CblasRowMajor, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, n);
  // One strip of C per thread, each a single-threaded GEMM on its rows (and op(A)'s) or on its
  // columns (and op(B)'s); each strip packs the other operand whole. Columns when C has few
  // rows and K is deep: then op(B) (K, N) is the large operand, and packing it twice cost more
  // than the split gained (bench_gemm: 32×1024×256 split by columns 1.76× one thread, by rows
  // 1.59×; 32×512×128 by rows 1.51×, by columns 1.25×). Strips are whole multiples of kStrip.
  const bool columns = M < 64 && K >= 256;
  const std::size_t extent = columns ? N : M;
  parallel::parallel_for((extent + kStrip - 1) / kStrip, 1, [&](std::size_t begin, std::size_t end) {
    const std::size_t lo = begin * kStrip, len = std::min(end * kStrip, extent) - lo;
    const auto l = static_cast<blasint>(len);
    if (columns)
      Cblas<T>::gemm(CblasRowMajor, ta, tb, m, l, k, alpha, A, lda, trans_b ? B + lo * K : B + lo, ldb, beta, C + lo, n);
    else
      Cblas<T>::gemm(CblasRowMajor, ta, tb, l, n, k, alpha, trans_a ? A + lo : A + lo * K, lda, B, ldb, beta,
                     C + lo * N, n);
  });
}

}  // namespace

void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
          const float* B, float beta, float* C) {
  product(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
}

void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, double alpha, const double* A,
          const double* B, double beta, double* C) {
  product(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
}

const char* openblas_core() { return openblas_get_corename(); }

const char* openblas_core_for_cpu() { return core_for_cpu(); }

template <class T>
void transpose(std::size_t r, std::size_t c, const T* a, T* out, bool add) {
  constexpr std::size_t kTile = 32;
  for (std::size_t i0 = 0; i0 < r; i0 += kTile)
    for (std::size_t j0 = 0; j0 < c; j0 += kTile) {
      const std::size_t i1 = std::min(r, i0 + kTile), j1 = std::min(c, j0 + kTile);
      for (std::size_t i = i0; i < i1; ++i)
        for (std::size_t j = j0; j < j1; ++j) out[j * r + i] = add ? out[j * r + i] + a[i * c + j] : a[i * c + j];
    }
}
template void transpose(std::size_t, std::size_t, const float*, float*, bool);
template void transpose(std::size_t, std::size_t, const double*, double*, bool);

void set_num_threads(int n) {
  if (n < 0) throw ValueError("blas::set_num_threads: thread count must be >= 0, got " + std::to_string(n));
  default_threads();  // read OpenBLAS's own default before the first change
  g_bound.store(n, std::memory_order_relaxed);
}

int num_threads() {
  const int n = g_bound.load(std::memory_order_relaxed);
  return n > 0 ? n : default_threads();
}

int threads_for(double flops) { return flops < kParallelFlops ? 1 : num_threads(); }

namespace detail {
void use_own_vector_kernels(bool on) { g_own_vectors.store(on, std::memory_order_relaxed); }
}  // namespace detail

}  // namespace xgrad::blas
