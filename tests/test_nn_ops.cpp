// The ops of autograd/nn_ops.hpp and the options of cross_entropy: forward values against a
// direct xtensor computation and gradients against central finite differences in double, over
// shapes with broadcasting and size-1 axes; the gradient at kinks and ties; dropout's masks;
// every error path, thrown before anything is recorded.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xio.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xsort.hpp>
#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "op_testing.hpp"
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Mask = xt::xarray<bool>;

// A fixed mask of `shape` with both values: every third element false, the pattern shifted
// by `shift`.
Mask pattern_mask(const Shape& shape, std::size_t shift = 0) {
  Mask m = Mask::from_shape(shape);
  std::size_t k = shift;
  for (auto& v : m) v = (k++ % 3) != 0;
  return m;
}

// a where mask, b elsewhere, all three broadcast. Through a 0/1 array of doubles: xt::where
// with a bool mask of fewer axes than the result picks the wrong entries (xtensor 0.24.3).
A where_ref(const Mask& mask, const A& a, const A& b) {
  const A m = xt::cast<double>(mask);
  return A(m * a + (1.0 - m) * b);
}

// Layer normalisation over the last axis, written with xtensor: x (..., n).
A layer_norm_ref(const A& x, double eps) {
  const std::size_t last = x.dimension() - 1;
  A mu = xt::mean(x, {last}, xt::keep_dims);
  A d = x - mu;
  A var = xt::mean(d * d, {last}, xt::keep_dims);
  return A(d / xt::sqrt(var + eps));
}

// x (m, n) with inverted dropout of probability p, the mask drawn as dropout draws it after
// nn::manual_seed(seed).
A dropout_ref(const A& x, double p, std::uint64_t seed) {
  nn::manual_seed(seed);
  std::bernoulli_distribution keep(1.0 - p);
  A y = x;
  for (double& v : y) v = keep(nn::generator()) ? v / (1.0 - p) : 0.0;
  return y;
}

// The LSTM ops written with xtensor: z (m, 4n) = [i | f | g | o].
A gate_block(const A& x, std::size_t k) {
  const std::size_t n = x.shape()[1] / 4;
  return xt::view(x, xt::all(), xt::range(k * n, (k + 1) * n));
}
A sigmoid_ref(const A& x) { return A(1.0 / (1.0 + xt::exp(-x))); }
A lstm_act_ref(const A& z) {
  return xt::concatenate(xt::xtuple(sigmoid_ref(gate_block(z, 0)), sigmoid_ref(gate_block(z, 1)),
                                    A(xt::tanh(gate_block(z, 2))), sigmoid_ref(gate_block(z, 3))),
                         1);
}
A lstm_memory_ref(const A& act, const A& c) {
  return A(gate_block(act, 1) * c + gate_block(act, 0) * gate_block(act, 2));
}
A lstm_hidden_ref(const A& act, const A& c) { return A(gate_block(act, 3) * xt::tanh(c)); }

// -log softmax of logits (N, C), per row and class.
A neg_log_softmax(const A& x) {
  A mx = xt::amax(x, {1}, xt::keep_dims);
  return A(-(x - mx - xt::log(A(xt::sum(xt::exp(x - mx), {1}, xt::keep_dims)))));
}

// Cross-entropy of flat logits (N, C) written directly: each counted row's loss is
// (1 − ε)·nll[t] + ε/C·Σ_c nll[c]; then the reduction.
A cross_entropy_ref(const A& logits, const std::vector<int>& t, const CrossEntropyOptions& o) {
  const std::size_t C = logits.shape()[logits.dimension() - 1], N = logits.size() / C;
  A flat = xt::reshape_view(logits, {N, C});
  A nll = neg_log_softmax(flat);
  const double eps = o.label_smoothing();
  A per_row = xt::zeros<double>({N});
  double counted = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (t[i] == o.ignore_index()) continue;
    counted += 1;
    double smooth = 0;
    for (std::size_t c = 0; c < C; ++c) smooth += nll(i, c);
    per_row(i) = (1 - eps) * nll(i, std::size_t(t[i])) + eps / double(C) * smooth;
  }
  if (o.reduction() == Reduction::none) {
    Shape lead(logits.shape().begin(), logits.shape().end() - 1);
    return A(xt::reshape_view(per_row, lead));
  }
  const double total = xt::sum(per_row)();
  if (o.reduction() == Reduction::sum) return A(total);
  return A(counted > 0 ? total / counted : 0.0);
}

