// xgrad::GradReport: the norm of ∂L/∂s_t per step, layer, direction and state field of a
// sequence layer, against the gradients retained by hand in an unrolled loop of the same cells.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;
using xgrad::testing::contains;

namespace {

class GradReportTest : public ::testing::Test {
 protected:
  void SetUp() override { nn::generator().seed(7); }
  void TearDown() override { clear_tape(); }
};

A random_array(const Shape& shape, unsigned seed) {
  nn::generator().seed(seed);
  return nn::uniform<double>(shape, 1.0);
}

double frobenius(const A& g) {
  double sq = 0;
  for (double v : g) sq += v * v;
  return std::sqrt(sq);
}

// The layer's computation written out step by step with its cells, every new state's fields
// retained: states[series][t] (undefined where no step ran), series = (k·D + d)·F + f as in the
// report. loss = Σ y∘w over the last layer's outputs y (T, m, D·n_a).
template <class Layer>
struct Unrolled {
  Var<double> loss;
  std::vector<std::vector<Var<double>>> states;
};

template <class Layer>
Unrolled<Layer> unrolled(const Layer& layer, const A& x, const std::vector<int>& lengths, const A& w) {
  using State = typename Layer::State;
  constexpr std::size_t F = nn::state_size<State>;
  const std::size_t T = x.shape()[0], m = x.shape()[1], D = layer.directions();
  Unrolled<Layer> u;
  u.states.assign(layer.num_layers() * D * F, std::vector<Var<double>>(T));
  Var<double> input = constant(x);
  for (std::size_t k = 0; k < layer.num_layers(); ++k) {
    std::vector<Var<double>> directions;
    for (std::size_t d = 0; d < D; ++d) {
      const auto& cell = layer.cell(k, d == 1);
      State s = cell.zero_state(m);
      std::vector<Var<double>> outs(T);
      for (std::size_t j = 0; j < T; ++j) {
        const std::size_t t = d == 1 ? T - 1 - j : j;
        A mask_v = A::from_shape({m, 1});
        std::size_t active = 0;
        for (std::size_t i = 0; i < m; ++i) {
          const bool on = lengths.empty() || t < static_cast<std::size_t>(lengths[i]);
          mask_v(i, 0) = on ? 1.0 : 0.0;
          active += on ? 1 : 0;
        }
        if (active == 0) {
          outs[t] = constant(A(xt::zeros<double>({m, layer.hidden_size()})));
          continue;
        }
        State next = cell.step(cell.input_projection(select(input, static_cast<long>(t))), s);
        nn::detail::for_each_field(next, next, [&](std::size_t f, const Var<double>& v, const Var<double>&) {
          v.retain_grad();
          u.states[(k * D + d) * F + f][t] = v;
        });
        if (active == m) {
          outs[t] = nn::hidden_of(next);
          s = next;
        } else {
          const Var<double> mask = constant(mask_v), keep = constant(A(1.0 - mask_v));
          outs[t] = nn::hidden_of(next) * mask;
          s = nn::map_state([&](const Var<double>& n, const Var<double>& o) { return mask * n + keep * o; }, next, s);
        }
      }
      directions.push_back(stack(outs));
    }
    input = D == 1 ? directions[0] : concat(directions, 2);
  }
  u.loss = sum(input * constant(w));
  return u;
}

// The report of one forward and backward of `layer` on x with the same loss, checked series by
// series and step by step against the unrolled loop's retained gradients.
template <class Layer>
void expect_report_matches_retained(const Layer& layer, const A& x, const std::vector<int>& lengths) {
  using State = typename Layer::State;
  const std::size_t T = x.shape()[0], m = x.shape()[1];
  const A w = random_array({T, m, layer.directions() * layer.hidden_size()}, 11);

  Unrolled<Layer> hand = unrolled(layer, x, lengths, w);
  hand.loss.backward();
  std::vector<std::vector<double>> expected(hand.states.size(), std::vector<double>(T, 0.0));
  for (std::size_t s = 0; s < hand.states.size(); ++s)
    for (std::size_t t = 0; t < T; ++t)
      if (hand.states[s][t].defined()) expected[s][t] = frobenius(hand.states[s][t].grad());
  clear_tape();

  GradReport report(layer);
  auto y = layer(constant(x), std::vector<State>{}, lengths).output;
  sum(y * constant(w)).backward();
  const std::vector<GradSeries>& series = report.norms();
  ASSERT_EQ(series.size(), expected.size());
  EXPECT_EQ(report.steps(), T);
  std::size_t nonzero = 0;
  for (std::size_t s = 0; s < series.size(); ++s) {
    ASSERT_EQ(series[s].norms.size(), T) << series[s].label();
    for (std::size_t t = 0; t < T; ++t) {
      EXPECT_NEAR(series[s].norms[t], expected[s][t], 1e-12 * std::max(1.0, expected[s][t]))
          << series[s].label() << " at t = " << t + 1;
      nonzero += expected[s][t] > 0 ? 1 : 0;
    }
  }
  EXPECT_GT(nonzero, series.size() * T / 2);  // most steps have a gradient: the check compares numbers
}

TEST_F(GradReportTest, RNNNormsEqualTheRetainedGradientsOfTheUnrolledLoop) {
  nn::RNN<double> rnn(3, 5);
  expect_report_matches_retained(rnn, random_array({7, 4, 3}, 1), {});
}

TEST_F(GradReportTest, LSTMReportsHiddenStateAndMemoryCell) {
  nn::LSTM<double> lstm(3, 4);
  expect_report_matches_retained(lstm, random_array({6, 2, 3}, 2), {});
  GradReport report(lstm);
  sum(lstm(constant(random_array({6, 2, 3}, 2))).output).backward();
  ASSERT_EQ(report.norms().size(), 2u);
  EXPECT_EQ(report.norms()[0].label(), "layer 0 hidden state a");
  EXPECT_EQ(report.norms()[1].label(), "layer 0 memory cell c");
}

TEST_F(GradReportTest, TwoLayerBidirectionalLSTMWithLengths) {
  nn::LSTM<double> lstm(3, 4, nn::LSTMOptions().layers(2).bidirectional());
  expect_report_matches_retained(lstm, random_array({6, 3, 3}, 3), {6, 3, 1});
  GradReport report(lstm);
  sum(lstm(constant(random_array({6, 3, 3}, 3))).output).backward();
  const auto& series = report.norms();
  ASSERT_EQ(series.size(), 8u);  // 2 layers · 2 directions · (a, c)
  EXPECT_EQ(series[2].label(), "layer 0 reverse hidden state a");
  EXPECT_EQ(series[7].label(), "layer 1 reverse memory cell c");
  EXPECT_EQ(series[7].layer, 1u);
  EXPECT_TRUE(series[7].reverse);
}

TEST_F(GradReportTest, GRUWithLengthsEndingBeforeTheLastStep) {
  // No sequence reaches t = 5: those steps have no state of their own and report 0.
  nn::GRU<double> gru(2, 3, nn::GRUOptions().bidirectional());
  expect_report_matches_retained(gru, random_array({5, 3, 2}, 4), {4, 2, 3});
  GradReport report(gru);
  sum(gru(constant(random_array({5, 3, 2}, 4)), {}, {4, 2, 3}).output).backward();
  for (const GradSeries& s : report.norms()) {
    EXPECT_EQ(s.norms[4], 0.0) << s.label();
    EXPECT_GT(s.norms[3], 0.0) << s.label();
  }
}

TEST_F(GradReportTest, OneHotInputAndAUserCell) {
  nn::Recurrent<nn::LayerNormLSTMCell<double>> layer(4, 3);
  GradReport report(layer);
  const std::vector<int> ids = {0, 1, 2, 3, 3, 2, 1, 0};  // T = 4, m = 2
  sum(layer.forward_onehot(ids, 4).output).backward();
  ASSERT_EQ(report.norms().size(), 2u);
  for (const GradSeries& s : report.norms())
    for (double v : s.norms) EXPECT_TRUE(std::isfinite(v) && v > 0) << s.label();
}

TEST_F(GradReportTest, SegmentsBeforeOneBackwardAreOneRecord) {
  // Two forwards of 4 steps, the state carried, then one backward: the same norms as one forward
  // of 8 steps.
  nn::RNN<double> rnn(2, 3);
  const A x = random_array({8, 2, 2}, 5);
  std::vector<double> whole;
  {
    GradReport report(rnn);
    sum(rnn(constant(x)).output).backward();
    whole = report.norms()[0].norms;
  }
  clear_tape();
  GradReport report(rnn);
  auto first = rnn(constant(A(xt::view(x, xt::range(0, 4)))));
  auto second = rnn(constant(A(xt::view(x, xt::range(4, 8)))), first.state);
  (sum(first.output) + sum(second.output)).backward();
  ASSERT_EQ(report.steps(), 8u);
  for (std::size_t t = 0; t < 8; ++t) EXPECT_NEAR(report.norms()[0].norms[t], whole[t], 1e-12) << "t = " << t + 1;
  // The next forward after a backward starts a new record.
  clear_tape();
  sum(rnn(constant(A(xt::view(x, xt::range(0, 3))))).output).backward();
  EXPECT_EQ(report.steps(), 3u);
}

TEST_F(GradReportTest, NestedReportsAndAnUnwatchedLayer) {
  nn::RNN<double> watched(2, 3), other(2, 3);
  GradReport outer(watched);
  GradReport inner(watched);
  GradReport on_other(other);
  const A x = random_array({4, 2, 2}, 6);
  sum(watched(constant(x)).output).backward();
  EXPECT_EQ(outer.norms()[0].norms, inner.norms()[0].norms);
  EXPECT_GT(outer.norms()[0].norms[0], 0.0);
  XGRAD_EXPECT_THROW_MSG(on_other.norms(), Error, "GradReport", "has not run forward");
}

TEST_F(GradReportTest, ErrorsNameWhatIsMissing) {
  nn::LSTM<double> lstm(2, 3);
  const A x = random_array({4, 2, 2}, 8);
  {
    GradReport report(lstm);
    XGRAD_EXPECT_THROW_MSG(report.norms(), Error, "GradReport", "has not run forward");
    XGRAD_EXPECT_THROW_MSG(report.table(), Error, "has not run forward");
    XGRAD_EXPECT_THROW_MSG(report.write_csv("unused.csv"), Error, "has not run forward");
  }
  {
    GradReport report(lstm);
    {
      NoGradGuard no_grad;  // nothing recorded, so nothing to report
      lstm(constant(x));
    }
    XGRAD_EXPECT_THROW_MSG(report.norms(), Error, "has not run forward");
  }
  {
    GradReport report(lstm);
    auto y = lstm(constant(x)).output;
    XGRAD_EXPECT_THROW_MSG(report.norms(), Error, "no backward()", "4 steps");
    clear_tape();
    XGRAD_EXPECT_THROW_MSG(report.norms(), StaleHandleError, "GradReport", "tape was cleared", "4 steps", "backward()");
  }
  {
    // After the backward the norms are the report's own: clear_tape does not take them away.
    GradReport report(lstm);
    sum(lstm(constant(x)).output).backward();
    const std::vector<double> before = report.norms()[1].norms;
    clear_tape();
    EXPECT_EQ(report.norms()[1].norms, before);
    XGRAD_EXPECT_THROW_MSG(report.write_svg("/nonexistent-dir/grads.svg"), Error, "GradReport::write_svg", "/nonexistent-dir/grads.svg");
    XGRAD_EXPECT_THROW_MSG(report.write_csv("/nonexistent-dir/grads.csv"), Error, "GradReport::write_csv", "/nonexistent-dir/grads.csv");
  }
}

TEST_F(GradReportTest, RetainsNothingAndCostsNothingOnTheTape) {
  nn::LSTM<double> lstm(3, 4, nn::LSTMOptions().layers(2));
  const A x = random_array({6, 2, 3}, 9);
  auto run = [&] {
    clear_tape();
    sum(lstm(constant(x)).output).backward();
    Tape<double>& tape = Tape<double>::current();
    std::size_t with_grad = 0;
    for (std::size_t i = 0; i < tape.size(); ++i) with_grad += tape.node(i).has_grad ? 1 : 0;
    EXPECT_EQ(with_grad, 0u) << "a gradient was kept after the sweep";
    return tape.memory_bytes();
  };
  run();  // the tape's storage laid out
  const std::size_t off = run();
  std::size_t on = 0;
  {
    GradReport report(lstm);
    on = run();
    EXPECT_GT(report.norms()[0].norms[0], 0.0);
  }
  EXPECT_EQ(on, off);
  EXPECT_EQ(run(), off);
  // No report alive: the sweeps have no observer left to call.
  EXPECT_EQ(detail::sweep_observers<double>(), nullptr);
  EXPECT_EQ(detail::sweep_observers<float>(), nullptr);
}

TEST_F(GradReportTest, FloatLayer) {
  nn::RNN<float> rnn(2, 3);
  GradReport report(rnn);
  sum(rnn(constant(Array<float>(xt::ones<float>({5, 2, 2})))).output).backward();
  ASSERT_EQ(report.steps(), 5u);
  for (double v : report.norms()[0].norms) EXPECT_TRUE(std::isfinite(v) && v > 0);
}

TEST_F(GradReportTest, TableCsvAndSvg) {
  nn::LSTM<double> lstm(2, 3, nn::LSTMOptions().bidirectional());
  GradReport report(lstm);
  sum(lstm(constant(random_array({5, 2, 2}, 10))).output).backward();
  const auto& series = report.norms();

  const std::string table = report.table();
  std::istringstream lines(table);
  std::string header, line;
  std::getline(lines, header);
  for (const GradSeries& s : series) EXPECT_TRUE(contains(header, s.label())) << header;
  std::size_t rows = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::size_t t;
    fields >> t;
    EXPECT_EQ(t, rows + 1);
    for (const GradSeries& s : series) {
      double v;
      fields >> v;
      EXPECT_NEAR(v, s.norms[rows], 1e-3 * s.norms[rows]) << s.label();  // 4 significant digits
    }
    ++rows;
  }
  EXPECT_EQ(rows, 5u);

