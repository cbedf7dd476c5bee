// parallel::parallel_for: the blocks cover the range exactly once, small ranges and nested or
// concurrent loops run inline, exceptions reach the caller, the pool survives all of it.
// The suite names contain "Thread" so that scripts/tsan.sh runs them under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <xgrad/autograd/blas.hpp>
#include <xgrad/autograd/parallel.hpp>

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

}  // namespace
