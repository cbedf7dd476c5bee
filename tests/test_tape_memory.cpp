// Values no backward rule reads: freed when their last handle goes, their storage reused by the
// next op's output of that size. These tests check that a rule never reads a value it did not
// declare (gradients with every intermediate dropped equal those with every one kept), that
// what the user holds stays readable, and that an unrolled LSTM keeps just what backward reads.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <random>
#include <string>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
using A = Array<double>;

namespace {

class TapeMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_tape(); }
  void TearDown() override { clear_tape(); }
};

A random_array(const Shape& shape, unsigned seed, double lo = -0.9, double hi = 0.9) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  A a = A::from_shape(shape);
  for (double& x : a) x = u(gen);
  return a;
}

Node<double>& node_of(const Var<double>& v) { return Tape<double>::current().node(v.index()); }

TEST_F(TapeMemoryTest, AValueNoRuleReadsIsFreedWhenItsLastHandleGoes) {
  Var<double> x = param<double>(random_array({3, 4}, 1));
  std::size_t y_index;
  Var<double> z;
  {
    Var<double> y = x + x;  // add's rule reads nothing
    y_index = y.index();
    z = tanh(y);  // tanh's rule reads its own output, not its input
    Var<double> y2 = y;  // a second handle
    EXPECT_FALSE(Tape<double>::current().node(y_index).value_freed);
  }
  Node<double>& y_node = Tape<double>::current().node(y_index);
  EXPECT_TRUE(y_node.value_freed);
  EXPECT_EQ(y_node.value.storage().size(), 0u);
  EXPECT_EQ(y_node.elements(), 12u);  // the shape stays for the rules
  EXPECT_FALSE(node_of(z).value_freed);
  sum(z).backward();
  const A expected = (1.0 - xt::square(xt::tanh(2.0 * x.value()))) * 2.0;
  EXPECT_TRUE(xt::allclose(x.grad(), expected, 1e-14, 1e-14));
}

TEST_F(TapeMemoryTest, AValueARuleReadsStaysAfterItsHandlesGo) {
  Var<double> x = param<double>(random_array({3, 4}, 2));
  std::size_t y_index;
  Var<double> z;
  {
    Var<double> y = x + x;
    y_index = y.index();
    z = y * y;  // mul's rule reads both inputs
  }
  EXPECT_FALSE(Tape<double>::current().node(y_index).value_freed);
  sum(z).backward();
  EXPECT_TRUE(xt::allclose(x.grad(), 8.0 * x.value(), 1e-14, 1e-14));
}

TEST_F(TapeMemoryTest, AValueTheUserHoldsStaysReadable) {
  Var<double> x = param<double>(random_array({2, 5}, 3));
  Var<double> y = x + 1.0;
  Var<double> s = sum(y);
  s.backward();
  EXPECT_FALSE(node_of(y).value_freed);
  EXPECT_TRUE(xt::allclose(y.value(), x.value() + 1.0, 0, 0));
  Var<double> copy = y, moved = std::move(copy);
  EXPECT_FALSE(copy.defined());  // a moved-from handle is empty
  EXPECT_TRUE(xt::allclose(moved.value(), x.value() + 1.0, 0, 0));
}

TEST_F(TapeMemoryTest, AFreedBufferIsReusedByTheNextOutputOfItsSize) {
  Var<double> x = param<double>(random_array({64, 64}, 4));
  const double* freed_storage;
  {
    Var<double> y = x + x;
    freed_storage = y.value().data();
  }
  Var<double> z = x - x;  // the same size: the freed buffer
  EXPECT_EQ(z.value().data(), freed_storage);
}

// Every op's rule against inputs whose values were freed unless the rule declared it reads them:
// each input is an intermediate (affine of a parameter, whose own rule reads nothing) dropped at
// once, the op's output dropped too (sum reads nothing). Same gradients, to the bit, as with
// every intermediate kept by a handle.
struct Case {
  std::string name;
  std::vector<Shape> shapes;
  double lo, hi;  // the intermediates' range (log and sqrt need positive inputs)
  std::function<Var<double>(const std::vector<Var<double>>&)> op;
};

