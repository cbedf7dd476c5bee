#include "parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "blas.hpp"

namespace xgrad::parallel {
namespace {

thread_local bool t_inside = false;  // this thread is running a block of a parallel loop

// How long a thread polls before it blocks: a pool thread after a loop, waiting for the next
// one; the caller waiting for the pool's blocks to finish. A training step hands the pool a
// product or an elementwise loop every few tens of µs, and a thread woken from a condition
// variable takes 10–50 µs to run on a shared machine, longer than many of the products it
// would share; polling a little longer than the gaps between loops keeps the pool awake
// through a step and idle (asleep) as soon as the program stops handing it work.
constexpr auto kSpin = std::chrono::microseconds(200);

void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Polls done() for up to kSpin; returns whether it became true.
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      pause();
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

// One parallel loop: its blocks, handed out by an atomic counter to whichever thread asks first.
struct Job {
  const RangeFn* fn;
  std::size_t n, blocks;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;    // the first exception, written once under Pool::mutex_
  std::atomic<int> joined{0};  // pool threads that took the job and have not let go of it
};

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Runs the job's blocks on this thread and on the pool's, or returns false when another
  // loop holds the pool (the caller then runs inline).
  bool try_run(Job& job, int threads) {
    std::unique_lock<std::mutex> owner(owner_, std::try_to_lock);
    if (!owner.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (int(threads_.size()) < threads - 1) threads_.emplace_back([this] { work(); });
      job_ = &job;
      // Block 0 is the caller's before any pool thread can take one: a pool thread that comes
      // first takes block 1, so a product's part of a weight stays on the same core (and in
      // its cache) from one step to the next.
      job.next.store(1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();  // no system call when every pool thread is polling
    run(job, true);
    // Every block finished (the pool's threads may still be running theirs), then no pool
    // thread can take the job any more, then none still holds it: the job may go.
    wait_for([&] { return job.done.load(std::memory_order_acquire) == job.blocks; });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = nullptr;
    }
    wait_for([&] { return job.joined.load(std::memory_order_acquire) == 0; });
    return true;
  }

  // Runs blocks of the job until none is left: block 0 first when `first` (the caller's), then
  // whichever the counter hands out.
  static void run(Job& job, bool first = false) {
    t_inside = true;
    auto block = [&job](std::size_t b) {
      if (!job.failed.load(std::memory_order_relaxed)) {
        try {
          (*job.fn)(job.n * b / job.blocks, job.n * (b + 1) / job.blocks);
        } catch (...) {
          std::lock_guard<std::mutex> lock(instance().mutex_);
          if (!job.error) job.error = std::current_exception();
          job.failed.store(true, std::memory_order_relaxed);
        }
      }
      job.done.fetch_add(1, std::memory_order_acq_rel);
    };
    if (first) block(0);
    for (std::size_t b; (b = job.next.fetch_add(1)) < job.blocks;) block(b);
    t_inside = false;
  }

  static Pool& instance() {
    static Pool pool;
    return pool;
  }

 private:
  // The caller's wait: it polls, then yields the core (a pool thread it waits for may have been
  // descheduled and needs one).
  template <class Done>
  static void wait_for(Done done) {
    if (spin_until(done)) return;
    while (!done()) std::this_thread::yield();
  }

  void work() {
    std::uint64_t seen = 0;
    for (;;) {
      auto news = [&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(news)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, news);
      }
      if (stop_.load()) return;
      Job* job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        seen = generation_.load();
        job = job_;
        if (!job) continue;  // that loop finished before this thread saw it
        job->joined.fetch_add(1);
      }
      run(*job);
      job->joined.fetch_sub(1, std::memory_order_release);  // the last access: the job may go now
    }
  }

  std::mutex owner_;  // held by the one loop using the pool
  std::mutex mutex_;  // guards threads_, job_, the jobs' error, and the changes of generation_
  std::condition_variable wake_;
  std::vector<std::thread> threads_;
  Job* job_ = nullptr;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace

void parallel_for(std::size_t n, std::size_t grain, const RangeFn& fn) {
  if (n == 0) return;
  const int threads = blas::num_threads();
  const std::size_t blocks = std::min<std::size_t>(std::size_t(threads), n / std::max<std::size_t>(grain, 1));
  if (blocks < 2 || t_inside) return fn(0, n);
  Job job;
  job.fn = &fn;
  job.n = n;
  job.blocks = blocks;
  if (!Pool::instance().try_run(job, threads)) return fn(0, n);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace xgrad::parallel
