// Attention: each kind of score against a direct computation, one decoder step and all steps,
// padding masked exactly, finite differences of every parameter and input, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using nn::AttentionKind;
using nn::AttentionOptions;
using testing::randn;
using testing::rel_error;
using testing::shape_of;

// S key positions, m batch rows, n_v value size, T_q query steps.
constexpr std::size_t S = 5, m = 3, n_v = 2, T_q = 4;
const std::vector<int> kLengths = {3, 5, 1};

struct Case {
  std::string name;
  AttentionOptions options;
  std::size_t n_q, n_k;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  return {{"dot", AttentionOptions(), 4, 4},
          {"dot_scaled", AttentionOptions().kind(AttentionKind::dot).scaled(), 4, 4},
          {"general", AttentionOptions().kind(AttentionKind::general), 3, 5},
          {"general_scaled", AttentionOptions().kind(AttentionKind::general).scaled(), 3, 5},
          {"additive", AttentionOptions().kind(AttentionKind::additive), 3, 5},
          {"additive_hidden_6", AttentionOptions().kind(AttentionKind::additive).hidden_size(6), 3, 5}};
}

struct Expected {
  Array<double> context;  // (m, n_v)
  Array<double> weights;  // (m, S)
};

// The scores, softmax and weighted sum written out element by element for a query of one step:
// q (m, n_q), k (S, m, n_k), val (S, m, n_v).
Expected direct(const nn::Attention<double>& a, const Array<double>& q, const Array<double>& k,
                const Array<double>& val, const std::vector<int>& lengths) {
  const std::size_t n_q = a.query_size(), n_k = a.key_size(), n_h = a.hidden_size(), nv = val.shape()[2];
  const std::size_t s_max = k.shape()[0], rows = k.shape()[1];
  Expected r{xt::zeros<double>({rows, nv}), xt::zeros<double>({rows, s_max})};
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t len = lengths.empty() ? s_max : std::size_t(lengths[i]);
    std::vector<double> e(len, 0.0);
    for (std::size_t s = 0; s < len; ++s) {
      if (a.kind() == AttentionKind::dot) {
        for (std::size_t j = 0; j < n_k; ++j) e[s] += q(i, j) * k(s, i, j);
      } else if (a.kind() == AttentionKind::general) {
        for (std::size_t x = 0; x < n_q; ++x)
          for (std::size_t y = 0; y < n_k; ++y) e[s] += q(i, x) * a.W.value()(x, y) * k(s, i, y);
      } else {
        for (std::size_t h = 0; h < n_h; ++h) {
          double z = 0;
          for (std::size_t x = 0; x < n_q; ++x) z += a.Wq.value()(h, x) * q(i, x);
          for (std::size_t y = 0; y < n_k; ++y) z += a.Wk.value()(h, y) * k(s, i, y);
          e[s] += a.v.value()(h) * std::tanh(z);
        }
      }
      if (a.scaled()) e[s] /= std::sqrt(double(n_k));
    }
    const double top = *std::max_element(e.begin(), e.end());
    double total = 0;
    for (std::size_t s = 0; s < len; ++s) total += std::exp(e[s] - top);
    for (std::size_t s = 0; s < len; ++s) {
      r.weights(i, s) = std::exp(e[s] - top) / total;
      for (std::size_t c = 0; c < nv; ++c) r.context(i, c) += r.weights(i, s) * val(s, i, c);
    }
  }
  return r;
}

Array<double> step_of(const Array<double>& q, std::size_t t) { return xt::view(q, t, xt::all(), xt::all()); }

class AttentionKinds : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    nn::manual_seed(11);
    attn = std::make_unique<nn::Attention<double>>(GetParam().n_q, GetParam().n_k, GetParam().options);
    std::mt19937_64 gen(12);
    q = randn({T_q, m, GetParam().n_q}, gen);
    k = randn({S, m, GetParam().n_k}, gen);
    val = randn({S, m, n_v}, gen);
  }
  // Finite differences of the inputs and of every parameter (dot has none, so plain gradcheck).
  GradcheckResult check(const std::vector<Array<double>>& inputs,
                        const std::function<Var<double>(const std::vector<Var<double>>&)>& loss) {
    return attn->parameters().empty() ? gradcheck(loss, inputs) : testing::gradcheck_module(*attn, inputs, loss);
  }
  std::unique_ptr<nn::Attention<double>> attn;
  Array<double> q, k, val;  // (T_q, m, n_q), (S, m, n_k), (S, m, n_v)
};

