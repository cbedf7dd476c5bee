// gradcheck(module, loss_fn): a correct Linear + LSTM model passes; a model whose backward is
// wrong (through custom_op) fails and the report names the parameter and the element; values
// and gradients are left as they were; the sampling option; the errors of a misused loss_fn.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>

#include <xgrad/autograd/custom_op.hpp>
#include <xgrad/layers/gradcheck_module.hpp>
#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;

namespace {

using xgrad::testing::contains;

class GradcheckModule : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_tape();
    nn::manual_seed(7);
  }
  void TearDown() override { clear_tape(); }
};

A random_array(const Shape& shape, std::mt19937_64& gen) {
  A a = A::from_shape(shape);
  std::normal_distribution<double> d(0.0, 1.0);
  for (double& v : a) v = d(gen);
  return a;
}

// An LSTM over (T, m, n_x) then a Linear on its last output: (T, m, n_x) -> (m, n_y).
struct Tagger : nn::Module<double> {
  nn::LSTM<double> lstm{3, 4, nn::LSTMOptions().bidirectional()};
  nn::Linear<double> fc{8, 2};
  Tagger() {
    register_module("lstm", lstm);
    register_module("fc", fc);
  }
  Var<double> forward(const Var<double>& x, const std::vector<int>& lengths) const {
    Var<double> out = lstm(x, {}, lengths).output;                   // (T, m, 2·n_a)
    return fc(select(out, 0));                                        // (m, n_y)
  }
};

// Every parameter's value and gradient, bit for bit.
std::vector<std::pair<A, A>> snapshot(const nn::Module<double>& m) {
  std::vector<std::pair<A, A>> s;
  for (const auto& [name, p] : m.named_parameters()) s.emplace_back(p.value(), p.grad());
  return s;
}
bool bitwise_equal(const std::vector<std::pair<A, A>>& a, const std::vector<std::pair<A, A>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].first.size() != b[i].first.size() || a[i].second.size() != b[i].second.size()) return false;
    if (std::memcmp(a[i].first.data(), b[i].first.data(), a[i].first.size() * sizeof(double)) != 0) return false;
    if (std::memcmp(a[i].second.data(), b[i].second.data(), a[i].second.size() * sizeof(double)) != 0) return false;
  }
  return true;
}

TEST_F(GradcheckModule, LinearAndLstmModelPasses) {
  Tagger model;
  std::mt19937_64 gen(3);
  const Var<double> x = constant(random_array({4, 3, 3}, gen));  // T = 4, m = 3, n_x = 3
  const std::vector<int> lengths = {4, 2, 3};
  const std::vector<int> targets = {1, 0, 1};
  auto loss_fn = [&] { return cross_entropy(model.forward(x, lengths), targets); };
  // Gradients already accumulated by the user are not disturbed.
  for (const auto& p : model.parameters()) p.mutable_grad() = random_array(Shape(p.shape().begin(), p.shape().end()), gen);
  const auto before = snapshot(model);

  const GradcheckResult r = gradcheck(model, loss_fn);
  EXPECT_TRUE(r.ok) << r.report();
  EXPECT_LT(r.error, 1e-7) << r.report();
  std::size_t total = 0;
  for (const auto& p : model.parameters()) total += p.size();
  EXPECT_EQ(r.checked, total);
  EXPECT_EQ(r.name, model.named_parameters()[r.input].first);
  EXPECT_TRUE(contains(r.report(), "gradcheck passed")) << r.report();
  EXPECT_TRUE(bitwise_equal(snapshot(model), before));
}

// y = w ∘ x, whose backward adds 0.01·k to the gradient of w's flat element k: right only at
// element 0, and worst at the last element (by 0.01·k while the true gradients stay below 1 in
// magnitude, as they do here); x's gradient is right.
struct Skewed : nn::Module<double> {
  Var<double> w;
  explicit Skewed(const Shape& shape) {
    A w0 = A::from_shape(shape);
    w0.fill(0.5);
    w = register_parameter("w", w0);
  }
  Var<double> forward(const Var<double>& x) const {
    return custom_op<double>(
        "skewed_mul", {w, x}, [](const auto& in) { return A(in[0] * in[1]); },
        [](const auto& grad, const auto& in, const auto&) {
          A gw = grad * in[1];
          for (std::size_t k = 0; k < gw.size(); ++k) gw.flat(k) += 0.01 * static_cast<double>(k);
          return std::vector<A>{gw, A(grad * in[0])};
        });
  }
};

struct Outer : nn::Module<double> {
  nn::Linear<double> fc{3, 3};
  Skewed inner{{2, 3}};
  Outer() {
    register_module("fc", fc);
    register_module("inner", inner);
  }
  // x (2, 3) -> a scalar: Σ inner(tanh(fc(x))); the gradients of inner.w are tanh(fc(x)), below 1
  Var<double> loss(const Var<double>& x) const { return sum(inner.forward(tanh(fc(x)))); }
};

