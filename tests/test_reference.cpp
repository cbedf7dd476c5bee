// The hand-written reference: its own gradients against finite differences, and the autodiff
// sequence layers against it, over whole sequences (T 1..20, m 1..8), in double.
#include <gtest/gtest.h>

#include <cmath>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;
namespace ref = reference;

// Σ a∘G computed by the reference forward: the loss whose da is G.
double rnn_loss(const Array<double>& x, const Array<double>& a0, const ref::RNNParams<double>& p,
                const Array<double>& G) {
  auto [a, y_pred, caches] = ref::rnn_forward(x, a0, p);
  return xt::sum(a * G)();
}
double lstm_loss(const Array<double>& x, const Array<double>& a0, const ref::LSTMParams<double>& p,
                 const Array<double>& G) {
  auto [a, y, c, caches] = ref::lstm_forward(x, a0, p);
  return xt::sum(a * G)();
}

// Central differences of `loss` with respect to every element of `target`.
template <class F>
Array<double> numeric_grad(Array<double>& target, F loss) {
  Array<double> g = xt::zeros<double>(target.shape());
  const double eps = 1e-6;
  for (std::size_t k = 0; k < target.size(); ++k) {
    const double saved = target.flat(k);
    target.flat(k) = saved + eps;
    const double up = loss();
    target.flat(k) = saved - eps;
    const double down = loss();
    target.flat(k) = saved;
    g.flat(k) = (up - down) / (2 * eps);
  }
  return g;
}

TEST(Reference, RNNBackwardMatchesFiniteDifferences) {
  const std::size_t n_x = 3, n_a = 4, n_y = 2, m = 3, T = 5;
  std::mt19937_64 gen(1);
  ref::RNNParams<double> p{randn({n_a, n_x}, gen, 0.5), randn({n_a, n_a}, gen, 0.5), randn({n_y, n_a}, gen),
                           randn({n_a, 1}, gen), randn({n_y, 1}, gen)};
  Array<double> x = randn({n_x, m, T}, gen), a0 = randn({n_a, m}, gen), G = randn({n_a, m, T}, gen);
  auto [a, y_pred, caches] = ref::rnn_forward(x, a0, p);
  EXPECT_EQ(Shape(a.shape().begin(), a.shape().end()), (Shape{n_a, m, T}));
  EXPECT_EQ(Shape(y_pred.shape().begin(), y_pred.shape().end()), (Shape{n_y, m, T}));
  Array<double> col_sums = xt::sum(y_pred, {0});
  for (double s : col_sums) EXPECT_NEAR(s, 1.0, 1e-14);
  auto [dx, da0, dWax, dWaa, dba] = ref::rnn_backward(G, caches);
  auto loss = [&] { return rnn_loss(x, a0, p, G); };
  EXPECT_LT(rel_error(dWax, numeric_grad(p.Wax, loss)), 1e-7);
  EXPECT_LT(rel_error(dWaa, numeric_grad(p.Waa, loss)), 1e-7);
  EXPECT_LT(rel_error(dba, numeric_grad(p.ba, loss)), 1e-7);
  EXPECT_LT(rel_error(dx, numeric_grad(x, loss)), 1e-7);
  EXPECT_LT(rel_error(da0, numeric_grad(a0, loss)), 1e-7);
}

TEST(Reference, LSTMBackwardMatchesFiniteDifferences) {
  const std::size_t n_x = 3, n_a = 4, n_y = 2, m = 3, T = 5, n = n_a + n_x;
  std::mt19937_64 gen(2);
  ref::LSTMParams<double> p{randn({n_a, n}, gen, 0.5), randn({n_a, 1}, gen), randn({n_a, n}, gen, 0.5),
                            randn({n_a, 1}, gen),      randn({n_a, n}, gen, 0.5), randn({n_a, 1}, gen),
                            randn({n_a, n}, gen, 0.5), randn({n_a, 1}, gen),      randn({n_y, n_a}, gen),
                            randn({n_y, 1}, gen)};
  Array<double> x = randn({n_x, m, T}, gen), a0 = randn({n_a, m}, gen), G = randn({n_a, m, T}, gen);
  auto [a, y, c, caches] = ref::lstm_forward(x, a0, p);
  EXPECT_EQ(Shape(c.shape().begin(), c.shape().end()), (Shape{n_a, m, T}));
  EXPECT_EQ(Shape(y.shape().begin(), y.shape().end()), (Shape{n_y, m, T}));
  auto [dx, da0, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo] = ref::lstm_backward(G, caches);
  auto loss = [&] { return lstm_loss(x, a0, p, G); };
  EXPECT_LT(rel_error(dWf, numeric_grad(p.Wf, loss)), 1e-7);
  EXPECT_LT(rel_error(dWi, numeric_grad(p.Wi, loss)), 1e-7);
  EXPECT_LT(rel_error(dWc, numeric_grad(p.Wc, loss)), 1e-7);
  EXPECT_LT(rel_error(dWo, numeric_grad(p.Wo, loss)), 1e-7);
  EXPECT_LT(rel_error(dbf, numeric_grad(p.bf, loss)), 1e-7);
  EXPECT_LT(rel_error(dbi, numeric_grad(p.bi, loss)), 1e-7);
  EXPECT_LT(rel_error(dbc, numeric_grad(p.bc, loss)), 1e-7);
  EXPECT_LT(rel_error(dbo, numeric_grad(p.bo, loss)), 1e-7);
  EXPECT_LT(rel_error(dx, numeric_grad(x, loss)), 1e-7);
  EXPECT_LT(rel_error(da0, numeric_grad(a0, loss)), 1e-7);
}

