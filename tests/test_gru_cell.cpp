// GRUCell: PyTorch's equations, finite differences, errors.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;

double sig(double z) { return 1 / (1 + std::exp(-z)); }

TEST(GRUCell, ParametersAreThreeGateBlocks) {
  nn::manual_seed(1);
  nn::GRUCell<double> cell(3, 5);
  auto named = cell.named_parameters();
  ASSERT_EQ(named.size(), 4u);
  EXPECT_EQ(named[0].first, "Wx");
  EXPECT_EQ(named[1].first, "Wa");
  EXPECT_EQ(named[2].first, "bx");
  EXPECT_EQ(named[3].first, "ba");
  EXPECT_EQ(Shape(cell.Wx.shape().begin(), cell.Wx.shape().end()), (Shape{15, 3}));
  EXPECT_EQ(Shape(cell.Wa.shape().begin(), cell.Wa.shape().end()), (Shape{15, 5}));
  EXPECT_EQ(Shape(cell.ba.shape().begin(), cell.ba.shape().end()), (Shape{15}));
}

// r = σ(.), z = σ(.), n = tanh(x·Wxₙᵀ + bxₙ + r∘(a·Waₙᵀ + baₙ)), a' = (1 − z)∘n + z∘a, written out
// element by element.
TEST(GRUCell, ForwardFollowsPyTorchEquations) {
  nn::manual_seed(2);
  const std::size_t n_x = 3, n = 4, m = 2;
  nn::GRUCell<double> cell(n_x, n);
  std::mt19937_64 gen(3);
  Array<double> x = randn({m, n_x}, gen), a = randn({m, n}, gen);
  const auto &Wx = cell.Wx.value(), &Wa = cell.Wa.value(), &bx = cell.bx.value(), &ba = cell.ba.value();
  auto gx = [&](std::size_t i, std::size_t row) {
    double s = bx(row);
    for (std::size_t k = 0; k < n_x; ++k) s += x(i, k) * Wx(row, k);
    return s;
  };
  auto ga = [&](std::size_t i, std::size_t row) {
    double s = ba(row);
    for (std::size_t k = 0; k < n; ++k) s += a(i, k) * Wa(row, k);
    return s;
  };
  Array<double> expected = xt::zeros<double>({m, n});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double r = sig(gx(i, j) + ga(i, j));
      const double z = sig(gx(i, n + j) + ga(i, n + j));
      const double c = std::tanh(gx(i, 2 * n + j) + r * ga(i, 2 * n + j));
      expected(i, j) = (1 - z) * c + z * a(i, j);
    }
  EXPECT_LT(rel_error(cell(constant(x), constant(a)).value(), expected), 1e-14);
}

TEST(GRUCell, GradientMatchesFiniteDifferences) {
  nn::manual_seed(5);
  nn::GRUCell<double> cell(3, 4);
  std::mt19937_64 gen(6);
  auto r = testing::gradcheck_module(cell, {randn({3, 3}, gen), randn({3, 4}, gen)},
                                     [&](const std::vector<Var<double>>& in) {
                                       return testing::project(cell(in[0], cell(in[0], in[1])));
                                     });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(GRUCell, WrongShapesThrow) {
  nn::GRUCell<double> cell(3, 4);
  auto z = [](std::size_t r, std::size_t c) { return constant<double>(xt::zeros<double>({r, c})); };
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 4), z(2, 4)), ShapeError, "GRUCell", "input", "(2, 4)", "(m, 3)");
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 3), z(2, 3)), ShapeError, "GRUCell", "hidden state", "(2, 3)", "(2, 4)");
}

}  // namespace
}  // namespace xgrad
