// Sequential and Function: names by position, forward as the composition, gradients, train and
// eval reaching every step, typed access, errors, and which modules can be a step.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;
using testing::rel_error;

// Linear(4, 8), relu, Linear(8, 2): PyTorch's nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).
template <class T>
void build_mlp(nn::Sequential<T>& mlp) {
  mlp.template emplace<nn::Linear<T>>(4, 8);
  mlp.add([](const Var<T>& x) { return relu(x); });
  mlp.add(std::make_unique<nn::Linear<T>>(8, 2));
}

// build_mlp's composition written out from its two Linear steps.
Var<double> mlp_by_hand(const nn::Sequential<double>& mlp, const Var<double>& x) {
  const auto& fc1 = mlp.get<nn::Linear<double>>(0);
  const auto& fc2 = mlp.get<nn::Linear<double>>(2);
  return fc2(relu(fc1(x)));
}

// What Sequential accepts as a step, decided at compile time.
static_assert(nn::has_unary_forward_v<nn::Linear<double>, double>);
static_assert(nn::has_unary_forward_v<nn::LayerNorm<float>, float>);
static_assert(nn::has_unary_forward_v<nn::Dropout<double>, double>);
static_assert(nn::has_unary_forward_v<nn::Function<double>, double>);
static_assert(nn::has_unary_forward_v<nn::Sequential<double>, double>);
static_assert(!nn::has_unary_forward_v<nn::Linear<double>, float>);
static_assert(!nn::has_unary_forward_v<nn::LSTMCell<double>, double>);  // returns a state
static_assert(!nn::has_unary_forward_v<nn::LSTM<double>, double>);      // returns a result
static_assert(!nn::has_unary_forward_v<nn::Embedding<double>, double>);  // reads ids
static_assert(!nn::has_unary_forward_v<nn::Module<double>, double>);     // no forward

TEST(Sequential, ParametersAreNamedByPositionInOrder) {
  nn::manual_seed(1);
  nn::Sequential<double> mlp;
  build_mlp(mlp);
  ASSERT_EQ(mlp.size(), 3u);
  const auto named = mlp.named_parameters();
  ASSERT_EQ(named.size(), 4u);
  EXPECT_EQ(named[0].first, "0.weight");
  EXPECT_EQ(named[1].first, "0.bias");
  EXPECT_EQ(named[2].first, "2.weight");
  EXPECT_EQ(named[3].first, "2.bias");
  // The very parameters of the steps, not copies.
  EXPECT_EQ(named[0].second.leaf(), mlp.get<nn::Linear<double>>(0).weight.leaf());
  EXPECT_EQ(named[3].second.leaf(), mlp.get<nn::Linear<double>>(2).bias.leaf());
  EXPECT_EQ(mlp.parameters().size(), 4u);
}

TEST(Sequential, ForwardIsTheCompositionOfItsSteps) {
  nn::manual_seed(2);
  nn::Sequential<double> mlp;
  build_mlp(mlp);
  std::mt19937_64 gen(3);
  const Var<double> x = constant(randn({5, 4}, gen));
  const Array<double> by_hand = mlp_by_hand(mlp, x).value();
  const Array<double> y = mlp(x).value();
  EXPECT_EQ(testing::shape_of(y), (Shape{5, 2}));
  EXPECT_EQ(y, by_hand);
  EXPECT_EQ(mlp.forward(x).value(), by_hand);
}

TEST(Sequential, GradientsEqualThoseOfTheCompositionByHand) {
  nn::manual_seed(4);
  nn::Sequential<double> mlp;
  build_mlp(mlp);
  std::mt19937_64 gen(5);
  const Array<double> x0 = randn({3, 4}, gen);
  Var<double> x = param(x0);
  testing::project(mlp_by_hand(mlp, x)).backward();
  std::vector<Array<double>> by_hand;
  for (const auto& p : mlp.parameters()) by_hand.push_back(p.grad());
  const Array<double> dx = x.grad();
  mlp.zero_grad();
  Var<double> x2 = param(x0);
  testing::project(mlp(x2)).backward();
  const auto params = mlp.parameters();
  for (std::size_t j = 0; j < params.size(); ++j) {
    EXPECT_GT(xt::amax(xt::abs(params[j].grad()))(), 0.0) << j;
    EXPECT_EQ(params[j].grad(), by_hand[j]) << j;
  }
  EXPECT_EQ(x2.grad(), dx);
}

TEST(Sequential, GradientMatchesFiniteDifferences) {
  nn::manual_seed(6);
  nn::Sequential<double> model;
  model.emplace<nn::Linear<double>>(3, 5);
  model.add([](const Var<double>& x) { return tanh(x); });
  model.emplace<nn::LayerNorm<double>>(5);
  model.emplace<nn::Linear<double>>(5, 2);
  std::mt19937_64 gen(7);
  model.get<nn::LayerNorm<double>>(2).weight.set_value(randn({5}, gen));
  model.get<nn::LayerNorm<double>>(2).bias.set_value(randn({5}, gen));
  auto r = testing::gradcheck_module(model, {randn({4, 3}, gen)},
                                     [&](const std::vector<Var<double>>& in) { return testing::project(model(in[0])); });
  EXPECT_TRUE(r.ok) << r.report();
}

