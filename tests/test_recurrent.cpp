// nn::Recurrent over cells written outside the library: a peephole LSTM with a struct state and
// a plain Var-state cell without input_projection, against hand loops over the cells and finite
// differences; recurrent dropout (one mask per sequence, tied across time); errors.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>
#include <vector>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace {

using xgrad::Array;
using xgrad::Shape;
using xgrad::Var;

// ---- a peephole LSTM (Gers & Schmidhuber 2000): the gates also see the memory cell through
// diagonal weights, i and f the previous one, o the new one:
//   [i f g o] = x·Wxᵀ + a_prev·Waᵀ + b                     (m, 4·n_a)
//   Γi = σ(i + p_i∘c_prev), Γf = σ(f + p_f∘c_prev), c̃ = tanh(g)
//   c = Γf∘c_prev + Γi∘c̃,  Γo = σ(o + p_o∘c),  a = Γo∘tanh(c)     (m, n_a)

struct PeepholeState {
  Var<double> a, c;  // each (m, n_a)
};

class PeepholeLSTMCell : public xgrad::nn::Module<double> {
 public:
  using State = PeepholeState;

  PeepholeLSTMCell(std::size_t n_in, std::size_t n_a) : n_a_(n_a) {
    const double k = 1.0 / std::sqrt(static_cast<double>(n_a));
    Wx = register_parameter("Wx", xgrad::nn::uniform<double>({4 * n_a, n_in}, k));
    Wa = register_parameter("Wa", xgrad::nn::uniform<double>({4 * n_a, n_a}, k));
    b = register_parameter("b", xgrad::nn::uniform<double>({4 * n_a}, k));
    p_i = register_parameter("p_i", xgrad::nn::uniform<double>({n_a}, k));
    p_f = register_parameter("p_f", xgrad::nn::uniform<double>({n_a}, k));
    p_o = register_parameter("p_o", xgrad::nn::uniform<double>({n_a}, k));
  }

  State zero_state(std::size_t m) const {
    return {xgrad::constant<double>(xt::zeros<double>({m, n_a_})),
            xgrad::constant<double>(xt::zeros<double>({m, n_a_}))};
  }
  // x (N, n_in) -> x·Wxᵀ + b (N, 4·n_a)
  Var<double> input_projection(const Var<double>& x) const { return xgrad::linear(x, Wx, b); }
  // px (m, 4·n_a): a row block of input_projection
  State step(const Var<double>& px, const State& s) const {
    const long n = static_cast<long>(n_a_);
    Var<double> gates = xgrad::addmm_nt(px, s.a, Wa);
    Var<double> gi = xgrad::sigmoid(xgrad::slice(gates, 1, 0, n) + p_i * s.c);
    Var<double> gf = xgrad::sigmoid(xgrad::slice(gates, 1, n, 2 * n) + p_f * s.c);
    Var<double> cc = xgrad::tanh(xgrad::slice(gates, 1, 2 * n, 3 * n));
    Var<double> c = gf * s.c + gi * cc;
    Var<double> go = xgrad::sigmoid(xgrad::slice(gates, 1, 3 * n, 4 * n) + p_o * c);
    return {go * xgrad::tanh(c), c};
  }

  Var<double> Wx, Wa, b, p_i, p_f, p_o;

 private:
  std::size_t n_a_;
};

// ---- a minimal gated cell with a plain Var state and no input_projection: step gets x_t.
//   z = σ(x·Wzᵀ + a_prev·Uzᵀ),  a = (1 − z)∘a_prev + z∘tanh(x·Wᵀ + a_prev·Uᵀ + b)

class LeakyCell : public xgrad::nn::Module<double> {
 public:
  using State = Var<double>;

  LeakyCell(std::size_t n_in, std::size_t n_a, double scale) : n_a_(n_a) {
    Wz = register_parameter("Wz", xgrad::nn::uniform<double>({n_a, n_in}, scale));
    Uz = register_parameter("Uz", xgrad::nn::uniform<double>({n_a, n_a}, scale));
    W = register_parameter("W", xgrad::nn::uniform<double>({n_a, n_in}, scale));
    U = register_parameter("U", xgrad::nn::uniform<double>({n_a, n_a}, scale));
    b = register_parameter("b", xgrad::nn::uniform<double>({n_a}, scale));
  }
  State zero_state(std::size_t m) const { return xgrad::constant<double>(xt::zeros<double>({m, n_a_})); }
  State step(const Var<double>& x, const State& a) const {
    Var<double> z = xgrad::sigmoid(xgrad::matmul_nt(x, Wz) + xgrad::matmul_nt(a, Uz));
    Var<double> h = xgrad::tanh(xgrad::matmul_nt(x, W) + xgrad::matmul_nt(a, U) + b);
    return a + z * (h - a);
  }

