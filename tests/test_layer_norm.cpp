// LayerNorm: parameters, the forward value against a direct computation, gradients by finite
// differences, the form without weight and bias, options and errors.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include <xtensor/xview.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;
using testing::shape_of;

// y = (z − mean) / sqrt(var + eps) ∘ g + beta over the last axis of z (..., n), var biased;
// g and beta null for the bare normalisation.
Array<double> layer_norm_by_hand(const Array<double>& z, const Array<double>* g, const Array<double>* beta,
                                 double eps) {
  const std::size_t n = z.shape().back();
  Array<double> y = z;
  for (std::size_t r = 0; r < z.size() / n; ++r) {
    double mean = 0, var = 0;
    for (std::size_t j = 0; j < n; ++j) mean += z.flat(r * n + j) / static_cast<double>(n);
    for (std::size_t j = 0; j < n; ++j) var += std::pow(z.flat(r * n + j) - mean, 2) / static_cast<double>(n);
    for (std::size_t j = 0; j < n; ++j) {
      double v = (z.flat(r * n + j) - mean) / std::sqrt(var + eps);
      if (g != nullptr) v = v * (*g)(j) + (*beta)(j);
      y.flat(r * n + j) = v;
    }
  }
  return y;
}

TEST(LayerNorm, ParametersAreWeightOnesAndBiasZeros) {
  nn::LayerNorm<double> ln(5);
  auto named = ln.named_parameters();
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].first, "weight");
  EXPECT_EQ(named[1].first, "bias");
  EXPECT_EQ(shape_of(ln.weight), (Shape{5}));
  EXPECT_EQ(shape_of(ln.bias), (Shape{5}));
  EXPECT_EQ(ln.weight.value(), xt::ones<double>({5}));
  EXPECT_EQ(ln.bias.value(), xt::zeros<double>({5}));
  EXPECT_EQ(ln.normalized_size(), 5u);
  EXPECT_EQ(ln.eps(), 1e-5);
  EXPECT_TRUE(ln.elementwise_affine());
}

TEST(LayerNorm, OptionsChainAndEachSetterSetsItsOption) {
  const nn::LayerNormOptions o = nn::LayerNormOptions().eps(1e-3).elementwise_affine(false);
  EXPECT_EQ(o.eps(), 1e-3);
  EXPECT_FALSE(o.elementwise_affine());
  EXPECT_EQ(nn::LayerNormOptions().eps(), 1e-5);
  EXPECT_TRUE(nn::LayerNormOptions().elementwise_affine());
}

TEST(LayerNorm, ForwardMatchesTheDirectComputation) {
  std::mt19937_64 gen(1);
  nn::LayerNorm<double> ln(4, nn::LayerNormOptions().eps(0.1));
  ln.weight.set_value(randn({4}, gen));
  ln.bias.set_value(randn({4}, gen));
  // Rows of different scales and offsets, a matrix and a (T, m, n) sequence.
  for (const Shape& s : {Shape{3, 4}, Shape{2, 3, 4}, Shape{4}}) {
    Array<double> x = randn(s, gen, 3.0) + 2.0;
    const Array<double> y = ln(constant(x)).value();
    ASSERT_EQ(shape_of(y), s);
    EXPECT_LT(rel_error(y, layer_norm_by_hand(x, &ln.weight.value(), &ln.bias.value(), 0.1)), 1e-14);
  }
}

TEST(LayerNorm, RowsComeOutWithZeroMeanAndUnitVariance) {
  std::mt19937_64 gen(2);
  nn::LayerNorm<double> ln(6, nn::LayerNormOptions().eps(1e-12));
  const Array<double> y = ln(constant<double>(randn({5, 6}, gen, 10.0) - 7.0)).value();
  for (std::size_t i = 0; i < 5; ++i) {
    const Array<double> row = xt::view(y, i, xt::all());
    EXPECT_NEAR(xt::mean(row)(), 0.0, 1e-12);
    EXPECT_NEAR(xt::mean(xt::square(row))(), 1.0, 1e-10);
  }
}

TEST(LayerNorm, GradientMatchesFiniteDifferences) {
  std::mt19937_64 gen(3);
  nn::LayerNorm<double> ln(5);
  ln.weight.set_value(randn({5}, gen));
  ln.bias.set_value(randn({5}, gen));
  auto r = testing::gradcheck_module(ln, {randn({3, 5}, gen)},
                                     [&](const std::vector<Var<double>>& in) { return testing::project(ln(in[0])); });
  EXPECT_TRUE(r.ok) << r.report();
  // Through a sequence (T, m, n), and a loss that is not linear in y.
  r = testing::gradcheck_module(ln, {randn({2, 3, 5}, gen)}, [&](const std::vector<Var<double>>& in) {
    return testing::project(tanh(ln(in[0])), 7);
  });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(LayerNorm, WithoutAffineHasNoParametersAndNormalisesOnly) {
  std::mt19937_64 gen(4);
  nn::LayerNorm<double> ln(3, nn::LayerNormOptions().elementwise_affine(false).eps(0.5));
  EXPECT_TRUE(ln.named_parameters().empty());
  EXPECT_FALSE(ln.weight.defined());
  EXPECT_FALSE(ln.bias.defined());
  EXPECT_FALSE(ln.elementwise_affine());
  const Array<double> x = randn({4, 3}, gen, 2.0);
  EXPECT_LT(rel_error(ln(constant(x)).value(), layer_norm_by_hand(x, nullptr, nullptr, 0.5)), 1e-14);
  auto r = gradcheck([&](const std::vector<Var<double>>& in) { return testing::project(ln(in[0])); }, {x});
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(LayerNorm, FloatMatchesDouble) {
  std::mt19937_64 gen(5);
  nn::LayerNorm<float> lf(4);
  nn::LayerNorm<double> ld(4);
  const Array<double> x = randn({3, 4}, gen);
  const Array<double> yf = xt::cast<double>(lf(constant<float>(xt::cast<float>(x))).value());
  EXPECT_LT(rel_error(yf, ld(constant(x)).value()), 1e-5);
}

TEST(LayerNorm, BadSizesAndInputsThrow) {
  XGRAD_EXPECT_THROW_MSG(nn::LayerNorm<double>(0), ValueError, "LayerNorm", "n = 0");
  XGRAD_EXPECT_THROW_MSG(nn::LayerNorm<double>(3, nn::LayerNormOptions().eps(0)), ValueError, "LayerNorm", "eps");
  XGRAD_EXPECT_THROW_MSG(nn::LayerNorm<double>(3, nn::LayerNormOptions().eps(-1e-9)), ValueError, "LayerNorm",
                         "eps", "got -1e-09");
  XGRAD_EXPECT_THROW_MSG(nn::LayerNorm<double>(3, nn::LayerNormOptions().eps(NAN)), ValueError, "LayerNorm", "eps");
  nn::LayerNorm<double> ln(4);
  XGRAD_EXPECT_THROW_MSG(ln(constant<double>(xt::zeros<double>({2, 3}))), ShapeError, "LayerNorm", "(2, 3)",
                         "(..., 4)");
  XGRAD_EXPECT_THROW_MSG(ln(constant<double>(xt::zeros<double>({4, 2}))), ShapeError, "LayerNorm", "(4, 2)");
  XGRAD_EXPECT_THROW_MSG(ln(constant<double>(Array<double>(1.0))), ShapeError, "LayerNorm", "()");
}

}  // namespace
}  // namespace xgrad
