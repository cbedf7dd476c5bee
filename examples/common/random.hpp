// Seeded draws that are the same on every platform: std::mt19937_64 is fully specified by the
// standard, the distributions of <random> are not, so the examples draw through these.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace xgrad::examples {

// A draw from [0, n) as rng() % n; the bias, below n / 2^64, is irrelevant for our n, and the
// rule is one line to replicate (bench/classify_torch.py does).
inline std::uint64_t uniform_below(std::mt19937_64& rng, std::uint64_t n) { return rng() % n; }

// Moves a uniformly drawn k-subset of v, in draw order, to its first k places (partial
// Fisher-Yates: for i < min(k, n), swap v[i] with v[i + uniform_below(n - i)]).
template <class T>
void partial_shuffle(std::vector<T>& v, std::size_t k, std::mt19937_64& rng) {
  const std::size_t n = v.size();
  for (std::size_t i = 0; i < k && i < n; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(uniform_below(rng, n - i));
    std::swap(v[i], v[j]);
  }
}

}  // namespace xgrad::examples