  Var<double> Wz, Uz, W, U, b;

 private:
  std::size_t n_a_;
};

// ---- a probe for recurrent dropout: it keeps the hidden state each step is given and returns
// the first n_a columns of its input. Its zero state is ones, so dropped units show as zeros.
class ProbeCell : public xgrad::nn::Module<double> {
 public:
  ProbeCell(std::size_t, std::size_t n_a) : n_a_(n_a) {}
  Var<double> zero_state(std::size_t m) const { return xgrad::constant<double>(xt::ones<double>({m, n_a_})); }
  Var<double> step(const Var<double>& x, const Var<double>& a) const {
    seen.push_back(a.value());
    return xgrad::slice(x, 1, 0, static_cast<long>(n_a_));
  }
  mutable std::vector<Array<double>> seen;  // (m, n_a) per step

 private:
  std::size_t n_a_;
};

// A cell whose step returns the wrong width.
class WideCell : public xgrad::nn::Module<double> {
 public:
  WideCell(std::size_t, std::size_t n_a) : n_a_(n_a) {}
  Var<double> zero_state(std::size_t m) const { return xgrad::constant<double>(xt::zeros<double>({m, n_a_})); }
  Var<double> step(const Var<double>& x, const Var<double>&) const {
    return xgrad::constant<double>(xt::zeros<double>({x.shape()[0], n_a_ + 1}));
  }

 private:
  std::size_t n_a_;
};

}  // namespace

// The peephole state to the machinery: its Vars, the hidden output first (no names: errors say
// "state field <i>").
template <>
struct xgrad::nn::StateTraits<PeepholeState> {
  template <class S>
  static auto fields(S& s) { return std::tie(s.a, s.c); }
};

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;
using Peephole = nn::Recurrent<PeepholeLSTMCell>;

static_assert(std::is_same_v<Peephole::State, PeepholeState>);
static_assert(std::is_same_v<Peephole::Scalar, double>);
static_assert(std::is_same_v<Peephole::value_type, double>);
static_assert(nn::detail::has_input_projection<PeepholeLSTMCell>::value);
static_assert(!nn::detail::has_onehot_projection<PeepholeLSTMCell>::value);
static_assert(!nn::detail::has_input_projection<LeakyCell>::value);
static_assert(nn::detail::has_onehot_projection<nn::LSTMCell<float>>::value);
static_assert(std::is_same_v<nn::LSTM<float>::Result, nn::LSTMResult<float>>);

Shape shape_of(const Var<double>& v) { return Shape(v.shape().begin(), v.shape().end()); }
Var<double> row(const Var<double>& v, std::size_t i) { return slice(v, 0, long(i), long(i) + 1); }
PeepholeState row(const PeepholeState& s, std::size_t i) { return {row(s.a, i), row(s.c, i)}; }
Var<double> row(const Var<double>& x, std::size_t t, std::size_t i) {  // x (T, m, n) -> (1, n)
  return constant<double>(xt::view(x.value(), t, xt::range(i, i + 1), xt::all()));
}

Var<double> project_in(const PeepholeLSTMCell& c, const Var<double>& x) { return c.input_projection(x); }
Var<double> project_in(const LeakyCell&, const Var<double>& x) { return x; }

// What Recurrent should give, computed one example at a time through the cells by hand: each
// example's own prefix, layer by layer, the reverse cell from its last real step down to 0.
template <class Cell>
struct ByHand {
  Array<double> output;                        // (T, m, directions·n_a)
  std::vector<typename Cell::State> state;     // rows of every example, one per layer·direction
};

