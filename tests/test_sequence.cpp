// RNN, LSTM, GRU over sequences: names, equivalence with the cells, bidirectional, masks,
// dropout, finite differences, errors.
#include <gtest/gtest.h>

#include <cmath>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;

Shape shape_of(const Var<double>& v) { return Shape(v.shape().begin(), v.shape().end()); }

// Rows [0, len) of example i: (len, 1, n).
Array<double> example(const Array<double>& x, std::size_t i, std::size_t len) {
  return xt::view(x, xt::range(0, len), xt::range(i, i + 1), xt::all());
}

TEST(Sequence, ParameterNamesFollowLayersAndDirections) {
  nn::RNN<double> rnn(3, 4, nn::RNNOptions().layers(2).bidirectional(true));
  auto named = rnn.named_parameters();
  ASSERT_EQ(named.size(), 12u);
  EXPECT_EQ(named[0].first, "layers.0.Wax");
  EXPECT_EQ(named[1].first, "layers.0.Waa");
  EXPECT_EQ(named[2].first, "layers.0.ba");
  EXPECT_EQ(named[3].first, "layers.0.reverse.Wax");
  EXPECT_EQ(named[6].first, "layers.1.Wax");
  EXPECT_EQ(named[11].first, "layers.1.reverse.ba");
  EXPECT_EQ(shape_of(named[6].second), (Shape{4, 8}));  // layer 1 reads both directions
  nn::LSTM<double> lstm(3, 4);
  EXPECT_EQ(lstm.named_parameters()[0].first, "layers.0.Wx");
  EXPECT_EQ(lstm.named_parameters()[2].first, "layers.0.b");
  nn::GRU<double> gru(3, 4, nn::GRUOptions().bidirectional());
  EXPECT_EQ(gru.named_parameters()[7].first, "layers.0.reverse.ba");
  EXPECT_EQ(gru.directions(), 2u);
}

// A two-layer LSTM is its cells run step by step, layer after layer.
TEST(Sequence, StackedLSTMEqualsItsCellsStepByStep) {
  nn::manual_seed(3);
  const std::size_t T = 5, m = 3, n_x = 2, n_a = 4;
  nn::LSTM<double> lstm(n_x, n_a, nn::LSTMOptions().layers(2));
  std::mt19937_64 gen(4);
  Array<double> x = randn({T, m, n_x}, gen);
  auto res = lstm(constant(x));
  ASSERT_EQ(shape_of(res.output), (Shape{T, m, n_a}));
  ASSERT_EQ(res.state.size(), 2u);
  auto s0 = lstm.cell(0).zero_state(m), s1 = lstm.cell(1).zero_state(m);
  for (std::size_t t = 0; t < T; ++t) {
    s0 = lstm.cell(0)(constant<double>(xt::view(x, t)), s0);
    s1 = lstm.cell(1)(s0.a, s1);
    Array<double> out_t = xt::view(res.output.value(), t);
    EXPECT_LT(rel_error(out_t, s1.a.value()), 1e-14) << "t = " << t;
  }
  EXPECT_LT(rel_error(res.state[0].a.value(), s0.a.value()), 1e-14);
  EXPECT_LT(rel_error(res.state[0].c.value(), s0.c.value()), 1e-14);
  EXPECT_LT(rel_error(res.state[1].c.value(), s1.c.value()), 1e-14);
}

// The reverse half of a bidirectional GRU is its reverse cell run from t = T−1 down to 0.
TEST(Sequence, ReverseDirectionRunsFromTheEnd) {
  nn::manual_seed(5);
  const std::size_t T = 4, m = 2, n_x = 3, n_a = 3;
  nn::GRU<double> gru(n_x, n_a, nn::GRUOptions().bidirectional());
  std::mt19937_64 gen(6);
  Array<double> x = randn({T, m, n_x}, gen);
  auto res = gru(constant(x));
  ASSERT_EQ(shape_of(res.output), (Shape{T, m, 2 * n_a}));
  Var<double> a = gru.cell(0, true).zero_state(m);
  for (std::size_t t = T; t-- > 0;) {
    a = gru.cell(0, true)(constant<double>(xt::view(x, t)), a);
    Array<double> out_t = xt::view(res.output.value(), t, xt::all(), xt::range(n_a, 2 * n_a));
    EXPECT_LT(rel_error(out_t, a.value()), 1e-14) << "t = " << t;
  }
  EXPECT_LT(rel_error(res.state[1].value(), a.value()), 1e-14);
}

