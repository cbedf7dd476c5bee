// W6: workload W3 (LSTM H=256 on one-hot V=65, B=32 streams, T=64, Linear to 65 logits,
// cross-entropy averaged over the positions, Adam lr 2e-3, float32) trained data-parallel:
// the batch's 32 streams split over the ranks (data::shard), one BLAS thread per rank, each
// rank's gradient weighted by its share of the tokens and summed over the ranks
// (dist::all_reduce_gradients), so each step is W3's step on the whole batch.
//
//   bench_dist [--seconds S] [--threads N]          one rank, the whole batch
//   mpirun -np 2 bench_dist [--seconds S]            two ranks of 16 streams each
//   bench_dist --streams 16                          one rank, half the batch: what a rank of
//                                                    two computes, without the exchange
//
// After one warm-up step, rank 0 times as many steps as fill S seconds (default 5; the count is
// fixed from the warm-up step and shared, so every rank runs the same steps) and prints one
// JSON line: {"workload": "W6", "ranks": N, "streams": B, "tokens_per_s": X, "peak_MB": Y,
// "exchange_ms_per_step": Z}: tokens of the global batch (B·T per step) per second of wall time;
// rank 0's peak resident set minus its resident set when main() started (MiB); rank 0's time
// per step in the token count's and the gradients' all-reduce, waiting for slower ranks included.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <xgrad/dist.hpp>
#include <xgrad/xgrad.hpp>

#include "common.hpp"

namespace {

using namespace xgrad;
constexpr std::size_t kVocab = 65, kHidden = 256, kSteps = 64;
constexpr double kLr = 2e-3;

using bench::rss_now_mb;
using bench::rss_peak_mb;

// (T, B) time-major ids, the same on every rank.
std::vector<int> random_ids(std::size_t n, std::uint32_t seed) { return bench::random_ids(n, kVocab, seed); }

struct CharModel {
  nn::LSTM<float> rnn{kVocab, kHidden};
  nn::Linear<float> head{kHidden, kVocab};
  std::vector<Var<float>> parameters() const {
    auto p = rnn.parameters();
    for (const auto& h : head.parameters()) p.push_back(h);
    return p;
  }
  // ids (T·m) time-major -> mean cross-entropy over the T·m positions
  Var<float> loss(const std::vector<int>& ids, const std::vector<int>& targets) const {
    Var<float> out = rnn.forward_onehot(ids, kSteps).output;  // (T, m, H)
    return cross_entropy(head(out), targets);                 // (T, m, V) logits
  }
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "bench_dist: %s\nusage: [mpirun -np N] bench_dist [--seconds S] [--threads N]\n", why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const double rss_start = rss_now_mb();
  dist::Session session(argc, argv);
  double seconds = 5;
  int threads = 1;
  long streams = 32;  // W3's batch
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      seconds = std::atof(argv[++i]);
      if (!(seconds > 0)) usage("--seconds needs a positive number");
    } else if (std::strcmp(argv[i], "--threads") == 0 && has_value) {
      threads = std::atoi(argv[++i]);
      if (threads < 1) usage("--threads needs a positive integer");
    } else if (std::strcmp(argv[i], "--streams") == 0 && has_value) {
      streams = std::atol(argv[++i]);
      if (streams < 1) usage("--streams needs a positive integer");
    } else {
      usage((std::string("unknown option ") + argv[i]).c_str());
    }
  }
  blas::set_num_threads(threads);

  nn::manual_seed(1);
  CharModel model;
  const auto params = model.parameters();
  dist::broadcast_parameters(params);
  optim::Adam<float> opt(params, kLr);
  // The whole batch's streams, then this rank's columns of it.
  data::SequenceBatch whole;
  whole.steps = kSteps;
  whole.batch = std::size_t(streams);
  whole.inputs = random_ids(kSteps * whole.batch, 2);
  whole.targets = random_ids(kSteps * whole.batch, 3);
  const data::SequenceBatch mine = data::shard_of(whole, dist::rank(), dist::world_size());
  const double my_tokens = double(mine.steps * mine.batch);

  using clock = std::chrono::steady_clock;
  double exchange_seconds = 0;  // in the two collectives of the steps: waiting for the others included
  auto step = [&] {
    opt.zero_grad();
    model.loss(mine.inputs, mine.targets).backward();
    const auto start = clock::now();
    dist::all_reduce_gradients(params, my_tokens / dist::all_reduce_sum(my_tokens));
    exchange_seconds += std::chrono::duration<double>(clock::now() - start).count();
    opt.step();
    clear_tape();
  };
  dist::barrier();
  auto t0 = clock::now();
  step();  // warm-up: first-touch allocations, the tape's storage, the pool
  const double warmup = std::chrono::duration<double>(clock::now() - t0).count();
  // Rank 0's count for everyone: a rank deciding alone when to stop would leave the others
  // waiting in a collective.
  const double steps = dist::all_reduce_sum(dist::rank() == 0 ? std::max(1.0, std::ceil(seconds / warmup)) : 0.0);

  dist::barrier();
  exchange_seconds = 0;
  t0 = clock::now();
  for (double k = 0; k < steps; ++k) step();
  dist::barrier();
  const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();

  if (dist::rank() == 0)
    std::printf("{\"workload\": \"W6\", \"ranks\": %d, \"streams\": %zu, \"tokens_per_s\": %.1f, \"peak_MB\": %.1f, "
                "\"exchange_ms_per_step\": %.2f}\n",
                dist::world_size(), whole.batch, steps * double(kSteps * whole.batch) / elapsed, rss_peak_mb() - rss_start,
                exchange_seconds * 1e3 / steps);
  return 0;
}
