#include "gru_cell.hpp"

#include <cmath>

#include "checks.hpp"

namespace xgrad::nn {

template <class T>
GRUCell<T>::GRUCell(std::size_t n_x, std::size_t n_a) : n_x_(n_x), n_a_(n_a) {
  if (n_x == 0 || n_a == 0)
    throw ValueError("GRUCell: sizes must be positive, got n_x " + std::to_string(n_x) + ", n_a " +
                     std::to_string(n_a));
  const double k = 1.0 / std::sqrt(static_cast<double>(n_a));
  Wx = this->register_parameter("Wx", uniform<T>({3 * n_a, n_x}, k));
  Wa = this->register_parameter("Wa", uniform<T>({3 * n_a, n_a}, k));
  bx = this->register_parameter("bx", uniform<T>({3 * n_a}, k));
  ba = this->register_parameter("ba", uniform<T>({3 * n_a}, k));
}

template <class T>
Var<T> GRUCell<T>::forward(const Var<T>& x, const Var<T>& a_prev) const {
  detail::check_matrix("GRUCell", "input x", x, 0, n_x_);
  detail::check_matrix("GRUCell", "hidden state a_prev", a_prev, x.shape()[0], n_a_);
  return step(input_projection(x), a_prev);
}

template <class T>
Var<T> GRUCell<T>::forward(const Var<T>& x) const {
  detail::check_matrix("GRUCell", "input x", x, 0, n_x_);
  return step(input_projection(x), zero_state(x.shape()[0]));
}

// x (N, n_x) -> x·Wxᵀ + bx (N, 3·n_a)
template <class T>
Var<T> GRUCell<T>::input_projection(const Var<T>& x) const {
  detail::check_matrix("GRUCell", "input x", x, 0, n_x_);
  return linear(x, Wx, bx);
}

// onehot(ids) (N, n_x) -> Wx[:, ids]ᵀ + bx (N, 3·n_a), a gather
template <class T>
Var<T> GRUCell<T>::input_projection(const std::vector<int>& ids) const {
  return linear_onehot(ids, Wx, bx);
}

template <class T>
Var<T> GRUCell<T>::step(const Var<T>& px, const Var<T>& a_prev) const {
  const std::size_t n = n_a_;
  detail::check_matrix("GRUCell", "input projection", px, 0, 3 * n);
  detail::check_matrix("GRUCell", "hidden state a_prev", a_prev, px.shape()[0], n);
  const long N = static_cast<long>(n);
  Var<T> pa = linear(a_prev, Wa, ba);                                   // (m, 3·n_a)
  Var<T> rz = sigmoid(slice(px, 1, 0, 2 * N) + slice(pa, 1, 0, 2 * N));  // (m, 2·n_a): r, z
  Var<T> r = slice(rz, 1, 0, N);
  Var<T> z = slice(rz, 1, N, 2 * N);
  Var<T> cand = tanh(slice(px, 1, 2 * N, 3 * N) + r * slice(pa, 1, 2 * N, 3 * N));
  // (1 − z)∘n + z∘a_prev = n + z∘(a_prev − n)
  return cand + z * (a_prev - cand);
}

template <class T>
Var<T> GRUCell<T>::zero_state(std::size_t m) const {
  return constant<T>(xt::zeros<T>({m, n_a_}));
}

template class GRUCell<float>;
template class GRUCell<double>;

}  // namespace xgrad::nn
