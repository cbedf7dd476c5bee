// What the benchmark programs share: the process's resident set and random character ids.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace xgrad::bench {

inline double rss_now_mb() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

inline double rss_peak_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

// n ids drawn uniformly from [0, vocab), the same for the same seed (on every rank too).
inline std::vector<int> random_ids(std::size_t n, std::size_t vocab, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> d(0, int(vocab) - 1);
  std::vector<int> ids(n);
  for (int& v : ids) v = d(gen);
  return ids;
}

}  // namespace xgrad::bench