TEST_P(AttentionKinds, OneStepMatchesDirectComputation) {
  for (const auto& lengths : {std::vector<int>{}, kLengths}) {
    const Array<double> q0 = step_of(q, 1);
    const auto r = (*attn)(constant(q0), constant(k), constant(val), lengths);
    const Expected want = direct(*attn, q0, k, val, lengths);
    EXPECT_LT(rel_error(r.context.value(), want.context), 1e-14) << lengths.size();
    EXPECT_LT(rel_error(r.weights.value(), want.weights), 1e-14) << lengths.size();
  }
}

TEST_P(AttentionKinds, AllStepsMatchDirectComputationStepByStep) {
  const auto r = (*attn)(constant(q), constant(k), constant(val), kLengths);
  ASSERT_EQ(shape_of(r.context), (Shape{T_q, m, n_v}));
  ASSERT_EQ(shape_of(r.weights), (Shape{T_q, m, S}));
  for (std::size_t t = 0; t < T_q; ++t) {
    const Expected want = direct(*attn, step_of(q, t), k, val, kLengths);
    EXPECT_LT(rel_error(Array<double>(xt::view(r.context.value(), t)), want.context), 1e-14) << t;
    EXPECT_LT(rel_error(Array<double>(xt::view(r.weights.value(), t)), want.weights), 1e-14) << t;
  }
}

TEST_P(AttentionKinds, AllStepsEqualTheStepsStacked) {
  const auto all = (*attn)(constant(q), constant(k), constant(val), kLengths);
  std::vector<Var<double>> contexts, weights;
  for (std::size_t t = 0; t < T_q; ++t) {
    const auto r = (*attn)(constant(step_of(q, t)), constant(k), constant(val), kLengths);
    contexts.push_back(r.context);
    weights.push_back(r.weights);
  }
  EXPECT_LT(rel_error(all.context.value(), stack(contexts).value()), 1e-15);
  EXPECT_LT(rel_error(all.weights.value(), stack(weights).value()), 1e-15);
}

// Padding gets weight exactly 0, whatever its keys and values hold, and no gradient; the
// weights of every row sum to 1.
TEST_P(AttentionKinds, PaddingGetsExactlyZeroWeightAndRowsSumToOne) {
  Array<double> k2 = k, val2 = val;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t s = std::size_t(kLengths[i]); s < S; ++s) {
      xt::view(k2, s, i) = 1e3;
      xt::view(val2, s, i) = -1e6;
    }
  const Var<double> keys = param(k2), values = param(val2);
  const auto r = (*attn)(constant(q), keys, values, kLengths);
  const auto clean = (*attn)(constant(q), constant(k), constant(val), kLengths);
  EXPECT_EQ(r.context.value(), clean.context.value());
  EXPECT_EQ(r.weights.value(), clean.weights.value());
  const auto& w = r.weights.value();  // (T_q, m, S)
  for (std::size_t t = 0; t < T_q; ++t)
    for (std::size_t i = 0; i < m; ++i) {
      double total = 0;
      for (std::size_t s = 0; s < S; ++s) {
        total += w(t, i, s);
        if (s >= std::size_t(kLengths[i])) EXPECT_EQ(w(t, i, s), 0.0) << t << " " << i << " " << s;
        else EXPECT_GT(w(t, i, s), 0.0);
      }
      EXPECT_NEAR(total, 1.0, 1e-15) << t << " " << i;
    }
  testing::project(r.context).backward();
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t s = std::size_t(kLengths[i]); s < S; ++s) {
      EXPECT_EQ(xt::amax(xt::abs(xt::view(keys.grad(), s, i)))(), 0.0) << i << " " << s;
      EXPECT_EQ(xt::amax(xt::abs(xt::view(values.grad(), s, i)))(), 0.0) << i << " " << s;
    }
  clear_tape();
}

