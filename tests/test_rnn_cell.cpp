// RNNCell: values, gradients against the hand-written reference and finite differences, errors.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;
namespace ref = reference;

TEST(RNNCell, ParametersFollowTheReferenceNames) {
  nn::manual_seed(1);
  nn::RNNCell<double> cell(3, 5);
  auto named = cell.named_parameters();
  ASSERT_EQ(named.size(), 3u);
  EXPECT_EQ(named[0].first, "Wax");
  EXPECT_EQ(named[1].first, "Waa");
  EXPECT_EQ(named[2].first, "ba");
  EXPECT_EQ(Shape(cell.Wax.shape().begin(), cell.Wax.shape().end()), (Shape{5, 3}));
  EXPECT_EQ(Shape(cell.Waa.shape().begin(), cell.Waa.shape().end()), (Shape{5, 5}));
  EXPECT_EQ(Shape(cell.ba.shape().begin(), cell.ba.shape().end()), (Shape{5}));
  const double bound = 1 / std::sqrt(5.0);
  for (const auto& [name, p] : named)
    for (double v : p.value()) EXPECT_LE(std::abs(v), bound) << name;
}

TEST(RNNCell, ForwardIsTanhOfBothProductsPlusBias) {
  nn::manual_seed(2);
  nn::RNNCell<double> cell(3, 4);
  std::mt19937_64 gen(3);
  Array<double> x = randn({2, 3}, gen), a = randn({2, 4}, gen);
  Array<double> expected = xt::zeros<double>({2, 4});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 4; ++j) {
      double z = cell.ba.value()(j);
      for (std::size_t k = 0; k < 3; ++k) z += x(i, k) * cell.Wax.value()(j, k);
      for (std::size_t k = 0; k < 4; ++k) z += a(i, k) * cell.Waa.value()(j, k);
      expected(i, j) = std::tanh(z);
    }
  EXPECT_LT(rel_error(cell(constant(x), constant(a)).value(), expected), 1e-14);
  // From a zero state.
  Array<double> zero_state = cell(constant(x), constant<double>(xt::zeros<double>({2, 4}))).value();
  EXPECT_EQ(cell(constant(x)).value(), zero_state);
}

TEST(RNNCell, ReluVariantClampsAtZero) {
  nn::manual_seed(2);
  nn::RNNCell<double> cell(3, 6, nn::Nonlinearity::relu);
  EXPECT_EQ(cell.nonlinearity(), nn::Nonlinearity::relu);
  std::mt19937_64 gen(4);
  Array<double> y = cell(constant(randn({5, 3}, gen)), constant(randn({5, 6}, gen))).value();
  bool some_zero = false, some_positive = false;
  for (double v : y) {
    EXPECT_GE(v, 0.0);
    some_zero = some_zero || v == 0.0;
    some_positive = some_positive || v > 0.0;
  }
  EXPECT_TRUE(some_zero && some_positive);
}

// The autodiff gradient of one step equals rnn_cell_backward's, for batches of 1 to 8.
TEST(RNNCell, GradientsMatchTheReferenceCell) {
  const std::size_t n_x = 3, n_a = 5, n_y = 2;
  for (std::size_t m = 1; m <= 8; ++m) {
    nn::manual_seed(10 + m);
    nn::RNNCell<double> cell(n_x, n_a);
    nn::Linear<double> head(n_a, n_y);
    std::mt19937_64 gen(20 + m);
    Array<double> xt = randn({n_x, m}, gen), a_prev = randn({n_a, m}, gen), da_next = randn({n_a, m}, gen);
    const auto p = ref::to_reference(cell, head);
    auto [a_next, yt_pred, cache] = ref::rnn_cell_forward(xt, a_prev, p);
    auto [dxt, da_prev, dWax, dWaa, dba] = ref::rnn_cell_backward(da_next, cache);

    Var<double> X = param(ref::to_layers_layout(xt)), A = param(ref::to_layers_layout(a_prev));
    Var<double> a = cell(X, A);
    EXPECT_LT(rel_error(a.value(), ref::to_layers_layout(a_next)), 1e-14);
    EXPECT_LT(rel_error(softmax(head(a), 1).value(), ref::to_layers_layout(yt_pred)), 1e-14);
    sum(a * constant(ref::to_layers_layout(da_next))).backward();
    const auto g = ref::rnn_params_from_layers(cell.Wax.grad(), cell.Waa.grad(), cell.ba.grad(), head.weight.grad(),
                                               head.bias.grad());
    EXPECT_LT(rel_error(g.Wax, dWax), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.Waa, dWaa), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.ba, dba), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(X.grad(), ref::to_layers_layout(dxt)), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(A.grad(), ref::to_layers_layout(da_prev)), 1e-9) << "m = " << m;
    clear_tape();
  }
}

TEST(RNNCell, GradientMatchesFiniteDifferences) {
  for (auto nl : {nn::Nonlinearity::tanh, nn::Nonlinearity::relu}) {
    nn::manual_seed(5);
    nn::RNNCell<double> cell(3, 4, nl);
    std::mt19937_64 gen(6);
    auto r = testing::gradcheck_module(cell, {randn({3, 3}, gen), randn({3, 4}, gen)},
                                       [&](const std::vector<Var<double>>& in) {
                                         // two steps, so the state's gradient flows through Waa twice
                                         return testing::project(cell(in[0], cell(in[0], in[1])));
                                       });
    EXPECT_TRUE(r.ok) << r.report();
  }
}

TEST(RNNCell, WrongInputWidthThrows) {
  nn::RNNCell<double> cell(3, 4);
  Var<double> x = constant<double>(xt::zeros<double>({2, 5}));
  Var<double> a = constant<double>(xt::zeros<double>({2, 4}));
  XGRAD_EXPECT_THROW_MSG(cell(x, a), ShapeError, "RNNCell", "input", "(2, 5)", "(m, 3)");
}

TEST(RNNCell, HiddenStateOfWrongShapeThrows) {
  nn::RNNCell<double> cell(3, 4);
  Var<double> x = constant<double>(xt::zeros<double>({2, 3}));
  XGRAD_EXPECT_THROW_MSG(cell(x, constant<double>(xt::zeros<double>({2, 5}))), ShapeError, "RNNCell",
                         "hidden state", "(2, 5)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(cell(x, constant<double>(xt::zeros<double>({3, 4}))), ShapeError, "RNNCell",
                         "hidden state", "(3, 4)", "(2, 4)");
}

TEST(RNNCell, ZeroSizesThrow) {
  XGRAD_EXPECT_THROW_MSG(nn::RNNCell<double>(0, 4), ValueError, "RNNCell", "n_x 0");
}

}  // namespace
}  // namespace xgrad