std::vector<OpCase> cases() {
  std::vector<OpCase> c;
  const std::vector<Shape> unary_shapes = {{3, 4}, {1, 5}, {2, 1, 3}, {7}, {}};
  auto unary = [&](const std::string& name, auto op, auto ref, Domain d) {
    for (const Shape& s : unary_shapes)
      c.push_back({name + "_" + shape_str(s), {s}, d, [op](const Vars& v) { return op(v[0]); },
                   [ref](const std::vector<A>& x) { return A(ref(x[0])); }});
  };
  // Elementwise; abs, clamp and leaky_relu over domains that keep clear of their kinks.
  unary("pow2", [](auto a) { return pow(a, 2.0); }, [](const A& a) { return A(a * a); }, Domain::any);
  unary("pow3", [](auto a) { return pow(a, 3.0); }, [](const A& a) { return A(a * a * a); }, Domain::any);
  unary("pow_minus1", [](auto a) { return pow(a, -1.0); }, [](const A& a) { return A(1.0 / a); },
        Domain::away_from_zero);
  unary("pow_half", [](auto a) { return pow(a, 0.5); }, [](const A& a) { return A(xt::sqrt(a)); }, Domain::positive);
  unary("pow_2_5", [](auto a) { return pow(a, 2.5); }, [](const A& a) { return A(xt::pow(a, 2.5)); },
        Domain::positive);
  unary("pow0", [](auto a) { return pow(a, 0.0); }, [](const A& a) { return A(xt::ones_like(a)); }, Domain::any);
  unary("abs", [](auto a) { return abs(a); }, [](const A& a) { return A(xt::abs(a)); }, Domain::away_from_zero);
  // Entries in ±[0.5, 2]: the negative ones clamped (no gradient), the positive ones inside.
  unary("clamp_low", [](auto a) { return clamp(a, -0.25, 3.0); }, [](const A& a) { return A(xt::clip(a, -0.25, 3.0)); },
        Domain::away_from_zero);
  unary("clamp_high", [](auto a) { return clamp(a, -3.0, 0.25); }, [](const A& a) { return A(xt::clip(a, -3.0, 0.25)); },
        Domain::away_from_zero);
  unary("clamp_point", [](auto a) { return clamp(a, 0.1, 0.1); }, [](const A& a) { return A(xt::clip(a, 0.1, 0.1)); },
        Domain::away_from_zero);
  unary("log1p", [](auto a) { return log1p(a); }, [](const A& a) { return A(xt::log1p(a)); }, Domain::positive);
  unary("softplus", [](auto a) { return softplus(a); }, [](const A& a) { return A(xt::log(1.0 + xt::exp(a))); },
        Domain::any);
  unary("log_sigmoid", [](auto a) { return log_sigmoid(a); },
        [](const A& a) { return A(xt::log(1.0 / (1.0 + xt::exp(-a)))); }, Domain::any);
  unary("leaky_relu", [](auto a) { return leaky_relu(a); },
        [](const A& a) { return A(xt::where(a > 0.0, a, 0.01 * a)); }, Domain::away_from_zero);
  unary("leaky_relu_slope", [](auto a) { return leaky_relu(a, 0.3); },
        [](const A& a) { return A(xt::where(a > 0.0, a, 0.3 * a)); }, Domain::away_from_zero);
  unary("gelu", [](auto a) { return gelu(a); }, [](const A& a) { return A(0.5 * a * (1.0 + xt::erf(a / std::sqrt(2.0)))); },
        Domain::any);

  // sum and mean along each axis, negative ones too, with and without keepdims.
  for (const Shape& s : std::vector<Shape>{{2, 3, 4}, {1, 5}, {3, 1}, {5}}) {
    const long d = static_cast<long>(s.size());
    for (long axis = -d; axis < d; ++axis)
      for (bool keep : {false, true}) {
        const std::size_t ax = static_cast<std::size_t>(axis < 0 ? axis + d : axis);
        const std::string tag = shape_str(s) + "_axis" + std::to_string(axis) + (keep ? "_keepdims" : "");
        c.push_back({"sum" + tag, {s}, Domain::any, [axis, keep](const Vars& v) { return sum(v[0], axis, keep); },
                     [ax, keep](const std::vector<A>& x) {
                       return keep ? A(xt::sum(x[0], {ax}, xt::keep_dims)) : A(xt::sum(x[0], {ax}));
                     }});
        c.push_back({"mean" + tag, {s}, Domain::any, [axis, keep](const Vars& v) { return mean(v[0], axis, keep); },
                     [ax, keep](const std::vector<A>& x) {
                       return keep ? A(xt::mean(x[0], {ax}, xt::keep_dims)) : A(xt::mean(x[0], {ax}));
                     }});
      }
  }
  c.push_back({"mean_2_3_4_axis1_no_keepdims_form", {{2, 3, 4}}, Domain::any,
               [](const Vars& v) { return mean(v[0], 1); },
               [](const std::vector<A>& x) { return A(xt::mean(x[0], {1})); }});
  // max and min along an axis (random entries: no ties).
  for (const auto& [s, axis] : std::vector<std::pair<Shape, long>>{
           {{3, 4}, 0}, {{3, 4}, 1}, {{3, 4}, -1}, {{2, 3, 4}, 1}, {{2, 3, 4}, -3}, {{1, 4}, 0}, {{5}, 0}}) {
    const std::size_t ax = static_cast<std::size_t>(axis < 0 ? axis + static_cast<long>(s.size()) : axis);
    const std::string tag = shape_str(s) + "_axis" + std::to_string(axis);
    c.push_back({"max" + tag, {s}, Domain::any, [axis = axis](const Vars& v) { return max(v[0], axis); },
                 [ax](const std::vector<A>& x) { return A(xt::amax(x[0], {ax})); }});
    c.push_back({"min" + tag, {s}, Domain::any, [axis = axis](const Vars& v) { return min(v[0], axis); },
                 [ax](const std::vector<A>& x) { return A(xt::amin(x[0], {ax})); }});
  }

  // where: mask, a and b broadcast together, the mask with fewer axes or size-1 ones.
  for (const auto& [sm, sa, sb] : std::vector<std::tuple<Shape, Shape, Shape>>{
           {{3, 4}, {3, 4}, {3, 4}},
           {{4}, {3, 4}, {3, 4}},
           {{3, 1}, {3, 4}, {4}},
           {{3, 4}, {1}, {3, 1}},
           {{2, 1, 4}, {3, 4}, {2, 3, 1}},
           {{1}, {2, 3}, {2, 3}},
           {{}, {2, 2}, {}}}) {
    const Mask mask = pattern_mask(sm, 1);
    c.push_back({"where_" + shape_str(sm) + "_" + shape_str(sa) + "_" + shape_str(sb), {sa, sb}, Domain::any,
                 [mask](const Vars& v) { return where(mask, v[0], v[1]); },
                 [mask](const std::vector<A>& x) { return where_ref(mask, x[0], x[1]); }});
  }
  // masked_fill: the mask broadcast to a's shape; filled entries get no gradient.
  for (const auto& [sa, sm] : std::vector<std::pair<Shape, Shape>>{
           {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 4}, {3, 1}}, {{3, 4}, {1}}, {{2, 3, 4}, {3, 4}}, {{2, 3, 4}, {2, 1, 4}}, {{}, {}}}) {
    const Mask mask = pattern_mask(sm);
    for (double value : {-30.0, 0.5})
      c.push_back({"masked_fill_" + shape_str(sa) + "_" + shape_str(sm) + (value < 0 ? "_minus_30" : "_0_5"), {sa},
                   Domain::any, [mask, value](const Vars& v) { return masked_fill(v[0], mask, value); },
                   [mask, value](const std::vector<A>& x) { return where_ref(mask, A(value), x[0]); }});
  }

  // layer_norm over the last axis, with weight and bias and without; one row, several rows, a
  // last axis of size 1 (x̂ = 0: y = bias, no gradient to x).
  for (const Shape& s : std::vector<Shape>{{3, 4}, {1, 5}, {2, 3, 4}, {4, 1}, {6}, {2, 2, 1}}) {
    const Shape wb{s.back()};
    c.push_back({"layer_norm_affine_" + shape_str(s), {s, wb, wb}, Domain::any,
                 [](const Vars& v) { return layer_norm(v[0], v[1], v[2]); },
                 [](const std::vector<A>& x) { return A(layer_norm_ref(x[0], 1e-5) * x[1] + x[2]); }});
    c.push_back({"layer_norm_" + shape_str(s), {s}, Domain::any, [](const Vars& v) { return layer_norm(v[0]); },
                 [](const std::vector<A>& x) { return layer_norm_ref(x[0], 1e-5); }});
  }
  c.push_back({"layer_norm_eps_0_1", {{3, 4}, {4}, {4}}, Domain::any,
               [](const Vars& v) { return layer_norm(v[0], v[1], v[2], 0.1); },
               [](const std::vector<A>& x) { return A(layer_norm_ref(x[0], 0.1) * x[1] + x[2]); }});

  // The LSTM ops, one row and several, n = 1 and more; composed, so act's gradient comes from
  // lstm_memory and lstm_hidden both (each writing its own columns, the other's zeroed or kept),
  // and z's from lstm_gates and another op.
  for (const auto& [m, n] : std::vector<std::pair<std::size_t, std::size_t>>{{3, 2}, {1, 1}, {2, 3}}) {
    const Shape gates{m, 4 * n}, state{m, n};
    const std::string tag = std::to_string(m) + "x" + std::to_string(n);
    c.push_back({"lstm_gates_" + tag, {gates}, Domain::any, [](const Vars& v) { return lstm_gates(v[0]); },
                 [](const std::vector<A>& x) { return lstm_act_ref(x[0]); }});
    c.push_back({"lstm_gates_plus_z_" + tag, {gates}, Domain::any, [](const Vars& v) { return lstm_gates(v[0]) + v[0]; },
                 [](const std::vector<A>& x) { return A(lstm_act_ref(x[0]) + x[0]); }});
    c.push_back({"lstm_memory_" + tag, {gates, state}, Domain::any,
                 [](const Vars& v) { return lstm_memory(v[0], v[1]); },
                 [](const std::vector<A>& x) { return lstm_memory_ref(x[0], x[1]); }});
    c.push_back({"lstm_hidden_" + tag, {gates, state}, Domain::any,
                 [](const Vars& v) { return lstm_hidden(v[0], v[1]); },
                 [](const std::vector<A>& x) { return lstm_hidden_ref(x[0], x[1]); }});
    c.push_back({"lstm_step_" + tag, {gates, state}, Domain::any,
                 [](const Vars& v) {
                   Var<double> act = lstm_gates(v[0]);
                   return lstm_hidden(act, lstm_memory(act, v[1]));
                 },
                 [](const std::vector<A>& x) {
                   const A act = lstm_act_ref(x[0]);
                   return lstm_hidden_ref(act, lstm_memory_ref(act, x[1]));
                 }});
    c.push_back({"lstm_hidden_then_memory_" + tag, {gates, state}, Domain::any,
                 [](const Vars& v) { return lstm_memory(v[0], lstm_hidden(v[0], v[1])); },
                 [](const std::vector<A>& x) { return lstm_memory_ref(x[0], lstm_hidden_ref(x[0], x[1])); }});
  }

  // dropout with the mask fixed by seeding before each evaluation; eval mode and p = 0: x.
  for (const Shape& s : std::vector<Shape>{{4, 5}, {2, 1, 3}, {1}}) {
    c.push_back({"dropout_p0_3_" + shape_str(s), {s}, Domain::any,
                 [](const Vars& v) {
                   nn::manual_seed(21);
                   return dropout(v[0], 0.3);
                 },
                 [](const std::vector<A>& x) { return dropout_ref(x[0], 0.3, 21); }});
  }
  c.push_back({"dropout_eval", {{3, 4}}, Domain::any, [](const Vars& v) { return dropout(v[0], 0.5, false); },
               [](const std::vector<A>& x) { return x[0]; }});
  c.push_back({"dropout_p0", {{3, 4}}, Domain::any, [](const Vars& v) { return dropout(v[0], 0.0); },
               [](const std::vector<A>& x) { return x[0]; }});
  return c;
}

}  // namespace

