#include "layer_norm.hpp"

#include <cmath>
#include <string>

#include "../autograd/ops_detail.hpp"

namespace xgrad::nn {

template <class T>
LayerNorm<T>::LayerNorm(std::size_t n, const LayerNormOptions& options)
    : n_(n), eps_(options.eps()), affine_(options.elementwise_affine()) {
  if (n == 0) throw ValueError("LayerNorm: the normalised size must be positive, got n = 0");
  if (!(eps_ > 0.0) || !std::isfinite(eps_))
    throw ValueError("LayerNorm: eps must be positive and finite, got " + xgrad::detail::num_str(eps_));
  if (affine_) {
    weight = this->register_parameter("weight", xt::ones<T>({n}));
    bias = this->register_parameter("bias", xt::zeros<T>({n}));
  }
}

template <class T>
Var<T> LayerNorm<T>::forward(const Var<T>& x) const {
  if (x.dim() == 0 || x.shape()[x.dim() - 1] != n_)
    throw ShapeError("LayerNorm: input of shape " + shape_str(x.shape()) + " does not end in the normalised size " +
                     std::to_string(n_) + " (expected (..., " + std::to_string(n_) + "))");
  return affine_ ? layer_norm(x, weight, bias, eps_) : layer_norm(x, eps_);
}

template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace xgrad::nn
