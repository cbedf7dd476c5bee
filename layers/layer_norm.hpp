// LayerNorm: each row normalised over its last axis, then scaled and shifted (Ba, Kiros &
// Hinton 2016), as PyTorch's nn.LayerNorm over one trailing dimension of n entries:
//   y = (x − mean(x)) / sqrt(var(x) + eps) ∘ weight + bias       x (..., n) -> (..., n)
// mean and the biased variance var are taken over the last axis of each row separately.
#pragma once

#include <cstddef>

#include "../autograd/nn_ops.hpp"
#include "../autograd/options.hpp"
#include "module.hpp"

namespace xgrad::nn {

// LayerNormOptions().eps(1e-6).elementwise_affine(false).
struct LayerNormOptions {
  // Added to the variance before the square root; must be positive.
  XGRAD_OPTION(LayerNormOptions, double, eps, 1e-5)
  // Learned weight (ones) and bias (zeros); without them y is the bare normalisation.
  XGRAD_OPTION(LayerNormOptions, bool, elementwise_affine, true)
};

template <class T>
class LayerNorm : public Module<T> {
 public:
  // n: the size of the last axis that is normalised.
  explicit LayerNorm(std::size_t n, const LayerNormOptions& options = LayerNormOptions());

  // x (..., n) -> (..., n), through the fused op layer_norm (autograd/nn_ops.hpp).
  Var<T> forward(const Var<T>& x) const;
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

  std::size_t normalized_size() const { return n_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return affine_; }

  Var<T> weight;  // (n), ones; undefined without elementwise_affine
  Var<T> bias;    // (n), zeros; undefined without elementwise_affine

 private:
  std::size_t n_;
  double eps_;
  bool affine_;
};

}  // namespace xgrad::nn
