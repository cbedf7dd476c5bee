// blas::gemm_packed against a naive loop in long double (float and double, both orientations of
// the packed operand, beta 0 / 1 / other, row counts around the kernels' 4- and 8-row blocks and
// column counts around their panels, the AVX2 and AVX-512 kernels where the CPU runs them and the
// portable loops over both layouts, 1 and 3 threads), and the
// tape's packed weights: a product reads the weight as it is now, after set_value, after a write
// through mutable_value, after clear_tape, and for a new parameter where an old one was; the
// same for linear_onehot's transposed weight, and its gradient through the transposed
// gradient the sweep holds against the gradient summed directly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <xgrad/autograd/blas.hpp>
#include <xgrad/autograd/packed.hpp>
#include <xgrad/xgrad.hpp>

#include "testing.hpp"

namespace {

using xgrad::testing::random_vector;

using namespace xgrad;

Array<double> random_array(const Shape& shape, std::mt19937& gen) {
  std::uniform_real_distribution<double> u(-1, 1);
  Array<double> a = xt::zeros<double>(shape);
  for (double& x : a) x = u(gen);
  return a;
}

// C (M, N) = A (M, K)·op(B) + beta·C, op(B) = B (K, N) or Bᵀ for B (N, K).
template <class T>
std::vector<T> naive(bool tb, std::size_t M, std::size_t N, std::size_t K, const std::vector<T>& A,
                     const std::vector<T>& B, T beta, const std::vector<T>& C) {
  std::vector<T> out(M * N);
  for (std::size_t i = 0; i < M; ++i)
    for (std::size_t j = 0; j < N; ++j) {
      long double s = 0;
      for (std::size_t k = 0; k < K; ++k) s += static_cast<long double>(A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
      out[i * N + j] = static_cast<T>(s + (beta == T(0) ? 0.0L : static_cast<long double>(beta) * C[i * N + j]));
    }
  return out;
}

struct Case {
  std::size_t M, N, K;
};
// Rows 1..9 and 16, 32, 33, 130 (whole and partial 4- and 8-row blocks); columns below, at and
// past one panel (AVX2: 24 floats, 12 doubles; AVX-512: 32 floats, 16 doubles) and many panels;
// K = 1 and deep. 32 × 1024 × 256 is W3's step
// and 45 × 50 × 600 a product of few panels and a partial row block, both split over the threads.
const Case kCases[] = {{1, 1, 1},   {2, 5, 3},    {3, 24, 7},  {4, 25, 16},  {5, 12, 1},  {6, 13, 40},
                       {7, 48, 9},  {8, 49, 33},  {9, 3, 100}, {16, 100, 64}, {33, 70, 129}, {130, 37, 20},
                       {12, 32, 5}, {15, 33, 17}, {17, 16, 8}, {8, 31, 2},
                       {32, 1024, 256}, {45, 50, 600}};
const blas::PackedKernel kKernels[] = {blas::PackedKernel::avx2, blas::PackedKernel::avx512};
const double kBetas[] = {0.0, 1.0, -0.5};

template <class T, class Product>
void check_cases(Product product, T tolerance) {
  std::mt19937 gen(11);
  for (blas::PackedKernel kernel : kKernels)
  for (const Case& c : kCases)
    for (bool tb : {false, true})
      for (double beta_d : kBetas) {
        const T beta = T(beta_d);
        const auto A = random_vector<T>(c.M * c.K, gen), B = random_vector<T>(c.K * c.N, gen);
        std::vector<T> C = random_vector<T>(c.M * c.N, gen);
        const std::vector<T> expected = naive(tb, c.M, c.N, c.K, A, B, beta, C);
        if (beta == T(0)) C[0] = std::numeric_limits<T>::quiet_NaN();  // beta = 0 must not read C
        blas::Packed<T> P;
        P.pack(tb, c.N, c.K, B.data(), kernel);
        ASSERT_EQ(P.K(), c.K);
        ASSERT_EQ(P.N(), c.N);
        ASSERT_EQ(P.kernel(), kernel);
        product(c.M, A.data(), P, beta, C.data());
        for (std::size_t i = 0; i < C.size(); ++i)
          ASSERT_NEAR(C[i], expected[i], tolerance * T(c.K + 1))
              << "kernel " << int(kernel) << " M=" << c.M << " N=" << c.N << " K=" << c.K << " trans_b=" << tb
              << " beta=" << beta << " element " << i;
      }
}

template <class T>
void kernel(std::size_t M, const T* A, const blas::Packed<T>& B, T beta, T* C) {
  blas::gemm_packed(M, A, B, beta, C);
}
template <class T>
void portable(std::size_t M, const T* A, const blas::Packed<T>& B, T beta, T* C) {
  blas::detail::gemm_packed_portable(M, A, B, beta, C);
}

TEST(GemmPacked, FloatMatchesNaiveLoop) { check_cases<float>(kernel<float>, 2e-6f); }
TEST(GemmPacked, DoubleMatchesNaiveLoop) { check_cases<double>(kernel<double>, 1e-14); }
TEST(GemmPacked, PortableLoopsMatchNaiveLoop) {
  check_cases<float>(portable<float>, 2e-6f);
  check_cases<double>(portable<double>, 1e-14);
}
TEST(GemmPacked, SplitOverThreeThreadsMatchesNaiveLoop) {
  ASSERT_GE(2.0 * 32 * 1024 * 256, blas::kParallelFlops);
  ASSERT_GE(2.0 * 45 * 50 * 600, blas::kParallelFlops);
  blas::set_num_threads(3);
  check_cases<double>(kernel<double>, 1e-14);
  blas::set_num_threads(0);
}

// Every element is one sum over k in order: the same bits on 1 thread and on 3, with either kernel.
TEST(GemmPacked, ResultDoesNotDependOnTheThreadCount) {
  std::mt19937 gen(3);
  const std::size_t M = 32, N = 1000, K = 256;
  const auto A = random_vector<float>(M * K, gen), B = random_vector<float>(N * K, gen);
  for (blas::PackedKernel kernel : kKernels) {
    blas::Packed<float> P;
    P.pack(true, N, K, B.data(), kernel);
    std::vector<float> one(M * N), three(M * N);
    blas::set_num_threads(1);
    blas::gemm_packed(M, A.data(), P, 0.f, one.data());
    blas::set_num_threads(3);
    blas::gemm_packed(M, A.data(), P, 0.f, three.data());
    blas::set_num_threads(0);
    EXPECT_EQ(one, three) << "kernel " << int(kernel);
  }
}

TEST(GemmPacked, AvailableExactlyWhereTheCpuHasAvx2AndFma) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  EXPECT_EQ(blas::packed_available(), avx2);
  // A weight is packed for AVX-512 exactly where the CPU has it, and the panels follow the kernel.
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  EXPECT_EQ(blas::best_packed_kernel(), avx512 ? blas::PackedKernel::avx512 : blas::PackedKernel::avx2);
  const std::vector<float> B(10 * 3, 1.f);
  blas::Packed<float> P;
  P.pack(false, 10, 3, B.data());
  EXPECT_EQ(P.kernel(), blas::best_packed_kernel());
  EXPECT_EQ(P.width(), avx512 ? 32u : 24u);
  blas::Packed<float> Q;
  Q.pack(false, 10, 3, B.data(), blas::PackedKernel::avx2);
  EXPECT_EQ(Q.width(), 24u);
  EXPECT_EQ(Q.bytes(), 3 * 24 * sizeof(float));
}

// ---- the tape's packed weights

class PackedWeights : public ::testing::Test {
 protected:
  void SetUp() override { clear_tape(); }
  void TearDown() override { clear_tape(); }
};

// a (m, k)·Wᵀ by the naive loop, for W (n, k).
Array<double> expected_nt(const Array<double>& a, const Array<double>& W) {
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = W.shape()[0];
  std::vector<double> A(a.begin(), a.end()), B(W.begin(), W.end()), C(m * n, 0.0);
  const std::vector<double> out = naive(true, m, n, k, A, B, 0.0, C);
  Array<double> r = xt::zeros<double>({m, n});
  std::copy(out.begin(), out.end(), r.begin());
  return r;
}

void expect_close(const Array<double>& got, const Array<double>& want, const char* what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got.flat(i), want.flat(i), 1e-12) << what << " element " << i;
}

