// OpenBLAS's single-precision GEMM rate: at 1024³, the machine's peak that bench/compare divides
// a step's flops by ("of peak"), and at the shapes the workloads use, to see how far below the
// peak their small products run. Arguments: M, N, K, trans_a, trans_b (row-major,
// C (M, N) = op(A) (M, K) · op(B) (K, N), beta = 1 as the engine accumulates gradients).
// Counter GFLOPs = 2·M·N·K per call. Thread count: OPENBLAS_NUM_THREADS or --threads N. The
// context's openblas_core names OpenBLAS's kernels (autograd/blas.hpp).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <xgrad/autograd/blas.hpp>

namespace {

void BM_Sgemm(benchmark::State& state) {
  const auto M = static_cast<std::size_t>(state.range(0)), N = static_cast<std::size_t>(state.range(1)),
             K = static_cast<std::size_t>(state.range(2));
  const bool ta = state.range(3) != 0, tb = state.range(4) != 0;
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> A(M * K), B(K * N), C(M * N, 0.f);
  for (float& v : A) v = u(gen);
  for (float& v : B) v = u(gen);
  for (auto _ : state) {
    xgrad::blas::gemm(ta, tb, M, N, K, 1.0f, A.data(), B.data(), 1.0f, C.data());
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(2.0 * double(M) * double(N) * double(K), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// {M, N, K, trans_a, trans_b}: per workload, the forward product x·Wᵀ (NT), the input gradient
// g·W (NN) and the weight gradient gᵀ·x (TN).
void Shapes(benchmark::internal::Benchmark* b) {
  const long V = 65;
  auto rnn = [&](long B, long H, long G, long BT) {  // G = gates·H
    b->Args({B, G, H, 0, 1})->Args({B, H, G, 0, 0})->Args({G, H, B, 1, 0});
    b->Args({BT, V, H, 0, 1})->Args({BT, H, V, 0, 0})->Args({V, H, BT, 1, 0});
  };
  rnn(32, 128, 128, 2048);   // W1
  rnn(32, 512, 512, 2048);   // W2
  rnn(32, 256, 1024, 2048);  // W3
  rnn(1, 100, 100, 25);      // W4
  b->Args({1, 65, 100, 0, 1});  // W5 output layer, one character
  b->Args({1024, 1024, 1024, 0, 0});  // the peak
}

}  // namespace

BENCHMARK(BM_Sgemm)->Apply(Shapes)->MinTime(0.2)->UseRealTime();

int main(int argc, char** argv) {
  // --threads N sets OpenBLAS's thread count (before Google Benchmark sees the flags).
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      xgrad::blas::set_num_threads(std::atoi(argv[++i]));
      continue;
    }
    args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::AddCustomContext("openblas_core", xgrad::blas::openblas_core());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