// With lengths, each example behaves as if run alone on its own prefix: same outputs there,
// zeros after, final state at its last real step (both directions), no gradient into padding.
TEST(Sequence, VariableLengthsActLikeSeparateShorterSequences) {
  nn::manual_seed(7);
  const std::size_t T = 6, m = 3, n_x = 2, n_a = 3;
  const std::vector<int> lengths{6, 2, 4};
  nn::LSTM<double> lstm(n_x, n_a, nn::LSTMOptions().layers(2).bidirectional());
  std::mt19937_64 gen(8);
  Array<double> x = randn({T, m, n_x}, gen);
  Var<double> X = param(x);
  auto res = lstm(X, {}, lengths);
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t len = static_cast<std::size_t>(lengths[i]);
    auto alone = lstm(constant(example(x, i, len)));
    Array<double> mine = xt::view(res.output.value(), xt::range(0, len), xt::range(i, i + 1), xt::all());
    EXPECT_LT(rel_error(mine, alone.output.value()), 1e-14) << "example " << i;
    for (std::size_t t = len; t < T; ++t)
      for (std::size_t k = 0; k < 2 * n_a; ++k) EXPECT_EQ(res.output.value()(t, i, k), 0.0);
    for (std::size_t s = 0; s < 4; ++s) {
      Array<double> a_i = xt::view(res.state[s].a.value(), xt::range(i, i + 1));
      Array<double> c_i = xt::view(res.state[s].c.value(), xt::range(i, i + 1));
      EXPECT_LT(rel_error(a_i, alone.state[s].a.value()), 1e-14) << "example " << i << " state " << s;
      EXPECT_LT(rel_error(c_i, alone.state[s].c.value()), 1e-14) << "example " << i << " state " << s;
    }
  }
  // Loss on outputs and final states: padding gets exactly zero gradient.
  Var<double> loss = testing::project(res.output) + testing::project(res.state[2].a, 5) +
                     testing::project(res.state[3].c, 6);
  loss.backward();
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t t = static_cast<std::size_t>(lengths[i]); t < T; ++t)
      for (std::size_t k = 0; k < n_x; ++k) EXPECT_EQ(X.grad()(t, i, k), 0.0);
  EXPECT_NE(X.grad()(1, 1, 0), 0.0);
}

TEST(Sequence, GivenInitialStateIsUsed) {
  nn::manual_seed(9);
  nn::RNN<double> rnn(2, 3);
  std::mt19937_64 gen(10);
  Array<double> x = randn({1, 2, 2}, gen), a0 = randn({2, 3}, gen);
  auto res = rnn(constant(x), {constant(a0)});
  Var<double> step = rnn.cell(0)(constant<double>(xt::view(x, 0)), constant(a0));
  EXPECT_LT(rel_error(res.state[0].value(), step.value()), 1e-15);
}

TEST(Sequence, DropoutOnlyInTrainingAndOnlyBetweenLayers) {
  std::mt19937_64 gen(12);
  Array<double> x = randn({3, 4, 2}, gen);
  nn::manual_seed(11);
  nn::GRU<double> plain(2, 8, nn::GRUOptions().layers(2));
  nn::manual_seed(11);
  nn::GRU<double> dropped(2, 8, nn::GRUOptions().layers(2).dropout(0.5));
  dropped.eval();
  EXPECT_EQ(plain(constant(x)).output.value(), dropped(constant(x)).output.value());
  dropped.train();
  EXPECT_GT(rel_error(plain(constant(x)).output.value(), dropped(constant(x)).output.value()), 1e-3);
  // One layer: nothing to drop between.
  nn::manual_seed(11);
  nn::RNN<double> one(2, 8, nn::RNNOptions().dropout(0.5));
  nn::manual_seed(11);
  nn::RNN<double> one_plain(2, 8);
  EXPECT_EQ(one(constant(x)).output.value(), one_plain(constant(x)).output.value());
}

// ---- finite differences, with respect to every parameter, the input and the initial state

TEST(Sequence, RNNGradientMatchesFiniteDifferences) {
  nn::manual_seed(13);
  nn::RNN<double> rnn(2, 3, nn::RNNOptions().layers(2).bidirectional());
  std::mt19937_64 gen(14);
  std::vector<Array<double>> inputs{randn({4, 2, 2}, gen)};
  for (int s = 0; s < 4; ++s) inputs.push_back(randn({2, 3}, gen));
  auto r = testing::gradcheck_module(rnn, inputs, [&](const std::vector<Var<double>>& in) {
    auto res = rnn(in[0], {in[1], in[2], in[3], in[4]});
    return testing::project(res.output) + testing::project(res.state[1], 3) + testing::project(res.state[2], 4);
  });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Sequence, ReluRNNGradientMatchesFiniteDifferences) {
  nn::manual_seed(15);
  nn::RNN<double> rnn(3, 4, nn::RNNOptions().relu());
  std::mt19937_64 gen(16);
  auto r = testing::gradcheck_module(rnn, {randn({5, 2, 3}, gen)}, [&](const std::vector<Var<double>>& in) {
    return testing::project(rnn(in[0]).output);
  });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Sequence, MaskedBidirectionalLSTMGradientMatchesFiniteDifferences) {
  nn::manual_seed(17);
  nn::LSTM<double> lstm(2, 3, nn::LSTMOptions().layers(2).bidirectional());
  std::mt19937_64 gen(18);
  std::vector<Array<double>> inputs{randn({5, 3, 2}, gen), randn({3, 3}, gen), randn({3, 3}, gen)};
  auto r = testing::gradcheck_module(lstm, inputs, [&](const std::vector<Var<double>>& in) {
    auto z = lstm.cell(0).zero_state(3);
    auto res = lstm(in[0], {{in[1], in[2]}, z, z, z}, {5, 1, 3});
    return testing::project(res.output) + testing::project(res.state[0].c, 3) + testing::project(res.state[3].a, 4);
  });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Sequence, MaskedBidirectionalGRUGradientMatchesFiniteDifferences) {
  nn::manual_seed(19);
  nn::GRU<double> gru(2, 3, nn::GRUOptions().layers(2).bidirectional());
  std::mt19937_64 gen(20);
  auto r = testing::gradcheck_module(gru, {randn({4, 3, 2}, gen)}, [&](const std::vector<Var<double>>& in) {
    auto res = gru(in[0], {}, {2, 4, 3});
    return testing::project(res.output) + testing::project(res.state[2], 3) + testing::project(res.state[3], 4);
  });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Sequence, DropoutGradientMatchesFiniteDifferences) {
  nn::manual_seed(21);
  nn::GRU<double> gru(2, 3, nn::GRUOptions().layers(2).dropout(0.3));
  std::mt19937_64 gen(22);
  auto r = testing::gradcheck_module(gru, {randn({3, 2, 2}, gen)}, [&](const std::vector<Var<double>>& in) {
    nn::manual_seed(23);  // the same masks at every evaluation
    return testing::project(gru(in[0]).output);
  });
  EXPECT_TRUE(r.ok) << r.report();
}

