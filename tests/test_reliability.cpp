// Reliability: threads training at once, long runs whose memory stays put, a long unroll whose
// tape is linear in T and released, exploding activations held by clipping, anomaly detection
// through a layer.
//
// Under AddressSanitizer the resident-size bounds are not asserted (the figures are still
// printed): ASan keeps freed memory in a quarantine, so RSS grows by design; its leak checker
// covers what the bounds would. Detected by the compiler's own macros, no build option needed.
#include <gtest/gtest.h>

#include <malloc.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define XGRAD_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XGRAD_TEST_ASAN 1
#endif
#endif
#ifndef XGRAD_TEST_ASAN
#define XGRAD_TEST_ASAN 0
#endif

using namespace xgrad;
using F = Array<float>;

namespace {

// Resident set size in bytes, from /proc/self/statm (second field, in pages).
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * std::size_t(sysconf(_SC_PAGESIZE));
}

double kib(std::size_t bytes) { return double(bytes) / 1024.0; }

bool all_finite(const F& a) {
  for (float v : a)
    if (!std::isfinite(v)) return false;
  return true;
}

// (T, B, V) one-hot inputs and the (T·B) next-symbol targets of a fixed periodic text.
struct Batch {
  F x;
  std::vector<int> targets;
};
Batch periodic_batch(std::size_t T, std::size_t B, std::size_t V, int offset) {
  Batch b;
  b.x = xt::zeros<float>({T, B, V});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < B; ++i) {
      const auto id = std::size_t(int(t * 3 + i * 5) + offset) % V;
      b.x(t, i, id) = 1.0f;
      b.targets.push_back(int((id + 1 + i) % V));
    }
  return b;
}

// ---- threads

struct TrainingRun {
  std::vector<float> losses;
  std::vector<F> params;
};

// An LSTM language model built, initialised (from `seed`) and trained with Adam entirely on the
// calling thread.
TrainingRun train_lstm(std::uint64_t seed, int steps) {
  constexpr std::size_t V = 8, H = 12, T = 6, B = 3;
  nn::manual_seed(seed);
  nn::LSTM<float> lstm(V, H);
  nn::Linear<float> head(H, V);
  auto params = lstm.parameters();
  for (const auto& p : head.parameters()) params.push_back(p);
  optim::Adam<float> opt(params, 1e-2);
  const Batch batch = periodic_batch(T, B, V, int(seed));
  TrainingRun run;
  for (int s = 0; s < steps; ++s) {
    auto out = lstm(constant(batch.x)).output;               // (T, B, H)
    auto logits = head(reshape(out, {T * B, H}));           // (T·B, V)
    auto loss = cross_entropy(logits, batch.targets);
    loss.backward();
    optim::clip_grad_norm(params, 1.0);
    opt.step();
    opt.zero_grad();
    run.losses.push_back(loss.value().flat(0));
    clear_tape();
  }
  for (const auto& p : params) run.params.push_back(p.value());
  return run;
}

