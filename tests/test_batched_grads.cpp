// Batched weight gradients: a weight used in many small products (a recurrent weight, once per
// time step) gets the sum of their weight gradients in one GEMM during the sweep. These tests
// compare it with the per-product path, which the sweep takes under DetectAnomaly.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;

namespace {

class BatchedGradsTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_tape(); }
  void TearDown() override { clear_tape(); }
};

A random_array(const Shape& shape, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  A a = A::from_shape(shape);
  for (double& x : a) x = u(gen);
  return a;
}

// The gradients of `params` from loss(), once as the sweep batches them and once per product.
struct TwoSweeps {
  std::vector<A> batched, per_product;
};

template <class F>
TwoSweeps both_ways(const std::vector<Var<double>>& params, F loss) {
  TwoSweeps r;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& p : params) p.zero_grad();
    clear_tape();
    if (pass == 0) {
      loss().backward();
    } else {
      DetectAnomaly per_product;  // looks at each rule's gradients, so nothing is batched
      loss().backward();
    }
    for (const auto& p : params) (pass == 0 ? r.batched : r.per_product).push_back(p.grad());
  }
  return r;
}

void expect_equal_within(const TwoSweeps& r, double tol) {
  ASSERT_EQ(r.batched.size(), r.per_product.size());
  for (std::size_t i = 0; i < r.batched.size(); ++i) {
    ASSERT_EQ(r.batched[i].shape(), r.per_product[i].shape());
    const double worst = xt::amax(xt::abs(r.batched[i] - r.per_product[i]))();
    EXPECT_LE(worst, tol) << "parameter " << i;
    EXPECT_GT(xt::amax(xt::abs(r.per_product[i]))(), 0.0) << "parameter " << i << " got no gradient";
  }
}

// An unrolled recurrence a_t = tanh(px_t + a_{t-1}·Wᵀ), m rows per step.
Var<double> recurrence(const Var<double>& W, const std::vector<A>& px, std::size_t m, std::size_t n) {
  Var<double> a = constant<double>(xt::zeros<double>({m, n}));
  Var<double> total;
  for (const A& p : px) {
    a = tanh(addmm_nt(constant(p), a, W));
    total = total.defined() ? total + a * a : a * a;
  }
  return sum(total);
}

std::vector<A> inputs(std::size_t steps, std::size_t m, std::size_t n, unsigned seed) {
  std::vector<A> px;
  for (std::size_t t = 0; t < steps; ++t) px.push_back(random_array({m, n}, seed + static_cast<unsigned>(t)));
  return px;
}

TEST_F(BatchedGradsTest, RecurrentWeightMatchesThePerStepProducts) {
  auto W = param(random_array({6, 6}, 1));
  const auto px = inputs(20, 4, 6, 10);
  Tape<double>& tape = Tape<double>::current();
  tape.release();
  const TwoSweeps r = both_ways({W}, [&] { return recurrence(W, px, 4, 6); });
  expect_equal_within(r, 1e-12);
  // The batched sweep stacked the 20 steps' rows of g (4, 6) and a (4, 6): the tape counts them.
  clear_tape();
  tape.release();
  recurrence(W, px, 4, 6).backward();
  EXPECT_GE(tape.memory_bytes(), 20u * 4 * (6 + 6) * sizeof(double) + tape.size() * sizeof(Node<double>));
}

TEST_F(BatchedGradsTest, BatchedRecurrenceMatchesFiniteDifferences) {
  const auto px = inputs(8, 3, 4, 20);
  const GradcheckResult r =
      gradcheck([&](const std::vector<Var<double>>& p) { return recurrence(p[0], px, 3, 4); },
                {random_array({4, 4}, 2)});
  EXPECT_TRUE(r.ok) << r.report();
}

// W computed on the tape (2·V): its gradient must be complete before the sweep reaches the node
// that made it, which passes it on to V; retain_grad on it sees the whole sum.
TEST_F(BatchedGradsTest, NonLeafWeightIsCompleteBeforeItsNodeRuns) {
  auto V = param(random_array({5, 5}, 3));
  const auto px = inputs(12, 3, 5, 30);
  Var<double> kept;
  auto loss = [&] {
    kept = (V * 2.0).retain_grad();
    return recurrence(kept, px, 3, 5);
  };
  const TwoSweeps r = both_ways({V}, loss);
  expect_equal_within(r, 1e-12);
  clear_tape();
  V.zero_grad();
  loss().backward();
  const A retained = kept.grad();
  EXPECT_LE(xt::amax(xt::abs(2.0 * retained - V.grad()))(), 1e-12);
  clear_tape();
  {
    DetectAnomaly per_product;
    loss().backward();
  }
  EXPECT_LE(xt::amax(xt::abs(kept.grad() - retained))(), 1e-12);
}

