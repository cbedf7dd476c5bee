// Optimizers (first steps against independently written scalar rules and hand-worked
// numbers, a quadratic, a small RNN), clipping and schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include <xtensor/xadapt.hpp>
#include <xgrad/xgrad.hpp>

#include "testing.hpp"

#include "tiny_rnn.hpp"

using namespace xgrad;
using A = Array<double>;

namespace {

using xgrad::testing::contains;
using xgrad::testing::message_of;

class OptimTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_tape(); }
  void TearDown() override { clear_tape(); }
};

// Gradients fed to the optimizers in the first-step tests: three steps, two parameters.
const std::vector<std::vector<double>> kGrads0 = {{0.5, -1.0, 2.0, 0.0}, {0.1, -0.3, 1.5, -2.0}, {-0.7, 0.2, 0.4, 1.0}};
const std::vector<std::vector<double>> kGrads1 = {{3.0, -0.25}, {-1.0, 0.75}, {0.5, 0.5}};
const std::vector<double> kInit0 = {1.0, -2.0, 0.5, 3.0};
const std::vector<double> kInit1 = {-0.5, 4.0};

// Runs `opt` three steps on two parameters with the gradients above; returns the values.
template <class Opt, class... Args>
std::vector<std::vector<double>> run_three(Args&&... args) {
  auto p0 = param(A(xt::adapt(kInit0, {2, 2})));
  auto p1 = param(A(xt::adapt(kInit1, {2})));
  Opt opt({p0, p1}, std::forward<Args>(args)...);
  for (int s = 0; s < 3; ++s) {
    opt.zero_grad();
    std::copy(kGrads0[s].begin(), kGrads0[s].end(), p0.mutable_grad().begin());
    std::copy(kGrads1[s].begin(), kGrads1[s].end(), p1.mutable_grad().begin());
    opt.step();
  }
  EXPECT_EQ(opt.step_count(), 3);
  return {std::vector<double>(p0.value().begin(), p0.value().end()),
          std::vector<double>(p1.value().begin(), p1.value().end())};
}

// The same three steps through a scalar rule rule(p, g, state, t) applied per element.
template <class State>
std::vector<std::vector<double>> reference_three(std::function<void(double&, double, State&, int)> rule) {
  std::vector<std::vector<double>> p = {kInit0, kInit1};
  std::vector<std::vector<State>> st = {std::vector<State>(4), std::vector<State>(2)};
  const std::vector<std::vector<std::vector<double>>> grads = {kGrads0, kGrads1};
  for (int t = 1; t <= 3; ++t)
    for (std::size_t k = 0; k < 2; ++k)
      for (std::size_t j = 0; j < p[k].size(); ++j) rule(p[k][j], grads[k][t - 1][j], st[k][j], t);
  return p;
}

void expect_close(const std::vector<std::vector<double>>& got, const std::vector<std::vector<double>>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t k = 0; k < got.size(); ++k)
    for (std::size_t j = 0; j < got[k].size(); ++j)
      EXPECT_NEAR(got[k][j], want[k][j], 1e-12) << "parameter " << k << " element " << j;
}

struct Mom {
  double buf = 0;
};

// ---------------------------------------------------------------- hand-worked numbers

TEST_F(OptimTest, SGDMomentumByHand) {
  // g = 1 each step, lr 0.1, momentum 0.9: b = 1, then 1.9; p = -0.1, then -0.29.
  auto p = param(A{0.0});
  optim::SGD<double> opt({p}, 0.1, optim::SGDOptions().momentum(0.9));
  p.mutable_grad().fill(1.0);
  opt.step();
  EXPECT_NEAR(p.value()(0), -0.1, 1e-15);
  opt.step();
  EXPECT_NEAR(p.value()(0), -0.29, 1e-15);
}

TEST_F(OptimTest, SGDNesterovByHand) {
  // d = g + 0.9·b: 1.9 then 2.71, so p = -0.19, then -0.461.
  auto p = param(A{0.0});
  optim::SGD<double> opt({p}, 0.1, optim::SGDOptions().momentum(0.9).nesterov(true));
  p.mutable_grad().fill(1.0);
  opt.step();
  EXPECT_NEAR(p.value()(0), -0.19, 1e-15);
  opt.step();
  EXPECT_NEAR(p.value()(0), -0.461, 1e-15);
}

