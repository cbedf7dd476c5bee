// Linear and Embedding.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include <xtensor/xview.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;

TEST(Linear, ParametersAreNamedAndShapedOutIn) {
  nn::manual_seed(1);
  nn::Linear<double> fc(3, 5);
  auto named = fc.named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(Shape(fc.weight.shape().begin(), fc.weight.shape().end()), (Shape{5, 3}));
  EXPECT_EQ(Shape(fc.bias.shape().begin(), fc.bias.shape().end()), (Shape{5}));
  const double bound = 1 / std::sqrt(3.0);
  for (double v : fc.weight.value()) EXPECT_LE(std::abs(v), bound);
  for (double v : fc.bias.value()) EXPECT_LE(std::abs(v), bound);
}

TEST(Linear, InitialisationIsReproducibleFromTheSeed) {
  nn::manual_seed(7);
  nn::Linear<float> a(4, 4);
  nn::manual_seed(7);
  nn::Linear<float> b(4, 4);
  nn::Linear<float> c(4, 4);
  EXPECT_EQ(a.weight.value(), b.weight.value());
  EXPECT_NE(a.weight.value(), c.weight.value());
}

TEST(Linear, ForwardIsXWTransposedPlusBias) {
  nn::manual_seed(2);
  nn::Linear<double> fc(3, 2);
  std::mt19937_64 gen(3);
  Array<double> x = randn({4, 3}, gen);
  Array<double> expected = xt::zeros<double>({4, 2});
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t o = 0; o < 2; ++o) {
      double s = fc.bias.value()(o);
      for (std::size_t k = 0; k < 3; ++k) s += x(i, k) * fc.weight.value()(o, k);
      expected(i, o) = s;
    }
  EXPECT_LT(rel_error(fc(constant(x)).value(), expected), 1e-15);
}

TEST(Linear, GradientMatchesFiniteDifferences) {
  nn::manual_seed(4);
  nn::Linear<double> fc(3, 4);
  std::mt19937_64 gen(5);
  auto r = testing::gradcheck_module(fc, {randn({2, 3}, gen)},
                                     [&](const std::vector<Var<double>>& in) { return testing::project(fc(in[0])); });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Linear, WrongInputWidthThrowsNamingShapes) {
  nn::Linear<double> fc(3, 4);
  Var<double> x = constant<double>(xt::zeros<double>({2, 5}));
  XGRAD_EXPECT_THROW_MSG(fc(x), ShapeError, "Linear", "(2, 5)", "3");
}

// A sequence's outputs (T, m, in) go through without a reshape: each position is a row.
TEST(Linear, AppliesToEveryPositionOfASequence) {
  nn::manual_seed(4);
  nn::Linear<double> fc(3, 2);
  std::mt19937_64 gen(5);
  const Array<double> x = randn({4, 2, 3}, gen);
  const Array<double> y = fc(constant(x)).value();
  ASSERT_EQ(Shape(y.shape().begin(), y.shape().end()), (Shape{4, 2, 2}));
  for (std::size_t t = 0; t < 4; ++t) {
    const Array<double> row = fc(constant<double>(xt::view(x, t))).value();
    EXPECT_LT(xt::amax(xt::abs(row - xt::view(y, t)))(), 1e-14);
  }
  XGRAD_EXPECT_THROW_MSG(fc(constant<double>(xt::zeros<double>({4, 2, 5}))), ShapeError, "Linear", "(4, 2, 5)");
}

TEST(Embedding, LooksUpRows) {
  nn::manual_seed(8);
  nn::Embedding<double> emb(6, 3);
  Var<double> y = emb({4, 0, 4});
  ASSERT_EQ(Shape(y.shape().begin(), y.shape().end()), (Shape{3, 3}));
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(y.value()(0, k), emb.weight.value()(4, k));
    EXPECT_EQ(y.value()(1, k), emb.weight.value()(0, k));
    EXPECT_EQ(y.value()(2, k), emb.weight.value()(4, k));
  }
  EXPECT_EQ(emb.named_parameters()[0].first, "weight");
}

TEST(Embedding, GradientMatchesFiniteDifferences) {
  nn::manual_seed(9);
  nn::Embedding<double> emb(5, 3);
  auto r = testing::gradcheck_module(emb, {}, [&](const std::vector<Var<double>>&) {
    return testing::project(tanh(emb({1, 3, 1, 0})));
  });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Embedding, IdOutsideTheTableThrows) {
  nn::Embedding<double> emb(5, 3);
  XGRAD_EXPECT_THROW_MSG(emb({1, 5}), IndexError, "Embedding", "5", "(5, 3)");
  XGRAD_EXPECT_THROW_MSG(emb({-1}), IndexError, "Embedding", "-1");
}

}  // namespace
}  // namespace xgrad
