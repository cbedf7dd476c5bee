#include "embedding.hpp"

#include <random>

namespace xgrad::nn {

template <class T>
Embedding<T>::Embedding(std::size_t num, std::size_t dim) : num_(num), dim_(dim) {
  if (num == 0 || dim == 0)
    throw ValueError("Embedding: sizes must be positive, got num " + std::to_string(num) + ", dim " +
                     std::to_string(dim));
  Array<T> w = Array<T>::from_shape({num, dim});
  std::normal_distribution<double> normal(0.0, 1.0);
  for (T& v : w) v = static_cast<T>(normal(generator()));
  weight = this->register_parameter("weight", std::move(w));
}

template <class T>
Var<T> Embedding<T>::forward(const std::vector<int>& ids) const {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= num_)
      throw IndexError("Embedding: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                       " outside the table of shape " + shape_str(weight.shape()));
  return embedding(weight, ids);
}

template class Embedding<float>;
template class Embedding<double>;

}  // namespace xgrad::nn
