// blas::gemm against a naive loop in long double at every transpose combination, at the shapes
// that take the vector paths (M = 1, N = 1: GEMV; K = 1: GER; K = 0) and the GEMM path, with
// alpha and beta, in float and double; the thread bound and the per-product thread choice;
// OpenBLAS's kernels.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <xgrad/autograd/blas.hpp>
#include <xgrad/autograd/errors.hpp>

#include "testing.hpp"

namespace {

using xgrad::testing::random_vector;

using xgrad::blas::gemm;

// C (M, N) = alpha·op(A)·op(B) + beta·C with A stored (M, K) or (K, M), B (K, N) or (N, K).
template <class T>
std::vector<T> naive(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const std::vector<T>& A,
                     const std::vector<T>& B, T beta, const std::vector<T>& C) {
  std::vector<T> out(M * N);
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      long double s = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const long double a = ta ? A[k * M + i] : A[i * K + k];
        const long double b = tb ? B[j * K + k] : B[k * N + j];
        s += a * b;
      }
      const long double c = beta == T(0) ? 0.0L : static_cast<long double>(beta) * C[i * N + j];
      out[i * N + j] = static_cast<T>(static_cast<long double>(alpha) * s + c);
    }
  return out;
}

struct Shape {
  std::size_t M, N, K;
};

// Every path of gemm: vectors on either side, outer products, a dot product, empty sums, and
// products large enough to be split over threads: by rows (130×120×140) and by columns
// (40×150×260: few rows, deep K), neither a whole number of strips.
const Shape kShapes[] = {{1, 1, 1},  {1, 7, 5},   {1, 65, 100}, {9, 1, 6},   {100, 1, 100}, {1, 1, 33},
                         {8, 5, 1},  {100, 65, 1}, {1, 9, 1},    {7, 1, 1},   {4, 6, 0},     {1, 5, 0},
                         {6, 1, 0},  {3, 4, 5},   {32, 65, 100}, {130, 120, 140}, {40, 150, 260},
                         // the vector kernels' remainders: rows by 8, 4 and 1, columns by 8
                         // registers and a partial last one, k past the last whole register;
                         // large enough to be split over threads (1×4000×300, 3500×1×300)
                         {1, 200, 37}, {1, 12, 3},   {77, 1, 9},    {1, 4000, 300}, {3500, 1, 300}};
const std::pair<double, double> kScalars[] = {{1, 0}, {1, 1}, {0.5, -2}, {-1.5, 0.25}, {0, 1}};

template <class T>
void check_all_paths(T tolerance) {
  std::mt19937 gen(7);
  for (const Shape& s : kShapes)
    for (int t = 0; t < 4; ++t)
      for (const auto& [alpha_d, beta_d] : kScalars) {
        const bool ta = t & 1, tb = t & 2;
        const T alpha = T(alpha_d), beta = T(beta_d);
        const auto A = random_vector<T>(s.M * s.K, gen), B = random_vector<T>(s.K * s.N, gen);
        std::vector<T> C = random_vector<T>(s.M * s.N, gen);
        const std::vector<T> expected = naive(ta, tb, s.M, s.N, s.K, alpha, A, B, beta, C);
        // beta = 0 must not read C: a NaN there must not reach the result.
        if (beta == T(0) && !C.empty()) C[0] = std::numeric_limits<T>::quiet_NaN();
        gemm(ta, tb, s.M, s.N, s.K, alpha, A.data(), B.data(), beta, C.data());
        for (std::size_t i = 0; i < C.size(); ++i)
          ASSERT_NEAR(C[i], expected[i], tolerance * T(s.K + 1))
              << "M=" << s.M << " N=" << s.N << " K=" << s.K << " trans_a=" << ta << " trans_b=" << tb
              << " alpha=" << alpha << " beta=" << beta << " element " << i;
      }
}

TEST(Gemm, FloatMatchesNaiveLoopOnEveryPathAndTranspose) { check_all_paths<float>(2e-6f); }
TEST(Gemm, DoubleMatchesNaiveLoopOnEveryPathAndTranspose) { check_all_paths<double>(1e-14); }

// The same with the vector products through OpenBLAS's GEMV, as on a CPU without AVX2.
TEST(Gemm, OpenblasVectorPathsMatchNaiveLoop) {
  xgrad::blas::detail::use_own_vector_kernels(false);
  check_all_paths<float>(2e-6f);
  check_all_paths<double>(1e-14);
  xgrad::blas::detail::use_own_vector_kernels(true);
}