// The whole-sequence RNN layer's autodiff gradients equal rnn_backward's.
TEST(Reference, RNNLayerGradientsMatchReferenceOverWholeSequences) {
  const std::size_t n_x = 3, n_a = 5, n_y = 2;
  for (std::size_t T = 1; T <= 20; ++T)
    for (std::size_t m = 1; m <= 8; ++m) {
      nn::manual_seed(1000 * T + m);
      nn::RNN<double> rnn(n_x, n_a);
      nn::Linear<double> head(n_a, n_y);
      std::mt19937_64 gen(7 * T + m);
      Array<double> x = randn({n_x, m, T}, gen), a0 = randn({n_a, m}, gen), G = randn({n_a, m, T}, gen);
      const auto p = ref::to_reference(rnn.cell(0), head);
      auto [a, y_pred, caches] = ref::rnn_forward(x, a0, p);
      auto [dx, da0, dWax, dWaa, dba] = ref::rnn_backward(G, caches);

      Var<double> X = param(ref::to_layers_layout(x)), A0 = param(ref::to_layers_layout(a0));
      auto res = rnn(X, {A0});
      ASSERT_LT(rel_error(res.output.value(), ref::to_layers_layout(a)), 1e-13) << "T " << T << " m " << m;
      sum(res.output * constant(ref::to_layers_layout(G))).backward();
      const auto& c = rnn.cell(0);
      const auto g = ref::rnn_params_from_layers(c.Wax.grad(), c.Waa.grad(), c.ba.grad(), head.weight.value(),
                                                 head.bias.value());
      EXPECT_LT(rel_error(g.Wax, dWax), 1e-9) << "T " << T << " m " << m;
      EXPECT_LT(rel_error(g.Waa, dWaa), 1e-9) << "T " << T << " m " << m;
      EXPECT_LT(rel_error(g.ba, dba), 1e-9) << "T " << T << " m " << m;
      EXPECT_LT(rel_error(X.grad(), ref::to_layers_layout(dx)), 1e-9) << "T " << T << " m " << m;
      EXPECT_LT(rel_error(A0.grad(), ref::to_layers_layout(da0)), 1e-9) << "T " << T << " m " << m;
      if (T == 20 && m == 8) {  // predictions too: softmax(head(a_t)) is y_pred[:, :, t]
        Array<double> y_t = xt::view(y_pred, xt::all(), xt::all(), T - 1);
        Var<double> logits = head(select(res.output, static_cast<long>(T - 1)));
        EXPECT_LT(rel_error(softmax(logits, 1).value(), ref::to_layers_layout(y_t)), 1e-13);
      }
      clear_tape();
    }
}

