// The tape and Var: accumulation, no-grad, detach, memory reuse, stale handles, anomaly
// detection, graph export, per-thread tapes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <thread>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;

namespace {

using xgrad::testing::contains;
using xgrad::testing::message_of;

class TapeTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_tape(); }
  void TearDown() override { clear_tape(); }
};

TEST_F(TapeTest, ParameterGradientsAccumulateAcrossBackwardPasses) {
  auto w = param(A{1.0, 2.0, 3.0});
  sum(w * w).backward();  // d/dw = 2w
  EXPECT_EQ(w.grad(), (A{2.0, 4.0, 6.0}));
  clear_tape();
  sum(w * 3.0).backward();  // adds 3
  EXPECT_EQ(w.grad(), (A{5.0, 7.0, 9.0}));
  w.zero_grad();
  EXPECT_EQ(w.grad(), (A{0.0, 0.0, 0.0}));
}

TEST_F(TapeTest, BackwardTwiceOnOneGraphAddsTwiceToParametersOnly) {
  auto w = param(A{1.0, -1.0});
  auto h = tanh(w).retain_grad();
  auto loss = sum(h * 2.0);
  loss.backward();
  const A first_w = w.grad();
  const A first_h = h.grad();
  loss.backward();
  EXPECT_TRUE(xt::all(xt::equal(w.grad(), 2.0 * first_w)));
  EXPECT_TRUE(xt::all(xt::equal(h.grad(), first_h)));  // intermediate gradients are per sweep
}

// Intermediate gradients go back to the tape's pool once used, unless retain_grad() was asked:
// reading one then is an error, not a silent zero.
TEST_F(TapeTest, IntermediateGradientsAreKeptOnlyWhenRetained) {
  auto w = param(A{0.5, 2.0});
  auto kept = (w * 3.0).retain_grad();
  auto dropped = tanh(kept);
  auto loss = sum(dropped * dropped);
  loss.backward();
  const A t = xt::tanh(A{1.5, 6.0});
  EXPECT_NEAR(kept.grad()(0), 2 * t(0) * (1 - t(0) * t(0)), 1e-15);
  const std::string msg = message_of<ValueError>([&] { dropped.grad(); });
  EXPECT_TRUE(contains(msg, "tanh") && contains(msg, "tape position 1") && contains(msg, "retain_grad")) << msg;
  EXPECT_NEAR(w.grad()(0), 3 * kept.grad()(0), 1e-15);
}

// Gradient buffers are pooled: a sweep over an unrolled recurrence of 100 steps needs only the
// gradients still waiting to be propagated, a few (4, 16) buffers, not one per node.
TEST_F(TapeTest, GradientMemoryOfASweepIsPooled) {
  auto W = param<double>(xt::ones<double>({16, 16}) * 0.01);
  Tape<double>& tape = Tape<double>::current();
  tape.release();
  Var<double> a = constant<double>(xt::ones<double>({4, 16}));
  for (int t = 0; t < 100; ++t) a = tanh(matmul_nt(a, W));
  auto loss = sum(a);
  const std::size_t before = tape.memory_bytes();
  loss.backward();
  const std::size_t after = tape.memory_bytes();
  std::size_t held = 0;
  for (std::size_t i = 0; i < tape.size(); ++i) held += tape.node(i).grad.size();
  EXPECT_EQ(held, 0u);  // every node handed its buffer back
  const std::size_t buffer = 4 * 16 * sizeof(double);
  // Besides the pooled buffers, the rows of W's batched gradient (bounded by Tape::kBatchBytes).
  EXPECT_GT(tape.batch_bytes(), 0u);
  EXPECT_LE(tape.batch_bytes(), Tape<double>::kBatchBytes);
  EXPECT_LE(after - tape.batch_bytes(), before + 4 * buffer) << "one buffer per node would add " << 200 * buffer;
}

TEST_F(TapeTest, NoGradGuardRecordsNothing) {
  auto w = param(A{0.5, 1.5});
  const std::size_t before = Tape<double>::current().size();
  Var<double> y;
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(grad_enabled());
    y = tanh(w * 2.0) + w;
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_EQ(Tape<double>::current().size(), before);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_NEAR(y.value()(1), std::tanh(3.0) + 1.5, 1e-15);
  clear_tape();
  EXPECT_NEAR(y.value()(0), std::tanh(1.0) + 0.5, 1e-15);  // outlives the tape
}

TEST_F(TapeTest, DetachStopsGradientAndSurvivesClear) {
  auto w = param(A{2.0});
  auto h = w * w;
  auto d = h.detach();
  EXPECT_FALSE(d.requires_grad());
  auto loss = sum(h + d * w);  // d/dw = 2w + d = 4 + 4
  loss.backward();
  EXPECT_DOUBLE_EQ(w.grad()(0), 8.0);
  clear_tape();
  EXPECT_DOUBLE_EQ(d.value()(0), 4.0);  // truncated BPTT carries state this way
  EXPECT_THROW(h.value(), StaleHandleError);
}

