#include "random.hpp"

namespace xgrad::nn {

std::mt19937_64& generator() {
  thread_local std::mt19937_64 gen(5489u);
  return gen;
}

void manual_seed(std::uint64_t seed) { generator().seed(seed); }

}  // namespace xgrad::nn