XGRAD_OP_TABLE_TESTS(NnOps, cases())

namespace {

// The gradient of Σ w ∘ f(x) at a fixed x, from backward.
A gradient_at(const std::function<Var<double>(const Var<double>&)>& f, const A& x, const A& w) {
  auto v = param(x);
  sum(f(v) * constant(w)).backward();
  A g = v.grad();
  clear_tape();
  return g;
}

// ------------------------------------------------------------------ kinks and ties

TEST(Kinks, GradientsAtTheKinksAreTheOneSidedChoice) {
  const A x = {-1.0, 0.0, 0.5, 1.0, 2.0};
  const A w = {1.0, 2.0, 3.0, 4.0, 5.0};
  // abs: sign(x), 0 at 0.
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return abs(v); }, x, w), (A{-1.0, 0.0, 3.0, 4.0, 5.0}));
  // clamp to [0, 1]: gradient 1 on the closed interval, bounds included.
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return clamp(v, 0.0, 1.0); }, x, w), (A{0.0, 2.0, 3.0, 4.0, 0.0}));
  // leaky_relu: the slope at 0 and below.
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return leaky_relu(v, 0.25); }, x, w),
            (A{0.25, 0.5, 3.0, 4.0, 5.0}));
}

TEST(Kinks, AwayFromTheKinksFixedArraysMatchFiniteDifferences) {
  // Entries on both sides of each kink, none within the finite-difference step of one.
  const A x = {{-1.7, -0.3, 0.2, 0.9}, {1.3, -0.05, 0.6, 2.2}};
  for (const auto& f : std::vector<std::function<Var<double>(const Var<double>&)>>{
           [](const Var<double>& v) { return abs(v); },
           [](const Var<double>& v) { return clamp(v, -0.5, 1.0); },
           [](const Var<double>& v) { return leaky_relu(v, 0.2); },
           [](const Var<double>& v) { return max(v, 1); },
           [](const Var<double>& v) { return min(v, 0); }}) {
    const GradcheckResult r = gradcheck([&](const Vars& v) { return sum(square(f(v[0]))); }, {x});
    EXPECT_TRUE(r.ok) << r.report();
    clear_tape();
  }
}

