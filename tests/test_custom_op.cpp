// custom_op: a user's op recorded like a built-in: values and gradients (finite differences),
// no-grad, the closure's lifetime on the tape, anomaly detection, graph export, threads, and
// the errors of a wrong backward, a throwing forward and a stale input.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <thread>

#include <xgrad/autograd/custom_op.hpp>
#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;

namespace {

using xgrad::testing::contains;
using xgrad::testing::message_of;

class CustomOp : public ::testing::Test {
 protected:
  void SetUp() override { clear_tape(); }
  void TearDown() override { clear_tape(); }
};

// softplus(x) = log(1 + eˣ), d/dx = σ(x), written as a user would.
Var<double> softplus_op(const Var<double>& x) {
  return custom_op<double>(
      "softplus", {x}, [](const auto& in) { return Array<double>(xt::log1p(xt::exp(in[0]))); },
      [](const auto& grad, const auto& in, const auto&) {
        return std::vector<Array<double>>{grad / (1.0 + xt::exp(-in[0]))};
      });
}

TEST_F(CustomOp, SoftplusValueAndGradient) {
  auto x = param(A{{-2.0, 0.0, 1.5}, {3.0, -0.5, 0.25}});
  auto y = softplus_op(x);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_TRUE(xt::allclose(y.value(), xt::log1p(xt::exp(x.value())), 1e-15, 1e-15));
  sum(y * y).backward();  // d/dx = 2 y σ(x)
  const A expected = 2.0 * y.value() / (1.0 + xt::exp(-x.value()));
  EXPECT_TRUE(xt::allclose(x.grad(), expected, 1e-14, 1e-14));
}

TEST_F(CustomOp, GradcheckPassesInsideALargerGraph) {
  // Inputs that are tape nodes (their gradient buffers come from the pool), a captured
  // constant and a captured array, two inputs of different shapes with broadcasting after.
  const double scale = 0.7;
  const A weights = {0.5, -1.25, 2.0};  // (3,)
  auto f = [&](const std::vector<Var<double>>& v) {
    // y = scale · weights ∘ a ∘ b, a (2, 3), b (3,) broadcast over the rows
    auto a = tanh(v[0] * 2.0);
    auto b = v[1] + 0.5;
    auto y = custom_op<double>(
        "scaled_product", {a, b},
        [scale, weights](const auto& in) { return Array<double>(scale * weights * in[0] * in[1]); },
        [scale, weights](const auto& grad, const auto& in, const auto&) {
          A ga = scale * weights * grad * in[1];
          A gb = xt::sum(scale * weights * grad * in[0], {0});
          return std::vector<Array<double>>{ga, gb};
        });
    return sum(square(y) + y);
  };
  const GradcheckResult r = gradcheck(f, {A{{0.3, -0.2, 0.9}, {-1.1, 0.4, 0.05}}, A{1.5, -0.3, 0.8}});
  EXPECT_TRUE(r.ok) << r.report();
  EXPECT_LT(r.error, 1e-8) << r.report();
}

TEST_F(CustomOp, InputsAsAVectorAndNoGradientForOneInput) {
  auto x = param(A{1.0, 2.0});
  auto k = param(A{3.0, 4.0});
  std::vector<Var<double>> inputs = {x, k};
  // y = x ∘ k, differentiated with respect to x only.
  auto y = custom_op(
      "x_times_k", inputs, [](const auto& in) { return Array<double>(in[0] * in[1]); },
      [](const auto& grad, const auto& in, const auto&) {
        return std::vector<Array<double>>{grad * in[1], no_gradient<double>()};
      });
  sum(y).backward();
  EXPECT_EQ(x.grad(), (A{3.0, 4.0}));
  EXPECT_EQ(k.grad(), (A{0.0, 0.0}));
}

TEST_F(CustomOp, FloatOpsRecordToo) {
  auto x = param(Array<float>{1.0f, -2.0f});
  auto y = custom_op<float>(
      "cube", {x}, [](const auto& in) { return Array<float>(in[0] * in[0] * in[0]); },
      [](const auto& grad, const auto& in, const auto&) {
        return std::vector<Array<float>>{3.0f * grad * in[0] * in[0]};
      });
  sum(y).backward();
  EXPECT_EQ(x.grad(), (Array<float>{3.0f, 12.0f}));
}

TEST_F(CustomOp, BackwardTwiceOnOneGraphRunsTheClosureTwice) {
  auto x = param(A{2.0});
  int runs = 0;
  auto y = custom_op<double>(
      "counted", {x}, [](const auto& in) { return Array<double>(in[0] * 5.0); },
      [&runs](const auto& grad, const auto&, const auto&) {
        ++runs;
        return std::vector<Array<double>>{grad * 5.0};
      });
  auto loss = sum(y);
  loss.backward();
  loss.backward();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(x.grad(), (A{10.0}));
}

// The closure, with what it captured, lives on the tape until clear_tape() and no longer.
TEST_F(CustomOp, TapeKeepsTheClosureUntilClearTape) {
  auto token = std::make_shared<int>(0);
  auto x = param(A{1.0, 2.0});
  auto record = [&] {
    return custom_op<double>(
        "captures", {x}, [](const auto& in) { return Array<double>(in[0] * 2.0); },
        [token](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad * 2.0}; });
  };
  for (int step = 0; step < 3; ++step) {
    auto y = record();
    EXPECT_EQ(token.use_count(), 2);  // ours and the tape's
    sum(y).backward();
    EXPECT_EQ(token.use_count(), 2);
    clear_tape();
    EXPECT_EQ(token.use_count(), 1);  // freed with the tape's generation
  }
  record();
  Tape<double>::current().release();
  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(CustomOp, UnderNoGradNothingIsKept) {
  auto token = std::make_shared<int>(0);
  auto x = param(A{1.0, 2.0});
  const std::size_t before = Tape<double>::current().size();
  int backward_runs = 0;
  Var<double> y;
  {
    NoGradGuard no_grad;
    y = custom_op<double>(
        "captures", {x}, [](const auto& in) { return Array<double>(in[0] * 2.0); },
        [token, &backward_runs](const auto& grad, const auto&, const auto&) {
          ++backward_runs;
          return std::vector<Array<double>>{grad * 2.0};
        });
  }
  EXPECT_EQ(Tape<double>::current().size(), before);
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
  EXPECT_EQ(y.value(), (A{2.0, 4.0}));
  EXPECT_EQ(backward_runs, 0);
}

TEST_F(CustomOp, NameOutlivesTheCallersString) {
  auto x = param(A{1.0});
  Var<double> y;
  {
    std::string name = std::string("my_") + "scaled";  // destroyed before to_dot reads the tape
    y = custom_op<double>(
        name, {x}, [](const auto& in) { return Array<double>(in[0] * 3.0); },
        [](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad * 3.0}; });
  }
  const std::string dot = to_dot(sum(y), {{"x", x}});
  EXPECT_TRUE(contains(dot, "my_scaled #0")) << dot;
  EXPECT_TRUE(contains(dot, "x\\n(1,)")) << dot;
}

