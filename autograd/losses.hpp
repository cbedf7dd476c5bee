// Losses, each fused into one op with its own backward.
#pragma once

#include <vector>

#include "var.hpp"

namespace xgrad {

// Mean over rows of -log softmax(logits)[row, target]; logits (N, C), targets N ids in [0, C).
// Logits (..., C) count every position as a row, N = size / C (a sequence's (T, m, C)).
// Log-softmax is computed with the row maximum subtracted, so logits of magnitude 1e4 are fine.
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int>& targets);
// Mean of -(t·log p + (1 - t)·log(1 - p)); each log is clamped at -100 as PyTorch does.
template <class T>
Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets);
// Mean of (a - b)^2.
template <class T>
Var<T> mse_loss(const Var<T>& a, const Var<T>& b);

}  // namespace xgrad