TEST(Ties, MaxAndMinSendTheGradientToTheFirstExtremeOnly) {
  const A x = {{1.0, 3.0, 3.0, 2.0}, {-1.0, -1.0, 0.0, -1.0}};
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return max(v, 1); }, x, A{2.0, 5.0}),
            (A{{0.0, 2.0, 0.0, 0.0}, {0.0, 0.0, 5.0, 0.0}}));
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return min(v, 1); }, x, A{2.0, 5.0}),
            (A{{2.0, 0.0, 0.0, 0.0}, {5.0, 0.0, 0.0, 0.0}}));
  // Along axis 0: max ties in column 0, min in column 1.
  const A y = {{2.0, 1.0}, {2.0, 1.0}, {0.0, 2.0}};
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return max(v, 0); }, y, A{3.0, 4.0}),
            (A{{3.0, 0.0}, {0.0, 0.0}, {0.0, 4.0}}));
  EXPECT_EQ(gradient_at([](const Var<double>& v) { return min(v, -2); }, y, A{3.0, 4.0}),
            (A{{0.0, 4.0}, {0.0, 0.0}, {3.0, 0.0}}));
}

TEST(Argmax, IsTheFirstLargestEntryAlongTheAxis) {
  const A x = {{1.0, 3.0, 3.0, 2.0}, {-1.0, -1.0, 0.0, -1.0}};
  auto v = constant(x);
  EXPECT_EQ(argmax(v, 1), (xt::xarray<std::size_t>{1, 2}));
  EXPECT_EQ(argmax(v, -2), (xt::xarray<std::size_t>{0, 0, 0, 0}));
  const A cube = {{{0.0, 5.0}, {4.0, 1.0}}, {{2.0, 2.0}, {7.0, -3.0}}};  // (2, 2, 2)
  EXPECT_EQ(argmax(constant(cube), 1), (xt::xarray<std::size_t>{{1, 0}, {1, 0}}));
  EXPECT_EQ(argmax(constant(cube), 0), (xt::xarray<std::size_t>{{1, 0}, {1, 0}}));
  EXPECT_EQ(argmax(constant(A{4.0, 9.0, 9.0}), 0), xt::xarray<std::size_t>(1));
}

TEST(Where, CallableWithMasksAndHandlesOfEveryValueCategory) {
  // xt::where is found too (through the mask); these calls must pick the op.
  Mask m = {true, false};
  const Mask cm = m;
  auto a = param(A{1.0, 2.0});
  const auto b = constant(A{5.0, 6.0});
  EXPECT_EQ(where(m, a, b).value(), (A{1.0, 6.0}));
  EXPECT_EQ(where(cm, b, a).value(), (A{5.0, 2.0}));
  EXPECT_EQ(where(Mask{false, true}, a * 2.0, b).value(), (A{5.0, 4.0}));
  EXPECT_EQ(where(std::move(m), a, a).value(), (A{1.0, 2.0}));
  clear_tape();
}

// ------------------------------------------------------------------ numerics

TEST(Softplus, StableForMagnitudesUpTo1e4) {
  for (double a : {1e4, -1e4, 800.0, -800.0, 30.0, -30.0}) {
    auto x = param(A{a});
    auto y = softplus(x);
    const double want = a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
    EXPECT_DOUBLE_EQ(y.value()(0), want) << a;
    y.backward();
    EXPECT_DOUBLE_EQ(x.grad()(0), 1.0 / (1.0 + std::exp(-a))) << a;
    clear_tape();
    auto z = param(A{a});
    auto ls = log_sigmoid(z);
    EXPECT_DOUBLE_EQ(ls.value()(0), -(a < 0 ? -a + std::log1p(std::exp(a)) : std::log1p(std::exp(-a)))) << a;
    ls.backward();
    EXPECT_DOUBLE_EQ(z.grad()(0), 1.0 / (1.0 + std::exp(a))) << a;
    clear_tape();
  }
  auto f = param(Array<float>{1e4f, -1e4f});
  auto y = softplus(f) + log_sigmoid(f);
  EXPECT_FLOAT_EQ(y.value()(0), 1e4f);
  EXPECT_FLOAT_EQ(y.value()(1), -1e4f);
  sum(y).backward();
  EXPECT_FLOAT_EQ(f.grad()(0), 1.0f);
  EXPECT_FLOAT_EQ(f.grad()(1), 1.0f);
  clear_tape();
}