TEST_F(PackedWeights, AProductReadsTheWeightAsItIsNow) {
  std::mt19937 gen(5);
  const auto W0 = random_array({40, 30}, gen), W1 = random_array({40, 30}, gen);
  const auto a = param<double>(random_array({8, 30}, gen));
  auto W = param<double>(W0);
  expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), W0), "first product");
  expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), W0), "second product, the pack reused");
  EXPECT_EQ(Tape<double>::current().pack_bytes() > 0, blas::packed_available());  // the pack path ran
  W.set_value(W1);  // same generation: the pack is stale
  expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), W1), "after set_value");
  W.mutable_value()(0, 0) += 1.0;  // a write through mutable_value
  Array<double> W2 = W1;
  W2(0, 0) += 1.0;
  expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), W2), "after mutable_value");
  clear_tape();
  expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), W2), "after clear_tape");
}

// A parameter created where a destroyed one was (the same address is likely) is a new content.
TEST_F(PackedWeights, ANewParameterIsNeverReadThroughAnOldOnesPack) {
  std::mt19937 gen(9);
  const auto a = param<double>(random_array({8, 30}, gen));
  for (int i = 0; i < 4; ++i) {
    const auto Wv = random_array({40, 30}, gen);
    auto W = param<double>(Wv);
    expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), Wv), "a new parameter");
  }
}