void expect_identical(const TrainingRun& a, const TrainingRun& b) {
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (std::size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << "step " << i;
  ASSERT_EQ(a.params.size(), b.params.size());
  for (std::size_t i = 0; i < a.params.size(); ++i) EXPECT_TRUE(a.params[i] == b.params[i]) << "parameter " << i;
}

TEST(Threads, TwoModelsTrainedAtOnceMatchTheSameRunsOneAfterTheOther) {
  constexpr int kSteps = 40;
  const TrainingRun alone_a = train_lstm(1, kSteps);
  const TrainingRun alone_b = train_lstm(2, kSteps);
  EXPECT_NE(alone_a.losses.back(), alone_b.losses.back());  // two different runs
  EXPECT_LT(alone_a.losses.back(), alone_a.losses.front());  // that learn
  for (int round = 0; round < 2; ++round) {
    TrainingRun a, b;
    std::thread ta([&] { a = train_lstm(1, kSteps); });
    std::thread tb([&] { b = train_lstm(2, kSteps); });
    ta.join();
    tb.join();
    expect_identical(a, alone_a);
    expect_identical(b, alone_b);
  }
}

// Under NoGradGuard nothing is recorded and parameters are only read, so threads may evaluate
// one model at once (docs/guarantees.md).
TEST(Threads, OneModelEvaluatedUnderNoGradFromTwoThreadsAtOnce) {
  nn::manual_seed(8);
  nn::LSTM<float> lstm(8, 12);
  nn::Linear<float> head(12, 8);
  const F x = periodic_batch(6, 3, 8, 0).x;
  auto evaluate = [&] {
    NoGradGuard no_grad;
    return F(head(reshape(lstm(constant(x)).output, {18, 12})).value());
  };
  const F expected = evaluate();
  bool same_a = true, same_b = true;
  auto repeat = [&](bool& same) {
    for (int i = 0; i < 50; ++i) same = same && evaluate() == expected;
  };
  std::thread ta(repeat, std::ref(same_a)), tb(repeat, std::ref(same_b));
  ta.join();
  tb.join();
  EXPECT_TRUE(same_a);
  EXPECT_TRUE(same_b);
}

// ---- long runs

TEST(Soak, TenThousandTrainingStepsKeepResidentMemoryFlat) {
  constexpr std::size_t V = 8, H = 16, T = 4, B = 4;
  constexpr int kSteps = 10000, kWarm = 1000;
  nn::manual_seed(3);
  nn::RNNCell<float> cell(V, H);
  nn::Linear<float> head(H, V);
  auto params = cell.parameters();
  for (const auto& p : head.parameters()) params.push_back(p);
  optim::Adam<float> opt(params, 1e-3);
  const Batch batch = periodic_batch(T, B, V, 0);
  std::vector<F> xs;
  for (std::size_t t = 0; t < T; ++t) xs.push_back(xt::view(batch.x, t));
  F carried = xt::zeros<float>({B, H});  // hidden state carried across steps, detached

  std::size_t rss_warm = 0, tape_warm = 0;
  float first_loss = 0, loss_value = 0;
  for (int step = 1; step <= kSteps; ++step) {
    Var<float> a = constant(carried);
    Var<float> total;
    for (std::size_t t = 0; t < T; ++t) {
      a = cell(constant(xs[t]), a);
      std::vector<int> y(batch.targets.begin() + long(t * B), batch.targets.begin() + long((t + 1) * B));
      auto ce = cross_entropy(head(a), y);
      total = t == 0 ? ce : total + ce;
    }
    total.backward();
    optim::clip_grad_norm(params, 5.0);
    opt.step();
    opt.zero_grad();
    carried = a.detach().value();
    loss_value = total.value().flat(0);
    if (step == 1) first_loss = loss_value;
    clear_tape();
    if (step == kWarm) {
      rss_warm = rss_bytes();
      tape_warm = Tape<float>::current().memory_bytes();
    }
  }
  const std::size_t rss_end = rss_bytes();
  const std::size_t tape_end = Tape<float>::current().memory_bytes();
  std::printf("soak: RSS at step %d: %.0f KiB, at step %d: %.0f KiB (growth %.0f KiB); tape %zu -> %zu bytes\n",
              kWarm, kib(rss_warm), kSteps, kib(rss_end), kib(rss_end) - kib(rss_warm), tape_warm, tape_end);
  EXPECT_EQ(tape_end, tape_warm);
  EXPECT_TRUE(std::isfinite(loss_value));
  EXPECT_LT(loss_value, first_loss);
  // 256 KiB over 9,000 steps: a leak of 30 bytes a step would show.
  if (!XGRAD_TEST_ASAN) {
    EXPECT_LE(rss_end, rss_warm + 256 * 1024);
  }
}

// Forward over T steps of an RNN cell, then backward: the tape's bytes.
std::size_t unroll_bytes(nn::RNNCell<float>& cell, const Var<float>& x, std::size_t T) {
  Var<float> a = constant<float>(xt::zeros<float>({2, 8}));
  for (std::size_t t = 0; t < T; ++t) a = cell(x, a);
  mean(square(a)).backward();
  // The nodes' memory; the stacks of rows of the batched weight gradients are a scratch bounded
  // by Tape::kBatchBytes per weight whatever T is (checked below), not part of what grows with T.
  const Tape<float>& tape = Tape<float>::current();
  return tape.memory_bytes() - tape.batch_bytes();
}

TEST(LongUnroll, TapeMemoryIsLinearInTAndReleasedAfterBackward) {
  nn::manual_seed(4);
  nn::RNNCell<float> cell(4, 8);
  const Var<float> x = constant<float>(xt::ones<float>({2, 4}) * 0.1f);
  Tape<float>& tape = Tape<float>::current();
  tape.release();
  const std::size_t rss_before = rss_bytes();

  const std::size_t bytes_1k = unroll_bytes(cell, x, 1000);
  tape.release();
  const std::size_t bytes_10k = unroll_bytes(cell, x, 10000);
  const std::size_t rss_peak = rss_bytes();
  const std::size_t stacks = tape.batch_bytes();  // the cell's two weights: one stack each
  EXPECT_LE(stacks, 2 * Tape<float>::kBatchBytes);
  EXPECT_TRUE(all_finite(cell.parameters()[0].grad()));
  tape.release();
  const std::size_t bytes_released = tape.memory_bytes();
  // Freed memory is reused: a second unroll of the same length needs no more.
  unroll_bytes(cell, x, 10000);
  const std::size_t rss_again = rss_bytes();
  tape.release();
  // glibc keeps freed small blocks in its free lists rather than returning them to the system;
  // malloc_trim hands back every free page, so RSS shows what is still allocated.
  malloc_trim(0);
  const std::size_t rss_after = rss_bytes();

  const double ratio = double(bytes_10k) / double(bytes_1k);
  std::printf("unroll: tape %zu bytes at T=1000, %zu at T=10000 (ratio %.3f), %zu after release; RSS %.0f KiB "
              "before, %.0f KiB at T=10000, %.0f KiB at T=10000 again, %.0f KiB after release\n",
              bytes_1k, bytes_10k, ratio, bytes_released, kib(rss_before), kib(rss_peak), kib(rss_again),
              kib(rss_after));
  EXPECT_GT(ratio, 9.9);
  EXPECT_LT(ratio, 10.1);
  EXPECT_EQ(bytes_released, 0u);
  if (!XGRAD_TEST_ASAN) {
    EXPECT_GT(rss_peak, rss_before + bytes_10k / 2);  // the tape's memory was really resident
    // reused, not added to (the stacks, freed by release, are allocated afresh and may land
    // elsewhere in the heap)
    EXPECT_LE(rss_again, rss_peak + stacks + 512 * 1024);
    EXPECT_LT(rss_after, rss_before + (rss_peak - rss_before) / 10);  // and given back
  }
}

// ---- exploding activations

// A relu RNN whose recurrent weights are 1.6·I: activations grow like 1.6^T, the gradient like
// its square. Trains `steps` SGD steps; returns the gradient norm of the first step.
struct Explosion {
  double first_norm = 0;
  bool params_finite = true;
  std::vector<float> losses;
};
Explosion train_exploding(bool clip, int steps) {
  constexpr std::size_t T = 30, B = 2, n_x = 3, n_a = 8;
  nn::manual_seed(5);
  nn::RNN<float> rnn(n_x, n_a, nn::RNNOptions().relu());
  nn::Linear<float> head(n_a, 1);
  for (auto& [name, p] : rnn.named_parameters()) {
    if (name == "layers.0.Waa") p.set_value(F(xt::eye<float>(n_a) * 1.6f));
    if (name == "layers.0.Wax") p.set_value(F(xt::abs(p.value())));
  }
  auto params = rnn.parameters();
  for (const auto& p : head.parameters()) params.push_back(p);
  optim::SGD<float> opt(params, 1e-2);
  const Var<float> x = constant<float>(xt::ones<float>({T, B, n_x}));
  const Var<float> target = constant<float>(xt::zeros<float>({B, std::size_t(1)}));
  Explosion e;
  for (int s = 0; s < steps; ++s) {
    auto out = rnn(x).output;                                // (T, B, n_a)
    auto last = reshape(slice(out, 0, long(T) - 1, long(T)), {B, n_a});
    auto loss = mse_loss(head(last), target);
    loss.backward();
    if (clip) {
      const double norm = optim::clip_grad_norm(params, 1.0);
      if (s == 0) e.first_norm = norm;
    }
    opt.step();
    opt.zero_grad();
    e.losses.push_back(loss.value().flat(0));
    clear_tape();
  }
  for (const auto& p : params) e.params_finite = e.params_finite && all_finite(p.value());
  return e;
}

TEST(Clipping, ExplodingActivationsAreHeldByClipGradNormInsteadOfTurningIntoNaN) {
  const Explosion unclipped = train_exploding(false, 5);
  EXPECT_FALSE(unclipped.params_finite) << "the setting no longer explodes: the test shows nothing";
  const Explosion clipped = train_exploding(true, 20);
  std::printf("exploding: gradient norm %.3g at step 1, loss %.3g -> %.3g with clipping\n", clipped.first_norm,
              clipped.losses.front(), clipped.losses.back());
  EXPECT_GT(clipped.first_norm, 1e6);  // it did explode
  EXPECT_TRUE(clipped.params_finite);
  for (float l : clipped.losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(clipped.losses.back(), clipped.losses.front());
}

// ---- anomaly detection through a layer

// "anomaly: <op> (tape position <n>) ...": the op named must be the one at that position.
void expect_names_its_node(const std::string& msg) {
  const std::string head = "anomaly: ", mid = " (tape position ";
  const std::size_t at = msg.find(mid);
  ASSERT_TRUE(msg.rfind(head, 0) == 0 && at != std::string::npos) << msg;
  const std::string op = msg.substr(head.size(), at - head.size());
  const std::size_t position = std::stoul(msg.substr(at + mid.size()));
  ASSERT_LT(position, Tape<float>::current().size()) << msg;
  EXPECT_EQ(std::string(Tape<float>::current().node(position).op), op) << msg;
}

TEST(Anomaly, DetectAnomalyFindsTheFirstNaNInsideAnLSTMLayer) {
  clear_tape();
  nn::manual_seed(6);
  nn::LSTM<float> lstm(3, 4);
  const Var<float> x = constant<float>(xt::ones<float>({5, 2, 3}));
  // A NaN weight: off, it flows silently into the output.
  for (auto& [name, p] : lstm.named_parameters())
    if (name == "layers.0.Wx") p.mutable_value()(1, 2) = std::nanf("");
  EXPECT_FALSE(all_finite(lstm(x).output.value()));
  clear_tape();
  {
    DetectAnomaly guard;
    std::string msg;
    try {
      lstm(x);
    } catch (const AnomalyError& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find("forward value"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(16, 3)"), std::string::npos) << msg;  // Wx (4·n_a, n_x), the NaN's input
    expect_names_its_node(msg);
  }
  clear_tape();

  // Finite forward, infinite gradient: sqrt at 0 behind the layer.
  for (auto& [name, p] : lstm.named_parameters())
    if (name == "layers.0.Wx") p.mutable_value()(1, 2) = 0.1f;
  {
    DetectAnomaly guard;
    auto out = lstm(x).output;                            // (5, 2, 4), values in (-1, 1)
    auto loss = sum(sqrt(relu(out - 5.0f)));              // sqrt(0) everywhere
    EXPECT_TRUE(all_finite(loss.value()));
    std::string msg;
    try {
      loss.backward();
    } catch (const AnomalyError& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find("sqrt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("gradient"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(5, 2, 4)"), std::string::npos) << msg;
    expect_names_its_node(msg);
  }
  clear_tape();
  EXPECT_FALSE(anomaly_enabled());
}

TEST(Anomaly, GuardIsPerThread) {
  DetectAnomaly guard;
  bool other = true;
  std::thread([&] { other = anomaly_enabled(); }).join();
  EXPECT_TRUE(anomaly_enabled());
  EXPECT_FALSE(other);
}

}  // namespace
