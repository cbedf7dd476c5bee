// Linear: y = x·Wᵀ + b, and Embedding: rows of a table picked by ids.
#pragma once

#include <cstddef>
#include <vector>

#include "../autograd/ops.hpp"
#include "module.hpp"

namespace xgrad::nn {

// x (m, in) -> x·weightᵀ + bias (m, out); weight (out, in), bias (out), both drawn uniformly
// from ±1/√in as in PyTorch.
template <class T>
class Linear : public Module<T> {
 public:
  Linear(std::size_t in_features, std::size_t out_features);

  Var<T> forward(const Var<T>& x) const;
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }

  Var<T> weight;  // (out, in)
  Var<T> bias;    // (out)

 private:
  std::size_t in_, out_;
};

}  // namespace xgrad::nn