// The backward product da = g·W reads W packed the other way; dW is unchanged by packing.
TEST_F(PackedWeights, GradientsThroughPackedProductsMatchFiniteDifferences) {
  std::mt19937 gen(13);
  const GradcheckResult r = gradcheck(
      [](const std::vector<Var<double>>& x) {
        const Var<double>&W = x[0], &c = x[1], &a = x[2], &V = x[3], &b = x[4];
        // products with few rows through the same weights, as a recurrent cell reads them
        Var<double> h = tanh(addmm_nt(c, a, W));           // (6, 12)
        Var<double> u = tanh(linear(h, V, b));             // (6, 5)
        Var<double> y = matmul(u, matmul(V, W));           // (6, 7): W read as it is and as Wᵀ
        return sum(square(addmm_nt(c, y, W)));
      },
      {random_array({12, 7}, gen), random_array({6, 12}, gen), random_array({6, 7}, gen), random_array({5, 12}, gen),
       random_array({5}, gen)});
  EXPECT_TRUE(r.ok) << r.report();
  EXPECT_GT(r.checked, 100u);
}

// A constant (or detached) right operand may be new data at every step: it is not packed.
TEST_F(PackedWeights, ConstantsAreNotPacked) {
  std::mt19937 gen(4);
  const auto a = param<double>(random_array({8, 30}, gen));
  const auto Wv = random_array({40, 30}, gen);
  const auto W = constant<double>(Wv);
  Tape<double>::current().release();  // no pack storage kept from earlier tests
  expect_close(matmul_nt(a, W).value(), expected_nt(a.value(), Wv), "a constant operand");
  EXPECT_EQ(Tape<double>::current().pack_bytes(), 0u);
  auto P = param<double>(Wv);  // the same values as a parameter are
  expect_close(matmul_nt(a, P).value(), expected_nt(a.value(), Wv), "a parameter operand");
  EXPECT_EQ(Tape<double>::current().pack_bytes() > 0, blas::packed_available());
}

// The packs are a copy of weights, not of the graph: memory_bytes() leaves them out.
TEST_F(PackedWeights, PacksAreCountedApartFromTheTapesMemory) {
  std::mt19937 gen(2);
  auto W = param<double>(random_array({256, 64}, gen));
  const auto a = constant<double>(random_array({4, 64}, gen));
  const std::size_t before = Tape<double>::current().memory_bytes();
  Var<double> y = matmul_nt(a, W);
  (void)y;
  if (blas::packed_available()) {
    EXPECT_GE(Tape<double>::current().pack_bytes(), 256u * 64u * sizeof(double));
  } else {
    EXPECT_EQ(Tape<double>::current().pack_bytes(), 0u);
  }
  EXPECT_LT(Tape<double>::current().memory_bytes() - before, 256u * 64u * sizeof(double));
}

// ---- linear_onehot through the tape's transposed weight and gradient

// y[i] = w[:, ids[i]] + b by the naive loop.
Array<double> expected_onehot(const std::vector<int>& ids, const Array<double>& w, const Array<double>& b) {
  const std::size_t out = w.shape()[0];
  Array<double> y = xt::zeros<double>({ids.size(), out});
  for (std::size_t i = 0; i < ids.size(); ++i)
    for (std::size_t o = 0; o < out; ++o) y(i, o) = w(o, std::size_t(ids[i])) + b(o);
  return y;
}

TEST_F(PackedWeights, AGatherReadsTheWeightAsItIsNow) {
  std::mt19937 gen(6);
  const auto W0 = random_array({40, 7}, gen), W1 = random_array({40, 7}, gen);
  const std::vector<int> ids = {3, 0, 6, 3, 1};
  auto W = param<double>(W0);
  const auto b = param<double>(random_array({40}, gen));
  Tape<double>::current().release();
  expect_close(linear_onehot(ids, W, b).value(), expected_onehot(ids, W0, b.value()), "first gather");
  EXPECT_EQ(Tape<double>::current().pack_bytes(), 40u * 7u * sizeof(double));  // wᵀ, made once
  expect_close(linear_onehot(ids, W, b).value(), expected_onehot(ids, W0, b.value()), "second gather, wᵀ reused");
  W.set_value(W1);
  expect_close(linear_onehot(ids, W, b).value(), expected_onehot(ids, W1, b.value()), "after set_value");
  W.mutable_value()(2, 6) += 1.0;
  Array<double> W2 = W1;
  W2(2, 6) += 1.0;
  expect_close(linear_onehot(ids, W, b).value(), expected_onehot(ids, W2, b.value()), "after mutable_value");
  clear_tape();
  expect_close(linear_onehot(ids, W, b).value(), expected_onehot(ids, W2, b.value()), "after clear_tape");
  // A constant weight is gathered where it is.
  Tape<double>::current().release();
  const auto C = constant<double>(W0);
  expect_close(linear_onehot(ids, C, b).value(), expected_onehot(ids, W0, b.value()), "a constant weight");
  EXPECT_EQ(Tape<double>::current().pack_bytes(), 0u);
}

