// LayerNormLSTMCell: parameters, one step against the equations, gradients by finite
// differences, the split into input projection and step, one-hot input, errors.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;
using testing::shape_of;

// Every parameter of the cell set to random values, the normalisations' gains and shifts too,
// so that a mix-up of any two of them shows.
void randomize(nn::LayerNormLSTMCell<double>& cell, std::mt19937_64& gen) {
  for (const auto& p : cell.parameters()) p.set_value(randn(shape_of(p), gen, 0.8));
}

// LN(z; g, beta) over the columns of z (N, n), written out with xtensor.
Array<double> ln_rows(const Array<double>& z, const Array<double>& g, const Array<double>& beta) {
  Array<double> y = z;
  for (std::size_t i = 0; i < z.shape()[0]; ++i) {
    const Array<double> row = xt::view(z, i, xt::all());
    const double mean = xt::mean(row)();
    const double var = xt::mean(xt::square(row - mean))();
    xt::view(y, i, xt::all()) = (row - mean) / std::sqrt(var + 1e-5) * g + beta;
  }
  return y;
}

Array<double> sigma(const Array<double>& z) { return 1.0 / (1.0 + xt::exp(-z)); }

struct StepByHand {
  Array<double> a, c;
};

// The header's equations: gates = LN(x·Wxᵀ) + LN(a·Waᵀ) + b; blocks i, f, c, o; a = Γo∘tanh(LN(c)).
StepByHand step_by_hand(const nn::LayerNormLSTMCell<double>& cell, const Array<double>& x, const Array<double>& a,
                        const Array<double>& c) {
  const std::size_t n = cell.hidden_size();
  const Array<double> wx = xt::linalg::dot(x, xt::transpose(cell.Wx.value()));
  const Array<double> wa = xt::linalg::dot(a, xt::transpose(cell.Wa.value()));
  const Array<double> gates = ln_rows(wx, cell.ln_x.weight.value(), cell.ln_x.bias.value()) +
                              ln_rows(wa, cell.ln_a.weight.value(), cell.ln_a.bias.value()) + cell.b.value();
  const Array<double> gi = sigma(xt::view(gates, xt::all(), xt::range(0, n)));
  const Array<double> gf = sigma(xt::view(gates, xt::all(), xt::range(n, 2 * n)));
  const Array<double> cc = xt::tanh(xt::view(gates, xt::all(), xt::range(2 * n, 3 * n)));
  const Array<double> go = sigma(xt::view(gates, xt::all(), xt::range(3 * n, 4 * n)));
  const Array<double> c_next = gf * c + gi * cc;
  const Array<double> a_next = go * xt::tanh(ln_rows(c_next, cell.ln_c.weight.value(), cell.ln_c.bias.value()));
  return {a_next, c_next};
}

TEST(LayerNormLSTMCell, ParametersAreNamedAndShaped) {
  nn::manual_seed(1);
  nn::LayerNormLSTMCell<double> cell(3, 5);
  const auto named = cell.named_parameters();
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"Wx", {20, 3}},          {"Wa", {20, 5}},         {"b", {20}},
      {"ln_x.weight", {20}},    {"ln_x.bias", {20}},     {"ln_a.weight", {20}},
      {"ln_a.bias", {20}},      {"ln_c.weight", {5}},    {"ln_c.bias", {5}}};
  ASSERT_EQ(named.size(), expected.size());
  for (std::size_t j = 0; j < named.size(); ++j) {
    EXPECT_EQ(named[j].first, expected[j].first);
    EXPECT_EQ(shape_of(named[j].second), expected[j].second) << expected[j].first;
  }
  for (std::size_t j = 0; j < 3; ++j)
    for (double v : named[j].second.value()) EXPECT_LE(std::abs(v), 1 / std::sqrt(5.0)) << named[j].first;
  EXPECT_EQ(cell.ln_x.weight.value(), xt::ones<double>({20}));
  EXPECT_EQ(cell.ln_a.bias.value(), xt::zeros<double>({20}));
  EXPECT_EQ(cell.ln_c.weight.value(), xt::ones<double>({5}));
  EXPECT_EQ(cell.input_size(), 3u);
  EXPECT_EQ(cell.hidden_size(), 5u);
}

