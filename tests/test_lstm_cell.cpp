// LSTMCell: gate order, gradients against the hand-written reference and finite differences, errors.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;
namespace ref = reference;

TEST(LSTMCell, ParametersAreFourGateBlocks) {
  nn::manual_seed(1);
  nn::LSTMCell<double> cell(3, 5);
  auto named = cell.named_parameters();
  ASSERT_EQ(named.size(), 3u);
  EXPECT_EQ(named[0].first, "Wx");
  EXPECT_EQ(named[1].first, "Wa");
  EXPECT_EQ(named[2].first, "b");
  EXPECT_EQ(Shape(cell.Wx.shape().begin(), cell.Wx.shape().end()), (Shape{20, 3}));
  EXPECT_EQ(Shape(cell.Wa.shape().begin(), cell.Wa.shape().end()), (Shape{20, 5}));
  EXPECT_EQ(Shape(cell.b.shape().begin(), cell.b.shape().end()), (Shape{20}));
  for (const auto& [name, p] : named)
    for (double v : p.value()) EXPECT_LE(std::abs(v), 1 / std::sqrt(5.0)) << name;
}

// PyTorch's order i, f, c, o: with zero weights and biases saturating the gates one by one, the
// cell must keep, forget, write and hide exactly as each block says.
TEST(LSTMCell, GateBlocksAreInputForgetCandidateOutput) {
  const std::size_t n = 2;
  nn::LSTMCell<double> cell(1, n);
  cell.Wx.set_value(xt::zeros<double>({4 * n, std::size_t(1)}));
  cell.Wa.set_value(xt::zeros<double>({4 * n, n}));
  Var<double> x = constant<double>(xt::zeros<double>({1, 1}));
  Var<double> a = constant<double>(xt::zeros<double>({std::size_t(1), n}));
  Var<double> c = constant<double>(Array<double>{{0.5, -0.25}});
  auto with_bias = [&](double bi, double bf, double bc, double bo) {
    Array<double> b = xt::zeros<double>({4 * n});
    for (std::size_t k = 0; k < n; ++k) {
      b(k) = bi;
      b(n + k) = bf;
      b(2 * n + k) = bc;
      b(3 * n + k) = bo;
    }
    cell.b.set_value(b);
    return cell(x, {a, c});
  };
  // input closed, forget open, output open: c kept, a = tanh(c)
  auto s = with_bias(-100, 100, 0, 100);
  EXPECT_NEAR(s.c.value()(0, 0), 0.5, 1e-12);
  EXPECT_NEAR(s.a.value()(0, 1), std::tanh(-0.25), 1e-12);
  // input open, forget closed, candidate tanh(1): c = tanh(1)
  s = with_bias(100, -100, 1, 100);
  EXPECT_NEAR(s.c.value()(0, 0), std::tanh(1.0), 1e-12);
  // output closed: a = 0 whatever c is
  s = with_bias(100, 100, 1, -100);
  EXPECT_NEAR(s.a.value()(0, 0), 0.0, 1e-12);
  EXPECT_NEAR(s.c.value()(0, 0), 0.5 + std::tanh(1.0), 1e-12);
}