// ---- bad input: a clear exception naming the layer and the shapes, and nothing recorded

TEST(Sequence, BadInputThrowsBeforeRecordingAnything) {
  nn::RNN<double> rnn(3, 4, nn::RNNOptions().layers(2));
  nn::LSTM<double> lstm(3, 4);
  auto z = [](Shape s) { return constant<double>(xt::zeros<double>(s)); };
  Var<double> x = z({5, 2, 3});
  const std::size_t tape_before = Tape<double>::current().size();

  XGRAD_EXPECT_THROW_MSG(rnn(z({5, 2, 4})), ShapeError, "RNN", "(5, 2, 4)", "n_x = 3");
  XGRAD_EXPECT_THROW_MSG(lstm(z({5, 3})), ShapeError, "LSTM", "(T, m, n_x)", "(5, 3)");
  XGRAD_EXPECT_THROW_MSG(rnn(z({0, 2, 3})), ValueError, "RNN", "T = 0", "(0, 2, 3)");
  XGRAD_EXPECT_THROW_MSG(rnn(x, {z({2, 4})}), ShapeError, "RNN", "initial state", "1 entries", "2");
  XGRAD_EXPECT_THROW_MSG(rnn(x, {z({2, 4}), z({3, 4})}), ShapeError, "RNN", "layer 1", "(3, 4)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(lstm(x, {{z({2, 4}), z({2, 5})}}), ShapeError, "LSTM", "memory cell", "(2, 5)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(rnn(x, {}, {5, 6}), IndexError, "RNN", "length 6", "example 1", "T = 5");
  XGRAD_EXPECT_THROW_MSG(lstm(x, {}, {0, 5}), IndexError, "LSTM", "length 0", "example 0");
  XGRAD_EXPECT_THROW_MSG(lstm(x, {}, {5}), ShapeError, "LSTM", "1 lengths", "m = 2");
  EXPECT_EQ(Tape<double>::current().size(), tape_before);
}

// Each chained setter sets its option; shared and own options chain in any order, and a bare
// flag setter turns the flag on.
TEST(Sequence, ChainedOptionSettersSetEachOption) {
  const auto rnn = nn::RNNOptions().relu().layers(3).bidirectional().dropout(0.25);
  EXPECT_EQ(rnn.layers(), 3u);
  EXPECT_TRUE(rnn.bidirectional());
  EXPECT_EQ(rnn.dropout(), 0.25);
  EXPECT_TRUE(rnn.relu());
  const auto lstm = nn::LSTMOptions().layers(2).bidirectional(true).bidirectional(false).dropout(0.5);
  EXPECT_EQ(lstm.layers(), 2u);
  EXPECT_FALSE(lstm.bidirectional());
  EXPECT_EQ(lstm.dropout(), 0.5);
  const auto gru = nn::GRUOptions();
  EXPECT_EQ(gru.layers(), 1u);
  EXPECT_FALSE(gru.bidirectional());
  EXPECT_EQ(gru.dropout(), 0.0);
}

TEST(Sequence, BadOptionsThrow) {
  XGRAD_EXPECT_THROW_MSG(nn::GRU<double>(3, 4, nn::GRUOptions().layers(0)), ValueError, "GRU", "layers = 0");
  XGRAD_EXPECT_THROW_MSG(nn::LSTM<double>(3, 4, nn::LSTMOptions().dropout(1.0)), ValueError, "LSTM", "dropout");
  nn::RNN<double> rnn(3, 4);
  XGRAD_EXPECT_THROW_MSG(rnn.cell(0, true), IndexError, "RNN", "reverse");
}

}  // namespace
}  // namespace xgrad