TEST_F(OptimTest, AdagradByHand) {
  // g = 2 then 1, lr 0.1: s = 4, p = 1 - 0.1·2/2 = 0.9; s = 5, p = 0.9 - 0.1/√5.
  auto p = param(A{1.0});
  optim::Adagrad<double> opt({p}, 0.1);
  p.mutable_grad().fill(2.0);
  opt.step();
  EXPECT_NEAR(p.value()(0), 0.9, 1e-10);
  p.mutable_grad().fill(1.0);
  opt.step();
  EXPECT_NEAR(p.value()(0), 0.9 - 0.1 / std::sqrt(5.0), 1e-10);
}

TEST_F(OptimTest, AdagradMinCharRnnFormPutsEpsInsideTheRoot) {
  // min-char-rnn: mem += dparam²; param -= lr·dparam/√(mem + 1e-8).
  auto p = param(A{1.0});
  optim::Adagrad<double> opt({p}, 0.1, optim::AdagradOptions().eps(1e-8).eps_inside_sqrt(true));
  p.mutable_grad().fill(1e-4);
  opt.step();
  EXPECT_NEAR(p.value()(0), 1.0 - 0.1 * 1e-4 / std::sqrt(1e-8 + 1e-8), 1e-15);
}

TEST_F(OptimTest, AdamFirstStepMovesEachWeightByAboutLr) {
  // Step 1: m̂ = g, v̂ = g², so p -= lr·g/(|g| + eps).
  auto p = param(A{1.0, 1.0});
  optim::Adam<double> opt({p}, 0.1);
  p.mutable_grad() = A{0.5, -3.0};
  opt.step();
  EXPECT_NEAR(p.value()(0), 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_NEAR(p.value()(1), 1.0 + 0.1 * 3.0 / (3.0 + 1e-8), 1e-15);
  // Step 2 with g = 0.5 again: m = 0.095, m̂ = 0.5; v = 0.00049975, v̂ = 0.25: another 0.1.
  p.mutable_grad() = A{0.5, 0.0};
  opt.step();
  EXPECT_NEAR(p.value()(0), 1.0 - 0.2, 1e-7);
}

TEST_F(OptimTest, AdamWDecaysTheWeightBeforeTheAdamStep) {
  auto p = param(A{1.0});
  optim::AdamW<double> opt({p}, 0.1);  // weight_decay 1e-2 by default
  EXPECT_STREQ(opt.kind(), "AdamW");
  p.mutable_grad().fill(0.5);
  opt.step();
  EXPECT_NEAR(p.value()(0), 1.0 * (1 - 0.1 * 1e-2) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
}

TEST_F(OptimTest, RMSpropByHand) {
  // g = 1, alpha 0.99: v = 0.01, p -= lr·1/(0.1 + eps); centered: v - ḡ² = 0.0099.
  auto p = param(A{0.0});
  optim::RMSprop<double> opt({p}, 0.01);
  p.mutable_grad().fill(1.0);
  opt.step();
  EXPECT_NEAR(p.value()(0), -0.01 / (0.1 + 1e-8), 1e-15);
  auto q = param(A{0.0});
  optim::RMSprop<double> centered({q}, 0.01, optim::RMSpropOptions().centered(true));
  q.mutable_grad().fill(1.0);
  centered.step();
  EXPECT_NEAR(q.value()(0), -0.01 / (std::sqrt(0.0099) + 1e-8), 1e-15);
}

// ---------------------------------------------------------------- three steps vs scalar rules

TEST_F(OptimTest, SGDMatchesTheScalarRule) {
  for (bool nesterov : {false, true}) {
    const double lr = 0.05, mu = 0.8, damp = nesterov ? 0.0 : 0.3, wd = 0.01;
    auto got = run_three<optim::SGD<double>>(
        lr, optim::SGDOptions().momentum(mu).dampening(damp).weight_decay(wd).nesterov(nesterov));
    auto want = reference_three<Mom>([&](double& p, double g, Mom& s, int t) {
      g += wd * p;
      s.buf = t == 1 ? g : mu * s.buf + (1 - damp) * g;
      p -= lr * (nesterov ? g + mu * s.buf : s.buf);
    });
    expect_close(got, want);
  }
  auto plain = run_three<optim::SGD<double>>(0.1);
  expect_close(plain, reference_three<Mom>([](double& p, double g, Mom&, int) { p -= 0.1 * g; }));
}

TEST_F(OptimTest, AdagradMatchesTheScalarRule) {
  struct S {
    double sum = 0.25;
  };
  const double lr = 0.3, decay = 0.1, wd = 0.02, eps = 1e-10;
  auto got = run_three<optim::Adagrad<double>>(
      lr, optim::AdagradOptions().lr_decay(decay).weight_decay(wd).initial_accumulator_value(0.25));
  auto want = reference_three<S>([&](double& p, double g, S& s, int t) {
    g += wd * p;
    s.sum += g * g;
    p -= lr / (1 + (t - 1) * decay) * g / (std::sqrt(s.sum) + eps);
  });
  expect_close(got, want);
}

TEST_F(OptimTest, RMSpropMatchesTheScalarRule) {
  struct S {
    double v = 0, gbar = 0, buf = 0;
  };
  for (bool centered : {false, true})
    for (double mu : {0.0, 0.7}) {
      const double lr = 0.02, alpha = 0.9, eps = 1e-6, wd = 0.05;
      auto got = run_three<optim::RMSprop<double>>(
          lr, optim::RMSpropOptions().alpha(alpha).eps(eps).weight_decay(wd).momentum(mu).centered(centered));
      auto want = reference_three<S>([&](double& p, double g, S& s, int) {
        g += wd * p;
        s.v = alpha * s.v + (1 - alpha) * g * g;
        double avg = s.v;
        if (centered) {
          s.gbar = alpha * s.gbar + (1 - alpha) * g;
          avg -= s.gbar * s.gbar;
        }
        const double d = std::sqrt(avg) + eps;
        if (mu > 0) {
          s.buf = mu * s.buf + g / d;
          p -= lr * s.buf;
        } else {
          p -= lr * g / d;
        }
      });
      SCOPED_TRACE(::testing::Message() << "centered " << centered << " momentum " << mu);
      expect_close(got, want);
    }
}

TEST_F(OptimTest, AdamAndAdamWMatchTheScalarRule) {
  struct S {
    double m = 0, v = 0, vmax = 0;
  };
  for (bool decoupled : {false, true})
    for (bool amsgrad : {false, true}) {
      const double lr = 0.01, b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.1;
      std::vector<std::vector<double>> got;
      if (decoupled)
        got = run_three<optim::AdamW<double>>(
            lr, optim::AdamWOptions().betas(b1, b2).eps(eps).weight_decay(wd).amsgrad(amsgrad));
      else
        got = run_three<optim::Adam<double>>(
            lr, optim::AdamOptions().betas(b1, b2).eps(eps).weight_decay(wd).amsgrad(amsgrad));
      auto want = reference_three<S>([&](double& p, double g, S& s, int t) {
        if (decoupled)
          p -= lr * wd * p;
        else
          g += wd * p;
        s.m = b1 * s.m + (1 - b1) * g;
        s.v = b2 * s.v + (1 - b2) * g * g;
        s.vmax = std::max(s.vmax, s.v);
        const double mhat = s.m / (1 - std::pow(b1, t));
        const double vhat = (amsgrad ? s.vmax : s.v) / (1 - std::pow(b2, t));
        p -= lr * mhat / (std::sqrt(vhat) + eps);
      });
      SCOPED_TRACE(::testing::Message() << "decoupled " << decoupled << " amsgrad " << amsgrad);
      expect_close(got, want);
    }
}

TEST_F(OptimTest, FloatAndDoubleAgree) {
  auto pf = param(Array<float>{1.0f, -2.0f});
  auto pd = param(A{1.0, -2.0});
  optim::Adam<float> of({pf}, 0.01);
  optim::Adam<double> od({pd}, 0.01);
  for (int s = 0; s < 5; ++s) {
    pf.mutable_grad() = Array<float>{0.3f * float(s + 1), -0.2f};
    pd.mutable_grad() = A{0.3 * (s + 1), -0.2};
    of.step();
    od.step();
  }
  EXPECT_NEAR(pf.value()(0), pd.value()(0), 1e-6);
  EXPECT_NEAR(pf.value()(1), pd.value()(1), 1e-6);
}

// ---------------------------------------------------------------- convergence

// f(p) = Σ wᵢ (pᵢ − cᵢ)², minimum 0 at c.
// With a schedule, the rate of each step comes from it.
double minimise_quadratic(optim::Optimizer<double>& opt, const Var<double>& p, int steps,
                          optim::Schedule schedule = nullptr) {
  const A c = {1.0, -2.0, 0.5, 3.0, -1.5};
  const A w = {1.0, 0.5, 2.0, 0.25, 1.5};
  double loss = 0;
  for (int s = 0; s <= steps; ++s) {
    clear_tape();
    opt.zero_grad();
    Var<double> f = sum(constant(w) * square(p - constant(c)));
    loss = f.value().flat(0);
    if (s == steps) break;
    f.backward();
    if (schedule) opt.set_lr(schedule(opt.step_count()));
    opt.step();
  }
  return loss;
}

TEST_F(OptimTest, EveryOptimizerMinimisesAQuadratic) {
  const double start = 1.0 * 1 + 0.5 * 4 + 2.0 * 0.25 + 0.25 * 9 + 1.5 * 2.25;  // f(0)
  // RMSprop's step is about lr·sign(g) near the minimum, so with a fixed rate it circles the
  // minimum at a distance of about lr: it gets a cosine schedule to zero.
  struct Maker {
    std::string name;
    std::function<std::unique_ptr<optim::Optimizer<double>>(Var<double>)> make;
    optim::Schedule schedule = nullptr;
  };
  std::vector<Maker> makers = {
      {"SGD", [](Var<double> p) { return std::make_unique<optim::SGD<double>>(std::vector{p}, 0.1); }},
      {"SGD momentum",
       [](Var<double> p) {
         return std::make_unique<optim::SGD<double>>(std::vector{p}, 0.05, optim::SGDOptions().momentum(0.9));
       }},
      {"SGD Nesterov",
       [](Var<double> p) {
         return std::make_unique<optim::SGD<double>>(std::vector{p}, 0.05,
                                                     optim::SGDOptions().momentum(0.9).nesterov(true));
       }},
      {"Adagrad", [](Var<double> p) { return std::make_unique<optim::Adagrad<double>>(std::vector{p}, 1.0); }},
      {"RMSprop", [](Var<double> p) { return std::make_unique<optim::RMSprop<double>>(std::vector{p}, 0.01); },
       optim::cosine_lr(0.05, 300)},
      {"Adam", [](Var<double> p) { return std::make_unique<optim::Adam<double>>(std::vector{p}, 0.1); }},
      {"AdamW",
       [](Var<double> p) {
         return std::make_unique<optim::AdamW<double>>(std::vector{p}, 0.1, optim::AdamWOptions().weight_decay(0));
       }},
  };
  for (auto& [name, make, schedule] : makers) {
    auto p = param(A(xt::zeros<double>({5})));
    auto opt = make(p);
    const double loss = minimise_quadratic(*opt, p, 300, schedule);
    EXPECT_LT(loss, 1e-4 * start) << name;
  }
}

TEST_F(OptimTest, EveryOptimizerTrainsASmallRNN) {
  using xgrad_test::TinyRNN;
  const std::size_t V = 6, H = 12;
  data::StreamBatcher batches(xgrad_test::tiny_corpus(400, V), 4, 8);
  std::vector<std::pair<std::string, std::function<std::unique_ptr<optim::Optimizer<float>>(std::vector<Var<float>>)>>>
      makers = {
          {"SGD",
           [](auto ps) {
             return std::make_unique<optim::SGD<float>>(ps, 0.05, optim::SGDOptions().momentum(0.9).nesterov(true));
           }},
          {"Adagrad", [](auto ps) { return std::make_unique<optim::Adagrad<float>>(ps, 0.1); }},
          {"RMSprop", [](auto ps) { return std::make_unique<optim::RMSprop<float>>(ps, 0.01); }},
          {"Adam", [](auto ps) { return std::make_unique<optim::Adam<float>>(ps, 0.02); }},
          {"AdamW", [](auto ps) { return std::make_unique<optim::AdamW<float>>(ps, 0.02); }},
      };
  for (auto& [name, make] : makers) {
    nn::manual_seed(7);
    TinyRNN<float> model(V, H);
    auto opt = make(model.parameters());
    batches.seek(0);
    auto a = model.zero_state(4);
    double first = 0, last = 0;
    for (int s = 0; s < 150; ++s) {
      if (batches.index() == 0) a = model.zero_state(4);
      clear_tape();
      opt->zero_grad();
      auto loss = model.loss(batches.next(), a);
      loss.backward();
      a = a.detach();
      optim::clip_grad_norm(model.parameters(), 5.0);
      opt->step();
      if (s < 10) first += loss.value().flat(0) / 10;
      if (s >= 140) last += loss.value().flat(0) / 10;
    }
    EXPECT_LT(last, 0.3 * first) << name << ": mean loss of the first 10 steps " << first << ", of the last 10 " << last;
  }
}

// ---------------------------------------------------------------- state, errors

TEST_F(OptimTest, StateRoundTripsAndContinuesIdentically) {
  auto run = [](optim::Adam<double>& opt, const Var<double>& p, int from, int to) {
    for (int s = from; s < to; ++s) {
      p.mutable_grad() = A{std::sin(s * 1.0), std::cos(s * 0.5)};
      opt.step();
    }
  };
  auto p = param(A{0.5, -0.5});
  optim::Adam<double> opt({p}, 0.01, optim::AdamOptions().amsgrad(true));
  run(opt, p, 0, 4);
  const auto saved = opt.state();
  const A saved_p = p.value();
  EXPECT_EQ(saved.kind, "Adam");
  EXPECT_EQ(saved.step, 4);
  ASSERT_EQ(saved.arrays.size(), 3u);
  EXPECT_EQ(saved.arrays[0].first, "exp_avg.0");
  EXPECT_EQ(saved.arrays[2].first, "max_exp_avg_sq.0");
  run(opt, p, 4, 8);
  const A straight = p.value();

  auto q = param(saved_p);
  optim::Adam<double> fresh({q}, 0.5, optim::AdamOptions().amsgrad(true));
  fresh.load_state(saved);
  EXPECT_EQ(fresh.step_count(), 4);
  EXPECT_EQ(fresh.lr(), 0.01);
  run(fresh, q, 4, 8);
  EXPECT_EQ(q.value(), straight);
}

TEST_F(OptimTest, LoadStateRejectsAMismatchAndChangesNothing) {
  auto p = param(A{0.5, -0.5});
  optim::Adam<double> adam({p}, 0.01);
  p.mutable_grad() = A{1.0, 1.0};
  adam.step();
  auto q = param(A{1.0, 2.0, 3.0});
  optim::Adam<double> other({q}, 0.02);
  auto msg = message_of<ValueError>([&] { other.load_state(adam.state()); });
  EXPECT_TRUE(contains(msg, "exp_avg.0") && contains(msg, "(2,)") && contains(msg, "(3,)")) << msg;
  EXPECT_EQ(other.step_count(), 0);
  EXPECT_EQ(other.lr(), 0.02);
  optim::SGD<double> sgd({p}, 0.1);
  msg = message_of<ValueError>([&] { sgd.load_state(adam.state()); });
  EXPECT_TRUE(contains(msg, "of Adam") && contains(msg, "SGD")) << msg;
  optim::Adam<double> ams({p}, 0.1, optim::AdamOptions().amsgrad(true));
  msg = message_of<ValueError>([&] { ams.load_state(adam.state()); });
  EXPECT_TRUE(contains(msg, "holds 2 buffers") && contains(msg, "has 3")) << msg;
}

TEST_F(OptimTest, BadSettingsAreValueErrors) {
  auto p = param(A{1.0});
  auto msg = message_of<ValueError>([&] { optim::SGD<double>({p}, -0.1); });
  EXPECT_TRUE(contains(msg, "lr") && contains(msg, "-0.1")) << msg;
  msg = message_of<ValueError>([&] { optim::SGD<double>({p}, 0.1, optim::SGDOptions().nesterov(true)); });
  EXPECT_TRUE(contains(msg, "Nesterov") && contains(msg, "momentum")) << msg;
  msg = message_of<ValueError>([&] { optim::Adam<double>({p}, 0.1, optim::AdamOptions().betas(0.9, 1.0)); });
  EXPECT_TRUE(contains(msg, "beta2") && contains(msg, "[0, 1)") && contains(msg, "got 1")) << msg;
  msg = message_of<ValueError>([&] { optim::RMSprop<double>({p}, 0.1, optim::RMSpropOptions().alpha(1.5)); });
  EXPECT_TRUE(contains(msg, "alpha") && contains(msg, "1.5")) << msg;
  msg = message_of<ValueError>([&] { optim::Adagrad<double>({p}, 0.1, optim::AdagradOptions().eps(-1)); });
  EXPECT_TRUE(contains(msg, "eps")) << msg;
  msg = message_of<ValueError>([&] { optim::Adam<double>({p, constant(A{1.0})}, 0.1); });
  EXPECT_TRUE(contains(msg, "element 1") && contains(msg, "not a parameter")) << msg;
  optim::Adam<double> opt({p}, 0.1);
  EXPECT_THROW(opt.set_lr(-1), ValueError);
  EXPECT_EQ(opt.lr(), 0.1);
}

// Each chained setter sets its option, returns the struct for the next one, and leaves the
// others at PyTorch's defaults.
TEST(OptimOptions, ChainedSettersSetEachOption) {
  const auto sgd = optim::SGDOptions().momentum(0.9).dampening(0.1).weight_decay(0.01).nesterov(true);
  EXPECT_EQ(sgd.momentum(), 0.9);
  EXPECT_EQ(sgd.dampening(), 0.1);
  EXPECT_EQ(sgd.weight_decay(), 0.01);
  EXPECT_TRUE(sgd.nesterov());
  const auto ada = optim::AdagradOptions().lr_decay(0.1).weight_decay(0.2).initial_accumulator_value(0.3).eps(1e-6).eps_inside_sqrt(true);
  EXPECT_EQ(ada.lr_decay(), 0.1);
  EXPECT_EQ(ada.weight_decay(), 0.2);
  EXPECT_EQ(ada.initial_accumulator_value(), 0.3);
  EXPECT_EQ(ada.eps(), 1e-6);
  EXPECT_TRUE(ada.eps_inside_sqrt());
  const auto rms = optim::RMSpropOptions().alpha(0.9).eps(1e-6).weight_decay(0.1).momentum(0.5).centered(true);
  EXPECT_EQ(rms.alpha(), 0.9);
  EXPECT_EQ(rms.eps(), 1e-6);
  EXPECT_EQ(rms.weight_decay(), 0.1);
  EXPECT_EQ(rms.momentum(), 0.5);
  EXPECT_TRUE(rms.centered());
  // Shared options chain before and after each struct's own.
  const auto adam = optim::AdamOptions().weight_decay(0.1).betas(0.8, 0.9).eps(1e-6).amsgrad(true);
  EXPECT_EQ(adam.beta1(), 0.8);
  EXPECT_EQ(adam.beta2(), 0.9);
  EXPECT_EQ(adam.eps(), 1e-6);
  EXPECT_EQ(adam.weight_decay(), 0.1);
  EXPECT_TRUE(adam.amsgrad());
  const auto adamw = optim::AdamWOptions().beta1(0.5).beta2(0.6).weight_decay(0.2);
  EXPECT_EQ(adamw.beta1(), 0.5);
  EXPECT_EQ(adamw.beta2(), 0.6);
  EXPECT_EQ(adamw.weight_decay(), 0.2);
  EXPECT_FALSE(adamw.amsgrad());
  EXPECT_EQ(optim::AdamOptions().weight_decay(), 0.0);
  EXPECT_EQ(optim::AdamWOptions().weight_decay(), 1e-2);
  EXPECT_EQ(optim::AdagradOptions().eps(), 1e-10);
}

TEST_F(OptimTest, ZeroGradClearsEveryGradient) {
  auto p = param(A{1.0, 2.0});
  optim::SGD<double> opt({p}, 0.1);
  p.mutable_grad() = A{3.0, 4.0};
  opt.zero_grad();
  EXPECT_EQ(p.grad(), (A{0.0, 0.0}));
}

// ---------------------------------------------------------------- clipping

TEST_F(OptimTest, ClipGradNormScalesToTheGlobalNormAndReturnsTheOldOne) {
  auto a = param(A{0.0, 0.0});
  auto b = param(A{0.0});
  a.mutable_grad() = A{3.0, 4.0};
  b.mutable_grad() = A{12.0};  // global norm √(9 + 16 + 144) = 13
  const double norm = optim::clip_grad_norm<double>({a, b}, 6.5);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  const double c = 6.5 / (13.0 + 1e-6);
  EXPECT_DOUBLE_EQ(a.grad()(0), 3.0 * c);
  EXPECT_DOUBLE_EQ(a.grad()(1), 4.0 * c);
  EXPECT_DOUBLE_EQ(b.grad()(0), 12.0 * c);
  // Below the limit nothing changes.
  EXPECT_NEAR(optim::clip_grad_norm<double>({a, b}, 100.0), 6.5, 1e-6);
  EXPECT_DOUBLE_EQ(b.grad()(0), 12.0 * c);
}

TEST_F(OptimTest, ClipGradNormOtherNorms) {
  auto a = param(A{0.0, 0.0, 0.0});
  a.mutable_grad() = A{1.0, -5.0, 2.0};
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm<double>({a}, 100.0, INFINITY), 5.0);
  EXPECT_NEAR(optim::clip_grad_norm<double>({a}, 100.0, 1.0), 8.0, 1e-12);
  EXPECT_NEAR(optim::clip_grad_norm<double>({a}, 2.5, INFINITY), 5.0, 1e-12);
  EXPECT_NEAR(a.grad()(1), -2.5, 1e-6);
  a.mutable_grad() = A{NAN, 1.0, 1.0};
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm<double>({a}, 1.0)));
  EXPECT_EQ(a.grad()(1), 1.0);  // left unchanged
  EXPECT_THROW(optim::clip_grad_norm<double>({a}, -1.0), ValueError);
}