std::vector<Case> cases() {
  using V = std::vector<Var<double>>;
  const std::vector<int> ids{2, 0, 1, 2};
  return {
      {"add", {{3, 4}, {3, 4}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"add_broadcast", {{3, 4}, {4}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"sub", {{3, 4}, {3, 4}}, -1, 1, [](const V& v) { return v[0] - v[1]; }},
      {"mul", {{3, 4}, {3, 4}}, -1, 1, [](const V& v) { return v[0] * v[1]; }},
      {"mul_broadcast", {{3, 4}, {4}}, -1, 1, [](const V& v) { return v[0] * v[1]; }},
      {"div", {{3, 4}, {3, 4}}, 1, 2, [](const V& v) { return v[0] / v[1]; }},
      {"neg", {{3, 4}}, -1, 1, [](const V& v) { return -v[0]; }},
      {"affine", {{3, 4}}, -1, 1, [](const V& v) { return affine(v[0], 3.0, 1.0); }},
      {"tanh", {{3, 4}}, -1, 1, [](const V& v) { return tanh(v[0]); }},
      {"sigmoid", {{3, 4}}, -1, 1, [](const V& v) { return sigmoid(v[0]); }},
      {"relu", {{3, 4}}, -1, 1, [](const V& v) { return relu(v[0]); }},
      {"exp", {{3, 4}}, -1, 1, [](const V& v) { return exp(v[0]); }},
      {"log", {{3, 4}}, 1, 2, [](const V& v) { return log(v[0]); }},
      {"square", {{3, 4}}, -1, 1, [](const V& v) { return square(v[0]); }},
      {"sqrt", {{3, 4}}, 1, 2, [](const V& v) { return sqrt(v[0]); }},
      {"matmul", {{3, 4}, {4, 5}}, -1, 1, [](const V& v) { return matmul(v[0], v[1]); }},
      {"matmul_nt", {{3, 4}, {5, 4}}, -1, 1, [](const V& v) { return matmul_nt(v[0], v[1]); }},
      {"linear", {{2, 3, 4}, {5, 4}, {5}}, -1, 1, [](const V& v) { return linear(v[0], v[1], v[2]); }},
      {"addmm_nt", {{3, 5}, {3, 4}, {5, 4}}, -1, 1, [](const V& v) { return addmm_nt(v[0], v[1], v[2]); }},
      {"linear_onehot", {{5, 3}, {5}}, -1, 1, [ids](const V& v) { return linear_onehot(ids, v[0], v[1]); }},
      {"embedding", {{3, 5}}, -1, 1, [ids](const V& v) { return embedding(v[0], ids); }},
      {"sum_axis", {{3, 4}}, -1, 1, [](const V& v) { return sum(v[0], 1) * 2.0; }},
      {"mean", {{3, 4}}, -1, 1, [](const V& v) { return mean(v[0]) * 2.0; }},
      {"softmax", {{3, 4}}, -1, 1, [](const V& v) { return softmax(v[0], 1) * v[0]; }},
      {"log_softmax", {{3, 4}}, -1, 1, [](const V& v) { return log_softmax(v[0], 1) * v[0]; }},
      {"concat", {{3, 4}, {3, 2}}, -1, 1, [](const V& v) { return concat({v[0], v[1]}, 1) * 2.0; }},
      {"slice", {{3, 4}}, -1, 1, [](const V& v) { return slice(v[0], 1, 1, 3) * 2.0; }},
      {"select", {{3, 4}}, -1, 1, [](const V& v) { return select(v[0], 1) * 2.0; }},
      {"stack", {{3, 4}, {3, 4}}, -1, 1, [](const V& v) { return stack({v[0], v[1]}) * 2.0; }},
      {"reshape", {{3, 4}}, -1, 1, [](const V& v) { return reshape(v[0], {2, 6}) * 2.0; }},
      {"transpose", {{3, 4}}, -1, 1, [](const V& v) { return transpose(v[0]) * 2.0; }},
      {"cross_entropy", {{4, 3}}, -1, 1, [ids](const V& v) { return cross_entropy(v[0], ids) * 2.0; }},
  };
}

// Parameters' gradients of sum(op(affine(p_i))), keeping every intermediate or none.
std::vector<A> gradients(const Case& c, bool keep) {
  clear_tape();
  std::vector<Var<double>> params, kept;
  for (std::size_t i = 0; i < c.shapes.size(); ++i)
    params.push_back(param<double>(random_array(c.shapes[i], 10 + static_cast<unsigned>(i), c.lo, c.hi)));
  {
    std::vector<Var<double>> inputs;
    for (const Var<double>& p : params) inputs.push_back(affine(p, 1.0, 0.0));
    Var<double> out = c.op(inputs);
    if (keep) {
      kept = inputs;
      kept.push_back(out);
    }
    inputs.clear();
    Var<double> loss = sum(out);
    out = Var<double>();
    loss.backward();
  }
  std::vector<A> grads;
  for (const Var<double>& p : params) grads.push_back(p.grad());
  return grads;
}

TEST_F(TapeMemoryTest, EveryRuleReadsOnlyWhatItDeclared) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const std::vector<A> dropped = gradients(c, false), kept = gradients(c, true);
    ASSERT_EQ(dropped.size(), kept.size());
    for (std::size_t i = 0; i < kept.size(); ++i) {
      EXPECT_EQ(dropped[i], kept[i]) << "input " << i;
      EXPECT_GT(xt::sum(xt::abs(kept[i]))(), 0.0) << "input " << i;
    }
  }
}

