// Dropout as a module: inverted dropout in training, the identity in eval, its gradient, its
// seed, and a bad p.
#include <gtest/gtest.h>

#include <cmath>

#include <xgrad/xgrad.hpp>

#include "layer_testing.hpp"

namespace xgrad {
namespace {

using testing::randn;

TEST(Dropout, TrainingZeroesAboutPAndScalesSurvivors) {
  nn::manual_seed(1);
  nn::Dropout<double> drop(0.3);
  EXPECT_TRUE(drop.is_training());
  EXPECT_EQ(drop.p(), 0.3);
  EXPECT_TRUE(drop.named_parameters().empty());
  std::mt19937_64 gen(2);
  const Array<double> x = randn({100, 100}, gen) + 5.0;  // no entry is 0 by chance
  const Array<double> y = drop(constant(x)).value();
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (y.flat(i) == 0) {
      ++zeros;
      continue;
    }
    EXPECT_NEAR(y.flat(i), x.flat(i) / 0.7, 1e-12) << i;
  }
  // 10⁴ Bernoulli(0.3) draws: the standard deviation of the fraction is 0.0046.
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(x.size()), 0.3, 0.025);
}

TEST(Dropout, EvalIsTheIdentityAndTrainTurnsItBackOn) {
  nn::manual_seed(3);
  nn::Dropout<double> drop(0.5);
  std::mt19937_64 gen(4);
  Var<double> x = param(randn({8, 8}, gen));
  drop.eval();
  EXPECT_FALSE(drop.is_training());
  Var<double> y = drop(x);
  EXPECT_EQ(y.value(), x.value());
  sum(y).backward();
  EXPECT_EQ(x.grad(), xt::ones<double>({8, 8}));
  drop.train();
  EXPECT_NE(drop(x).value(), x.value());
}

TEST(Dropout, GradientIsTheScaledMask) {
  nn::manual_seed(5);
  nn::Dropout<double> drop(0.25);
  Var<double> x = param(Array<double>(xt::ones<double>({20, 10})));
  Var<double> y = drop(x);  // y = mask / 0.75 with x = 1
  sum(y).backward();
  EXPECT_EQ(x.grad(), y.value());
  std::size_t kept = 0;
  for (double v : y.value()) kept += v != 0 ? 1 : 0;
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, y.size());
}

TEST(Dropout, MasksFollowTheSeed) {
  nn::Dropout<double> drop(0.5);
  const Var<double> x = constant<double>(xt::ones<double>({6, 7}));
  nn::manual_seed(11);
  const Array<double> a = drop(x).value();
  const Array<double> b = drop(x).value();
  nn::manual_seed(11);
  EXPECT_EQ(drop(x).value(), a);
  EXPECT_NE(a, b);
}

TEST(Dropout, ZeroPIsTheIdentityInTraining) {
  nn::Dropout<float> drop(0.0);
  std::mt19937_64 gen(6);
  const Var<float> x = constant<float>(randn<float>({3, 4}, gen));
  EXPECT_EQ(drop(x).value(), x.value());
}

TEST(Dropout, POfOneZeroesEverythingInTraining) {
  nn::Dropout<double> drop(1.0);
  Var<double> x = param(Array<double>(xt::ones<double>({3, 4})));
  Var<double> y = drop(x);
  EXPECT_EQ(y.value(), xt::zeros<double>({3, 4}));
  sum(y).backward();
  EXPECT_EQ(x.grad(), xt::zeros<double>({3, 4}));
  drop.eval();
  EXPECT_EQ(drop(x).value(), x.value());
}

TEST(Dropout, POutsideZeroToOneThrows) {
  XGRAD_EXPECT_THROW_MSG(nn::Dropout<double>(-0.1), ValueError, "Dropout", "p", "[0, 1]", "got -0.1");
  XGRAD_EXPECT_THROW_MSG(nn::Dropout<double>(1.5), ValueError, "Dropout", "p", "[0, 1]", "got 1.5");
  XGRAD_EXPECT_THROW_MSG(nn::Dropout<double>(NAN), ValueError, "Dropout", "p", "nan");
}

}  // namespace
}  // namespace xgrad