TEST(LSTMCell, GradientsMatchTheReferenceCell) {
  const std::size_t n_x = 3, n_a = 4, n_y = 2;
  for (std::size_t m = 1; m <= 8; ++m) {
    nn::manual_seed(30 + m);
    nn::LSTMCell<double> cell(n_x, n_a);
    nn::Linear<double> head(n_a, n_y);
    std::mt19937_64 gen(40 + m);
    Array<double> xt = randn({n_x, m}, gen), a_prev = randn({n_a, m}, gen), c_prev = randn({n_a, m}, gen);
    Array<double> da_next = randn({n_a, m}, gen), dc_next = randn({n_a, m}, gen);
    const auto p = ref::to_reference(cell, head);
    auto [a_next, c_next, yt_pred, cache] = ref::lstm_cell_forward(xt, a_prev, c_prev, p);
    auto [dxt, da_prev, dc_prev, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo] =
        ref::lstm_cell_backward(da_next, dc_next, cache);

    Var<double> X = param(ref::to_layers_layout(xt)), A = param(ref::to_layers_layout(a_prev));
    Var<double> C = param(ref::to_layers_layout(c_prev));
    auto s = cell(X, {A, C});
    EXPECT_LT(rel_error(s.a.value(), ref::to_layers_layout(a_next)), 1e-14);
    EXPECT_LT(rel_error(s.c.value(), ref::to_layers_layout(c_next)), 1e-14);
    EXPECT_LT(rel_error(softmax(head(s.a), 1).value(), ref::to_layers_layout(yt_pred)), 1e-14);
    (sum(s.a * constant(ref::to_layers_layout(da_next))) + sum(s.c * constant(ref::to_layers_layout(dc_next))))
        .backward();
    const auto g = ref::lstm_params_from_layers(cell.Wx.grad(), cell.Wa.grad(), cell.b.grad(), head.weight.grad(),
                                                head.bias.grad());
    EXPECT_LT(rel_error(g.Wf, dWf), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.Wi, dWi), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.Wc, dWc), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.Wo, dWo), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.bf, dbf), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.bi, dbi), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.bc, dbc), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(g.bo, dbo), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(X.grad(), ref::to_layers_layout(dxt)), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(A.grad(), ref::to_layers_layout(da_prev)), 1e-9) << "m = " << m;
    EXPECT_LT(rel_error(C.grad(), ref::to_layers_layout(dc_prev)), 1e-9) << "m = " << m;
    clear_tape();
  }
}

TEST(LSTMCell, GradientMatchesFiniteDifferences) {
  nn::manual_seed(5);
  nn::LSTMCell<double> cell(3, 4);
  std::mt19937_64 gen(6);
  auto r = testing::gradcheck_module(cell, {randn({2, 3}, gen), randn({2, 4}, gen), randn({2, 4}, gen)},
                                     [&](const std::vector<Var<double>>& in) {
                                       auto s = cell(in[0], cell(in[0], {in[1], in[2]}));
                                       return testing::project(s.a, 1) + testing::project(s.c, 2);
                                     });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(LSTMCell, ZeroStateOverloadStartsFromZeros) {
  nn::manual_seed(3);
  nn::LSTMCell<double> cell(2, 3);
  Var<double> x = constant<double>(Array<double>{{0.3, -0.7}});
  auto s0 = cell(x);
  auto s1 = cell(x, cell.zero_state(1));
  EXPECT_EQ(s0.a.value(), s1.a.value());
  EXPECT_EQ(s0.c.value(), s1.c.value());
}

TEST(LSTMCell, WrongShapesThrow) {
  nn::LSTMCell<double> cell(3, 4);
  auto z = [](std::size_t r, std::size_t c) { return constant<double>(xt::zeros<double>({r, c})); };
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 2), {z(2, 4), z(2, 4)}), ShapeError, "LSTMCell", "input", "(2, 2)", "(m, 3)");
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 3), {z(2, 3), z(2, 4)}), ShapeError, "LSTMCell", "hidden state", "(2, 3)",
                         "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 3), {z(2, 4), z(1, 4)}), ShapeError, "LSTMCell", "memory cell", "(1, 4)",
                         "(2, 4)");
}

TEST(LSTMCell, ConvertersRoundTrip) {
  nn::manual_seed(11);
  nn::LSTMCell<double> a(3, 4), b(3, 4);
  nn::Linear<double> ha(4, 2), hb(4, 2);
  ref::from_reference(ref::to_reference(a, ha), b, hb);
  EXPECT_EQ(a.Wx.value(), b.Wx.value());
  EXPECT_EQ(a.Wa.value(), b.Wa.value());
  EXPECT_EQ(a.b.value(), b.b.value());
  EXPECT_EQ(ha.weight.value(), hb.weight.value());
  EXPECT_EQ(ha.bias.value(), hb.bias.value());
  nn::LSTMCell<double> wrong(2, 4);
  const Array<double> before = wrong.Wx.value();
  XGRAD_EXPECT_THROW_MSG(ref::from_reference(ref::to_reference(a, ha), wrong), ShapeError, "from_reference",
                         "(4, 7)");
  EXPECT_EQ(wrong.Wx.value(), before);
}

}  // namespace
}  // namespace xgrad