TEST(LayerNormLSTMCell, OneStepMatchesTheEquations) {
  nn::manual_seed(2);
  std::mt19937_64 gen(3);
  for (std::size_t m : {1, 4}) {
    nn::LayerNormLSTMCell<double> cell(3, 4);
    randomize(cell, gen);
    const Array<double> x = randn({m, 3}, gen), a = randn({m, 4}, gen), c = randn({m, 4}, gen);
    const auto s = cell(constant(x), {constant(a), constant(c)});
    const auto e = step_by_hand(cell, x, a, c);
    EXPECT_LT(rel_error(s.a.value(), e.a), 1e-13) << "m = " << m;
    EXPECT_LT(rel_error(s.c.value(), e.c), 1e-13) << "m = " << m;
    // From the zero state.
    const auto s0 = cell(constant(x));
    const Array<double> z = xt::zeros<double>({m, std::size_t(4)});
    EXPECT_LT(rel_error(s0.a.value(), step_by_hand(cell, x, z, z).a), 1e-13);
  }
}

TEST(LayerNormLSTMCell, GradientMatchesFiniteDifferences) {
  nn::manual_seed(4);
  std::mt19937_64 gen(5);
  nn::LayerNormLSTMCell<double> cell(3, 4);
  randomize(cell, gen);
  auto r = testing::gradcheck_module(cell, {randn({2, 3}, gen), randn({2, 4}, gen), randn({2, 4}, gen)},
                                     [&](const std::vector<Var<double>>& in) {
                                       auto s = cell(in[0], cell(in[0], {in[1], in[2]}));
                                       return testing::project(s.a, 1) + testing::project(s.c, 2);
                                     });
  EXPECT_TRUE(r.ok) << r.report();
}

// A whole sequence's rows projected at once, then stepped, is the cell step by step.
TEST(LayerNormLSTMCell, InputProjectionThenStepIsForward) {
  nn::manual_seed(6);
  std::mt19937_64 gen(7);
  nn::LayerNormLSTMCell<double> cell(3, 4);
  randomize(cell, gen);
  const std::size_t steps = 3, m = 2;
  const Array<double> x = randn({steps * m, 3}, gen);
  const Var<double> px = cell.input_projection(constant(x));
  ASSERT_EQ(shape_of(px), (Shape{steps * m, 16}));
  auto s1 = cell.zero_state(m), s2 = cell.zero_state(m);
  for (std::size_t t = 0; t < steps; ++t) {
    const long r0 = static_cast<long>(t * m), r1 = static_cast<long>((t + 1) * m);
    s1 = cell.step(slice(px, 0, r0, r1), s1);
    s2 = cell(constant<double>(xt::view(x, xt::range(r0, r1), xt::all())), s2);
  }
  EXPECT_LT(rel_error(s1.a.value(), s2.a.value()), 1e-14);
  EXPECT_LT(rel_error(s1.c.value(), s2.c.value()), 1e-14);
}

TEST(LayerNormLSTMCell, OneHotProjectionIsTheDenseOneOfOneHotRows) {
  nn::manual_seed(8);
  std::mt19937_64 gen(9);
  nn::LayerNormLSTMCell<double> cell(5, 3);
  randomize(cell, gen);
  const std::vector<int> ids = {4, 0, 2, 4};
  Array<double> onehot = xt::zeros<double>({ids.size(), std::size_t(5)});
  for (std::size_t i = 0; i < ids.size(); ++i) onehot(i, static_cast<std::size_t>(ids[i])) = 1;
  EXPECT_LT(rel_error(cell.input_projection(ids).value(), cell.input_projection(constant(onehot)).value()), 1e-14);
  // Its gradient too.
  auto r = testing::gradcheck_module(cell, {}, [&](const std::vector<Var<double>>&) {
    return testing::project(cell.step(cell.input_projection(ids), cell.zero_state(4)).a);
  });
  EXPECT_TRUE(r.ok) << r.report();
  XGRAD_EXPECT_THROW_MSG(cell.input_projection(std::vector<int>{1, 5}), IndexError, "5");
}

TEST(LayerNormLSTMCell, FloatMatchesDouble) {
  nn::manual_seed(10);
  nn::LayerNormLSTMCell<double> cd(3, 4);
  nn::manual_seed(10);
  nn::LayerNormLSTMCell<float> cf(3, 4);
  std::mt19937_64 gen(11);
  const Array<double> x = randn({2, 3}, gen);
  const auto sd = cd(constant(x));
  const auto sf = cf(constant<float>(xt::cast<float>(x)));
  EXPECT_LT(rel_error(Array<double>(xt::cast<double>(sf.a.value())), sd.a.value()), 1e-5);
  EXPECT_LT(rel_error(Array<double>(xt::cast<double>(sf.c.value())), sd.c.value()), 1e-5);
}