TEST(Gelu, IsTheExactErfFormWithItsExactDerivative) {
  auto x = param(A{1.0, -2.0, 0.0});
  auto y = gelu(x);
  // Φ(1) = 0.8413447460685429, φ(1) = 0.24197072451914337; Φ(−2) = 0.022750131948179195,
  // φ(−2) = 0.05399096651318806.
  EXPECT_NEAR(y.value()(0), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(y.value()(1), -2 * 0.022750131948179195, 1e-15);
  EXPECT_EQ(y.value()(2), 0.0);
  sum(y).backward();
  EXPECT_NEAR(x.grad()(0), 0.8413447460685429 + 0.24197072451914337, 1e-15);
  EXPECT_NEAR(x.grad()(1), 0.022750131948179195 - 2 * 0.05399096651318806, 1e-15);
  EXPECT_NEAR(x.grad()(2), 0.5, 1e-15);
  clear_tape();
}

TEST(Float, NnOpsMatchDouble) {
  std::mt19937_64 gen(3);
  const A x = random_array({4, 6}, Domain::any, gen), w = random_array({6}, Domain::any, gen),
          b = random_array({6}, Domain::any, gen);
  const Mask mask = pattern_mask({4, 6});
  auto fd = [&](auto cx, auto cw, auto cb) {
    return masked_fill(gelu(layer_norm(cx, cw, cb)) + softplus(cx) + mean(cx, 1, true), mask, -2.0);
  };
  const A yd = fd(constant(x), constant(w), constant(b)).value();
  const Array<float> yf = fd(constant(Array<float>(xt::cast<float>(x))), constant(Array<float>(xt::cast<float>(w))),
                             constant(Array<float>(xt::cast<float>(b))))
                              .value();
  EXPECT_TRUE(close(xt::cast<double>(yf), yd, 1e-5));
  // The fused backward of layer_norm in float too.
  auto xd = param(x);
  auto xf = param(Array<float>(xt::cast<float>(x)));
  sum(square(layer_norm(xd, constant(w), constant(b)))).backward();
  sum(square(layer_norm(xf, constant(Array<float>(xt::cast<float>(w))), constant(Array<float>(xt::cast<float>(b))))))
      .backward();
  EXPECT_TRUE(close(xt::cast<double>(xf.grad()), xd.grad(), 1e-5));
  clear_tape();
}

// ------------------------------------------------------------------ LSTM ops

// One LSTM step from z (m, 4n) and c_prev (m, n), either through the three LSTM ops or composed
// of slice, sigmoid, tanh, * and + as the cells were written before them; returns a + 2·c so the
// gradients come through both.
template <class T>
Var<T> lstm_step(const Var<T>& z, const Var<T>& c_prev, bool fused) {
  if (fused) {
    Var<T> act = lstm_gates(z);
    Var<T> c = lstm_memory(act, c_prev);
    return lstm_hidden(act, c) + c * T(2);
  }
  const long n = static_cast<long>(c_prev.shape()[1]);
  Var<T> gi = sigmoid(slice(z, 1, 0, n)), gf = sigmoid(slice(z, 1, n, 2 * n));
  Var<T> gg = tanh(slice(z, 1, 2 * n, 3 * n)), go = sigmoid(slice(z, 1, 3 * n, 4 * n));
  Var<T> c = gf * c_prev + gi * gg;
  return go * tanh(c) + c * T(2);
}

// m rows of 4·n gates.
template <class T>
void expect_fused_equals_composed(std::size_t m, std::size_t n, double tol) {
  std::mt19937_64 gen(5);
  const Array<T> z0 = xt::cast<T>(random_array({m, 4 * n}, Domain::any, gen));
  const Array<T> c0 = xt::cast<T>(random_array({m, n}, Domain::any, gen));
  const Array<T> w = xt::cast<T>(random_array({m, n}, Domain::any, gen));
  Array<T> value[2], dz[2], dc[2];
  for (bool fused : {false, true}) {
    auto z = param(z0);
    auto c = param(c0);
    Var<T> y = lstm_step(z, c, fused);
    value[fused] = y.value();
    sum(y * constant(w)).backward();
    dz[fused] = z.grad();
    dc[fused] = c.grad();
    clear_tape();
  }
  EXPECT_TRUE(close(xt::cast<double>(value[1]), xt::cast<double>(value[0]), tol));
  EXPECT_TRUE(close(xt::cast<double>(dz[1]), xt::cast<double>(dz[0]), tol));
  EXPECT_TRUE(close(xt::cast<double>(dc[1]), xt::cast<double>(dc[0]), tol));
}

TEST(LstmOps, EqualTheComposedOpsInValueAndGradient) {
  // n = 33: blocks that do not start at a multiple of 8, and (in float) vmath's tails. 160 rows
  // of 4·128 are enough elements for the rows to be split over the library's threads.
  for (auto [m, n] : {std::pair<std::size_t, std::size_t>{40, 33}, {160, 128}}) {
    expect_fused_equals_composed<double>(m, n, 1e-14);
    expect_fused_equals_composed<float>(m, n, 1e-6);
  }
}

TEST(LstmOps, AStepIsThreeNodes) {
  clear_tape();
  auto z = param<double>(xt::zeros<double>({2, 8}));
  auto c = param<double>(xt::zeros<double>({2, 2}));
  Var<double> act = lstm_gates(z);
  lstm_hidden(act, lstm_memory(act, c));
  EXPECT_EQ(Tape<double>::current().size(), 3u);
  clear_tape();
}

// ------------------------------------------------------------------ dropout

TEST(Dropout, ZeroesAFractionPOfTheEntriesAndScalesTheRest) {
  nn::manual_seed(1);
  const double p = 0.3;
  auto x = constant<double>(xt::ones<double>({200, 500}));
  const A y = dropout(x, p).value();
  std::size_t zeros = 0;
  for (double v : y) {
    if (v == 0) {
      ++zeros;
    } else {
      EXPECT_DOUBLE_EQ(v, 1.0 / (1.0 - p));
    }
  }
  // 1e5 draws: the fraction of zeros within 4 standard deviations (0.00145 each) of p, and the
  // mean (the expectation is kept) within 4 of its own.
  EXPECT_NEAR(double(zeros) / double(y.size()), p, 4 * std::sqrt(p * (1 - p) / double(y.size())));
  EXPECT_NEAR(xt::mean(y)(), 1.0, 4 * std::sqrt(p / (1 - p) / double(y.size())));
  // Masks of consecutive calls differ.
  EXPECT_NE(dropout(x, p).value(), y);
  clear_tape();
}

TEST(Dropout, EvalModeAndPZeroAreTheIdentity) {
  clear_tape();
  auto x = param(A{{1.0, -2.0}, {3.0, 4.0}});
  auto h = x * 2.0;
  const std::size_t before = Tape<double>::current().size();
  auto e = dropout(h, 0.5, false);
  auto z = dropout(h, 0.0);
  EXPECT_EQ(Tape<double>::current().size(), before);
  EXPECT_EQ(e.value(), h.value());
  EXPECT_EQ(z.value(), h.value());
  sum(e + z).backward();
  EXPECT_EQ(x.grad(), (A{{4.0, 4.0}, {4.0, 4.0}}));
  clear_tape();
}

TEST(Dropout, GradientIsTheMaskTimesOneOverOneMinusP) {
  for (double p : {0.2, 0.5, 0.9}) {
    std::mt19937_64 gen(5);
    const A xv = random_array({30, 40}, Domain::away_from_zero, gen);
    const A w = random_array({30, 40}, Domain::any, gen);
    auto x = param(xv);
    auto y = dropout(x, p);
    sum(y * constant(w)).backward();
    const A kept = xt::cast<double>(xt::not_equal(y.value(), 0.0));
    EXPECT_TRUE(close(y.value(), kept * xv / (1 - p), 1e-15)) << p;
    EXPECT_TRUE(close(x.grad(), kept * w / (1 - p), 1e-15)) << p;
    EXPECT_GT(xt::sum(kept)(), 0.0);
    EXPECT_LT(xt::sum(kept)(), double(kept.size()));
    clear_tape();
  }
}

TEST(Dropout, PEqualToOneZeroesEverything) {
  auto x = param(A{1.0, 2.0, 3.0});
  auto y = dropout(x, 1.0);
  EXPECT_EQ(y.value(), (A{0.0, 0.0, 0.0}));
  sum(y).backward();
  EXPECT_EQ(x.grad(), (A{0.0, 0.0, 0.0}));
  clear_tape();
}

TEST(Dropout, ReproducibleFromManualSeed) {
  auto x = constant<double>(xt::ones<double>({8, 9}));
  nn::manual_seed(77);
  const A a = dropout(x, 0.4).value();
  const A a2 = dropout(x, 0.4).value();
  nn::manual_seed(77);
  EXPECT_EQ(dropout(x, 0.4).value(), a);
  EXPECT_EQ(dropout(x, 0.4).value(), a2);
  nn::manual_seed(78);
  EXPECT_NE(dropout(x, 0.4).value(), a);
  // Float draws the same masks.
  nn::manual_seed(77);
  const Array<float> f = dropout(constant<float>(xt::ones<float>({8, 9})), 0.4).value();
  EXPECT_EQ(xt::xarray<bool>(xt::not_equal(f, 0.0f)), xt::xarray<bool>(xt::not_equal(a, 0.0)));
  clear_tape();
}

// ------------------------------------------------------------------ cross-entropy options

TEST(CrossEntropyOptions, DefaultsAndSetters) {
  const CrossEntropyOptions d;
  EXPECT_EQ(d.ignore_index(), -100);
  EXPECT_EQ(d.reduction(), Reduction::mean);
  EXPECT_EQ(d.label_smoothing(), 0.0);
  const CrossEntropyOptions o = CrossEntropyOptions().ignore_index(3).reduction(Reduction::none).label_smoothing(0.25);
  EXPECT_EQ(o.ignore_index(), 3);
  EXPECT_EQ(o.reduction(), Reduction::none);
  EXPECT_EQ(o.label_smoothing(), 0.25);
}

// Forward against cross_entropy_ref and the gradient by finite differences, for logits of
// `shape`, over every reduction, with and without ignored rows and label smoothing.
void check_cross_entropy(const Shape& shape, const std::vector<int>& targets, const CrossEntropyOptions& base) {
  std::mt19937_64 gen(13);
  const A logits = random_array(shape, Domain::any, gen);
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    const CrossEntropyOptions o = CrossEntropyOptions(base).reduction(red);
    const std::string what = shape_str(shape) + " reduction " + std::to_string(int(red)) + " ignore " +
                             std::to_string(o.ignore_index()) + " smoothing " + std::to_string(o.label_smoothing());
    const A got = cross_entropy(constant(logits), targets, o).value();
    const A want = cross_entropy_ref(logits, targets, o);
    ASSERT_EQ(Shape(got.shape().begin(), got.shape().end()), Shape(want.shape().begin(), want.shape().end())) << what;
    EXPECT_TRUE(close(got, want, 1e-12)) << what << "\n got " << got << "\n want " << want;
    const A w = random_array(Shape(want.shape().begin(), want.shape().end()), Domain::any, gen);
    const GradcheckResult r = gradcheck(
        [&](const Vars& v) { return sum(cross_entropy(v[0], targets, o) * constant(w)); }, {logits});
    EXPECT_TRUE(r.ok) << what << ": " << r.report();
    EXPECT_LT(r.error, 1e-7) << what;
    clear_tape();
  }
}

