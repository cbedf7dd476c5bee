// The performance workloads of docs/design.md ("Performance"): one training step (forward, BPTT,
// optimizer step) of a character model on one-hot input, V = 65, float32, softmax
// cross-entropy averaged over the B·T positions:
//   W1 RNN H=128 B=32 T=64 Adam      W2 RNN H=512 B=32 T=64 Adam
//   W3 LSTM H=256 B=32 T=64 Adam     W4 RNN H=100 B=1 T=25 Adagrad (min-char-rnn)
//   W5 sampling 2,000 characters, B=1, from W4's model (counter us_per_char).
//   S1 GRU H=64 B=32 T=20 Adam: a small model, where threads cost more than they bring.
// Counters: tokens_per_s (B·T per step); tape_MB, the tape's memory_bytes() after the backward
// of a step (everything the tape holds: values, gradients and saved arrays of every node,
// storage kept for reuse included); pack_MB, the tape's packed copies of the recurrent weights
// (Tape::pack_bytes(), not part of tape_MB); kept_MB, what backward must keep (bench/README.md, "How
// things are counted"); rss_MB, the peak resident set of the process minus its resident set
// before the model was built (run one workload per process for this to mean something:
// --benchmark_filter=^W2/). MB here are MiB.
//
// Run one workload: bench_workloads --benchmark_filter=^W3/ --threads 2 --benchmark_format=json
// --threads default leaves the thread count to the library, as a program that never sets one.
#include <benchmark/benchmark.h>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <type_traits>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common.hpp"

namespace {

using namespace xgrad;
constexpr std::size_t kVocab = 65;
double g_rss_start_mb = 0;  // resident set when main() starts, before any model exists

using bench::rss_now_mb;
using bench::rss_peak_mb;

std::vector<int> random_ids(std::size_t n, std::uint32_t seed) { return bench::random_ids(n, kVocab, seed); }

// A sequence layer over one-hot characters and a linear layer to the next character's logits.
template <class Layer>
struct CharModel {
  Layer rnn;
  nn::Linear<float> head;
  CharModel(std::size_t hidden) : rnn(kVocab, hidden), head(hidden, kVocab) {}
  std::vector<Var<float>> parameters() const {
    auto p = rnn.parameters();
    auto h = head.parameters();
    p.insert(p.end(), h.begin(), h.end());
    return p;
  }
  // ids (T·m), time-major -> mean cross-entropy against targets
  Var<float> loss(const std::vector<int>& ids, const std::vector<int>& targets, std::size_t steps) const {
    Var<float> out = rnn.forward_onehot(ids, steps).output;  // (T, m, H)
    Var<float> logits = head(out);  // (T, m, V), every position a row
    return cross_entropy(logits, targets);
  }
};

// Floats per batch row and time step that the backward of a cell must keep: what its rules read
// and cannot recompute from their inputs' gradients alone. RNN: a (tanh's rule reads its output,
// the weight gradient a_{t-1}). LSTM: the four gates, c, tanh(c) and a. GRU: z, r, n, a and the
// recurrent product's candidate part (r multiplies it).
template <class Layer>
constexpr std::size_t kept_per_unit() {
  if constexpr (std::is_same_v<Layer, nn::LSTM<float>>) return 7;
  else if constexpr (std::is_same_v<Layer, nn::GRU<float>>) return 5;
  else return 1;
}

template <class Layer, class Opt>
void train_workload(benchmark::State& state, std::size_t hidden, std::size_t m, std::size_t steps, double lr) {
  clear_tape();
  nn::manual_seed(1);
  CharModel<Layer> model(hidden);
  Opt opt(model.parameters(), lr);
  const std::vector<int> ids = random_ids(steps * m, 2), targets = random_ids(steps * m, 3);
  double tape_mb = 0, pack_mb = 0;
  for (auto _ : state) {
    opt.zero_grad();
    Var<float> loss = model.loss(ids, targets, steps);
    loss.backward();
    tape_mb = double(Tape<float>::current().memory_bytes()) / (1024.0 * 1024.0);
    pack_mb = double(Tape<float>::current().pack_bytes()) / (1024.0 * 1024.0);
    opt.step();
    clear_tape();
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(double(steps * m), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tape_MB"] = tape_mb;
  state.counters["pack_MB"] = pack_mb;
  // Per step and row the cell's kept floats, plus the softmax of the T·m logits rows.
  const double kept_floats = double(steps * m) * double(kept_per_unit<Layer>() * hidden + kVocab);
  state.counters["kept_MB"] = kept_floats * sizeof(float) / (1024.0 * 1024.0);
  state.counters["rss_MB"] = rss_peak_mb() - g_rss_start_mb;
}

void W1(benchmark::State& s) { train_workload<nn::RNN<float>, optim::Adam<float>>(s, 128, 32, 64, 2e-3); }
void W2(benchmark::State& s) { train_workload<nn::RNN<float>, optim::Adam<float>>(s, 512, 32, 64, 2e-3); }
void W3(benchmark::State& s) { train_workload<nn::LSTM<float>, optim::Adam<float>>(s, 256, 32, 64, 2e-3); }
void W4(benchmark::State& s) { train_workload<nn::RNN<float>, optim::Adagrad<float>>(s, 100, 1, 25, 1e-1); }
void S1(benchmark::State& s) { train_workload<nn::GRU<float>, optim::Adam<float>>(s, 64, 32, 20, 2e-3); }

// W5: 2,000 characters, each fed back as the next input, sampled from the softmax.
void W5(benchmark::State& state) {
  constexpr std::size_t kChars = 2000, kHidden = 100;
  nn::manual_seed(1);
  CharModel<nn::RNN<float>> model(kHidden);
  const nn::RNNCell<float>& cell = model.rnn.cell(0);
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(0, 1);
  NoGradGuard no_grad;
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    Var<float> a = cell.zero_state(1);
    int id = 0;
    for (std::size_t i = 0; i < kChars; ++i) {
      a = cell.step(cell.input_projection(std::vector<int>{id}), a);
      const Array<float>& p = softmax(model.head(a), 1).value();
      float r = u(gen), c = 0;
      id = int(kVocab) - 1;
      for (std::size_t k = 0; k < kVocab; ++k)
        if ((c += p(0, k)) > r) { id = int(k); break; }
    }
    benchmark::DoNotOptimize(id);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  state.counters["us_per_char"] = seconds * 1e6 / double(kChars * state.iterations());
  state.counters["rss_MB"] = rss_peak_mb() - g_rss_start_mb;
}

}  // namespace

// No MinTime here: one set per benchmark would override --benchmark_min_time (default 0.5 s).
BENCHMARK(W1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(W2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(W3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(W4)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(W5)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(S1)->Unit(benchmark::kMicrosecond)->UseRealTime();

int main(int argc, char** argv) {
  // --threads N sets OpenBLAS's thread count (before Google Benchmark sees the flags);
  // --threads default sets none, so the library's own choice is what runs.
  g_rss_start_mb = rss_now_mb();
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      if (std::strcmp(argv[++i], "default") != 0) blas::set_num_threads(std::atoi(argv[i]));
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