// Every parameter, the query, the keys and the values, through the context and the weights.
TEST_P(AttentionKinds, GradientsMatchFiniteDifferences) {
  const std::size_t expected_params = GetParam().options.kind() == AttentionKind::dot       ? 0
                                      : GetParam().options.kind() == AttentionKind::general ? 1
                                                                                          : 3;
  ASSERT_EQ(attn->parameters().size(), expected_params);
  auto loss = [&](const std::vector<Var<double>>& in) {
    const auto r = (*attn)(in[0], in[1], in[2], kLengths);
    return testing::project(r.context, 99) + testing::project(r.weights, 98);
  };
  auto all_steps = check({q, k, val}, loss);
  EXPECT_TRUE(all_steps.ok) << all_steps.report();
  auto one_step = check({step_of(q, 2), k, val}, loss);
  EXPECT_TRUE(one_step.ok) << one_step.report();
  clear_tape();
}

// values = keys when not given: the keys get the gradient of both roles.
TEST_P(AttentionKinds, KeysAsValuesMatchFiniteDifferences) {
  auto r = check({step_of(q, 0), k}, [&](const std::vector<Var<double>>& in) {
    const auto a = (*attn)(in[0], in[1]);
    const auto b = (*attn)(in[0], in[1], in[1]);
    EXPECT_EQ(a.context.value(), b.context.value());
    return testing::project(a.context, 97);
  });
  EXPECT_TRUE(r.ok) << r.report();
  clear_tape();
}

INSTANTIATE_TEST_SUITE_P(Kinds, AttentionKinds, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(Attention, OptionsChainAndNameTheParameters) {
  const AttentionOptions o = AttentionOptions().kind(AttentionKind::additive).hidden_size(7);
  EXPECT_EQ(o.kind(), AttentionKind::additive);
  EXPECT_EQ(o.hidden_size(), 7u);
  EXPECT_FALSE(o.scaled());
  const AttentionOptions on = AttentionOptions().scaled(), off = AttentionOptions().scaled().scaled(false);
  EXPECT_TRUE(on.scaled());
  EXPECT_FALSE(off.scaled());

  nn::Attention<double> dot(4, 4);
  EXPECT_EQ(dot.kind(), AttentionKind::dot);
  EXPECT_TRUE(dot.named_parameters().empty());
  nn::Attention<double> general(3, 5, AttentionOptions().kind(AttentionKind::general));
  auto g = general.named_parameters();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].first, "W");
  EXPECT_EQ(shape_of(general.W), (Shape{3, 5}));
  nn::Attention<double> additive(3, 5, o);
  auto a = additive.named_parameters();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].first, "Wq");
  EXPECT_EQ(a[1].first, "Wk");
  EXPECT_EQ(a[2].first, "v");
  EXPECT_EQ(shape_of(additive.Wq), (Shape{7, 3}));
  EXPECT_EQ(shape_of(additive.Wk), (Shape{7, 5}));
  EXPECT_EQ(shape_of(additive.v), (Shape{7}));
  // The hidden size defaults to the key size.
  nn::Attention<double> plain(3, 5, AttentionOptions().kind(AttentionKind::additive));
  EXPECT_EQ(plain.hidden_size(), 5u);
  EXPECT_EQ(shape_of(plain.Wq), (Shape{5, 3}));
}

TEST(Attention, FloatRowsSumToOne) {
  nn::manual_seed(3);
  nn::Attention<float> attn(3, 4, AttentionOptions().kind(AttentionKind::additive));
  std::mt19937_64 gen(4);
  const auto r = attn(constant(randn<float>({m, 3}, gen)), constant(randn<float>({S, m, 4}, gen)),
                      constant(randn<float>({S, m, n_v}, gen)), kLengths);
  ASSERT_EQ(shape_of(r.context), (Shape{m, n_v}));
  ASSERT_EQ(shape_of(r.weights), (Shape{m, S}));
  for (std::size_t i = 0; i < m; ++i) {
    EXPECT_NEAR(double(xt::sum(xt::view(r.weights.value(), i))()), 1.0, 1e-6);
    if (kLengths[i] == int(S)) EXPECT_GT(r.weights.value()(i, S - 1), 0.0f) << i;
    else EXPECT_EQ(r.weights.value()(i, S - 1), 0.0f) << i;
  }
  clear_tape();
}

