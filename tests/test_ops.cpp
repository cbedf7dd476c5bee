// Every op: forward value against a direct xtensor computation, gradient against central
// finite differences in double, over several shapes including broadcasting and size-1 axes.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>

#include <xtensor/xmath.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xsort.hpp>
#include <xtensor/xview.hpp>
#include <xtensor-blas/xlinalg.hpp>

#include <xtensor/xio.hpp>

#include <xgrad/xgrad.hpp>

#include "op_testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {


std::vector<OpCase> cases() {
  std::vector<OpCase> c;
  auto binary = [&](const std::string& name, auto op, auto ref, Domain d = Domain::any) {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{5}, {1}}, {{1}, {2, 3}}, {{}, {2, 2}}};
    for (const auto& [sa, sb] : shapes)
      c.push_back({name + "_" + shape_str(sa) + "_" + shape_str(sb), {sa, sb}, d,
                   [op](const Vars& v) { return op(v[0], v[1]); },
                   [ref](const std::vector<A>& x) { return A(ref(x[0], x[1])); }});
  };
  binary("add", [](auto a, auto b) { return a + b; }, [](const A& a, const A& b) { return A(a + b); });
  binary("sub", [](auto a, auto b) { return a - b; }, [](const A& a, const A& b) { return A(a - b); });
  binary("mul", [](auto a, auto b) { return a * b; }, [](const A& a, const A& b) { return A(a * b); });
  binary("div", [](auto a, auto b) { return a / b; }, [](const A& a, const A& b) { return A(a / b); },
         Domain::away_from_zero);

  auto unary = [&](const std::string& name, auto op, auto ref, Domain d = Domain::any) {
    for (const Shape& s : std::vector<Shape>{{3, 4}, {1, 5}, {2, 1, 3}, {7}, {}})
      c.push_back({name + "_" + shape_str(s), {s}, d, [op](const Vars& v) { return op(v[0]); },
                   [ref](const std::vector<A>& x) { return A(ref(x[0])); }});
  };
  unary("neg", [](auto a) { return -a; }, [](const A& a) { return A(-a); });
  unary("tanh", [](auto a) { return tanh(a); }, [](const A& a) { return A(xt::tanh(a)); });
  unary("sigmoid", [](auto a) { return sigmoid(a); }, [](const A& a) { return A(1.0 / (1.0 + xt::exp(-a))); });
  unary("relu", [](auto a) { return relu(a); }, [](const A& a) { return A(xt::maximum(a, 0.0)); },
        Domain::away_from_zero);
  unary("exp", [](auto a) { return exp(a); }, [](const A& a) { return A(xt::exp(a)); });
  unary("log", [](auto a) { return log(a); }, [](const A& a) { return A(xt::log(a)); }, Domain::positive);
  unary("square", [](auto a) { return square(a); }, [](const A& a) { return A(a * a); });
  unary("sqrt", [](auto a) { return sqrt(a); }, [](const A& a) { return A(xt::sqrt(a)); }, Domain::positive);
  unary("add_scalar", [](auto a) { return a + 1.5; }, [](const A& a) { return A(a + 1.5); });
  unary("scalar_sub", [](auto a) { return 2 - a; }, [](const A& a) { return A(2.0 - a); });
  unary("mul_scalar", [](auto a) { return 3.0 * a; }, [](const A& a) { return A(3.0 * a); });
  unary("div_scalar", [](auto a) { return a / 4; }, [](const A& a) { return A(a / 4.0); });
  unary("scalar_div", [](auto a) { return 2.0 / a; }, [](const A& a) { return A(2.0 / a); }, Domain::away_from_zero);
  unary("sum", [](auto a) { return sum(a); }, [](const A& a) { return A(xt::sum(a)); });
  unary("mean", [](auto a) { return mean(a); }, [](const A& a) { return A(xt::mean(a)); });

  for (auto [m, k, n] : std::vector<std::array<std::size_t, 3>>{{3, 4, 5}, {1, 6, 1}, {4, 1, 3}}) {
    c.push_back({"matmul_" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n), {{m, k}, {k, n}},
                 Domain::any, [](const Vars& v) { return matmul(v[0], v[1]); },
                 [](const std::vector<A>& x) { return A(xt::linalg::dot(x[0], x[1])); }});
    c.push_back({"matmul_nt_" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n),
                 {{m, k}, {n, k}}, Domain::any, [](const Vars& v) { return matmul_nt(v[0], v[1]); },
                 [](const std::vector<A>& x) { return A(xt::linalg::dot(x[0], xt::transpose(x[1]))); }});
    c.push_back({"linear_" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n),
                 {{m, k}, {n, k}, {n}}, Domain::any, [](const Vars& v) { return linear(v[0], v[1], v[2]); },
                 [](const std::vector<A>& x) { return A(xt::linalg::dot(x[0], xt::transpose(x[1])) + x[2]); }});
  }
  for (auto [m, k, n] : std::vector<std::array<std::size_t, 3>>{{3, 4, 5}, {1, 6, 1}}) {
    c.push_back({"addmm_nt_" + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n),
                 {{m, n}, {m, k}, {n, k}}, Domain::any, [](const Vars& v) { return addmm_nt(v[0], v[1], v[2]); },
                 [](const std::vector<A>& x) { return A(x[0] + xt::linalg::dot(x[1], xt::transpose(x[2]))); }});
  }
  // One-hot rows (ids repeated, one class unused) times wᵀ, plus b: w (4, 5), b (4).
  c.push_back({"linear_onehot", {{4, 5}, {4}}, Domain::any,
               [](const Vars& v) { return linear_onehot({3, 0, 3, 1, 4, 1}, v[0], v[1]); },
               [](const std::vector<A>& x) {
                 const std::vector<int> ids = {3, 0, 3, 1, 4, 1};
                 A onehot = xt::zeros<double>({ids.size(), std::size_t(5)});
                 for (std::size_t i = 0; i < ids.size(); ++i) onehot(i, std::size_t(ids[i])) = 1;
                 return A(xt::linalg::dot(onehot, xt::transpose(x[0])) + x[1]);
               }});
  for (long axis : {0L, 1L, -1L}) {
    const std::string ax = std::to_string(axis);
    c.push_back({"sum_axis" + ax, {{3, 4}}, Domain::any, [axis](const Vars& v) { return sum(v[0], axis); },
                 [axis](const std::vector<A>& x) { return A(xt::sum(x[0], {axis < 0 ? 1 : axis})); }});
    c.push_back({"softmax_axis" + ax, {{3, 4}}, Domain::any, [axis](const Vars& v) { return softmax(v[0], axis); },
                 [axis](const std::vector<A>& x) {
                   const std::size_t a = axis < 0 ? 1 : axis;
                   A e = xt::exp(x[0]);
                   return A(e / A(xt::sum(e, {a}, xt::keep_dims)));
                 }});
    c.push_back({"log_softmax_axis" + ax, {{3, 4}}, Domain::any,
                 [axis](const Vars& v) { return log_softmax(v[0], axis); },
                 [axis](const std::vector<A>& x) {
                   const std::size_t a = axis < 0 ? 1 : axis;
                   return A(x[0] - xt::log(A(xt::sum(xt::exp(x[0]), {a}, xt::keep_dims))));
                 }});
  }
  c.push_back({"sum_axis1_3d", {{2, 3, 4}}, Domain::any, [](const Vars& v) { return sum(v[0], 1); },
               [](const std::vector<A>& x) { return A(xt::sum(x[0], {1})); }});
  c.push_back({"softmax_3d_axis1", {{2, 3, 2}}, Domain::any, [](const Vars& v) { return softmax(v[0], 1); },
               [](const std::vector<A>& x) {
                 A e = xt::exp(x[0]);
                 return A(e / A(xt::sum(e, {1}, xt::keep_dims)));
               }});
  c.push_back({"concat_axis0", {{2, 3}, {1, 3}, {3, 3}}, Domain::any,
               [](const Vars& v) { return concat(v, 0); },
               [](const std::vector<A>& x) { return A(xt::concatenate(xt::xtuple(x[0], x[1], x[2]), 0)); }});
  c.push_back({"concat_axis1_braced", {{2, 3}, {2, 1}}, Domain::any,
               [](const Vars& v) { return concat({v[0], v[1]}, 1); },
               [](const std::vector<A>& x) { return A(xt::concatenate(xt::xtuple(x[0], x[1]), 1)); }});
  c.push_back({"concat_3d_axis2", {{2, 2, 1}, {2, 2, 3}}, Domain::any, [](const Vars& v) { return concat(v, -1); },
               [](const std::vector<A>& x) { return A(xt::concatenate(xt::xtuple(x[0], x[1]), 2)); }});
  c.push_back({"slice_axis1", {{3, 5}}, Domain::any, [](const Vars& v) { return slice(v[0], 1, 1, 4); },
               [](const std::vector<A>& x) { return A(xt::view(x[0], xt::all(), xt::range(1, 4))); }});
  c.push_back({"slice_axis0_3d", {{4, 2, 3}}, Domain::any, [](const Vars& v) { return slice(v[0], 0, 2, 3); },
               [](const std::vector<A>& x) { return A(xt::view(x[0], xt::range(2, 3))); }});
  c.push_back({"select", {{4, 2, 3}}, Domain::any, [](const Vars& v) { return select(v[0], 2); },
               [](const std::vector<A>& x) { return A(xt::view(x[0], 2)); }});
  c.push_back({"stack", {{2, 3}, {2, 3}}, Domain::any, [](const Vars& v) { return stack(v); },
               [](const std::vector<A>& x) {
                 A r = A::from_shape({2, 2, 3});
                 xt::view(r, 0) = x[0];
                 xt::view(r, 1) = x[1];
                 return r;
               }});
  c.push_back({"reshape", {{2, 6}}, Domain::any, [](const Vars& v) { return reshape(v[0], {3, 2, 2}); },
               [](const std::vector<A>& x) { return A(xt::reshape_view(x[0], {3, 2, 2})); }});
  c.push_back({"transpose", {{2, 5}}, Domain::any, [](const Vars& v) { return transpose(v[0]); },
               [](const std::vector<A>& x) { return A(xt::transpose(x[0])); }});
  c.push_back({"embedding_repeated_ids", {{5, 3}}, Domain::any,
               [](const Vars& v) { return embedding(v[0], {4, 0, 4, 2}); },
               [](const std::vector<A>& x) { return A(xt::view(x[0], xt::keep(4, 0, 4, 2), xt::all())); }});
  c.push_back({"cross_entropy", {{4, 5}}, Domain::any,
               [](const Vars& v) { return cross_entropy(v[0], {1, 0, 4, 4}); },
               [](const std::vector<A>& x) {
                 A ls = x[0] - xt::log(A(xt::sum(xt::exp(x[0]), {1}, xt::keep_dims)));
                 return A(-(ls(0, 1) + ls(1, 0) + ls(2, 4) + ls(3, 4)) / 4.0);
               }});
  // Logits (T, m, C): every position a row.
  c.push_back({"cross_entropy_3d", {{2, 3, 4}}, Domain::any,
               [](const Vars& v) { return cross_entropy(v[0], {3, 0, 1, 1, 2, 0}); },
               [](const std::vector<A>& x) {
                 A flat = xt::reshape_view(x[0], {6, 4});
                 A ls = flat - xt::log(A(xt::sum(xt::exp(flat), {1}, xt::keep_dims)));
                 return A(-(ls(0, 3) + ls(1, 0) + ls(2, 1) + ls(3, 1) + ls(4, 2) + ls(5, 0)) / 6.0);
               }});
  // x (T, m, in) -> (T, m, out): a sequence's outputs through a linear layer.
  c.push_back({"linear_3d", {{2, 3, 4}, {5, 4}, {5}}, Domain::any,
               [](const Vars& v) { return linear(v[0], v[1], v[2]); },
               [](const std::vector<A>& x) {
                 A flat = xt::reshape_view(x[0], {6, 4});
                 A y = xt::linalg::dot(flat, xt::transpose(x[1])) + x[2];
                 return A(xt::reshape_view(y, {2, 3, 5}));
               }});
  c.push_back({"binary_cross_entropy", {{3, 4}, {3, 4}}, Domain::any,
               [](const Vars& v) { return binary_cross_entropy(sigmoid(v[0]), sigmoid(v[1])); },
               [](const std::vector<A>& x) {
                 A p = 1.0 / (1.0 + xt::exp(-x[0])), t = 1.0 / (1.0 + xt::exp(-x[1]));
                 return A(-xt::mean(t * xt::log(p) + (1.0 - t) * xt::log(1.0 - p)));
               }});
  c.push_back({"mse_loss", {{3, 4}, {3, 4}}, Domain::any, [](const Vars& v) { return mse_loss(v[0], v[1]); },
               [](const std::vector<A>& x) { return A(xt::mean(xt::square(x[0] - x[1]))); }});
  // A Var with a plain xtensor array or expression on either side: recorded as the op on a
  // constant, the array broadcast along the rows of x (3, 4).
  const A arr = {0.5, -1.25, 2.0, 1.5};
  auto with_array = [&](const std::string& name, auto op, Domain d = Domain::any) {
    c.push_back({name, {{3, 4}}, d, [op, arr](const Vars& v) { return op(v[0], arr); },
                 [op, arr](const std::vector<A>& x) { return A(op(x[0], arr)); }});
  };
  with_array("var_plus_array", [](const auto& v, const A& a) { return v + a; });
  with_array("array_plus_var", [](const auto& v, const A& a) { return a + v; });
  with_array("var_minus_array", [](const auto& v, const A& a) { return v - a; });
  with_array("array_minus_var", [](const auto& v, const A& a) { return a - v; });
  with_array("var_times_array", [](const auto& v, const A& a) { return v * a; });
  with_array("array_times_var", [](const auto& v, const A& a) { return a * v; });
  with_array("var_div_array", [](const auto& v, const A& a) { return v / a; });
  with_array("array_div_var", [](const auto& v, const A& a) { return a / v; }, Domain::away_from_zero);
  with_array("var_times_array_expression", [](const auto& v, const A& a) { return v * (2.0 * a + 1.0); });
  // A composition that reuses one input: gradients from both uses add up.
  c.push_back({"reuse_x_times_x_plus_tanh_x", {{2, 3}}, Domain::any,
               [](const Vars& v) { return v[0] * v[0] + tanh(v[0]); },
               [](const std::vector<A>& x) { return A(x[0] * x[0] + xt::tanh(x[0])); }});
  return c;
}

}  // namespace