TEST_F(GradcheckModule, WrongBackwardFailsNamingTheParameterAndElement) {
  Outer model;
  const Var<double> x = constant(A{{1.0, -2.0, 0.5}, {0.25, 1.5, -1.0}});
  const auto before = snapshot(model);
  const GradcheckResult r = gradcheck(model, [&] { return model.loss(x); });
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.name, "inner.w");
  EXPECT_EQ(r.input, 2u);  // fc.weight, fc.bias, inner.w
  EXPECT_EQ(r.index, 5u);  // the largest skew
  EXPECT_EQ(r.position, (Shape{1, 2}));
  EXPECT_NEAR(r.analytic, r.numeric + 0.05, 1e-8);
  EXPECT_TRUE(contains(r.report(), "FAILED")) << r.report();
  EXPECT_TRUE(contains(r.report(), "inner.w[1, 2]")) << r.report();
  EXPECT_TRUE(bitwise_equal(snapshot(model), before));
}

TEST_F(GradcheckModule, ToleranceAndEpsAreOptions) {
  Outer model;
  const Var<double> x = constant(A{{1.0, -2.0, 0.5}, {0.25, 1.5, -1.0}});
  auto loss_fn = [&] { return model.loss(x); };
  const GradcheckResult strict = gradcheck(model, loss_fn);
  ASSERT_FALSE(strict.ok);
  // error = 0.05 / max(1, |g + 0.05|, |g|) ≤ 0.05: a loose enough tolerance lets it pass.
  const GradcheckResult loose = gradcheck(model, loss_fn, GradcheckOptions().tolerance(0.051));
  EXPECT_TRUE(loose.ok) << loose.report();
  EXPECT_DOUBLE_EQ(loose.error, strict.error);
  const GradcheckResult coarse = gradcheck(model, loss_fn, GradcheckOptions().eps(1e-3).tolerance(0.051));
  EXPECT_TRUE(coarse.ok) << coarse.report();
  EXPECT_NE(coarse.numeric, strict.numeric);  // another step, other rounding
  EXPECT_NEAR(coarse.numeric, strict.numeric, 1e-6);
}

TEST_F(GradcheckModule, SamplesAtMostMaxElementsPerParameterReproducibly) {
  Skewed model({5, 8});  // 40 elements, error growing with the flat index
  const Var<double> x = constant(A(xt::ones<double>({5, 8}) * 0.3));
  auto loss_fn = [&] { return sum(model.forward(x)); };
  const GradcheckResult all = gradcheck(model, loss_fn);
  EXPECT_EQ(all.checked, 40u);
  EXPECT_EQ(all.index, 39u);
  std::set<std::size_t> worst;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    const auto opts = GradcheckOptions().max_elements(4).seed(seed);
    const GradcheckResult a = gradcheck(model, loss_fn, opts);
    const GradcheckResult b = gradcheck(model, loss_fn, opts);
    EXPECT_EQ(a.checked, 4u);
    EXPECT_EQ(a.index, b.index);  // the same sample for the same seed
    EXPECT_EQ(a.error, b.error);
    EXPECT_FALSE(a.ok);
    worst.insert(a.index);
  }
  EXPECT_GT(worst.size(), 1u);  // other seeds, other samples
  // A cap above the size checks everything.
  EXPECT_EQ(gradcheck(model, loss_fn, GradcheckOptions().max_elements(100)).checked, 40u);
}

// A parameter registered under two names (shared) is checked once.
struct Shared : nn::Module<double> {
  Skewed a{{2}};
  Shared() {
    register_module("first", a);
    register_module("second", a);
  }
};

TEST_F(GradcheckModule, SharedParameterIsCheckedOnce) {
  Shared model;
  ASSERT_EQ(model.named_parameters().size(), 2u);
  const Var<double> x = constant(A{2.0, 3.0});
  const GradcheckResult r = gradcheck(model, [&] { return sum(model.a.forward(x)); });
  EXPECT_EQ(r.checked, 2u);
  EXPECT_EQ(r.name, "first.w");
}

TEST_F(GradcheckModule, MisusedLossFnIsAValueErrorThatChangesNothing) {
  Outer model;
  const Var<double> x = constant(A{{1.0, -2.0, 0.5}, {0.25, 1.5, -1.0}});
  const auto before = snapshot(model);
  XGRAD_EXPECT_THROW_MSG(gradcheck(model, [&] { return model.fc(x); }), ValueError, "gradcheck", "scalar", "(2, 3)");
  XGRAD_EXPECT_THROW_MSG(gradcheck(model, [&] { return sum(x); }), ValueError, "gradcheck",
                         "does not depend on any parameter");
  int calls = 0;
  XGRAD_EXPECT_THROW_MSG(gradcheck(model, [&] { return model.loss(x) * static_cast<double>(++calls); }), ValueError,
                         "gradcheck", "deterministic", "eval()");
  XGRAD_EXPECT_THROW_MSG(gradcheck(model, [&] { return model.loss(x); }, GradcheckOptions().eps(0)), ValueError,
                         "gradcheck", "eps");
  nn::Module<double> empty;
  XGRAD_EXPECT_THROW_MSG(gradcheck(empty, [&] { return sum(x); }), ValueError, "gradcheck", "no parameters");
  // A loss_fn that throws in the middle of the finite differences: every value and gradient
  // is back as it was.
  calls = 0;
  auto fails_late = [&] {
    if (++calls == 9) throw DataError("loss_fn: refused");
    return model.loss(x);
  };
  EXPECT_THROW(gradcheck(model, fails_late), DataError);
  EXPECT_EQ(calls, 9);
  EXPECT_TRUE(bitwise_equal(snapshot(model), before));
}

}  // namespace
