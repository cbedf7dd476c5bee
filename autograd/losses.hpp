// Losses, each fused into one op with its own backward.
#pragma once

#include <vector>

#include "options.hpp"
#include "var.hpp"

namespace xgrad {

// Mean over rows of -log softmax(logits)[row, target]; logits (N, C), targets N ids in [0, C).
// Logits (..., C) count every position as a row, N = size / C (a sequence's (T, m, C)).
// Log-softmax is computed with the row maximum subtracted, so logits of magnitude 1e4 are fine.
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int>& targets);

// How a loss over rows is reduced.
enum class Reduction { mean, sum, none };

// cross_entropy(logits, targets, CrossEntropyOptions().ignore_index(0).reduction(Reduction::sum)).
struct CrossEntropyOptions {
  // Rows whose target equals it count for nothing: no loss, no gradient, not in the mean's count.
  XGRAD_OPTION(CrossEntropyOptions, long, ignore_index, -100)
  // mean: the sum over the counted rows divided by their number (0 when every row is ignored);
  // sum; none: one loss per row, shape N, or the logits' leading shape (T, m) for (T, m, C).
  XGRAD_OPTION(CrossEntropyOptions, Reduction, reduction, Reduction::mean)
  // ε in [0, 1): each row's target distribution is (1 − ε)·onehot(t) + ε/C, as in PyTorch.
  XGRAD_OPTION(CrossEntropyOptions, double, label_smoothing, 0.0)
};

// The loss of each counted row, (1 − ε)·(−log p[t]) + ε/C·Σ_c (−log p[c]) with p the row's
// softmax, reduced as the options say. One fused op; the two-argument form is the defaults
// without an ignored id (every target must be a class).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int>& targets, const CrossEntropyOptions& options);
// Mean of -(t·log p + (1 - t)·log(1 - p)); each log is clamped at -100 as PyTorch does.
template <class T>
Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets);
// Mean of (a - b)^2.
template <class T>
Var<T> mse_loss(const Var<T>& a, const Var<T>& b);

}  // namespace xgrad