XGRAD_OP_TABLE_TESTS(AllOps, cases())

namespace {

// Float gives the same forward values as double, to float precision.
TEST(Ops, FloatMatchesDouble) {
  std::mt19937_64 gen(3);
  A x = random_array({4, 6}, Domain::any, gen), w = random_array({5, 6}, Domain::any, gen);
  A b = random_array({5}, Domain::any, gen);
  auto yd = tanh(linear(constant(x), constant(w), constant(b))).value();
  Array<float> xf = xt::cast<float>(x), wf = xt::cast<float>(w), bf = xt::cast<float>(b);
  auto yf = tanh(linear(constant(xf), constant(wf), constant(bf))).value();
  EXPECT_TRUE(close(xt::cast<double>(yf), yd, 1e-5));
  clear_tape();
}

TEST(CrossEntropy, StableForLogitsOfMagnitude1e4) {
  A logits = {{1e4, -1e4, 0.0}, {-1e4, 1e4, 5e3}};
  auto x = param(logits);
  auto loss = cross_entropy(x, {0, 2});
  // Row 0: the target holds all the mass (loss 0). Row 1: 1e4 - 5e3 = 5e3 nats.
  EXPECT_NEAR(loss.value().flat(0), 5e3 / 2, 1e-9);
  loss.backward();
  for (double g : x.grad()) EXPECT_TRUE(std::isfinite(g));
  EXPECT_NEAR(x.grad()(1, 1), 0.5, 1e-12);
  EXPECT_NEAR(x.grad()(1, 2), -0.5, 1e-12);
  Array<float> lf = xt::cast<float>(logits);
  auto lossf = cross_entropy(param(lf), {0, 2});
  EXPECT_NEAR(lossf.value().flat(0), 2500.0f, 1e-2);
  clear_tape();
}

// ------------------------------------------------------------------ Var with xtensor arrays

// Every operator of a Var of T with an xtensor expression, either side, gives a Var<T>.
template <class T, class L, class R>
constexpr bool operators_give_var() {
  using V = Var<T>;
  return std::is_same_v<decltype(std::declval<L>() + std::declval<R>()), V> &&
         std::is_same_v<decltype(std::declval<L>() - std::declval<R>()), V> &&
         std::is_same_v<decltype(std::declval<L>() * std::declval<R>()), V> &&
         std::is_same_v<decltype(std::declval<L>() / std::declval<R>()), V>;
}
using V = Var<double>;
using View = decltype(xt::view(std::declval<A&>(), 0, xt::all()));
using Expression = decltype(std::declval<const A&>() * 2.0);
static_assert(operators_give_var<double, V&, A&>() && operators_give_var<double, A&, V&>());
static_assert(operators_give_var<double, const V&, const A&>() && operators_give_var<double, const A&, const V&>());
static_assert(operators_give_var<double, V, A>() && operators_give_var<double, A, V>());
static_assert(operators_give_var<double, V&, View>() && operators_give_var<double, Expression, const V&>());
static_assert(operators_give_var<float, Var<float>&, Array<float>&>());
static_assert(operators_give_var<float, const Array<float>&, Var<float>>());

TEST(VarWithArray, IsTheOpOnAConstantRecordedOnTheTape) {
  clear_tape();
  const A arr = {2.0, -4.0};
  auto v = param(A{1.0, 3.0});
  const std::size_t before = Tape<double>::current().size();
  auto y = arr * v;
  ASSERT_EQ(Tape<double>::current().size(), before + 1);
  EXPECT_EQ(std::string(Tape<double>::current().node(before).op), "mul");
  EXPECT_EQ(y.value(), (A{2.0, -12.0}));
  EXPECT_EQ((v + arr).value(), (v + constant(arr)).value());
  EXPECT_EQ((arr - v).value(), (A{1.0, -7.0}));
  EXPECT_EQ((v / arr).value(), (A{0.5, -0.75}));
  EXPECT_EQ((arr / v).value(), (A{2.0, -4.0 / 3.0}));
  // d/dv of Σ (v + arr) + (arr - v) + arr∘v + v / arr + arr / v = 1 - 1 + arr + 1/arr - arr/v².
  sum((v + arr) + (arr - v) + arr * v + v / arr + arr / v).backward();
  EXPECT_DOUBLE_EQ(v.grad()(0), 2.0 + 0.5 - 2.0);
  EXPECT_DOUBLE_EQ(v.grad()(1), -4.0 - 0.25 + 4.0 / 9.0);
  clear_tape();
}

// ------------------------------------------------------------------ errors

template <class F>
void expect_error_with(F f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << " lacks " << w;
  }
}

