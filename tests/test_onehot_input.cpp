// One-hot input by ids (cells' input_projection(ids), sequence layers' forward_onehot) gives the
// values and gradients of the same layers on the one-hot array.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
using A = Array<double>;

namespace {

constexpr std::size_t kClasses = 5, kSteps = 4, kBatch = 3, kHidden = 6;

std::vector<int> ids_for_test() {
  std::mt19937 gen(4);
  std::vector<int> ids(kSteps * kBatch);
  for (int& v : ids) v = static_cast<int>(gen() % kClasses);
  ids[0] = ids[1];  // a repeated id within a step
  return ids;
}

A one_hot(const std::vector<int>& ids) {
  A x = xt::zeros<double>({kSteps, kBatch, kClasses});
  for (std::size_t i = 0; i < ids.size(); ++i) x.data()[i * kClasses + static_cast<std::size_t>(ids[i])] = 1;
  return x;
}

bool close(const A& a, const A& b) {
  if (a.shape() != b.shape()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(a.flat(i) - b.flat(i)) > 1e-12 * (1 + std::abs(b.flat(i)))) return false;
  return true;
}

// Loss of a sequence layer's output weighted by fixed random numbers, so every element counts.
template <class Layer, class Run>
void expect_same(Layer& layer, Run run_dense, Run run_ids) {
  const std::vector<int> ids = ids_for_test();
  std::mt19937_64 gen(9);
  std::uniform_real_distribution<double> u(-1, 1);
  A weights;
  auto grads = [&](Run run, A& out) {
    layer.zero_grad();
    Var<double> y = run(ids);
    out = y.value();
    if (weights.size() == 0) {
      weights = A::from_shape(y.shape());  // (T, m, directions·n_a)
      for (double& v : weights) v = u(gen);
    }
    sum(y * constant(weights)).backward();
    std::vector<A> g;
    for (const auto& p : layer.parameters()) g.push_back(p.grad());
    clear_tape();
    return g;
  };
  A y_dense, y_ids;
  const auto g_dense = grads(run_dense, y_dense);
  const auto g_ids = grads(run_ids, y_ids);
  EXPECT_TRUE(close(y_ids, y_dense));
  ASSERT_EQ(g_ids.size(), g_dense.size());
  for (std::size_t i = 0; i < g_ids.size(); ++i) EXPECT_TRUE(close(g_ids[i], g_dense[i])) << "parameter " << i;
}

using RunFn = std::function<Var<double>(const std::vector<int>&)>;

TEST(OneHotInput, RNNMatchesDenseOneHot) {
  nn::manual_seed(3);
  nn::RNN<double> rnn(kClasses, kHidden, nn::RNNOptions().layers(2).bidirectional());
  expect_same(rnn, RunFn([&](const std::vector<int>& ids) { return rnn(constant(one_hot(ids))).output; }),
              RunFn([&](const std::vector<int>& ids) { return rnn.forward_onehot(ids, kSteps).output; }));
}

TEST(OneHotInput, LSTMMatchesDenseOneHotWithLengths) {
  nn::manual_seed(4);
  nn::LSTM<double> lstm(kClasses, kHidden);
  const std::vector<int> lengths = {4, 2, 3};
  expect_same(lstm,
              RunFn([&](const std::vector<int>& ids) { return lstm(constant(one_hot(ids)), {}, lengths).output; }),
              RunFn([&](const std::vector<int>& ids) { return lstm.forward_onehot(ids, kSteps, {}, lengths).output; }));
}

TEST(OneHotInput, GRUMatchesDenseOneHot) {
  nn::manual_seed(5);
  nn::GRU<double> gru(kClasses, kHidden);
  expect_same(gru, RunFn([&](const std::vector<int>& ids) { return gru(constant(one_hot(ids))).output; }),
              RunFn([&](const std::vector<int>& ids) { return gru.forward_onehot(ids, kSteps).output; }));
}

TEST(OneHotInput, BadIdsAndCountsAreErrors) {
  nn::RNN<double> rnn(kClasses, kHidden);
  try {
    rnn.forward_onehot({0, 1, 7}, 1);
    ADD_FAILURE() << "no exception";
  } catch (const IndexError& e) {
    EXPECT_NE(std::string(e.what()).find("id 7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rnn.forward_onehot({0, 1, 2}, 2), ShapeError);
  EXPECT_THROW(rnn.forward_onehot({}, 1), ShapeError);
  clear_tape();
}

}  // namespace
