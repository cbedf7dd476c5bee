// Embedding: a learned table of `num` vectors of size `dim`, looked up by id.
#pragma once

#include <cstddef>
#include <vector>

#include "../autograd/ops.hpp"
#include "module.hpp"

namespace xgrad::nn {

// emb(ids) -> (ids.size(), dim): row ids[i] of weight (num, dim), drawn from N(0, 1) as in PyTorch.
template <class T>
class Embedding : public Module<T> {
 public:
  Embedding(std::size_t num, std::size_t dim);

  Var<T> forward(const std::vector<int>& ids) const;
  Var<T> operator()(const std::vector<int>& ids) const { return forward(ids); }

  std::size_t num_embeddings() const { return num_; }
  std::size_t embedding_dim() const { return dim_; }

  Var<T> weight;  // (num, dim)

 private:
  std::size_t num_, dim_;
};

}  // namespace xgrad::nn