TEST_F(TapeTest, StaleHandleThrowsInsteadOfReadingFreedMemory) {
  auto w = param(A{1.0, 2.0});
  auto y = w * 2.0;
  clear_tape();
  auto z = w * 5.0;  // reuses y's node storage
  const std::string msg = message_of<StaleHandleError>([&] { y.value(); });
  EXPECT_TRUE(contains(msg, "stale")) << msg;
  EXPECT_TRUE(contains(msg, "detach")) << msg;
  EXPECT_THROW(y + z, StaleHandleError);
  EXPECT_THROW(y.backward(), StaleHandleError);
  EXPECT_THROW(Var<double>().value(), StaleHandleError);
  EXPECT_EQ(z.value(), (A{5.0, 10.0}));
}

TEST_F(TapeTest, StaleHandleErrorNamesTheOpOrAccessorThatMetIt) {
  auto w = param(A{1.0, 2.0});
  auto y = w * 2.0;
  auto m = reshape(w, {1, 2});
  clear_tape();
  const std::string op = message_of<StaleHandleError>([&] { tanh(y); });
  EXPECT_TRUE(contains(op, "tanh: stale handle: its tape was cleared (generation ")) << op;
  EXPECT_TRUE(contains(op, ", tape at ")) << op;
  EXPECT_TRUE(contains(op, "detach")) << op;
  // Ops whose checks read their inputs before recording name themselves too.
  const std::vector<std::pair<std::string, std::function<void()>>> uses = {
      {"add: stale", [&] { w + y; }},
      {"matmul: stale", [&] { matmul(y, w); }},
      {"sum: stale", [&] { sum(y, 0); }},
      {"concat: stale", [&] { concat({w, y}, 0); }},
      {"mse_loss: stale", [&] { mse_loss(w, y); }},
      {"cross_entropy: stale", [&] { cross_entropy(m, {0}); }},
      {"value: stale", [&] { y.value(); }},
      {"grad: stale", [&] { y.grad(); }},
      {"shape: stale", [&] { y.shape(); }},
      {"backward: stale", [&] { y.backward(); }},
      {"detach: stale", [&] { y.detach(); }},
      {"value: use of an empty Var", [&] { Var<double>().value(); }},
  };
  for (const auto& [words, use] : uses) {
    const std::string msg = message_of<StaleHandleError>(use);
    EXPECT_TRUE(contains(msg, words)) << words << " | " << msg;
  }
}

TEST_F(TapeTest, BackwardOnNonScalarThrowsWithShape) {
  auto w = param(A{{1.0, 2.0}, {3.0, 4.0}});
  auto y = w * 2.0;
  const std::string msg = message_of<ValueError>([&] { y.backward(); });
  EXPECT_TRUE(contains(msg, "backward")) << msg;
  EXPECT_TRUE(contains(msg, "(2, 2)")) << msg;
  EXPECT_EQ(w.grad(), (A{{0.0, 0.0}, {0.0, 0.0}}));
  auto c = sum(constant(A{1.0}) * 2.0);
  EXPECT_TRUE(contains(message_of<ValueError>([&] { c.backward(); }), "does not depend on any parameter"));
}

TEST_F(TapeTest, SetValueChecksShape) {
  auto w = param(A{{1.0, 2.0}});
  w.set_value(A{{5.0, 6.0}});
  EXPECT_EQ(w.value(), (A{{5.0, 6.0}}));
  const std::string msg = message_of<ShapeError>([&] { w.set_value(A{1.0, 2.0, 3.0}); });
  EXPECT_TRUE(contains(msg, "(3,)") && contains(msg, "(1, 2)")) << msg;
  EXPECT_EQ(w.value(), (A{{5.0, 6.0}}));
  EXPECT_THROW(constant(A{1.0}).set_value(A{2.0}), ValueError);
}

// A training step on a fixed-shape graph: after the first step the tape allocates nothing
// more, however many steps follow.
TEST_F(TapeTest, ThousandStepsDoNotGrowTheTape) {
  auto W = param<float>(xt::ones<float>({8, 4}) * 0.1f);
  auto b = param<float>(xt::zeros<float>({8}));
  Array<float> x = xt::ones<float>({3, 4});
  auto step = [&] {
    Var<float> a = constant<float>(xt::zeros<float>({3, 8}));
    for (int t = 0; t < 5; ++t) a = tanh(linear(constant(x), W, b) + a);
    auto loss = cross_entropy(a, {0, 1, 2});
    loss.backward();
    for (auto& p : {W, b}) {
      p.mutable_value() -= 0.01f * p.grad();
      p.zero_grad();
    }
    clear_tape();
  };
  step();
  const std::size_t bytes = Tape<float>::current().memory_bytes();
  EXPECT_GT(bytes, 0u);
  for (int i = 0; i < 1000; ++i) step();
  EXPECT_EQ(Tape<float>::current().memory_bytes(), bytes);
  Tape<float>::current().release();
  EXPECT_LT(Tape<float>::current().memory_bytes(), bytes);
}

