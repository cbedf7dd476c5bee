#include "linear.hpp"

#include <cmath>

namespace xgrad::nn {

template <class T>
Linear<T>::Linear(std::size_t in_features, std::size_t out_features) : in_(in_features), out_(out_features) {
  if (in_features == 0 || out_features == 0)
    throw ValueError("Linear: sizes must be positive, got in " + std::to_string(in_features) + ", out " +
                     std::to_string(out_features));
  const double k = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight = this->register_parameter("weight", uniform<T>({out_features, in_features}, k));
  bias = this->register_parameter("bias", uniform<T>({out_features}, k));
}

// y = x·Wᵀ + b   x (m, in), W (out, in), b (out) -> (m, out); x (..., in) -> (..., out)
template <class T>
Var<T> Linear<T>::forward(const Var<T>& x) const {
  if (x.dim() < 2 || x.shape()[x.dim() - 1] != in_)
    throw ShapeError("Linear: input of shape " + shape_str(x.shape()) + " does not fit in_features " +
                     std::to_string(in_) + " (expected (m, " + std::to_string(in_) + ") or (..., " +
                     std::to_string(in_) + "))");
  return linear(x, weight, bias);
}

template class Linear<float>;
template class Linear<double>;

}  // namespace xgrad::nn