TEST(LayerNormLSTMCell, WrongSizesAndShapesThrow) {
  XGRAD_EXPECT_THROW_MSG(nn::LayerNormLSTMCell<double>(0, 4), ValueError, "LayerNormLSTMCell", "n_x 0");
  XGRAD_EXPECT_THROW_MSG(nn::LayerNormLSTMCell<double>(3, 0), ValueError, "LayerNormLSTMCell", "n_a 0");
  nn::LayerNormLSTMCell<double> cell(3, 4);
  auto z = [](std::size_t r, std::size_t c) { return constant<double>(xt::zeros<double>({r, c})); };
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 2), {z(2, 4), z(2, 4)}), ShapeError, "LayerNormLSTMCell", "input", "(2, 2)",
                         "(m, 3)");
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 3), {z(2, 3), z(2, 4)}), ShapeError, "LayerNormLSTMCell", "hidden state",
                         "(2, 3)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(cell(z(2, 3), {z(2, 4), z(1, 4)}), ShapeError, "LayerNormLSTMCell", "memory cell",
                         "(1, 4)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(cell.step(z(2, 12), cell.zero_state(2)), ShapeError, "LayerNormLSTMCell",
                         "input projection", "(2, 12)", "(m, 16)");
  XGRAD_EXPECT_THROW_MSG(cell.input_projection(z(2, 4)), ShapeError, "LayerNormLSTMCell", "(2, 4)", "(m, 3)");
}

// ---- through nn::Recurrent

using LNRecurrent = nn::Recurrent<nn::LayerNormLSTMCell<double>>;

// Every parameter of every cell of r set to random values.
void randomize(LNRecurrent& r, std::mt19937_64& gen) {
  for (const auto& p : r.parameters()) p.set_value(randn(shape_of(p), gen, 0.8));
}

struct ByHand {
  std::vector<Var<double>> output;            // one (1, directions·n_a) row per real step
  std::vector<nn::LSTMState<double>> state;   // layers·directions entries, each (1, n_a)
};

// One example alone, its L real steps x[t] (1, n_x), through r's cells step by step: each
// layer's forward cell from t = 0 up, its reverse cell from t = L − 1 down, the next layer
// reading both outputs side by side.
ByHand run_by_hand(const LNRecurrent& r, std::vector<Var<double>> input) {
  const std::size_t L = input.size();
  ByHand out;
  for (std::size_t k = 0; k < r.num_layers(); ++k) {
    std::vector<std::vector<Var<double>>> outs(r.directions(), std::vector<Var<double>>(L));
    for (std::size_t d = 0; d < r.directions(); ++d) {
      const auto& cell = r.cell(k, d == 1);
      auto s = cell.zero_state(1);
      for (std::size_t j = 0; j < L; ++j) {
        const std::size_t t = d == 1 ? L - 1 - j : j;
        s = cell(input[t], s);
        outs[d][t] = s.a;
      }
      out.state.push_back(s);
    }
    for (std::size_t t = 0; t < L; ++t)
      input[t] = r.directions() == 1 ? outs[0][t] : concat({outs[0][t], outs[1][t]}, 1);
  }
  out.output = input;
  return out;
}

TEST(LayerNormLSTMCell, RecurrentParametersAreNamedPerLayerAndDirection) {
  nn::manual_seed(12);
  LNRecurrent r(3, 4, nn::RecurrentOptions().layers(2).bidirectional());
  const auto named = r.named_parameters();
  ASSERT_EQ(named.size(), 4 * 9u);
  EXPECT_EQ(named[0].first, "layers.0.Wx");
  EXPECT_EQ(named[3].first, "layers.0.ln_x.weight");
  EXPECT_EQ(named[8].first, "layers.0.ln_c.bias");
  EXPECT_EQ(named[9].first, "layers.0.reverse.Wx");
  EXPECT_EQ(named[18].first, "layers.1.Wx");
  EXPECT_EQ(shape_of(named[18].second), (Shape{16, 8}));  // layer 1 reads both directions
  EXPECT_EQ(named[35].first, "layers.1.reverse.ln_c.bias");
}