// An addend's and a reshape's gradient is their output's: the buffer is handed over, unless the
// output's gradient is retained, and either way every gradient is the same.
TEST_F(TapeMemoryTest, APassedOnGradientIsHandedOverUnlessRetained) {
  for (bool retain : {false, true}) {
    SCOPED_TRACE(retain ? "retained" : "not retained");
    auto p = param<double>(xt::ones<double>({2, 3}));
    auto a = param<double>(xt::ones<double>({2, 4}));
    auto b = param<double>(xt::ones<double>({3, 4}));
    Var<double> c = p * 2.0;
    c.retain_grad();
    Var<double> y = addmm_nt(c, a, b);
    Var<double> r = reshape(y, {3, 2});
    if (retain) {
      y.retain_grad();
      r.retain_grad();
    }
    const A w = {{1, 2}, {3, 4}, {5, 6}};
    sum(r * constant(w)).backward();
    const A g = xt::reshape_view(w, {2, 3});
    EXPECT_EQ(c.grad(), g);
    EXPECT_EQ(p.grad(), A(2.0 * g));
    if (retain) {
      EXPECT_EQ(y.grad(), g);
      EXPECT_EQ(r.grad(), w);
    }
    clear_tape();
  }
}

// What an unrolled LSTM holds after its forward pass: per step the gates' activations
// (lstm_gates) and tanh(c) (saved by lstm_hidden); c and a of every step but the last, which the
// next step's ops read (the last ones only feed the stack, which reads nothing of them); the
// stacked output. The projections and the pre-activations are freed.
TEST_F(TapeMemoryTest, AnUnrolledLstmKeepsWhatItsBackwardReads) {
  nn::manual_seed(3);
  const std::size_t T = 12, m = 4, H = 8, V = 5;
  nn::LSTM<double> lstm(V, H);
  nn::Linear<double> head(H, V);
  std::vector<int> ids(T * m), targets(T * m);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int>(i % V);
    targets[i] = static_cast<int>((3 * i + 1) % V);
  }
  Tape<double>& tape = Tape<double>::current();
  std::size_t after_second = 0;
  for (int step = 0; step < 4; ++step) {
    Var<double> loss = cross_entropy(head(lstm.forward_onehot(ids, T).output), targets);
    std::map<std::string, std::size_t> live;  // op -> nodes whose value holds storage
    for (std::size_t i = 0; i < tape.size(); ++i)
      if (tape.node(i).value.storage().size() != 0) ++live[tape.node(i).op];
    std::set<std::string> holding;  // and nothing else
    for (const auto& [op, count] : live) holding.insert(op);
    EXPECT_EQ(holding, (std::set<std::string>{"lstm_gates", "lstm_memory", "lstm_hidden", "stack", "cross_entropy"}));
    EXPECT_EQ(live["lstm_gates"], T);       // the gates' activations
    EXPECT_EQ(live["lstm_memory"], T - 1);  // c, but the last, which nothing reads
    EXPECT_EQ(live["lstm_hidden"], T - 1);  // a, but the last (the weight gradient reads a_{t-1})
    std::size_t saved_tanh = 0;             // tanh(c), saved by lstm_hidden
    for (std::size_t i = 0; i < tape.size(); ++i)
      if (std::string(tape.node(i).op) == "lstm_hidden") saved_tanh += tape.node(i).saved_array.size();
    EXPECT_EQ(saved_tanh, T * m * H);
    EXPECT_EQ(live["stack"], 1u);
    EXPECT_EQ(live["cross_entropy"], 1u);  // the loss, held
    for (const char* freed : {"linear_onehot", "addmm_nt", "linear"}) {
      EXPECT_EQ(live[freed], 0u) << freed;
    }
    loss.backward();
    // The first step fills the pools in the order its nodes are created, the second in the order
    // recycled nodes ask; from then on the pools serve every step and nothing grows.
    if (step == 1) after_second = tape.memory_bytes();
    if (step > 1) {
      EXPECT_EQ(tape.memory_bytes(), after_second);
    }
    clear_tape();
  }
}