TEST_F(TapeTest, TapeKeepsParametersItUsesAlive) {
  Var<double> loss;
  std::weak_ptr<Leaf<double>> watch;
  {
    auto w = param(A{3.0});
    watch = w.leaf();
    loss = sum(w * w);
  }
  EXPECT_FALSE(watch.expired());
  loss.backward();
  EXPECT_DOUBLE_EQ(watch.lock()->grad(0), 6.0);
  clear_tape();
  EXPECT_TRUE(watch.expired());
}

TEST_F(TapeTest, AnomalyModeNamesTheOpAndPosition) {
  auto w = param(A{-1.0, 4.0});
  {
    DetectAnomaly guard;
    auto y = w * 1.0;
    const std::string msg = message_of<AnomalyError>([&] { log(y); });
    EXPECT_TRUE(contains(msg, "log")) << msg;
    EXPECT_TRUE(contains(msg, "tape position 1")) << msg;
    EXPECT_TRUE(contains(msg, "forward")) << msg;
    EXPECT_TRUE(contains(msg, "(2,)")) << msg;
  }
  clear_tape();
  {
    // sqrt(0) is finite forward but its gradient is infinite.
    DetectAnomaly guard;
    auto z = param(A{0.0, 1.0});
    auto loss = sum(sqrt(z));
    const std::string msg = message_of<AnomalyError>([&] { loss.backward(); });
    EXPECT_TRUE(contains(msg, "sqrt")) << msg;
    EXPECT_TRUE(contains(msg, "gradient")) << msg;
  }
  // Off by default: NaN flows silently.
  clear_tape();
  EXPECT_FALSE(anomaly_enabled());
  EXPECT_TRUE(std::isnan(log(w).value()(0)));
}

TEST_F(TapeTest, DotExportShowsOpsShapesAndParameters) {
  auto W = param(A{{1.0, 2.0}, {3.0, 4.0}});
  auto x = constant(A{{1.0, 1.0}});
  auto unused = x * 3.0;
  auto loss = sum(tanh(matmul(x, W)));
  const std::string dot = to_dot(loss, {{"W", W}});
  EXPECT_TRUE(contains(dot, "digraph")) << dot;
  EXPECT_TRUE(contains(dot, "matmul")) << dot;
  EXPECT_TRUE(contains(dot, "tanh")) << dot;
  EXPECT_TRUE(contains(dot, "sum")) << dot;
  EXPECT_TRUE(contains(dot, "W\\n(2, 2)")) << dot;
  EXPECT_TRUE(contains(dot, "lightblue")) << dot;
  EXPECT_FALSE(contains(dot, "affine")) << dot;  // `unused` is not on the path to loss
}

TEST_F(TapeTest, GradcheckReportsTheWorstElement) {
  // A deliberately wrong "gradient": f uses detach on half of the expression.
  auto f = [](const std::vector<Var<double>>& v) { return sum(v[0] * v[0].detach()); };
  const GradcheckResult r = gradcheck(f, {A{0.1, 3.0}});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.index, 1u);  // analytic 3 against numeric 6; element 0 is off by only 0.1
  EXPECT_NEAR(r.analytic, 3.0, 1e-12);
  EXPECT_NEAR(r.numeric, 6.0, 1e-6);
  EXPECT_TRUE(contains(r.report(), "FAILED"));
}

TEST_F(TapeTest, EachThreadRecordsOnItsOwnTape) {
  auto train = [](double start) {
    auto w = param(A{start});
    for (int i = 0; i < 200; ++i) {
      auto loss = sum(square(w - 1.0));
      loss.backward();
      w.mutable_value() -= 0.1 * w.grad();
      w.zero_grad();
      clear_tape();
    }
    return w.value()(0);
  };
  const double alone_a = train(5.0), alone_b = train(-3.0);
  double a = 0, b = 0;
  std::thread ta([&] { a = train(5.0); }), tb([&] { b = train(-3.0); });
  ta.join();
  tb.join();
  EXPECT_EQ(a, alone_a);
  EXPECT_EQ(b, alone_b);
  // A handle from another thread's tape is refused.
  Var<double> foreign;
  std::thread([&] { foreign = param(A{1.0}) * 2.0; }).join();
  EXPECT_THROW(foreign + foreign, StaleHandleError);  // its thread and tape are gone
}

}  // namespace
