// Op overhead: forward + backward of a chain of 1,000 small ops (1×128: add, mul, tanh),
// reported as nanoseconds per op recorded and back-propagated, arithmetic included.
#include <benchmark/benchmark.h>

#include <xgrad/xgrad.hpp>

namespace {

constexpr int kOps = 1000;

template <bool kAnomaly>
void BM_OpChain(benchmark::State& state) {
  using namespace xgrad;
  auto x = param<float>(xt::ones<float>({1, 128}) * 0.5f);
  auto c = param<float>(xt::ones<float>({1, 128}) * 0.01f);
  for (auto _ : state) {
    std::unique_ptr<DetectAnomaly> guard;
    if (kAnomaly) guard = std::make_unique<DetectAnomaly>();
    Var<float> h = x;
    for (int i = 0; i < kOps / 3; ++i) h = tanh(h * c + x);
    auto loss = sum(h);  // op 1,000
    loss.backward();
    benchmark::DoNotOptimize(x.grad().data());
    clear_tape();
  }
  // (iterations · ops) per second, inverted: seconds per op (printed as e.g. 212n).
  state.counters["time_per_op"] = benchmark::Counter(
      kOps, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(BM_OpChain<false>)->Name("OpChain1000/anomaly_off")->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK(BM_OpChain<true>)->Name("OpChain1000/anomaly_on")->Unit(benchmark::kMicrosecond)->MinTime(0.5);
BENCHMARK_MAIN();