// Stack, concat along axis 0 and reshape hand their inputs the blocks of their gradient. In a
// plain sweep the buffer is held and each input adds its block when the sweep reaches it; under
// DetectAnomaly every block is added at once. Both must give the same gradients, to the last
// bits that a different summation order moves (a node's block is added after, not before, the
// gradients its later consumers send), for inputs that appear twice, stacks of stacks, a
// retained stack and inputs that also get gradients from elsewhere. A block lost or added twice
// moves a gradient by O(1).
std::vector<A> block_gradients(bool at_once) {
  clear_tape();
  std::vector<Var<double>> params;
  for (unsigned i = 0; i < 3; ++i) params.push_back(param<double>(random_array({2, 3}, 40 + i)));
  std::optional<DetectAnomaly> anomaly;
  if (at_once) anomaly.emplace();
  Var<double> loss;
  {
    std::vector<Var<double>> steps;
    Var<double> h = tanh(params[0]);
    for (int t = 0; t < 5; ++t) {
      h = tanh(mul(h, params[1]) + params[2]);
      steps.push_back(h);
    }
    steps.push_back(steps[1]);  // an input twice
    Var<double> stacked = stack(steps);
    Var<double> nested = stack({stacked, stacked * stacked});
    Var<double> retained = stack({steps[0], steps[3]});
    retained.retain_grad();
    Var<double> joined = concat({steps[2], steps[4], reshape(reshape(steps[0], {3, 2}), {2, 3})}, 0);
    loss = sum(square(nested)) + sum(mul(retained, retained)) + sum(exp(joined)) + sum(steps[4]);
  }
  loss.backward();
  std::vector<A> grads;
  for (const Var<double>& p : params) grads.push_back(p.grad());
  return grads;
}

TEST_F(TapeMemoryTest, HeldGradientBlocksEqualBlocksAddedAtOnce) {
  const std::vector<A> held = block_gradients(false), at_once = block_gradients(true);
  for (std::size_t i = 0; i < held.size(); ++i) {
    EXPECT_LT(xt::amax(xt::abs(held[i] - at_once[i]))(), 1e-13 * xt::amax(xt::abs(at_once[i]))()) << "param " << i;
    EXPECT_GT(xt::sum(xt::abs(held[i]))(), 0.0) << "param " << i;
  }
  // And again on the recycled tape: nothing of the first sweep waits in the second.
  EXPECT_EQ(block_gradients(false), held);
}