// The whole-sequence LSTM layer's autodiff gradients equal lstm_backward's (zero initial cell).
TEST(Reference, LSTMLayerGradientsMatchReferenceOverWholeSequences) {
  const std::size_t n_x = 3, n_a = 4, n_y = 2;
  for (std::size_t T = 1; T <= 20; ++T)
    for (std::size_t m = 1; m <= 8; ++m) {
      nn::manual_seed(2000 * T + m);
      nn::LSTM<double> lstm(n_x, n_a);
      nn::Linear<double> head(n_a, n_y);
      std::mt19937_64 gen(11 * T + m);
      Array<double> x = randn({n_x, m, T}, gen), a0 = randn({n_a, m}, gen), G = randn({n_a, m, T}, gen);
      const auto p = ref::to_reference(lstm.cell(0), head);
      auto [a, y, c, caches] = ref::lstm_forward(x, a0, p);
      auto [dx, da0, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo] = ref::lstm_backward(G, caches);

      Var<double> X = param(ref::to_layers_layout(x)), A0 = param(ref::to_layers_layout(a0));
      Var<double> C0 = constant<double>(xt::zeros<double>({m, n_a}));
      auto res = lstm(X, {{A0, C0}});
      ASSERT_LT(rel_error(res.output.value(), ref::to_layers_layout(a)), 1e-13) << "T " << T << " m " << m;
      Array<double> c_last = xt::view(c, xt::all(), xt::all(), T - 1);
      ASSERT_LT(rel_error(res.state[0].c.value(), ref::to_layers_layout(c_last)), 1e-13);
      sum(res.output * constant(ref::to_layers_layout(G))).backward();
      const auto& cell = lstm.cell(0);
      const auto g = ref::lstm_params_from_layers(cell.Wx.grad(), cell.Wa.grad(), cell.b.grad(), head.weight.value(),
                                                  head.bias.value());
      const std::string where = "T " + std::to_string(T) + " m " + std::to_string(m);
      EXPECT_LT(rel_error(g.Wf, dWf), 1e-9) << where;
      EXPECT_LT(rel_error(g.Wi, dWi), 1e-9) << where;
      EXPECT_LT(rel_error(g.Wc, dWc), 1e-9) << where;
      EXPECT_LT(rel_error(g.Wo, dWo), 1e-9) << where;
      EXPECT_LT(rel_error(g.bf, dbf), 1e-9) << where;
      EXPECT_LT(rel_error(g.bi, dbi), 1e-9) << where;
      EXPECT_LT(rel_error(g.bc, dbc), 1e-9) << where;
      EXPECT_LT(rel_error(g.bo, dbo), 1e-9) << where;
      EXPECT_LT(rel_error(X.grad(), ref::to_layers_layout(dx)), 1e-9) << where;
      EXPECT_LT(rel_error(A0.grad(), ref::to_layers_layout(da0)), 1e-9) << where;
      clear_tape();
    }
}

TEST(Reference, ConvertersRoundTripAndLayoutsInvert) {
  nn::manual_seed(3);
  nn::RNNCell<float> a(3, 4), b(3, 4);
  nn::Linear<float> ha(4, 2), hb(4, 2);
  ref::from_reference(ref::to_reference(a, ha), b, hb);
  EXPECT_EQ(a.Wax.value(), b.Wax.value());
  EXPECT_EQ(a.ba.value(), b.ba.value());
  EXPECT_EQ(ha.bias.value(), hb.bias.value());
  auto p = ref::to_reference(a, ha);
  EXPECT_EQ(Shape(p.ba.shape().begin(), p.ba.shape().end()), (Shape{4, 1}));
  EXPECT_EQ(Shape(p.by.shape().begin(), p.by.shape().end()), (Shape{2, 1}));
  std::mt19937_64 gen(4);
  Array<float> x = randn<float>({3, 2, 5}, gen);
  Array<float> xl = ref::to_layers_layout(x);
  EXPECT_EQ(Shape(xl.shape().begin(), xl.shape().end()), (Shape{5, 2, 3}));
  EXPECT_EQ(xl(4, 1, 2), x(2, 1, 4));
  EXPECT_EQ(ref::to_seed_layout(xl), x);
}

Array<double> zeros(const Shape& s) { return xt::zeros<double>(s); }

TEST(Reference, BadShapesThrow) {
  std::mt19937_64 gen(5);
  ref::RNNParams<double> p{randn({4, 3}, gen), randn({4, 4}, gen), randn({2, 4}, gen), randn({4, 1}, gen),
                           randn({2, 1}, gen)};
  XGRAD_EXPECT_THROW_MSG(ref::rnn_forward(zeros({2, 1, 3}), zeros({4, 1}), p),
                         ShapeError, "rnn_cell_forward", "xt", "(2, 1)", "(3, 1)");
  XGRAD_EXPECT_THROW_MSG(ref::rnn_forward(zeros({3, 1, 0}), zeros({4, 1}), p),
                         ValueError, "rnn_forward", "T_x = 0");
  p.ba = xt::zeros<double>({4});
  XGRAD_EXPECT_THROW_MSG(ref::rnn_cell_forward(zeros({3, 1}), zeros({4, 1}), p),
                         ShapeError, "ba", "(4,)", "(4, 1)");
}

}  // namespace
}  // namespace xgrad