// dw[:, id] = Σ of g's rows of that id over every step, held as dwᵀ through the sweep, summed
// into the gradient dw held before it; the same weight in a product beside it (a batch of the
// other kind, summed first), and under DetectAnomaly (no batching: the direct adds).
TEST_F(PackedWeights, OnehotGradientsThroughTheHeldTransposeEqualTheDirectSums) {
  std::mt19937 gen(8);
  const std::size_t out = 12, in = 5, T = 6;
  auto W = param<double>(random_array({out, in}, gen));
  auto b = param<double>(random_array({out}, gen));
  const auto a = constant<double>(random_array({3, in}, gen));
  std::vector<std::vector<int>> ids(T);
  std::uniform_int_distribution<int> id(0, int(in) - 1);
  for (auto& step : ids)
    for (int i = 0; i < 4; ++i) step.push_back(id(gen));
  std::vector<Array<double>> weights;  // the loss's weight on each step's output
  for (std::size_t t = 0; t < T; ++t) weights.push_back(random_array({4, out}, gen));
  const Array<double> v = random_array({3, out}, gen);
  // L = Σ_t Σ weights[t] ∘ linear_onehot(ids[t], W, b) (+ Σ v ∘ a·Wᵀ between steps 2 and 3).
  auto run = [&](bool with_product) {
    Var<double> loss = sum(constant<double>(weights[0]) * linear_onehot(ids[0], W, b));
    for (std::size_t t = 1; t < T; ++t) {
      loss = loss + sum(constant<double>(weights[t]) * linear_onehot(ids[t], W, b));
      if (with_product && t == 2) loss = loss + sum(constant<double>(v) * matmul_nt(a, W));
    }
    loss.backward();
  };
  auto expected = [&](bool with_product) {
    Array<double> dw = xt::zeros<double>({out, in}), db = xt::zeros<double>({out});
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t o = 0; o < out; ++o) {
          dw(o, std::size_t(ids[t][i])) += weights[t](i, o);
          db(o) += weights[t](i, o);
        }
    if (with_product)
      for (std::size_t r = 0; r < 3; ++r)
        for (std::size_t o = 0; o < out; ++o)
          for (std::size_t k = 0; k < in; ++k) dw(o, k) += v(r, o) * a.value()(r, k);
    return std::make_pair(dw, db);
  };
  for (bool with_product : {false, true}) {
    W.zero_grad();
    b.zero_grad();
    run(with_product);
    auto [dw, db] = expected(with_product);
    expect_close(W.grad(), dw, with_product ? "dw beside a product" : "dw");
    expect_close(b.grad(), db, "db");
    run(with_product);  // a second sweep adds to the gradient held before it
    expect_close(W.grad(), 2.0 * dw, "dw after two sweeps");
    {
      DetectAnomaly anomaly;
      run(with_product);
    }
    expect_close(W.grad(), 3.0 * dw, "dw with the direct adds");
    expect_close(b.grad(), 3.0 * db, "db with the direct adds");
  }
}

// A weight larger than Tape::kBatchBytes is gathered and scattered by columns, to the same values.
TEST_F(PackedWeights, ALargeOnehotWeightIsGatheredByColumns) {
  std::mt19937 gen(10);
  const std::size_t out = 600, in = 300;
  ASSERT_GT(out * in * sizeof(double), Tape<double>::kBatchBytes);
  auto W = param<double>(random_array({out, in}, gen));
  auto b = param<double>(random_array({out}, gen));
  const std::vector<int> ids = {299, 0, 17, 299};
  Tape<double>::current().release();
  Var<double> y = linear_onehot(ids, W, b);
  expect_close(y.value(), expected_onehot(ids, W.value(), b.value()), "gathered by columns");
  EXPECT_EQ(Tape<double>::current().pack_bytes(), 0u);
  sum(y).backward();
  Array<double> dw = xt::zeros<double>({out, in});
  for (int i : ids)
    for (std::size_t o = 0; o < out; ++o) dw(o, std::size_t(i)) += 1.0;
  expect_close(W.grad(), dw, "dw by columns");
}

}  // namespace
