#include "parallel.hpp"

#include <algorithm>
#include <atomic>
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

// One parallel loop: its blocks, handed out by an atomic counter to whichever thread asks first.
struct Job {
  const RangeFn* fn;
  std::size_t n, blocks;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // the first exception, written once under Pool::mutex_
  int joined = 0;            // pool threads inside run(); under Pool::mutex_
};

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
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
      ++generation_;
    }
    wake_.notify_all();
    run(job);
    std::unique_lock<std::mutex> lock(mutex_);
    // Every block finished and no pool thread still holds a pointer to the job.
    finished_.wait(lock, [&] { return job.done.load() == job.blocks && job.joined == 0; });
    job_ = nullptr;
    return true;
  }

  static void run(Job& job) {
    t_inside = true;
    for (std::size_t b; (b = job.next.fetch_add(1)) < job.blocks;) {
      if (!job.failed.load(std::memory_order_relaxed)) {
        try {
          (*job.fn)(job.n * b / job.blocks, job.n * (b + 1) / job.blocks);
        } catch (...) {
          std::lock_guard<std::mutex> lock(instance().mutex_);
          if (!job.error) job.error = std::current_exception();
          job.failed.store(true, std::memory_order_relaxed);
        }
      }
      job.done.fetch_add(1);
    }
    t_inside = false;
  }

  static Pool& instance() {
    static Pool pool;
    return pool;
  }

 private:
  void work() {
    std::uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      Job* job = job_;
      if (!job) continue;  // that loop finished before this thread woke
      ++job->joined;
      lock.unlock();
      run(*job);
      lock.lock();
      --job->joined;
      finished_.notify_all();
    }
  }

  std::mutex owner_;  // held by the one loop using the pool
  std::mutex mutex_;  // guards everything below and the jobs' error and joined
  std::condition_variable wake_, finished_;
  std::vector<std::thread> threads_;
  Job* job_ = nullptr;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
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