  const std::string csv = ::testing::TempDir() + "grad_report.csv", svg = ::testing::TempDir() + "grad_report.svg";
  report.write_csv(csv);
  std::ifstream in(csv);
  std::getline(in, line);
  EXPECT_EQ(line, "series,t,norm");
  std::size_t n = 0;
  while (std::getline(in, line)) {
    const std::size_t a = line.find(','), b = line.rfind(',');
    const GradSeries& s = series[n / 5];
    EXPECT_EQ(line.substr(0, a), s.label());
    EXPECT_EQ(std::stoul(line.substr(a + 1, b - a - 1)), n % 5 + 1);
    EXPECT_EQ(std::strtod(line.c_str() + b + 1, nullptr), s.norms[n % 5]);  // read back exactly
    ++n;
  }
  EXPECT_EQ(n, series.size() * 5);

  report.write_svg(svg, "LSTM gradients");
  std::ifstream f(svg);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::size_t polylines = 0;
  for (std::size_t p = text.find("<polyline"); p != std::string::npos; p = text.find("<polyline", p + 1)) ++polylines;
  EXPECT_EQ(polylines, series.size());
  EXPECT_TRUE(contains(text, "LSTM gradients"));
  EXPECT_TRUE(contains(text, "layer 0 reverse memory cell c"));
  EXPECT_TRUE(contains(text, "log scale"));
  std::remove(csv.c_str());
  std::remove(svg.c_str());
}

}  // namespace
