#include "dropout.hpp"

#include <string>

#include "../autograd/ops_detail.hpp"

namespace xgrad::nn {

template <class T>
Dropout<T>::Dropout(double p) : p_(p) {
  if (!(p >= 0.0 && p <= 1.0)) throw ValueError("Dropout: p must be in [0, 1], got " + xgrad::detail::num_str(p));
}

template <class T>
Var<T> Dropout<T>::forward(const Var<T>& x) const {
  return dropout(x, p_, this->is_training());
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace xgrad::nn