TEST_F(CustomOp, AnomalyModeNamesTheCustomOp) {
  auto x = param(A{-1.0, 4.0});
  auto y = x * 1.0;
  {
    DetectAnomaly guard;
    const std::string msg = message_of<AnomalyError>([&] {
      custom_op<double>(
          "my_log", {y}, [](const auto& in) { return Array<double>(xt::log(in[0])); },
          [](const auto& grad, const auto& in, const auto&) { return std::vector<Array<double>>{grad / in[0]}; });
    });
    EXPECT_TRUE(contains(msg, "my_log")) << msg;
    EXPECT_TRUE(contains(msg, "tape position 1")) << msg;
    EXPECT_TRUE(contains(msg, "forward")) << msg;
  }
  clear_tape();
  {
    // Finite forward, infinite gradient: d√x/dx at 0.
    DetectAnomaly guard;
    auto z = param(A{0.0, 1.0});
    auto loss = sum(custom_op<double>(
        "my_sqrt", {z}, [](const auto& in) { return Array<double>(xt::sqrt(in[0])); },
        [](const auto& grad, const auto&, const auto& out) { return std::vector<Array<double>>{grad / (2.0 * out)}; }));
    const std::string msg = message_of<AnomalyError>([&] { loss.backward(); });
    EXPECT_TRUE(contains(msg, "my_sqrt")) << msg;
    EXPECT_TRUE(contains(msg, "tape position 0")) << msg;
    EXPECT_TRUE(contains(msg, "gradient")) << msg;
  }
}

TEST_F(CustomOp, WrongNumberOfGradientsIsAShapeErrorThatChangesNoGradient) {
  auto x = param(A{1.0, 2.0});
  auto y = custom_op<double>(
      "two_grads", {x}, [](const auto& in) { return Array<double>(in[0]); },
      [](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad, grad}; });
  auto loss = sum(y);
  XGRAD_EXPECT_THROW_MSG(loss.backward(), ShapeError, "two_grads", "returned 2 gradients", "1 inputs");
  EXPECT_EQ(x.grad(), (A{0.0, 0.0}));
}