// Two layers, both directions, examples of different lengths: each example's output rows and
// final states are those of the cells run over that example alone, and padding is zero.
TEST(LayerNormLSTMCell, RecurrentTwoLayersBidirectionalWithLengthsIsTheCellsByHand) {
  nn::manual_seed(13);
  std::mt19937_64 gen(14);
  const std::size_t steps = 4, m = 3, n_x = 3, n_a = 2;
  LNRecurrent r(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
  randomize(r, gen);
  const Array<double> x = randn({steps, m, n_x}, gen);
  const std::vector<int> lengths = {4, 2, 1};
  const auto res = r(constant(x), {}, lengths);
  ASSERT_EQ(shape_of(res.output), (Shape{steps, m, 2 * n_a}));
  ASSERT_EQ(res.state.size(), 4u);
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t L = static_cast<std::size_t>(lengths[i]);
    std::vector<Var<double>> input;
    for (std::size_t t = 0; t < L; ++t) input.push_back(constant<double>(xt::view(x, t, xt::range(i, i + 1), xt::all())));
    const ByHand e = run_by_hand(r, input);
    for (std::size_t t = 0; t < steps; ++t) {
      const Array<double> row = xt::view(res.output.value(), t, xt::range(i, i + 1), xt::all());
      if (t < L)
        EXPECT_LT(rel_error(row, e.output[t].value()), 1e-13) << "example " << i << ", t = " << t;
      else
        EXPECT_EQ(row, xt::zeros<double>({std::size_t(1), 2 * n_a})) << "example " << i << ", t = " << t;
    }
    for (std::size_t j = 0; j < 4; ++j) {
      const Array<double> a = xt::view(res.state[j].a.value(), xt::range(i, i + 1), xt::all());
      const Array<double> c = xt::view(res.state[j].c.value(), xt::range(i, i + 1), xt::all());
      EXPECT_LT(rel_error(a, e.state[j].a.value()), 1e-13) << "example " << i << ", state " << j;
      EXPECT_LT(rel_error(c, e.state[j].c.value()), 1e-13) << "example " << i << ", state " << j;
    }
  }
}

TEST(LayerNormLSTMCell, RecurrentGradientMatchesFiniteDifferences) {
  nn::manual_seed(15);
  std::mt19937_64 gen(16);
  LNRecurrent r(2, 2, nn::RecurrentOptions().layers(2).bidirectional());
  randomize(r, gen);
  const std::vector<int> lengths = {3, 2};
  auto res = testing::gradcheck_module(
      r, {randn({3, 2, 2}, gen), randn({2, 2}, gen), randn({2, 2}, gen)}, [&](const std::vector<Var<double>>& in) {
        // A given initial state for layer 0's forward cell, zeros elsewhere.
        std::vector<nn::LSTMState<double>> initial = {{in[1], in[2]}};
        for (std::size_t j = 1; j < 4; ++j) initial.push_back(r.cell(j / 2, j % 2 == 1).zero_state(2));
        const auto out = r(in[0], initial, lengths);
        return testing::project(out.output, 3) + testing::project(out.state[3].c, 4) +
               testing::project(out.state[2].a, 5);
      });
  EXPECT_TRUE(res.ok) << res.report();
}

TEST(LayerNormLSTMCell, RecurrentOneHotInputIsTheDenseOneHotArray) {
  nn::manual_seed(17);
  std::mt19937_64 gen(18);
  const std::size_t steps = 3, m = 2, V = 5;
  LNRecurrent r(V, 3, nn::RecurrentOptions().bidirectional());
  randomize(r, gen);
  const std::vector<int> ids = {4, 0, 2, 2, 1, 4};  // ids[t·m + i]
  Array<double> x = xt::zeros<double>({steps, m, V});
  for (std::size_t j = 0; j < ids.size(); ++j) x.data()[j * V + static_cast<std::size_t>(ids[j])] = 1;
  const auto dense = r(constant(x), {}, {3, 2});
  const auto onehot = r.forward_onehot(ids, steps, {}, {3, 2});
  EXPECT_LT(rel_error(onehot.output.value(), dense.output.value()), 1e-14);
  EXPECT_LT(rel_error(onehot.state[1].c.value(), dense.state[1].c.value()), 1e-14);
}

TEST(LayerNormLSTMCell, RecurrentInFloatRunsAndMatchesDouble) {
  nn::manual_seed(19);
  nn::Recurrent<nn::LayerNormLSTMCell<float>> rf(3, 4, nn::RecurrentOptions().layers(2));
  nn::manual_seed(19);
  LNRecurrent rd(3, 4, nn::RecurrentOptions().layers(2));
  std::mt19937_64 gen(20);
  const Array<double> x = randn({5, 2, 3}, gen);
  const auto yf = rf(constant<float>(xt::cast<float>(x))).output.value();
  EXPECT_LT(rel_error(Array<double>(xt::cast<double>(yf)), rd(constant(x)).output.value()), 1e-5);
}

}  // namespace
}  // namespace xgrad