TEST(CrossEntropyOptions, EachReductionMatchesADirectComputationAndFiniteDifferences) {
  check_cross_entropy({4, 5}, {1, 0, 4, 4}, CrossEntropyOptions());
  check_cross_entropy({1, 3}, {2}, CrossEntropyOptions());
  check_cross_entropy({2, 3, 4}, {3, 0, 1, 1, 2, 0}, CrossEntropyOptions());
}

TEST(CrossEntropyOptions, IgnoredTargetsCountForNothing) {
  check_cross_entropy({5, 4}, {1, -100, 3, -100, 0}, CrossEntropyOptions());
  check_cross_entropy({5, 4}, {1, 2, 3, 2, 0}, CrossEntropyOptions().ignore_index(2));
  check_cross_entropy({2, 3, 4}, {3, 7, 1, 7, 2, 0}, CrossEntropyOptions().ignore_index(7));
  // An ignored row gets no gradient, and the mean divides by the counted rows only.
  std::mt19937_64 gen(17);
  const A logits = random_array({3, 4}, Domain::any, gen);
  auto x = param(logits);
  auto loss = cross_entropy(x, {2, -100, 1}, CrossEntropyOptions());
  const A nll = neg_log_softmax(logits);
  EXPECT_NEAR(loss.value()(), (nll(0, 2) + nll(2, 1)) / 2, 1e-14);
  loss.backward();
  for (std::size_t c = 0; c < 4; ++c) EXPECT_EQ(x.grad()(1, c), 0.0);
  clear_tape();
}

TEST(CrossEntropyOptions, AllRowsIgnoredGiveZeroNotNaN) {
  auto x = param(A{{1.0, 2.0}, {0.5, -1.0}});
  for (Reduction red : {Reduction::mean, Reduction::sum}) {
    auto loss = cross_entropy(x, {-100, -100}, CrossEntropyOptions().reduction(red).label_smoothing(0.1));
    EXPECT_EQ(loss.value()(), 0.0);
    loss.backward();
    EXPECT_EQ(x.grad(), (A{{0.0, 0.0}, {0.0, 0.0}}));
    x.zero_grad();
    clear_tape();
  }
  auto none = cross_entropy(x, {-100, -100}, CrossEntropyOptions().reduction(Reduction::none));
  EXPECT_EQ(none.value(), (A{0.0, 0.0}));
  clear_tape();
}

TEST(CrossEntropyOptions, LabelSmoothing) {
  check_cross_entropy({4, 5}, {1, 0, 4, 4}, CrossEntropyOptions().label_smoothing(0.1));
  check_cross_entropy({4, 5}, {1, -100, 4, 2}, CrossEntropyOptions().label_smoothing(0.3));
  check_cross_entropy({2, 2, 3}, {0, 2, 5, 1}, CrossEntropyOptions().label_smoothing(0.9).ignore_index(5));
  // PyTorch's definition: equal logits give log C whatever the smoothing.
  auto uniform = cross_entropy(constant<double>(xt::zeros<double>({2, 4})), {1, 3},
                               CrossEntropyOptions().label_smoothing(0.4));
  EXPECT_NEAR(uniform.value()(), std::log(4.0), 1e-15);
  clear_tape();
}

TEST(CrossEntropyOptions, DefaultsAgreeWithTheTwoArgumentForm) {
  std::mt19937_64 gen(19);
  const A logits = random_array({6, 3}, Domain::any, gen);
  auto a = param(logits), b = param(logits);
  auto la = cross_entropy(a, {0, 2, 1, 1, 0, 2});
  auto lb = cross_entropy(b, {0, 2, 1, 1, 0, 2}, CrossEntropyOptions());
  EXPECT_DOUBLE_EQ(la.value()(), lb.value()());
  (la + lb).backward();
  EXPECT_TRUE(close(a.grad(), b.grad(), 1e-15));
  clear_tape();
}