TEST(OpErrors, MismatchedShapesNameTheOpAndBothShapes) {
  auto a = constant<double>(xt::zeros<double>({2, 3})), b = constant<double>(xt::zeros<double>({4, 3}));
  EXPECT_THROW(a + b, ShapeError);
  expect_error_with([&] { a + b; }, {"add", "(2, 3)", "(4, 3)"});
  expect_error_with([&] { a * b; }, {"mul", "(2, 3)", "(4, 3)"});
  expect_error_with([&] { a - b; }, {"sub"});
  expect_error_with([&] { a / b; }, {"div"});
  expect_error_with([&] { matmul(a, b); }, {"matmul", "inner dimensions", "(2, 3)", "(4, 3)"});
  expect_error_with([&] { matmul_nt(a, constant<double>(xt::zeros<double>({4, 2}))); }, {"matmul_nt", "(4, 2)"});
  expect_error_with([&] { linear(a, b, constant<double>(xt::zeros<double>({3}))); }, {"linear", "bias", "(3,)"});
  expect_error_with([&] { matmul(constant<double>(xt::zeros<double>({3})), a); }, {"matmul", "matrix", "(3,)"});
  expect_error_with([&] { concat({a, constant<double>(xt::zeros<double>({2, 2}))}, 0); }, {"concat", "(2, 2)"});
  expect_error_with([&] { stack({a, b}); }, {"stack", "(4, 3)"});
  expect_error_with([&] { reshape(a, {4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"});
  expect_error_with([&] { transpose(constant<double>(xt::zeros<double>({2, 2, 2}))); }, {"transpose", "(2, 2, 2)"});
  expect_error_with([&] { mse_loss(a, b); }, {"mse_loss", "(2, 3)", "(4, 3)"});
  expect_error_with([&] { binary_cross_entropy(a, b); }, {"binary_cross_entropy"});
  expect_error_with([&] { cross_entropy(a, {0}); }, {"cross_entropy", "1 targets", "(2, 3)"});
  expect_error_with([&] { cross_entropy(constant<double>(xt::zeros<double>({2, 2, 3})), {0, 1, 2}); },
                    {"cross_entropy", "3 targets", "(2, 2, 3)"});
  expect_error_with([&] { cross_entropy(constant<double>(xt::zeros<double>({3})), {0}); },
                    {"cross_entropy", "(N, C)", "(3,)"});
  expect_error_with([&] { linear(constant<double>(xt::zeros<double>({2, 2, 4})), b, constant<double>(xt::zeros<double>({4}))); },
                    {"linear", "(2, 2, 4)", "(4, 3)", "(..., 3)"});
  expect_error_with([&] { linear(constant<double>(xt::zeros<double>({3})), b, constant<double>(xt::zeros<double>({4}))); },
                    {"linear", "(3,)"});
  expect_error_with([&] { embedding(constant<double>(xt::zeros<double>({3})), {0}); }, {"embedding", "(3,)"});
  expect_error_with([&] { addmm_nt(constant<double>(xt::zeros<double>({2, 5})), a, b); }, {"addmm_nt", "(2, 5)"});
  expect_error_with([&] { addmm_nt(a, a, constant<double>(xt::zeros<double>({3, 2}))); },
                    {"addmm_nt", "inner dimensions", "(3, 2)"});
  expect_error_with([&] { linear_onehot({0}, a, constant<double>(xt::zeros<double>({3}))); },
                    {"linear_onehot", "bias", "(3,)"});
  expect_error_with([&] { linear_onehot({3}, a, constant<double>(xt::zeros<double>({2}))); },
                    {"linear_onehot", "id 3", "3 input columns"});
}

TEST(OpErrors, IndicesAndAxesOutOfRange) {
  auto a = constant<double>(xt::zeros<double>({2, 3}));
  expect_error_with([&] { sum(a, 2); }, {"sum", "axis 2", "(2, 3)"});
  expect_error_with([&] { sum(a, -3); }, {"sum", "axis -3"});
  expect_error_with([&] { softmax(a, 5); }, {"softmax", "axis 5"});
  expect_error_with([&] { log_softmax(a, 2); }, {"log_softmax", "axis 2"});
  expect_error_with([&] { concat({a, a}, 3); }, {"concat", "axis 3"});
  expect_error_with([&] { slice(a, 1, 2, 5); }, {"slice", "[2, 5)", "(2, 3)"});
  expect_error_with([&] { slice(a, 1, 2, 2); }, {"slice", "[2, 2)"});
  expect_error_with([&] { select(a, 2); }, {"select", "index 2", "(2, 3)"});
  expect_error_with([&] { embedding(a, {0, 2}); }, {"embedding", "id 2", "2 rows"});
  expect_error_with([&] { cross_entropy(a, {0, 3}); }, {"cross_entropy", "class id 3", "row 1", "3 classes"});
  expect_error_with([&] { cross_entropy(a, {-1, 0}); }, {"class id -1"});
  EXPECT_THROW(sum(a, 2), IndexError);
}

TEST(OpErrors, EmptyTensorsWhereNotAllowed) {
  auto e = constant<double>(xt::zeros<double>({0, 3}));
  expect_error_with([&] { mean(e); }, {"mean", "empty", "(0, 3)"});
  expect_error_with([&] { matmul(e, constant<double>(xt::zeros<double>({3, 2}))); }, {"matmul", "empty"});
  expect_error_with([&] { softmax(e, 1); }, {"softmax", "empty"});
  expect_error_with([&] { linear(e, constant<double>(xt::zeros<double>({2, 3})), constant<double>(xt::zeros<double>({2}))); },
                    {"linear", "empty", "(0, 3)"});
  expect_error_with([&] { cross_entropy(e, {}); }, {"cross_entropy", "empty"});
  expect_error_with([&] { mse_loss(e, e); }, {"mse_loss", "empty"});
  expect_error_with([&] { concat(std::vector<Var<double>>{}, 0); }, {"concat", "no inputs"});
  EXPECT_THROW(mean(e), ValueError);
}

TEST(OpErrors, ProbabilitiesOutsideUnitInterval) {
  auto p = constant<double>(A{0.5, 1.5}), t = constant<double>(A{0.0, 1.0});
  expect_error_with([&] { binary_cross_entropy(p, t); }, {"binary_cross_entropy", "[0, 1]", "1.5"});
}

TEST(OpErrors, AFailedOpLeavesTheTapeUnchanged) {
  clear_tape();
  auto a = param<double>(xt::ones<double>({2, 3}));
  auto y = a * 2.0;
  const std::size_t before = Tape<double>::current().size();
  EXPECT_THROW(matmul(y, y), ShapeError);
  EXPECT_THROW(sum(y, 4), IndexError);
  EXPECT_EQ(Tape<double>::current().size(), before);
  clear_tape();
}

}  // namespace
