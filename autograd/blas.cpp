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

template <class T>
void product(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
             const T* B, T beta, T* C) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale(M * N, beta, C);
  single_threaded_openblas();
  const auto m = static_cast<blasint>(M), n = static_cast<blasint>(N), k = static_cast<blasint>(K);
  // A vector operand of length K is contiguous whichever way it is transposed: op(A) (1, K) is
  // stored (1, K) or (K, 1); op(B) (K, 1) likewise. C (1, N) or (M, 1) is contiguous too.
  // beta = 0 zero-fills first so that C is never read, as GEMM guarantees.
  if (M == 1) {
    // cᵀ = op(B)ᵀ·a: B stored (K, N) is read transposed, B stored (N, K) as it is.
    if (beta == T(0)) scale(N, beta, C);
    if (trans_b)
      Cblas<T>::gemv(CblasRowMajor, CblasNoTrans, n, k, alpha, B, k, A, 1, beta, C, 1);
    else
      Cblas<T>::gemv(CblasRowMajor, CblasTrans, k, n, alpha, B, n, A, 1, beta, C, 1);
    return;
  }
  if (N == 1) {
    // c = op(A)·b: A stored (M, K) as it is, A stored (K, M) transposed.
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

}  // namespace xgrad::blas