// alpha = 0 reads neither operand: an inf in A leaves C = beta·C on every path (vector or not).
TEST(Gemm, AlphaZeroIgnoresTheOperands) {
  for (const std::size_t M : {std::size_t(1), std::size_t(2)})
    for (const bool own : {true, false}) {
      xgrad::blas::detail::use_own_vector_kernels(own);
      std::vector<double> A(M * 3, 1.0), B{1.0, 2.0, 3.0}, C(M, 5.0);
      A[0] = std::numeric_limits<double>::infinity();
      gemm(false, false, M, 1, 3, 0.0, A.data(), B.data(), 0.5, C.data());
      for (std::size_t i = 0; i < M; ++i) EXPECT_EQ(C[i], 2.5) << "M=" << M << " own kernels " << own;
    }
  xgrad::blas::detail::use_own_vector_kernels(true);
}

// A vector product's every element is one sum in a fixed order: the same bits on 1 thread and
// split over 3 (by rows of A; a (K, N) A this large goes to OpenBLAS's GEMV, on one thread).
TEST(Gemm, VectorProductsAreTheSameBitsWhateverTheThreads) {
  std::mt19937 gen(13);
  const std::size_t N = 4000, K = 300;
  ASSERT_GE(2.0 * N * K, xgrad::blas::kParallelFlops);
  const auto A = random_vector<float>(N * K, gen), x = random_vector<float>(K, gen);
  for (const bool trans_b : {false, true}) {
    std::vector<float> one(N), three(N);
    xgrad::blas::set_num_threads(1);
    gemm(false, trans_b, 1, N, K, 1.f, x.data(), A.data(), 0.f, one.data());
    xgrad::blas::set_num_threads(3);
    gemm(false, trans_b, 1, N, K, 1.f, x.data(), A.data(), 0.f, three.data());
    xgrad::blas::set_num_threads(0);
    for (std::size_t j = 0; j < N; ++j) ASSERT_EQ(one[j], three[j]) << "trans_b=" << trans_b << " element " << j;
  }
}

// The split products at more strips than cores (3 threads), where the last strip is a partial one.
TEST(Gemm, SplitOverThreeThreadsMatchesNaiveLoop) {
  ASSERT_GE(2.0 * 40 * 150 * 260, xgrad::blas::kParallelFlops);
  ASSERT_GE(2.0 * 130 * 120 * 140, xgrad::blas::kParallelFlops);
  xgrad::blas::set_num_threads(3);
  check_all_paths<double>(1e-14);
  xgrad::blas::set_num_threads(0);
}

// Threads of the program multiplying at once: one of them holds the pool, the others run their
// products on their own thread; every result is right.
TEST(GemmThreads, ConcurrentSplitProductsAreEachRight) {
  xgrad::blas::set_num_threads(2);
  const std::size_t M = 40, N = 150, K = 260;
  std::mt19937 gen(11);
  const auto A = random_vector<double>(M * K, gen), B = random_vector<double>(K * N, gen);
  const std::vector<double> zero(M * N, 0.0);
  const std::vector<double> expected = naive(false, true, M, N, K, 1.0, A, B, 0.0, zero);
  std::vector<std::vector<double>> results(3, zero);
  std::vector<std::thread> threads;
  for (auto& C : results)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) gemm(false, true, M, N, K, 1.0, A.data(), B.data(), 0.0, C.data());
    });
  for (auto& t : threads) t.join();
  xgrad::blas::set_num_threads(0);
  for (const auto& C : results)
    for (std::size_t i = 0; i < C.size(); ++i) ASSERT_NEAR(C[i], expected[i], 1e-12) << "element " << i;
}

// The vector paths give the same sums as GEMM: y = W·x (M = 1 with B transposed, as Linear
// does it) equals the same product computed with one extra row, which takes GEMM.
TEST(Gemm, VectorProductEqualsTheSameRowOfAMatrixProduct) {
  std::mt19937 gen(3);
  const std::size_t N = 65, K = 100;
  const auto W = random_vector<float>(N * K, gen), X = random_vector<float>(2 * K, gen);
  std::vector<float> one(N, 0.f), two(2 * N, 0.f);
  gemm(false, true, 1, N, K, 1.f, X.data(), W.data(), 0.f, one.data());
  gemm(false, true, 2, N, K, 1.f, X.data(), W.data(), 0.f, two.data());
  for (std::size_t j = 0; j < N; ++j) EXPECT_NEAR(one[j], two[j], 1e-5f) << "column " << j;
}

