#include "rnn_cell.hpp"

#include <cmath>

#include "checks.hpp"

namespace xgrad::nn {

template <class T>
RNNCell<T>::RNNCell(std::size_t n_x, std::size_t n_a, Nonlinearity nonlinearity)
    : n_x_(n_x), n_a_(n_a), nonlinearity_(nonlinearity) {
  if (n_x == 0 || n_a == 0)
    throw ValueError("RNNCell: sizes must be positive, got n_x " + std::to_string(n_x) + ", n_a " +
                     std::to_string(n_a));
  const double k = 1.0 / std::sqrt(static_cast<double>(n_a));
  Wax = this->register_parameter("Wax", uniform<T>({n_a, n_x}, k));
  Waa = this->register_parameter("Waa", uniform<T>({n_a, n_a}, k));
  ba = this->register_parameter("ba", uniform<T>({n_a}, k));
}

template <class T>
Var<T> RNNCell<T>::forward(const Var<T>& x, const Var<T>& a_prev) const {
  detail::check_matrix("RNNCell", "input x", x, 0, n_x_);
  detail::check_matrix("RNNCell", "hidden state a_prev", a_prev, x.shape()[0], n_a_);
  return step(input_projection(x), a_prev);
}

template <class T>
Var<T> RNNCell<T>::forward(const Var<T>& x) const {
  detail::check_matrix("RNNCell", "input x", x, 0, n_x_);
  return step(input_projection(x), zero_state(x.shape()[0]));
}

// x (N, n_x) -> x·Waxᵀ + ba (N, n_a)
template <class T>
Var<T> RNNCell<T>::input_projection(const Var<T>& x) const {
  detail::check_matrix("RNNCell", "input x", x, 0, n_x_);
  return linear(x, Wax, ba);
}

// onehot(ids) (N, n_x) -> Wax[:, ids]ᵀ + ba (N, n_a), a gather
template <class T>
Var<T> RNNCell<T>::input_projection(const std::vector<int>& ids) const {
  return linear_onehot(ids, Wax, ba);
}

// a_next = g(px + a_prev·Waaᵀ)   px, a_prev (m, n_a)
template <class T>
Var<T> RNNCell<T>::step(const Var<T>& px, const Var<T>& a_prev) const {
  detail::check_matrix("RNNCell", "input projection", px, 0, n_a_);
  detail::check_matrix("RNNCell", "hidden state a_prev", a_prev, px.shape()[0], n_a_);
  Var<T> z = addmm_nt(px, a_prev, Waa);  // px + a_prev·Waaᵀ
  return nonlinearity_ == Nonlinearity::tanh ? tanh(z) : relu(z);
}

template <class T>
Var<T> RNNCell<T>::zero_state(std::size_t m) const {
  return constant<T>(xt::zeros<T>({m, n_a_}));
}

template class RNNCell<float>;
template class RNNCell<double>;

}  // namespace xgrad::nn