TEST(CrossEntropyOptions, StableForLogitsOfMagnitude1e4) {
  auto x = param(A{{1e4, -1e4, 0.0}, {-1e4, 1e4, 5e3}});
  auto loss = cross_entropy(x, {0, 2}, CrossEntropyOptions().reduction(Reduction::sum).label_smoothing(0.1));
  // Row 0: 0.9·0 + 0.1/3·(0 + 2e4 + 1e4); row 1: 0.9·5e3 + 0.1/3·(2e4 + 0 + 5e3).
  EXPECT_NEAR(loss.value()(), 0.1 / 3 * 3e4 + 0.9 * 5e3 + 0.1 / 3 * 2.5e4, 1e-9);
  loss.backward();
  for (double g : x.grad()) EXPECT_TRUE(std::isfinite(g));
  clear_tape();
}

// ------------------------------------------------------------------ errors

TEST(NnOpErrors, AxesOutOfRangeAndEmptyAxes) {
  auto a = constant<double>(xt::zeros<double>({2, 3}));
  XGRAD_EXPECT_THROW_MSG(sum(a, 2, true), IndexError, "sum", "axis 2", "(2, 3)");
  XGRAD_EXPECT_THROW_MSG(sum(a, -3, false), IndexError, "sum", "axis -3");
  XGRAD_EXPECT_THROW_MSG(mean(a, 2), IndexError, "mean", "axis 2", "(2, 3)");
  XGRAD_EXPECT_THROW_MSG(mean(a, -3, true), IndexError, "mean", "axis -3");
  XGRAD_EXPECT_THROW_MSG(max(a, 2), IndexError, "max", "axis 2", "(2, 3)");
  XGRAD_EXPECT_THROW_MSG(min(a, -5), IndexError, "min", "axis -5");
  XGRAD_EXPECT_THROW_MSG(argmax(a, 3), IndexError, "argmax", "axis 3", "(2, 3)");
  XGRAD_EXPECT_THROW_MSG(max(constant<double>(A(2.0)), 0), IndexError, "max", "axis 0", "()");
  auto e = constant<double>(xt::zeros<double>({2, 0}));
  XGRAD_EXPECT_THROW_MSG(mean(e, 1), ValueError, "mean", "axis 1", "(2, 0)", "empty");
  XGRAD_EXPECT_THROW_MSG(max(e, -1), ValueError, "max", "(2, 0)", "empty");
  XGRAD_EXPECT_THROW_MSG(min(e, 1), ValueError, "min", "empty");
  XGRAD_EXPECT_THROW_MSG(argmax(e, 1), ValueError, "argmax", "empty");
  // Summing an empty axis is defined: zeros.
  EXPECT_EQ(sum(e, 1, false).value(), (A{0.0, 0.0}));
  clear_tape();
}

TEST(NnOpErrors, BadValues) {
  auto a = constant<double>(xt::zeros<double>({2, 3}));
  XGRAD_EXPECT_THROW_MSG(clamp(a, 1.5, -0.5), ValueError, "clamp", "lower bound 1.5", "upper bound -0.5");
  XGRAD_EXPECT_THROW_MSG(clamp(a, std::nan(""), 1.0), ValueError, "clamp");
  XGRAD_EXPECT_THROW_MSG(pow(a, std::numeric_limits<double>::infinity()), ValueError, "pow", "inf");
  XGRAD_EXPECT_THROW_MSG(dropout(a, -0.1), ValueError, "dropout", "[0, 1]", "-0.1");
  XGRAD_EXPECT_THROW_MSG(dropout(a, 1.5), ValueError, "dropout", "1.5");
  XGRAD_EXPECT_THROW_MSG(dropout(a, std::nan(""), false), ValueError, "dropout", "nan");
}

