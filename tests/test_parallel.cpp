// parallel::parallel_for: the blocks cover the range exactly once, small ranges and nested or
// concurrent loops run inline, exceptions reach the caller, the pool survives all of it; the
// loops that use it (cross_entropy, Adam) give the same bits on 1 thread and on several.
// The suite names contain "Thread" so that scripts/tsan.sh runs them under ThreadSanitizer.
#include <gtest/gtest.h>

#include <xtensor/xadapt.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <xgrad/autograd/blas.hpp>
#include <xgrad/autograd/parallel.hpp>
#include <xgrad/xgrad.hpp>

namespace {

using xgrad::parallel::parallel_for;

// Sets the library's thread bound for one test and restores the default after it.
struct ThreadBound {
  explicit ThreadBound(int n) { xgrad::blas::set_num_threads(n); }
  ~ThreadBound() { xgrad::blas::set_num_threads(0); }
};

TEST(ParallelForThreads, BlocksCoverTheRangeExactlyOnce) {
  ThreadBound bound(3);
  for (std::size_t n : {1u, 2u, 7u, 100u, 1001u, 65536u}) {
    std::vector<int> hits(n, 0);
    parallel_for(n, 1, [&](std::size_t b, std::size_t e) {
      ASSERT_LE(b, e);
      ASSERT_LE(e, n);
      for (std::size_t i = b; i < e; ++i) ++hits[i];
    });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "n=" << n << " index " << i;
  }
}

TEST(ParallelForThreads, LargeRangesRunOnSeveralThreads) {
  ThreadBound bound(2);
  // Each block waits (bounded) until two blocks have started: with 2 threads and 2 blocks both
  // run at once, so both see the other; run one after the other, neither would.
  std::atomic<int> started{0};
  std::mutex m;
  std::set<std::thread::id> ids;
  parallel_for(2, 1, [&](std::size_t, std::size_t) {
    {
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    }
    ++started;
    for (int i = 0; i < 2000 && started.load() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ParallelForThreads, SmallRangesAndOneThreadRunInlineAsOneBlock) {
  {
    ThreadBound bound(4);
    std::vector<std::pair<std::size_t, std::size_t>> calls;
    parallel_for(99, 50, [&](std::size_t b, std::size_t e) { calls.emplace_back(b, e); });  // < 2 grains
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0], std::make_pair(std::size_t(0), std::size_t(99)));
  }
  ThreadBound bound(1);
  std::vector<std::thread::id> ids;
  parallel_for(1 << 20, 1, [&](std::size_t, std::size_t) { ids.push_back(std::this_thread::get_id()); });
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], std::this_thread::get_id());
  int calls = 0;
  parallel_for(0, 1, [&](std::size_t, std::size_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ParallelForThreads, NestedLoopRunsInlineInsideABlock) {
  ThreadBound bound(2);
  std::atomic<long> total{0};
  parallel_for(4, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      parallel_for(1000, 1, [&](std::size_t ib, std::size_t ie) {
        EXPECT_EQ(ie - ib, 1000u);  // one block: inline
        total += long(ie - ib);
      });
  });
  EXPECT_EQ(total.load(), 4000);
}

TEST(ParallelForThreads, ExceptionReachesTheCallerAndThePoolKeepsWorking) {
  ThreadBound bound(2);
  try {
    parallel_for(1000, 1, [&](std::size_t b, std::size_t) {
      if (b == 0) throw std::runtime_error("block at 0 failed");
    });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "block at 0 failed");
  }
  std::atomic<std::size_t> sum{0};
  parallel_for(1000, 1, [&](std::size_t b, std::size_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 1000u);
}

TEST(ParallelForThreads, ConcurrentCallersEachGetTheirWholeRange) {
  ThreadBound bound(2);
  constexpr int kCallers = 4, kLoops = 200;
  std::vector<long> sums(kCallers, 0);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int loop = 0; loop < kLoops; ++loop) {
        std::vector<int> v(5000, 0);
        parallel_for(v.size(), 100, [&](std::size_t b, std::size_t e) {
          for (std::size_t i = b; i < e; ++i) v[i] = int(i);
        });
        sums[c] += std::accumulate(v.begin(), v.end(), 0L);
      }
    });
  for (std::thread& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(sums[c], long(kLoops) * (4999L * 5000L / 2)) << "caller " << c;
}

// Large enough to be split over 3 threads: (2048, 65) logits, 133,120 elements of one parameter
// (cross_entropy cuts 4 grains of rows, Adam 4 grains of elements).
std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<float> v(n);
  for (float& x : v) x = u(gen);
  return v;
}

// Cross-entropy's loss and gradient, and then the parameter after two Adam steps, at a bound.
std::pair<std::vector<float>, std::vector<float>> cross_entropy_and_adam(int threads) {
  ThreadBound bound(threads);
  xgrad::clear_tape();
  constexpr std::size_t N = 2048, C = 65;
  auto logits = xgrad::param(xgrad::Array<float>(xt::adapt(random_floats(N * C, 1), std::vector<std::size_t>{N, C})));
  std::vector<int> targets(N);
  for (std::size_t i = 0; i < N; ++i) targets[i] = int((i * 7) % C);
  xgrad::Var<float> loss = xgrad::cross_entropy(logits, targets);
  loss.backward();
  std::vector<float> first(logits.grad().begin(), logits.grad().end());
  first.push_back(loss.value()());
  xgrad::optim::Adam<float> opt(std::vector<xgrad::Var<float>>{logits}, 1e-2);
  opt.step();
  opt.step();
  xgrad::clear_tape();
  return {first, std::vector<float>(logits.value().begin(), logits.value().end())};
}

TEST(ParallelForThreads, CrossEntropyAndAdamGiveTheSameBitsOnOneThreadAndOnSeveral) {
  const auto one = cross_entropy_and_adam(1), two = cross_entropy_and_adam(2), three = cross_entropy_and_adam(3);
  ASSERT_EQ(one.first.size(), 2048u * 65u + 1);
  EXPECT_GT(one.first.back(), 0.f);  // the loss
  EXPECT_EQ(one.first, two.first);
  EXPECT_EQ(one.first, three.first);
  EXPECT_EQ(one.second, two.second);
  EXPECT_EQ(one.second, three.second);
}

}  // namespace
