// The random source of xgrad: initial weights (layers/) and dropout masks (nn_ops.hpp) are
// drawn from it, and checkpoints save its state.
#pragma once

#include <cstdint>
#include <random>

namespace xgrad::nn {

// One generator per thread, seeded with manual_seed(), so a run is reproducible from its seed.
std::mt19937_64& generator();
void manual_seed(std::uint64_t seed);

}  // namespace xgrad::nn