TEST_F(OptimTest, ClipGradValueClampsEachElement) {
  auto a = param(A{0.0, 0.0, 0.0, 0.0});
  a.mutable_grad() = A{-7.0, -0.5, 0.25, 9.0};
  optim::clip_grad_value<double>({a}, 5.0);
  EXPECT_EQ(a.grad(), (A{-5.0, -0.5, 0.25, 5.0}));
  EXPECT_THROW(optim::clip_grad_value<double>({a}, -1.0), ValueError);
}

// ---------------------------------------------------------------- schedules

TEST_F(OptimTest, StepAndExponentialSchedules) {
  auto s = optim::step_lr(1.0, 3, 0.5);
  EXPECT_EQ(s(0), 1.0);
  EXPECT_EQ(s(2), 1.0);
  EXPECT_EQ(s(3), 0.5);
  EXPECT_EQ(s(7), 0.25);
  auto e = optim::exponential_lr(2.0, 0.9);
  EXPECT_EQ(e(0), 2.0);
  EXPECT_NEAR(e(3), 2.0 * 0.729, 1e-15);
}

TEST_F(OptimTest, CosineScheduleFallsFromBaseToMinimumAndStays) {
  auto s = optim::cosine_lr(1.0, 100, 0.1);
  EXPECT_DOUBLE_EQ(s(0), 1.0);
  EXPECT_DOUBLE_EQ(s(50), 0.55);
  EXPECT_NEAR(s(25), 0.1 + 0.9 * (1 + std::sqrt(0.5)) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(s(100), 0.1);
  EXPECT_DOUBLE_EQ(s(150), 0.1);
}

TEST_F(OptimTest, WarmupRampsLinearlyThenHandsOver) {
  auto s = optim::warmup(optim::cosine_lr(1.0, 100), 10, 0.1);
  EXPECT_DOUBLE_EQ(s(0), 0.1);
  EXPECT_DOUBLE_EQ(s(5), 0.1 + 0.9 * 0.5);
  EXPECT_DOUBLE_EQ(s(10), 1.0);
  EXPECT_DOUBLE_EQ(s(60), 0.5);
  auto twice = optim::warmup(optim::warmup(optim::constant_lr(2.0), 4), 2);  // nests
  EXPECT_DOUBLE_EQ(twice(0), 0.0);
  EXPECT_DOUBLE_EQ(twice(1), 0.0);  // inner(0) = 0: the inner warm-up starts at 0
  EXPECT_DOUBLE_EQ(twice(2), 0.0);
  EXPECT_DOUBLE_EQ(twice(4), 1.0);
  EXPECT_DOUBLE_EQ(twice(6), 2.0);
}

// The update's vectorised body and its scalar remainder compute the same numbers: a parameter of
// 1,003 floats (vectors plus a remainder) ends bit for bit where 1,003 one-element parameters
// (remainder only) end, with and without AMSGrad and weight decay.
TEST_F(OptimTest, AdamUpdatesEveryElementAlikeWhateverTheParameterSize) {
  const std::size_t n = 1003;
  for (bool amsgrad : {false, true}) {
    auto whole = param(Array<float>(xt::zeros<float>({n})));
    std::vector<Var<float>> singles;
    for (std::size_t j = 0; j < n; ++j) singles.push_back(param(Array<float>({float(0)})));
    const auto o = optim::AdamOptions().betas(0.8, 0.95).eps(1e-6).weight_decay(0.1).amsgrad(amsgrad);
    optim::Adam<float> big({whole}, 0.01, o), small(singles, 0.01, o);
    for (std::size_t j = 0; j < n; ++j) whole.mutable_value()(j) = singles[j].mutable_value()(0) = 0.01f * float(j % 17);
    for (int s = 0; s < 4; ++s) {
      big.zero_grad();
      small.zero_grad();
      for (std::size_t j = 0; j < n; ++j)  // signs and sizes vary, so AMSGrad's maximum changes hands
        whole.mutable_grad()(j) = singles[j].mutable_grad()(0) = std::sin(float(j * (s + 1))) * float(1 + (j + s) % 3);
      big.step();
      small.step();
    }
    for (std::size_t j = 0; j < n; ++j)
      ASSERT_EQ(whole.value()(j), singles[j].value()(0)) << "element " << j << ", amsgrad " << amsgrad;
  }
}

TEST_F(OptimTest, SchedulerSetsTheRateOfEachStepFromTheStepCount) {
  auto p = param(A{0.0});
  optim::SGD<double> opt({p}, 123.0);
  optim::Scheduler<double> sched(opt, optim::step_lr(1.0, 2, 0.1));
  std::vector<double> seen;
  for (int s = 0; s < 5; ++s) {
    sched.step();
    seen.push_back(opt.lr());
    p.mutable_grad().fill(1.0);
    opt.step();
  }
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_DOUBLE_EQ(seen[0], 1.0);
  EXPECT_DOUBLE_EQ(seen[1], 1.0);
  EXPECT_DOUBLE_EQ(seen[2], 0.1);
  EXPECT_DOUBLE_EQ(seen[3], 0.1);
  EXPECT_NEAR(seen[4], 0.01, 1e-17);
  EXPECT_NEAR(p.value()(0), -(1 + 1 + 0.1 + 0.1 + 0.01), 1e-14);
}

TEST_F(OptimTest, BadSchedulesAreValueErrors) {
  auto msg = message_of<ValueError>([] { optim::step_lr(1.0, 0); });
  EXPECT_TRUE(contains(msg, "step_size") && contains(msg, "got 0")) << msg;
  EXPECT_THROW(optim::cosine_lr(1.0, -5), ValueError);
  EXPECT_THROW(optim::warmup(optim::Schedule(), 5), ValueError);
  EXPECT_THROW(optim::warmup(optim::constant_lr(1.0), 5, 1.5), ValueError);
  EXPECT_THROW(optim::constant_lr(1.0)(-1), ValueError);
}

}  // namespace