template <class Cell>
ByHand<Cell> by_hand(const nn::Recurrent<Cell>& r, const Var<double>& x,
                     const std::vector<typename Cell::State>& initial, const std::vector<int>& lengths) {
  using State = typename Cell::State;
  const std::size_t T = x.shape()[0], m = x.shape()[1], n_a = r.hidden_size(), D = r.directions();
  ByHand<Cell> h{xt::zeros<double>({T, m, D * n_a}), {}};
  std::vector<std::vector<State>> finals(r.num_layers() * D);
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t len = lengths.empty() ? T : std::size_t(lengths[i]);
    std::vector<Var<double>> in;
    for (std::size_t t = 0; t < len; ++t) in.push_back(row(x, t, i));
    for (std::size_t k = 0; k < r.num_layers(); ++k) {
      std::vector<std::vector<Var<double>>> out(D, std::vector<Var<double>>(len));
      for (std::size_t d = 0; d < D; ++d) {
        const Cell& cell = r.cell(k, d == 1);
        State s = initial.empty() ? cell.zero_state(1) : row(initial[k * D + d], i);
        for (std::size_t j = 0; j < len; ++j) {
          const std::size_t t = d == 1 ? len - 1 - j : j;
          s = cell.step(project_in(cell, in[t]), s);
          out[d][t] = nn::hidden_of(s);
        }
        finals[k * D + d].push_back(s);
      }
      for (std::size_t t = 0; t < len; ++t) in[t] = D == 1 ? out[0][t] : concat({out[0][t], out[1][t]}, 1);
    }
    for (std::size_t t = 0; t < len; ++t) xt::view(h.output, t, i, xt::all()) = xt::view(in[t].value(), 0);
  }
  for (const auto& f : finals) {  // the examples' rows stacked back into (m, ·) states
    State s = f[0];
    for (std::size_t i = 1; i < f.size(); ++i)
      s = nn::map_state([](const Var<double>& a, const Var<double>& b) { return concat({a, b}, 0); }, s, f[i]);
    h.state.push_back(s);
  }
  return h;
}


template <class State>
void expect_states_near(const std::vector<State>& got, const std::vector<State>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t j = 0; j < got.size(); ++j)
    nn::map_state(
        [&](const Var<double>& g, const Var<double>& w) {
          EXPECT_LT(rel_error(g.value(), w.value()), tol) << "state " << j;
          return g;
        },
        got[j], want[j]);
}

std::vector<PeepholeState> random_states(std::size_t count, std::size_t m, std::size_t n_a, std::mt19937_64& gen) {
  std::vector<PeepholeState> s;
  for (std::size_t j = 0; j < count; ++j) s.push_back({constant(randn({m, n_a}, gen)), constant(randn({m, n_a}, gen))});
  return s;
}

// ---- the peephole LSTM through Recurrent

TEST(Recurrent, UserCellParametersAreNamedByLayerAndDirection) {
  Peephole r(3, 4, nn::RecurrentOptions().layers(2).bidirectional());
  const auto named = r.named_parameters();
  ASSERT_EQ(named.size(), 24u);
  EXPECT_EQ(named[0].first, "layers.0.Wx");
  EXPECT_EQ(named[5].first, "layers.0.p_o");
  EXPECT_EQ(named[6].first, "layers.0.reverse.Wx");
  EXPECT_EQ(named[12].first, "layers.1.Wx");
  EXPECT_EQ(named[23].first, "layers.1.reverse.p_o");
  EXPECT_EQ(shape_of(named[12].second), (Shape{16, 8}));  // layer 1 reads both directions
  EXPECT_EQ(r.input_size(), 3u);
  EXPECT_EQ(r.hidden_size(), 4u);
  EXPECT_EQ(r.num_layers(), 2u);
  EXPECT_EQ(r.directions(), 2u);
  EXPECT_EQ(&r.cell(1, true), &r.cell(1, true));
  EXPECT_NE(&r.cell(1, true), &r.cell(1, false));
}