TEST(Gemm, ResultDoesNotDependOnTheThreadBound) {
  std::mt19937 gen(5);
  const std::size_t M = 512, N = 512, K = 256;  // above the threshold: split over threads
  ASSERT_GE(2.0 * M * N * K, xgrad::blas::kParallelFlops);
  const auto A = random_vector<double>(M * K, gen), B = random_vector<double>(K * N, gen);
  std::vector<double> one(M * N, 0.0), many(M * N, 0.0);
  xgrad::blas::set_num_threads(1);
  gemm(false, false, M, N, K, 1.0, A.data(), B.data(), 0.0, one.data());
  xgrad::blas::set_num_threads(4);
  gemm(false, false, M, N, K, 1.0, A.data(), B.data(), 0.0, many.data());
  xgrad::blas::set_num_threads(0);
  for (std::size_t i = 0; i < one.size(); ++i) ASSERT_NEAR(one[i], many[i], 1e-12) << "element " << i;
}

TEST(BlasThreads, SmallProductsUseOneThreadLargeOnesTheBound) {
  xgrad::blas::set_num_threads(3);
  EXPECT_EQ(xgrad::blas::num_threads(), 3);
  EXPECT_EQ(xgrad::blas::threads_for(2.0 * 32 * 64 * 64), 1);  // a per-step product of S1
  EXPECT_EQ(xgrad::blas::threads_for(2.0 * 32 * 1024 * 256), 3);  // a per-step product of W3
  EXPECT_EQ(xgrad::blas::threads_for(xgrad::blas::kParallelFlops / 2), 1);
  EXPECT_EQ(xgrad::blas::threads_for(xgrad::blas::kParallelFlops), 3);
  EXPECT_EQ(xgrad::blas::threads_for(2.0 * 1024 * 1024 * 1024), 3);
  xgrad::blas::set_num_threads(1);
  EXPECT_EQ(xgrad::blas::threads_for(2.0 * 1024 * 1024 * 1024), 1);
  xgrad::blas::set_num_threads(0);
  EXPECT_GE(xgrad::blas::num_threads(), 1);
}

TEST(BlasThreads, NegativeCountThrowsNamingTheValue) {
  try {
    xgrad::blas::set_num_threads(-2);
    FAIL() << "set_num_threads(-2) did not throw";
  } catch (const xgrad::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("set_num_threads"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("-2"), std::string::npos) << e.what();
  }
  EXPECT_GE(xgrad::blas::num_threads(), 1);
}

// OpenBLAS's kernels (blas.hpp): the scripts set OPENBLAS_CORETYPE, and OpenBLAS runs what it
// names; a program started without it is told, once and before its first product's result,
// exactly when OpenBLAS runs kernels weaker than the CPU allows.
bool weaker_than_the_cpu(const std::string& core) {
  for (const char* weak : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge"})
    if (core == weak) return std::string(xgrad::blas::openblas_core_for_cpu()) != "";
  return false;
}

TEST(OpenblasCore, RunsTheKernelsTheEnvironmentNames) {
  const char* set = std::getenv("OPENBLAS_CORETYPE");
  if (set == nullptr) {
    // Only a run outside the scripts gets here: the rule is all there is to check.
    const std::string rule = xgrad::blas::openblas_core_for_cpu();
    EXPECT_TRUE(rule == "SkylakeX" || rule == "Haswell" || rule.empty()) << rule;
    return;
  }
  std::string want = set, got = xgrad::blas::openblas_core();
  for (auto* s : {&want, &got})
    for (char& c : *s) c = char(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(got, want);
}

// One product, then the kernels' name on stdout; the test below runs it as a child.
TEST(OpenblasCoreChild, ReportsTheCore) {
  float a = 2, b = 3, c = 0;
  gemm(false, false, 1, 1, 1, 1.0f, &a, &b, 0.0f, &c);
  EXPECT_EQ(c, 6.0f);
  EXPECT_STRNE(xgrad::blas::openblas_core(), "");
  std::printf("core=%s product=%g\n", xgrad::blas::openblas_core(), double(c));
}

TEST(OpenblasCore, AProgramWithoutTheSettingIsToldWhenTheKernelsAreWeak) {
  const auto r = xgrad::testing::run_command(
      "env -u OPENBLAS_CORETYPE /proc/" + std::to_string(getpid()) +
      "/exe --gtest_filter=OpenblasCoreChild.ReportsTheCore 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto at = r.out.find("core=");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string core = r.out.substr(at + 5, r.out.find(' ', at) - at - 5);
  EXPECT_NE(r.out.find("product=6"), std::string::npos) << r.out;
  const bool told = r.out.find("xgrad: OpenBLAS does not know this CPU") != std::string::npos;
  EXPECT_EQ(told, weaker_than_the_cpu(core)) << r.out;
  if (told) {
    EXPECT_NE(r.out.find(std::string("OPENBLAS_CORETYPE=") + xgrad::blas::openblas_core_for_cpu()), std::string::npos)
        << r.out;
  }
}

}  // namespace