TEST(Sequential, TrainAndEvalReachEveryStepNestedOnes) {
  nn::manual_seed(8);
  nn::Sequential<double> model;
  model.emplace<nn::Linear<double>>(4, 6);
  auto& drop = model.emplace<nn::Dropout<double>>(0.5);
  auto& inner = model.emplace<nn::Sequential<double>>();
  auto& inner_drop = inner.emplace<nn::Dropout<double>>(0.5);
  inner.emplace<nn::Linear<double>>(6, 2);
  EXPECT_EQ(model.named_parameters()[2].first, "2.1.weight");
  const Var<double> x = constant<double>(xt::ones<double>({3, 4}));
  const auto& fc1 = model.get<nn::Linear<double>>(0);
  const auto& fc2 = inner.get<nn::Linear<double>>(1);
  const Array<double> no_dropout = fc2(fc1(x)).value();
  EXPECT_NE(model(x).value(), no_dropout);  // training: masks in both Dropouts

  model.eval();
  EXPECT_FALSE(model.is_training());
  EXPECT_FALSE(drop.is_training());
  EXPECT_FALSE(inner.is_training());
  EXPECT_FALSE(inner_drop.is_training());
  EXPECT_FALSE(model[0].is_training());
  EXPECT_EQ(model(x).value(), no_dropout);

  model.train();
  EXPECT_TRUE(drop.is_training());
  EXPECT_TRUE(inner_drop.is_training());
}

TEST(Sequential, TypedAccessGivesBackTheAddedModule) {
  nn::Sequential<float> mlp;
  auto& fc = mlp.emplace<nn::Linear<float>>(2, 3);
  auto& act = mlp.add([](const Var<float>& x) { return tanh(x); });
  EXPECT_EQ(&mlp.get<nn::Linear<float>>(0), &fc);
  EXPECT_EQ(&mlp.get<nn::Function<float>>(1), &act);
  EXPECT_EQ(&mlp.get<nn::Module<float>>(1), &act);  // a base works too
  EXPECT_EQ(&mlp[0], static_cast<nn::Module<float>*>(&fc));
  const nn::Sequential<float>& c = mlp;
  EXPECT_EQ(&c.get<nn::Linear<float>>(0), &fc);
  EXPECT_EQ(&c[1], static_cast<const nn::Module<float>*>(&act));
  EXPECT_EQ(fc.in_features(), 2u);
}

TEST(Sequential, EmptyIsTheIdentity) {
  nn::Sequential<double> s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(s.parameters().empty());
  const Var<double> x = constant<double>(Array<double>{{1.0, -2.0}});
  EXPECT_EQ(s(x).value(), x.value());
}

TEST(Sequential, BadIndexTypeAndEmptyStepsThrowWithoutChangingIt) {
  nn::Sequential<double> mlp;
  build_mlp(mlp);
  XGRAD_EXPECT_THROW_MSG(mlp[3], IndexError, "Sequential", "index 3", "[0, 3)");
  XGRAD_EXPECT_THROW_MSG(mlp.get<nn::Linear<double>>(7), IndexError, "Sequential", "index 7", "[0, 3)");
  const nn::Sequential<double>& c = mlp;
  XGRAD_EXPECT_THROW_MSG(c[5], IndexError, "Sequential", "index 5");
  XGRAD_EXPECT_THROW_MSG(mlp.get<nn::Dropout<double>>(1), ValueError, "Sequential", "step 1",
                         "xgrad::nn::Function<double>", "xgrad::nn::Dropout<double>");
  XGRAD_EXPECT_THROW_MSG(mlp.add(std::unique_ptr<nn::Linear<double>>()), ValueError, "Sequential", "empty",
                         "step 3");
  XGRAD_EXPECT_THROW_MSG(mlp.add(nn::Function<double>::Fn()), ValueError, "Sequential", "empty function");
  XGRAD_EXPECT_THROW_MSG(nn::Function<double>(nullptr), ValueError, "Function", "empty");
  EXPECT_EQ(mlp.size(), 3u);
  EXPECT_EQ(mlp.named_parameters().size(), 4u);
  // A step's own shape check still names the step.
  XGRAD_EXPECT_THROW_MSG(mlp(constant<double>(xt::zeros<double>({2, 5}))), ShapeError, "Linear", "(2, 5)");
}

TEST(Function, AppliesItsFunctionAndHasNoParameters) {
  nn::Function<double> square_it([](const Var<double>& x) { return x * x; });
  EXPECT_TRUE(square_it.named_parameters().empty());
  Var<double> x = param(Array<double>{1.0, -3.0});
  Var<double> y = square_it(x);
  EXPECT_EQ(y.value(), (Array<double>{1.0, 9.0}));
  sum(y).backward();
  EXPECT_EQ(x.grad(), (Array<double>{2.0, -6.0}));
}

// A module without forward(const Var<T>&) -> Var<T> does not compile as a step, and the
// compiler says why.
TEST(Sequential, AModuleWithoutAUnaryForwardIsACompileError) {
  const std::string dir = XGRAD_BINARY_DIR "/tests";
  const std::string src = dir + "/sequential_rejects_cell.cpp";
  {
    std::ofstream f(src);
    f << "#include <memory>\n#include <xgrad/xgrad.hpp>\n"
         "int main() { xgrad::nn::Sequential<double> s; s.emplace<xgrad::nn::LSTMCell<double>>(3, 4); }\n";
  }
  const auto r = testing::run_command("c++ -std=c++17 -fsyntax-only -I" XGRAD_BINARY_DIR "/include " + src + " 2>&1");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_TRUE(testing::contains(r.out, "a step needs forward(const Var<T>&) returning Var<T>")) << r.out;
}

}  // namespace
}  // namespace xgrad