// Two layers, both directions, lengths and a given initial state: the same as the cells run by
// hand on each example's own prefix; zeros after each example's end.
TEST(Recurrent, PeepholeLSTMEqualsItsCellsRunByHand) {
  nn::manual_seed(31);
  const std::size_t T = 5, m = 3, n_x = 2, n_a = 3;
  const std::vector<int> lengths{5, 2, 4};
  Peephole r(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
  std::mt19937_64 gen(32);
  const Var<double> x = constant(randn({T, m, n_x}, gen));
  const auto initial = random_states(4, m, n_a, gen);
  const auto res = r(x, initial, lengths);
  ASSERT_EQ(shape_of(res.output), (Shape{T, m, 2 * n_a}));
  ASSERT_EQ(res.state.size(), 4u);
  const auto want = by_hand(r, x, initial, lengths);
  EXPECT_LT(rel_error(res.output.value(), want.output), 1e-14);
  expect_states_near(res.state, want.state, 1e-14);
  for (std::size_t t = 2; t < T; ++t)  // example 1 has ended: zeros in both directions
    for (std::size_t k = 0; k < 2 * n_a; ++k) EXPECT_EQ(res.output.value()(t, 1, k), 0.0);
  // Without lengths and initial state as well.
  const auto full = r(x);
  const auto want_full = by_hand(r, x, {}, {});
  EXPECT_LT(rel_error(full.output.value(), want_full.output), 1e-14);
  expect_states_near(full.state, want_full.state, 1e-14);
}

TEST(Recurrent, PeepholeLSTMGradientMatchesFiniteDifferences) {
  nn::manual_seed(33);
  const std::size_t T = 4, m = 3, n_x = 2, n_a = 2;
  Peephole r(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
  std::mt19937_64 gen(34);
  std::vector<Array<double>> inputs{randn({T, m, n_x}, gen)};
  for (int j = 0; j < 8; ++j) inputs.push_back(randn({m, n_a}, gen));  // {a, c} of 4 states
  auto r_check = testing::gradcheck_module(r, inputs, [&](const std::vector<Var<double>>& in) {
    std::vector<PeepholeState> initial;
    for (std::size_t j = 0; j < 4; ++j) initial.push_back({in[1 + 2 * j], in[2 + 2 * j]});
    const auto res = r(in[0], initial, {4, 1, 3});
    return testing::project(res.output) + testing::project(res.state[0].c, 3) +
           testing::project(res.state[1].a, 4) + testing::project(res.state[3].c, 5);
  });
  EXPECT_TRUE(r_check.ok) << r_check.report();
}

// A cell with input_projection(x) but none for ids: forward_onehot runs it on the one-hot array.
TEST(Recurrent, OneHotInputWithoutAnIdProjectionIsTheOneHotArray) {
  nn::manual_seed(35);
  const std::size_t T = 3, m = 2, V = 4;
  Peephole r(V, 3, nn::RecurrentOptions().bidirectional());
  const std::vector<int> ids{0, 3, 2, 2, 1, 0};  // ids[t·m + i]
  Array<double> x = xt::zeros<double>({T, m, V});
  for (std::size_t j = 0; j < ids.size(); ++j) x.data()[j * V + std::size_t(ids[j])] = 1;
  const auto a = r.forward_onehot(ids, T, {}, {3, 2});
  const auto b = r(constant(x), {}, {3, 2});
  EXPECT_EQ(a.output.value(), b.output.value());
  EXPECT_EQ(a.state[1].c.value(), b.state[1].c.value());
}

// ---- a plain Var state and no input_projection

TEST(Recurrent, VarStateCellWithoutInputProjectionEqualsItsCellsRunByHand) {
  nn::manual_seed(36);
  const std::size_t T = 4, m = 3, n_x = 3, n_a = 2;
  const std::vector<int> lengths{1, 4, 3};
  // 0.7: the extra constructor argument, forwarded to every cell.
  nn::Recurrent<LeakyCell> r(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional(), 0.7);
  EXPECT_EQ(r.cell(1, true).Wz.shape()[1], 2 * n_a);
  std::mt19937_64 gen(37);
  const Var<double> x = constant(randn({T, m, n_x}, gen));
  std::vector<Var<double>> initial;
  for (int j = 0; j < 4; ++j) initial.push_back(constant(randn({m, n_a}, gen)));
  const auto res = r(x, initial, lengths);
  const auto want = by_hand(r, x, initial, lengths);
  EXPECT_LT(rel_error(res.output.value(), want.output), 1e-14);
  expect_states_near(res.state, want.state, 1e-14);
  // forward_onehot without any input projection: the one-hot rows go into step.
  const std::vector<int> ids{2, 0, 1, 1, 1, 0, 2, 2, 0, 0, 1, 2};
  Array<double> oh = xt::zeros<double>({T, m, n_x});
  for (std::size_t j = 0; j < ids.size(); ++j) oh.data()[j * n_x + std::size_t(ids[j])] = 1;
  EXPECT_EQ(r.forward_onehot(ids, T).output.value(), r(constant(oh)).output.value());
}

TEST(Recurrent, VarStateCellGradientMatchesFiniteDifferences) {
  nn::manual_seed(38);
  nn::Recurrent<LeakyCell> r(2, 3, nn::RecurrentOptions().layers(2).bidirectional(), 0.8);
  std::mt19937_64 gen(39);
  std::vector<Array<double>> inputs{randn({4, 3, 2}, gen), randn({3, 3}, gen)};
  auto check = testing::gradcheck_module(r, inputs, [&](const std::vector<Var<double>>& in) {
    const auto z = r.cell(0).zero_state(3);
    const auto res = r(in[0], {in[1], z, z, z}, {2, 4, 3});
    return testing::project(res.output) + testing::project(res.state[0], 3) + testing::project(res.state[3], 4);
  });
  EXPECT_TRUE(check.ok) << check.report();
}

// A built-in cell with its extra constructor argument: Recurrent<RNNCell> with relu is nn::RNN
// with relu, parameter for parameter and output for output.
TEST(Recurrent, BuiltInCellWithItsArgumentIsTheNamedLayer) {
  std::mt19937_64 gen(41);
  const Var<double> x = constant(randn({4, 2, 3}, gen));
  nn::manual_seed(40);
  nn::Recurrent<nn::RNNCell<double>> r(3, 5, nn::RecurrentOptions().layers(2), nn::Nonlinearity::relu);
  nn::manual_seed(40);
  nn::RNN<double> rnn(3, 5, nn::RNNOptions().layers(2).relu());
  ASSERT_EQ(r.named_parameters().size(), rnn.named_parameters().size());
  for (std::size_t j = 0; j < r.named_parameters().size(); ++j) {
    EXPECT_EQ(r.named_parameters()[j].first, rnn.named_parameters()[j].first);
    EXPECT_EQ(r.named_parameters()[j].second.value(), rnn.named_parameters()[j].second.value());
  }
  EXPECT_EQ(r(x).output.value(), rnn(x).output.value());
  EXPECT_EQ(r.cell(1).nonlinearity(), nn::Nonlinearity::relu);
}

// ---- recurrent dropout

// The probe sees ones∘mask at every step: the mask itself, the same at every step, entries 0 or
// 1/(1 − p), different rows for different sequences, different masks per layer and direction.
TEST(Recurrent, RecurrentDropoutMaskIsTiedAcrossTimeAndDrawnPerSequence) {
  const std::size_t T = 5, m = 40, n_a = 6;
  const double p = 0.4;
  nn::Recurrent<ProbeCell> r(n_a, n_a, nn::RecurrentOptions().layers(2).bidirectional().recurrent_dropout(p));
  EXPECT_EQ(r.recurrent_dropout(), p);
  const Var<double> x = constant<double>(xt::ones<double>({T, m, n_a}));
  nn::manual_seed(42);
  const auto res = r(x);
  // The state the cell returns (ones) is output unmasked.
  EXPECT_EQ(res.output.value(), Array<double>(xt::ones<double>({T, m, 2 * n_a})));
  std::size_t zeros = 0;
  std::vector<Array<double>> masks;
  for (std::size_t k = 0; k < 2; ++k)
    for (bool reverse : {false, true}) {
      const auto& seen = r.cell(k, reverse).seen;
      ASSERT_EQ(seen.size(), T);
      const Array<double>& mask = seen[0];
      for (std::size_t t = 1; t < T; ++t) EXPECT_EQ(seen[t], mask) << "layer " << k << " step " << t;
      std::set<std::vector<double>> rows;
      for (std::size_t i = 0; i < m; ++i) {
        std::vector<double> rw;
        for (std::size_t j = 0; j < n_a; ++j) {
          const double v = mask(i, j);
          EXPECT_TRUE(v == 0.0 || v == 1.0 / (1.0 - p)) << v;
          zeros += v == 0.0;
          rw.push_back(v);
        }
        rows.insert(rw);
      }
      EXPECT_GT(rows.size(), 10u);  // 40 sequences, 2^6 patterns: far from one shared row
      for (const auto& other : masks) EXPECT_NE(other, mask);
      masks.push_back(mask);
    }
  // 960 units, each dropped with probability 0.4: 384 expected, σ ≈ 15.
  EXPECT_NEAR(double(zeros), 0.4 * 4 * m * n_a, 75.0);
  // The next forward draws new masks; the same seed draws the same ones.
  r.cell(0).seen.clear();
  r(x);
  EXPECT_NE(r.cell(0).seen[0], masks[0]);
  r.cell(0).seen.clear();
  nn::manual_seed(42);
  r(x);
  EXPECT_EQ(r.cell(0).seen[0], masks[0]);
}

TEST(Recurrent, RecurrentDropoutIsOffInEvalAndDrawsNothingWhenZero) {
  const std::size_t T = 3, m = 4, n_a = 5;
  const Var<double> x = constant<double>(xt::ones<double>({T, m, n_a}));
  nn::Recurrent<ProbeCell> r(n_a, n_a, nn::RecurrentOptions().recurrent_dropout(0.5));
  r.eval();
  r(x);
  for (const auto& a : r.cell(0).seen) EXPECT_EQ(a, Array<double>(xt::ones<double>({m, n_a})));
  // p = 0 in training: no mask, and the generator is left as it was (results as without the option).
  nn::Recurrent<ProbeCell> plain(n_a, n_a);
  nn::manual_seed(43);
  const std::mt19937_64 before = nn::generator();
  plain(x);
  EXPECT_TRUE(before == nn::generator());
  // A real cell: eval equals a layer without the option, training differs.
  std::mt19937_64 gen(44);
  const Var<double> y = constant(randn({4, 3, 2}, gen));
  nn::manual_seed(45);
  nn::LSTM<double> dropped(2, 6, nn::LSTMOptions().layers(2).recurrent_dropout(0.3));
  nn::manual_seed(45);
  nn::LSTM<double> lstm(2, 6, nn::LSTMOptions().layers(2));
  EXPECT_GT(rel_error(dropped(y).output.value(), lstm(y).output.value()), 1e-3);
  dropped.eval();
  EXPECT_EQ(dropped(y).output.value(), lstm(y).output.value());
  EXPECT_EQ(dropped(y).state[1].c.value(), lstm(y).state[1].c.value());
}

// With lengths, an ended sequence keeps its own (unmasked) state: the final state of example i
// is the same whether or not padding steps follow.
TEST(Recurrent, RecurrentDropoutKeepsTheUnmaskedStateOfEndedSequences) {
  nn::manual_seed(46);
  nn::GRU<double> gru(2, 4, nn::GRUOptions().recurrent_dropout(0.5).bidirectional());
  std::mt19937_64 gen(47);
  const Array<double> x = randn({5, 2, 2}, gen);
  nn::manual_seed(48);
  const auto padded = gru(constant(x), {}, {5, 3});
  nn::manual_seed(48);  // the same masks: they depend on m and n_a only, not on T
  const auto cut = gru(constant<double>(xt::view(x, xt::range(0, 3))));
  Array<double> a1 = xt::view(padded.state[0].value(), xt::range(1, 2));
  Array<double> want = xt::view(cut.state[0].value(), xt::range(1, 2));
  EXPECT_LT(rel_error(a1, want), 1e-14);
  Array<double> r1 = xt::view(padded.state[1].value(), xt::range(1, 2));
  Array<double> want_r = xt::view(cut.state[1].value(), xt::range(1, 2));
  EXPECT_LT(rel_error(r1, want_r), 1e-14);
}

TEST(Recurrent, RecurrentDropoutGradientMatchesFiniteDifferences) {
  nn::manual_seed(49);
  Peephole r(2, 2, nn::RecurrentOptions().layers(2).bidirectional().recurrent_dropout(0.4));
  std::mt19937_64 gen(50);
  std::vector<Array<double>> inputs{randn({3, 3, 2}, gen), randn({3, 2}, gen), randn({3, 2}, gen)};
  auto loss = [&](const std::vector<Var<double>>& in) {
    nn::manual_seed(51);  // the same masks at every evaluation
    const auto z = r.cell(0).zero_state(3);
    const auto res = r(in[0], {{in[1], in[2]}, z, z, z}, {3, 1, 2});
    return testing::project(res.output) + testing::project(res.state[0].c, 3) + testing::project(res.state[2].a, 4);
  };
  auto check = testing::gradcheck_module(r, inputs, loss);
  EXPECT_TRUE(check.ok) << check.report();
  // Not vacuous: the masks change the loss.
  std::vector<Var<double>> in;
  for (const auto& a : inputs) in.push_back(constant(a));
  const double with = loss(in).value().flat(0);
  r.eval();
  EXPECT_GT(std::abs(with - loss(in).value().flat(0)), 1e-6);
  r.train();
  // And a built-in cell.
  nn::manual_seed(52);
  nn::LSTM<double> lstm(2, 3, nn::LSTMOptions().recurrent_dropout(0.3).bidirectional());
  auto lstm_check = testing::gradcheck_module(lstm, {randn({4, 2, 2}, gen)}, [&](const std::vector<Var<double>>& v) {
    nn::manual_seed(53);
    return testing::project(lstm(v[0], {}, {4, 2}).output);
  });
  EXPECT_TRUE(lstm_check.ok) << lstm_check.report();
}

TEST(Recurrent, RecurrentDropoutOptionChainsAndIsChecked) {
  EXPECT_EQ(nn::RecurrentOptions().recurrent_dropout(), 0.0);
  const auto o = nn::RecurrentOptions().recurrent_dropout(0.25).layers(3).dropout(0.5);
  EXPECT_EQ(o.recurrent_dropout(), 0.25);
  EXPECT_EQ(o.layers(), 3u);
  EXPECT_EQ(nn::RNNOptions().relu().recurrent_dropout(0.1).recurrent_dropout(), 0.1);
  EXPECT_EQ(nn::LSTMOptions().recurrent_dropout(0.2).recurrent_dropout(), 0.2);
  EXPECT_EQ(nn::GRU<double>(2, 3, nn::GRUOptions().recurrent_dropout(0.3)).recurrent_dropout(), 0.3);
  XGRAD_EXPECT_THROW_MSG(Peephole(2, 3, nn::RecurrentOptions().recurrent_dropout(1.0)), ValueError, "Recurrent",
                         "recurrent_dropout must be in [0, 1)", "got 1");
  XGRAD_EXPECT_THROW_MSG(Peephole(2, 3, nn::RecurrentOptions().recurrent_dropout(-0.1)), ValueError, "Recurrent",
                         "recurrent_dropout", "-0.1");
  XGRAD_EXPECT_THROW_MSG(Peephole(2, 3, nn::RecurrentOptions().recurrent_dropout(NAN)), ValueError, "recurrent_dropout",
                         "nan");
  XGRAD_EXPECT_THROW_MSG(nn::LSTM<double>(2, 3, nn::LSTMOptions().recurrent_dropout(1.5)), ValueError, "LSTM",
                         "recurrent_dropout");
}

// ---- errors: clear, naming the layer, before anything is recorded

TEST(Recurrent, BadInputThrowsBeforeRecordingAnything) {
  nn::manual_seed(54);
  Peephole r(3, 4, nn::RecurrentOptions().layers(2));
  auto z = [](Shape s) { return constant<double>(xt::zeros<double>(s)); };
  const Var<double> x = z({5, 2, 3});
  const PeepholeState ok{z({2, 4}), z({2, 4})};
  const std::size_t tape_before = Tape<double>::current().size();
  XGRAD_EXPECT_THROW_MSG(r(z({5, 2, 4})), ShapeError, "Recurrent", "(5, 2, 4)", "n_x = 3");
  XGRAD_EXPECT_THROW_MSG(r(z({5, 3})), ShapeError, "Recurrent", "(T, m, n_x)", "(5, 3)");
  XGRAD_EXPECT_THROW_MSG(r(z({5, 0, 3})), ValueError, "Recurrent", "m = 0");
  XGRAD_EXPECT_THROW_MSG(r(x, {ok}), ShapeError, "Recurrent", "initial state", "1 entries", "2");
  XGRAD_EXPECT_THROW_MSG(r(x, {ok, {z({2, 4}), z({2, 5})}}), ShapeError, "Recurrent", "initial state of layer 1",
                         "state field 1", "(2, 5)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(r(x, {{z({3, 4}), z({2, 4})}, ok}), ShapeError, "layer 0", "state field 0", "(3, 4)");
  XGRAD_EXPECT_THROW_MSG(r(x, {ok, {Var<double>(), z({2, 4})}}), ShapeError, "state field 0", "undefined");
  XGRAD_EXPECT_THROW_MSG(r(x, {}, {5, 6}), IndexError, "Recurrent", "length 6", "example 1", "T = 5");
  XGRAD_EXPECT_THROW_MSG(r(x, {}, {5}), ShapeError, "Recurrent", "1 lengths", "m = 2");
  XGRAD_EXPECT_THROW_MSG(r.forward_onehot({0, 1, 3}, 1), IndexError, "Recurrent", "one-hot id 3", "position 2",
                         "n_x = 3");
  XGRAD_EXPECT_THROW_MSG(r.forward_onehot({0, 1, 2}, 2), ShapeError, "Recurrent", "3 one-hot ids", "T = 2");
  nn::Recurrent<LeakyCell> leaky(3, 4, nn::RecurrentOptions().bidirectional(), 0.5);
  XGRAD_EXPECT_THROW_MSG(leaky(x, {z({2, 4}), z({2, 3})}), ShapeError, "Recurrent", "layer 0 (reverse)",
                         "hidden state", "(2, 3)");
  EXPECT_EQ(Tape<double>::current().size(), tape_before);
  XGRAD_EXPECT_THROW_MSG(r.cell(0, true), IndexError, "Recurrent", "reverse", "1 direction(s)");
  XGRAD_EXPECT_THROW_MSG(r.cell(2), IndexError, "Recurrent", "layer 2", "2 layer(s)");
}

TEST(Recurrent, BadSizesAndCellsThrow) {
  XGRAD_EXPECT_THROW_MSG(Peephole(0, 3), ValueError, "Recurrent", "n_x 0");
  XGRAD_EXPECT_THROW_MSG(Peephole(2, 3, nn::RecurrentOptions().layers(0)), ValueError, "Recurrent", "layers = 0");
  XGRAD_EXPECT_THROW_MSG(Peephole(2, 3, nn::RecurrentOptions().dropout(-1)), ValueError, "Recurrent", "dropout");
  // A cell whose hidden output is not (m, n_a) is caught at its first step, naming the layer.
  nn::Recurrent<WideCell> wide(3, 4);
  XGRAD_EXPECT_THROW_MSG(wide(constant<double>(xt::zeros<double>({2, 2, 3}))), ShapeError, "Recurrent",
                         "hidden output", "(2, 5)", "(2, 4)");
}

// ---- the state helpers

TEST(Recurrent, StateHelpersWorkFieldByField) {
  std::mt19937_64 gen(55);
  const PeepholeState s{param(randn({2, 3}, gen)), param(randn({2, 3}, gen))};
  EXPECT_EQ(nn::state_size<PeepholeState>, 2u);
  EXPECT_EQ(nn::state_size<Var<double>>, 1u);
  EXPECT_EQ(&nn::hidden_of(s), &s.a);
  const Var<double> other = constant(randn({2, 3}, gen));
  const PeepholeState w = nn::with_hidden(s, other);
  EXPECT_EQ(w.a.value(), other.value());
  EXPECT_EQ(w.c.value(), s.c.value());
  const PeepholeState d = nn::map_state([](const Var<double>& v) { return v.detach(); }, s);
  EXPECT_FALSE(d.a.requires_grad());
  EXPECT_FALSE(d.c.requires_grad());
  EXPECT_EQ(d.c.value(), s.c.value());
  const auto sum2 = nn::map_state([](const Var<double>& a, const Var<double>& b) { return a + b; }, s, w);
  EXPECT_EQ(sum2.a.value(), Array<double>(s.a.value() + other.value()));
  const nn::LSTMState<double> l{s.a, s.c};
  EXPECT_EQ(&nn::hidden_of(l), &l.a);
}

}  // namespace
}  // namespace xgrad