// The mask is a finite value, so a model with padding runs under DetectAnomaly.
TEST(Attention, PaddingRunsUnderDetectAnomaly) {
  nn::Attention<double> attn(4, 4);
  std::mt19937_64 gen(5);
  const Var<double> keys = param(randn({S, m, 4}, gen));
  DetectAnomaly anomaly;
  const auto r = attn(constant(randn({m, 4}, gen)), keys, keys, kLengths);
  EXPECT_NO_THROW(testing::project(r.context).backward());
  EXPECT_EQ(r.weights.value()(2, 1), 0.0);
  clear_tape();
}

TEST(Attention, BadSizesAndOptionsThrowAtConstruction) {
  using A = nn::Attention<double>;
  XGRAD_EXPECT_THROW_MSG(A(3, 4), ValueError, "Attention", "dot", "query_size 3", "key_size 4");
  XGRAD_EXPECT_THROW_MSG(A(0, 4, AttentionOptions().kind(AttentionKind::general)), ValueError, "Attention",
                         "positive", "query_size 0");
  XGRAD_EXPECT_THROW_MSG(A(3, 4, AttentionOptions().kind(AttentionKind::additive).scaled()), ValueError, "Attention",
                         "scaled", "additive");
  XGRAD_EXPECT_THROW_MSG(A(4, 4, AttentionOptions().hidden_size(8)), ValueError, "Attention", "hidden_size 8", "dot");
}

TEST(Attention, WrongShapesAndLengthsThrowBeforeRecording) {
  nn::Attention<double> attn(4, 3, AttentionOptions().kind(AttentionKind::general));
  auto z = [](Shape s) { return constant<double>(xt::zeros<double>(s)); };
  const Var<double> q = z({m, 4}), keys = z({S, m, 3}), values = z({S, m, n_v});
  auto& tape = Tape<double>::current();
  tape.clear();
  XGRAD_EXPECT_THROW_MSG(attn(z({m, 3}), keys), ShapeError, "Attention", "query", "(3, 3)", "(m, 4)", "(T_q, m, 4)");
  XGRAD_EXPECT_THROW_MSG(attn(z({4}), keys), ShapeError, "Attention", "query", "(4,)");
  XGRAD_EXPECT_THROW_MSG(attn(z({1, 2, m, 4}), keys), ShapeError, "Attention", "query", "(1, 2, 3, 4)");
  XGRAD_EXPECT_THROW_MSG(attn(z({2, m, 4}), z({S, 2, 3})), ShapeError, "Attention", "batch rows", "(2, 3, 4)",
                         "(5, 2, 3)");
  XGRAD_EXPECT_THROW_MSG(attn(q, z({S, m, 4})), ShapeError, "Attention", "keys", "(5, 3, 4)", "(S, m, 3)");
  XGRAD_EXPECT_THROW_MSG(attn(q, z({m, 3})), ShapeError, "Attention", "keys", "(3, 3)", "(S, m, 3)");
  XGRAD_EXPECT_THROW_MSG(attn(q, keys, z({S - 1, m, n_v})), ShapeError, "Attention", "values", "(4, 3, 2)",
                         "(5, 3, n_v)");
  XGRAD_EXPECT_THROW_MSG(attn(q, keys, z({S, m + 1, n_v})), ShapeError, "Attention", "values", "(5, 4, 2)");
  XGRAD_EXPECT_THROW_MSG(attn(q, keys, values, {2, 2}), ShapeError, "Attention", "2 key lengths", "m = 3",
                         "(5, 3, 3)");
  XGRAD_EXPECT_THROW_MSG(attn(q, keys, values, {2, 0, 2}), IndexError, "Attention", "key length 0", "example 1",
                         "[1, S = 5]");
  XGRAD_EXPECT_THROW_MSG(attn(q, keys, values, {2, 2, 6}), IndexError, "Attention", "key length 6", "example 2",
                         "[1, S = 5]");
  EXPECT_EQ(tape.size(), 0u);
}

}  // namespace
}  // namespace xgrad