// The same weight in small products of both orientations (a·Wᵀ per step, b·W once) and in one
// product with many rows (not batched): every contribution arrives once.
TEST_F(BatchedGradsTest, WeightInProductsOfBothOrientationsAndSizes) {
  auto W = param(random_array({6, 6}, 4));
  const auto px = inputs(10, 4, 6, 40);
  const A b = random_array({3, 6}, 5);
  const A big = random_array({Tape<double>::kBatchMaxRows + 8, 6}, 6);
  auto loss = [&] {
    Var<double> l = recurrence(W, px, 4, 6);
    l = l + sum(tanh(matmul(constant(b), W)));
    l = l + sum(tanh(matmul_nt(constant(big), W)));
    return l + recurrence(W, px, 4, 6) * 0.5;
  };
  expect_equal_within(both_ways({W}, loss), 1e-12);
  const GradcheckResult r = gradcheck(
      [&](const std::vector<Var<double>>& p) {
        return recurrence(p[0], px, 4, 6) + sum(tanh(matmul(constant(b), p[0])));
      },
      {random_array({6, 6}, 4)});
  EXPECT_TRUE(r.ok) << r.report();
}

// Rows beyond the stack's bound are summed in several GEMMs: the result is the same, and the
// stack the tape keeps stays within the bound.
TEST_F(BatchedGradsTest, StackIsBoundedAndFlushedWhenFull) {
  const std::size_t m = 32, n = 128;
  const std::size_t per_step = m * (n + n) * sizeof(double);
  const std::size_t steps = 3 * Tape<double>::kBatchBytes / per_step + 1;  // three flushes at least
  auto W = param(A(random_array({n, n}, 7) * 0.1));
  const auto px = inputs(steps, m, n, 50);
  expect_equal_within(both_ways({W}, [&] { return recurrence(W, px, m, n); }), 1e-12);
  Tape<double>& tape = Tape<double>::current();
  clear_tape();
  tape.release();
  recurrence(W, px, m, n).backward();
  std::size_t nodes = 0;
  for (std::size_t i = 0; i < tape.size(); ++i) {
    const Node<double>& nd = tape.node(i);
    nodes += sizeof(Node<double>) + (nd.value.storage().capacity() + nd.grad.storage().capacity() +
                                     nd.saved_array.storage().capacity()) * sizeof(double) +
             nd.inputs.capacity() * sizeof(void*) + nd.saved_ids.capacity() * sizeof(int);
  }
  // Whatever the tape holds beyond its nodes: the gradient pool, the stack, the node list.
  const std::size_t beyond = tape.memory_bytes() - nodes;
  EXPECT_LE(beyond, Tape<double>::kBatchBytes + 16 * m * n * sizeof(double) + 4 * tape.size() * sizeof(void*));
}

// A rule that throws in the middle of a sweep leaves nothing pending: the next sweep's
// gradients are exactly those of a fresh one.
TEST_F(BatchedGradsTest, AFailedSweepLeavesNothingPending) {
  auto W = param(random_array({4, 4}, 8));
  const auto px = inputs(6, 2, 4, 60);
  auto fail = std::make_shared<bool>(true);
  auto loss = [&] {
    Var<double> a = constant<double>(xt::zeros<double>({2, 4}));
    for (const A& p : px) a = tanh(addmm_nt(constant(p), a, W));
    // Between the per-step products and the sweep's end: W's rows are stacked when it throws.
    a = custom_op<double>(
        "maybe_fails", {a}, [](const auto& in) { return A(in[0]); },
        [fail](const auto& grad, const auto&, const auto&) {
          return std::vector<A>{*fail ? A(xt::zeros<double>({1})) : A(grad)};
        });
    for (const A& p : px) a = tanh(addmm_nt(constant(p), a, W));
    return sum(a * a);
  };
  XGRAD_EXPECT_THROW_MSG(loss().backward(), ShapeError, "maybe_fails");
  *fail = false;
  W.zero_grad();
  clear_tape();
  loss().backward();
  const A after_failure = W.grad();
  const TwoSweeps r = both_ways({W}, loss);
  EXPECT_LE(xt::amax(xt::abs(after_failure - r.batched[0]))(), 0.0);
  expect_equal_within(r, 1e-12);
}

// Float: the batched sum differs from the per-step one only by summation order.
TEST_F(BatchedGradsTest, FloatRecurrentLayerAgreesWithPerStepProducts) {
  nn::LSTM<float> lstm(5, 8);
  std::vector<Array<float>> xs;
  for (int t = 0; t < 16; ++t) xs.push_back(xt::cast<float>(random_array({4, 5}, 70 + t)));
  std::vector<Array<float>> g[2];
  for (int pass = 0; pass < 2; ++pass) {
    clear_tape();
    for (auto& p : lstm.parameters()) p.zero_grad();
    std::vector<Var<float>> x;
    for (const auto& v : xs) x.push_back(constant(v));
    auto run = [&] {
      auto out = lstm.forward(stack(x)).output;
      sum(out * out).backward();
    };
    if (pass == 0) {
      run();
    } else {
      DetectAnomaly per_product;
      run();
    }
    for (auto& p : lstm.parameters()) g[pass].push_back(p.grad());
  }
  for (std::size_t i = 0; i < g[0].size(); ++i) {
    const float scale = std::max(1.0f, xt::amax(xt::abs(g[1][i]))());
    EXPECT_LE(xt::amax(xt::abs(g[0][i] - g[1][i]))(), 1e-5f * scale) << "parameter " << i;
  }
}

}  // namespace