TEST_F(CustomOp, WrongGradientShapeIsAShapeErrorNamingInputAndShapes) {
  auto a = param(A{1.0, 2.0, 3.0});
  auto b = param(A{{1.0, 2.0}, {3.0, 4.0}});
  auto y = custom_op<double>(
      "bad_shape", {a, b}, [](const auto& in) { return Array<double>(xt::sum(in[0]) + xt::sum(in[1])); },
      [](const auto& grad, const auto& in, const auto&) {
        return std::vector<Array<double>>{xt::ones_like(in[0]) * grad, A{1.0, 1.0}};
      });
  XGRAD_EXPECT_THROW_MSG(y.backward(), ShapeError, "bad_shape", "input 1", "(2,)", "(2, 2)");
  EXPECT_EQ(a.grad(), (A{0.0, 0.0, 0.0}));  // input 0's gradient was right, but nothing was added
  // A default-constructed Array (0-d) meant as "no gradient" gets a hint.
  clear_tape();
  auto z = custom_op<double>(
      "zero_d", {a}, [](const auto& in) { return Array<double>(xt::sum(in[0])); },
      [](const auto&, const auto&, const auto&) { return std::vector<Array<double>>{Array<double>()}; });
  XGRAD_EXPECT_THROW_MSG(z.backward(), ShapeError, "zero_d", "input 0", "()", "(3,)", "no_gradient()");
}

TEST_F(CustomOp, ThrowingForwardLeavesTheTapeUnchanged) {
  auto token = std::make_shared<int>(0);
  auto x = param(A{1.0});
  auto y = x * 2.0;
  const std::size_t before = Tape<double>::current().size();
  EXPECT_THROW(custom_op<double>(
                   "throws", {y}, [](const auto&) -> Array<double> { throw ValueError("throws: refused"); },
                   [token](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad}; }),
               ValueError);
  EXPECT_EQ(Tape<double>::current().size(), before);
  EXPECT_EQ(token.use_count(), 1);
  sum(y).backward();  // the graph before it still works
  EXPECT_EQ(x.grad(), (A{2.0}));
}

TEST_F(CustomOp, StaleInputIsAStaleHandleErrorNamingTheOp) {
  auto x = param(A{1.0});
  auto y = x * 2.0;
  clear_tape();
  int forward_runs = 0;
  XGRAD_EXPECT_THROW_MSG(custom_op<double>(
                             "late", {y},
                             [&forward_runs](const auto& in) {
                               ++forward_runs;
                               return Array<double>(in[0]);
                             },
                             [](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad}; }),
                         StaleHandleError, "late", "stale");
  EXPECT_EQ(forward_runs, 0);
  EXPECT_EQ(Tape<double>::current().size(), 0u);
}

TEST_F(CustomOp, InputsAtChecksTheIndex) {
  auto x = param(A{1.0});
  XGRAD_EXPECT_THROW_MSG(custom_op<double>(
                             "reads_too_far", {x}, [](const auto& in) { return Array<double>(in.at(1)); },
                             [](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad}; }),
                         IndexError, "input 1", "1 inputs");
  EXPECT_EQ(Tape<double>::current().size(), 0u);
}

// Each thread records its custom ops, with their own captured constants, on its own tape.
TEST_F(CustomOp, ThreadsEachRecordOnTheirOwnTape) {
  auto train = [](double factor) {
    auto w = param(A{1.0, -1.0});
    for (int i = 0; i < 100; ++i) {
      // loss = Σ (factor · w³)², d/dw = 6 factor² w⁵
      auto y = custom_op<double>(
          "scaled_cube", {w}, [factor](const auto& in) { return Array<double>(factor * in[0] * in[0] * in[0]); },
          [factor](const auto& grad, const auto& in, const auto&) {
            return std::vector<Array<double>>{3.0 * factor * grad * in[0] * in[0]};
          });
      sum(square(y)).backward();
      w.mutable_value() -= 0.01 * w.grad();
      w.zero_grad();
      clear_tape();
    }
    return A(w.value());
  };
  const A alone_a = train(0.5), alone_b = train(2.0);
  A a, b;
  std::thread ta([&] { a = train(0.5); }), tb([&] { b = train(2.0); });
  ta.join();
  tb.join();
  EXPECT_EQ(a, alone_a);
  EXPECT_EQ(b, alone_b);
  EXPECT_NE(alone_a, alone_b);
}

}  // namespace