TEST(NnOpErrors, MasksThatDoNotBroadcast) {
  auto a = constant<double>(xt::zeros<double>({3, 4}));
  auto b = constant<double>(xt::zeros<double>({2, 4}));
  XGRAD_EXPECT_THROW_MSG(where(pattern_mask({2, 4}), a, a), ShapeError, "where", "(2, 4)", "(3, 4)");
  XGRAD_EXPECT_THROW_MSG(where(pattern_mask({4}), a, b), ShapeError, "where", "(3, 4)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(masked_fill(a, pattern_mask({3}), 0.0), ShapeError, "masked_fill", "(3,)", "(3, 4)");
  XGRAD_EXPECT_THROW_MSG(masked_fill(a, pattern_mask({2, 3, 4}), 0.0), ShapeError, "masked_fill", "(2, 3, 4)",
                         "(3, 4)", "does not broadcast");
  XGRAD_EXPECT_THROW_MSG(masked_fill(a, pattern_mask({3, 2}), 0.0), ShapeError, "masked_fill", "(3, 2)");
}

TEST(NnOpErrors, LayerNormShapesAndEps) {
  auto x = constant<double>(xt::zeros<double>({2, 4}));
  auto w = constant<double>(xt::ones<double>({4}));
  auto b = constant<double>(xt::zeros<double>({4}));
  XGRAD_EXPECT_THROW_MSG(layer_norm(x, 0.0), ValueError, "layer_norm", "eps", "got 0");
  XGRAD_EXPECT_THROW_MSG(layer_norm(x, w, b, -1e-5), ValueError, "layer_norm", "eps", "-1e-05");
  XGRAD_EXPECT_THROW_MSG(layer_norm(x, std::nan("")), ValueError, "layer_norm", "eps");
  XGRAD_EXPECT_THROW_MSG(layer_norm(x, constant<double>(xt::ones<double>({3})), b), ShapeError, "layer_norm",
                         "weight (3,)", "(2, 4)", "(4,)");
  XGRAD_EXPECT_THROW_MSG(layer_norm(x, w, constant<double>(xt::ones<double>({4, 1}))), ShapeError, "layer_norm",
                         "bias (4, 1)", "(2, 4)");
  XGRAD_EXPECT_THROW_MSG(layer_norm(constant<double>(A(1.0))), ShapeError, "layer_norm", "0-d");
  XGRAD_EXPECT_THROW_MSG(layer_norm(constant<double>(xt::zeros<double>({3, 0}))), ValueError, "layer_norm", "empty",
                         "(3, 0)");
}

TEST(NnOpErrors, LstmOpShapes) {
  auto zeros = [](Shape s) { return constant<double>(xt::zeros<double>(s)); };
  XGRAD_EXPECT_THROW_MSG(lstm_gates(zeros({3, 6})), ShapeError, "lstm_gates", "z must be (m, 4·n)", "(3, 6)");
  XGRAD_EXPECT_THROW_MSG(lstm_gates(zeros({8})), ShapeError, "lstm_gates", "(8,)");
  XGRAD_EXPECT_THROW_MSG(lstm_gates(zeros({2, 0})), ShapeError, "lstm_gates", "n > 0", "(2, 0)");
  XGRAD_EXPECT_THROW_MSG(lstm_gates(zeros({2, 2, 4})), ShapeError, "lstm_gates", "(2, 2, 4)");
  XGRAD_EXPECT_THROW_MSG(lstm_memory(zeros({3, 8}), zeros({3, 3})), ShapeError, "lstm_memory", "c_prev (3, 3)",
                         "act (3, 8)", "must be (3, 2)");
  XGRAD_EXPECT_THROW_MSG(lstm_memory(zeros({3, 8}), zeros({2, 2})), ShapeError, "lstm_memory", "c_prev (2, 2)");
  XGRAD_EXPECT_THROW_MSG(lstm_memory(zeros({3, 9}), zeros({3, 2})), ShapeError, "lstm_memory", "act must be",
                         "(3, 9)");
  XGRAD_EXPECT_THROW_MSG(lstm_hidden(zeros({3, 7}), zeros({3, 2})), ShapeError, "lstm_hidden", "act must be",
                         "(3, 7)");
  XGRAD_EXPECT_THROW_MSG(lstm_hidden(zeros({3, 8}), zeros({3, 2, 1})), ShapeError, "lstm_hidden", "c (3, 2, 1)",
                         "must be (3, 2)");
  XGRAD_EXPECT_THROW_MSG(lstm_hidden(zeros({3, 8}), zeros({6})), ShapeError, "lstm_hidden", "c (6,)");
}

TEST(NnOpErrors, CrossEntropyTargetsAndOptions) {
  auto x = constant<double>(xt::zeros<double>({3, 4}));
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {0, 4, 1}, CrossEntropyOptions()), IndexError, "cross_entropy",
                         "class id 4", "row 1", "4 classes");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {0, 1, -1}, CrossEntropyOptions()), IndexError, "class id -1", "row 2");
  // -100 is a class id like any other once ignore_index is changed.
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {-100, 1, 2}, CrossEntropyOptions().ignore_index(1)), IndexError,
                         "class id -100", "row 0");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {0, 1, 2}, CrossEntropyOptions().label_smoothing(1.0)), ValueError,
                         "cross_entropy", "label_smoothing", "[0, 1)", "got 1");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {0, 1, 2}, CrossEntropyOptions().label_smoothing(-0.1)), ValueError,
                         "label_smoothing", "-0.1");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {0, 1, 2}, CrossEntropyOptions().reduction(static_cast<Reduction>(7))),
                         ValueError, "cross_entropy", "reduction", "7");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(x, {0, 1}, CrossEntropyOptions()), ShapeError, "cross_entropy", "2 targets",
                         "(3, 4)");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(constant<double>(xt::zeros<double>({4})), {0}, CrossEntropyOptions()),
                         ShapeError, "cross_entropy", "(4,)");
}

TEST(NnOpErrors, AFailedOpLeavesTheTapeUnchanged) {
  clear_tape();
  auto p = param<double>(xt::ones<double>({2, 3}));
  auto y = p * 2.0;
  auto w3 = param<double>(xt::ones<double>({3}));
  const std::size_t before = Tape<double>::current().size();
  EXPECT_THROW(sum(y, 5, true), IndexError);
  EXPECT_THROW(mean(y, -4), IndexError);
  EXPECT_THROW(max(y, 2), IndexError);
  EXPECT_THROW(min(y, 2), IndexError);
  EXPECT_THROW(clamp(y, 2.0, 1.0), ValueError);
  EXPECT_THROW(pow(y, std::nan("")), ValueError);
  EXPECT_THROW(where(pattern_mask({3, 3}), y, y), ShapeError);
  EXPECT_THROW(where(pattern_mask({3}), y, constant<double>(xt::ones<double>({2, 2}))), ShapeError);
  EXPECT_THROW(masked_fill(y, pattern_mask({2, 2}), 0.0), ShapeError);
  EXPECT_THROW(layer_norm(y, w3, w3, 0.0), ValueError);
  EXPECT_THROW(layer_norm(y, param<double>(xt::ones<double>({2})), w3), ShapeError);
  EXPECT_THROW(dropout(y, 2.0), ValueError);
  EXPECT_THROW(cross_entropy(y, {0, 3}, CrossEntropyOptions()), IndexError);
  EXPECT_THROW(cross_entropy(y, {0, 1}, CrossEntropyOptions().label_smoothing(2.0)), ValueError);
  auto z = param<double>(xt::ones<double>({2, 8}));
  EXPECT_THROW(lstm_gates(y), ShapeError);
  EXPECT_THROW(lstm_memory(z, y), ShapeError);
  EXPECT_THROW(lstm_hidden(y, y), ShapeError);
  EXPECT_EQ(Tape<double>::current().size(), before);
  clear_tape();
}

TEST(NnOpErrors, StaleHandlesNameTheOp) {
  clear_tape();
  auto p = param<double>(xt::ones<double>({2, 3}));
  auto y = p * 2.0;
  clear_tape();
  XGRAD_EXPECT_THROW_MSG(layer_norm(y), StaleHandleError, "layer_norm");
  XGRAD_EXPECT_THROW_MSG(masked_fill(y, pattern_mask({3}), 0.0), StaleHandleError, "masked_fill");
  XGRAD_EXPECT_THROW_MSG(where(pattern_mask({3}), p, y), StaleHandleError, "where");
  XGRAD_EXPECT_THROW_MSG(dropout(y, 0.5), StaleHandleError, "dropout");
  XGRAD_EXPECT_THROW_MSG(mean(y, 0, true), StaleHandleError, "mean");
  XGRAD_EXPECT_THROW_MSG(cross_entropy(y, {0, 1}, CrossEntropyOptions()), StaleHandleError, "cross_entropy");
  XGRAD_EXPECT_THROW_MSG(lstm_gates(y), StaleHandleError, "lstm_gates");
  XGRAD_EXPECT_THROW_MSG(lstm_memory(y, p), StaleHandleError, "lstm_memory");
  XGRAD_EXPECT_THROW_MSG(lstm_hidden(p, y), StaleHandleError, "lstm_hidden");
}

}  // namespace