// T stacked steps: their gradients are taken one step at a time from the stack's held buffer,
// so the sweep adds the stack's gradient and a few steps', not T steps' at once.
TEST_F(TapeMemoryTest, AStackedSequenceTakesOneGradientBufferNotOnePerStep) {
  const std::size_t T = 64, m = 8, H = 32, step_bytes = m * H * sizeof(double);
  Var<double> w = param<double>(random_array({H, H}, 7, -0.2, 0.2));
  Tape<double>& tape = Tape<double>::current();
  for (int round = 0; round < 2; ++round) {
    Var<double> loss;
    {
      std::vector<Var<double>> steps;
      Var<double> h = constant<double>(random_array({m, H}, 8));
      for (std::size_t t = 0; t < T; ++t) {
        h = tanh(matmul(h, w));
        steps.push_back(h);
      }
      loss = sum(square(stack(steps)));
    }
    const std::size_t before = tape.memory_bytes();
    loss.backward();
    if (round == 1) {  // the first round's pooled buffers serve the second's
      EXPECT_LE(tape.memory_bytes() - before, (T + 8) * step_bytes) << "held: " << before;
    }
    clear_tape();
  }
}

// A rule that throws mid-sweep leaves no block waiting: the next sweep on the tape is exact.
TEST_F(TapeMemoryTest, AFailedSweepLeavesNoBlockWaiting) {
  Var<double> x = param<double>(random_array({2, 3}, 9));
  auto sweep = [&](bool fail) {
    clear_tape();
    x.zero_grad();
    Var<double> a = tanh(x), b = exp(x);
    Var<double> stacked = stack({a, b});
    Var<double> out = custom_op<double>("maybe_throw", {stacked},
        [](const auto& in) { return Array<double>(in[0] * 2.0); },
        [fail](const auto& g, const auto&, const auto&) {
          if (fail) throw std::runtime_error("rule failed");
          return std::vector<Array<double>>{g * 2.0};
        });
    Var<double> loss = sum(square(out) + stack({a, b}));
    if (fail) {
      EXPECT_THROW(loss.backward(), std::exception);
    } else {
      loss.backward();
    }
    return A(x.grad());
  };
  const A clean = sweep(false);
  sweep(true);
  EXPECT_EQ(sweep(false), clean);
}

// Under a NoGradGuard outputs are leaves; a thread hands out again, storage and all, one that
// nothing holds any more. A value the user or a tape holds is never written over.
TEST_F(TapeMemoryTest, NoGradOutputsReuseOnlyLeavesNothingHolds) {
  const Var<double> w = param<double>(random_array({6, 6}, 11, -0.4, 0.4));
  const Var<double> x0 = constant<double>(random_array({1, 6}, 12));
  auto run = [&](bool no_grad) {
    std::optional<NoGradGuard> guard;
    if (no_grad) guard.emplace();
    std::set<const double*> buffers;
    std::vector<A> held;
    Var<double> a = x0;
    for (int t = 0; t < 50; ++t) {
      a = tanh(matmul(a, w));
      buffers.insert(a.value().data());
      held.push_back(a.value());
    }
    return std::make_pair(held, buffers.size());
  };
  const auto [recorded, recorded_buffers] = run(false);
  const auto [sampled, sampled_buffers] = run(true);
  EXPECT_EQ(sampled, recorded);  // every step's value, bit for bit
  EXPECT_LE(sampled_buffers, detail::kRecentLeaves);
  EXPECT_GE(recorded_buffers, 50u);  // each recorded step holds its own
  clear_tape();

  // Held by the user: a later output never takes its storage.
  NoGradGuard guard;
  const Var<double> kept = tanh(x0);
  const A kept_value = kept.value();
  for (int t = 0; t < 20; ++t) {
    Var<double> tmp = exp(matmul(x0, w));
    EXPECT_NE(tmp.value().data(), kept.value().data());
  }
  EXPECT_EQ(kept.value(), kept_value);
}

TEST_F(TapeMemoryTest, ANoGradOutputATapeHoldsIsNotReused) {
  const Var<double> w = param<double>(random_array({1, 6}, 13));
  const A x = random_array({1, 6}, 14);
  Var<double> c;
  {
    NoGradGuard guard;
    c = tanh(constant<double>(x));
  }
  Var<double> loss = sum(mul(c, w));  // the tape holds c's leaf
  c = Var<double>();
  {
    NoGradGuard guard;
    for (int t = 0; t < 20; ++t) Var<double> tmp = exp(constant<double>(x));
  }
  loss.backward();
  EXPECT_EQ(w.grad(), A(xt::tanh(x)));
}

}  // namespace
