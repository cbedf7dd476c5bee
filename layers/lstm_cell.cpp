#include "lstm_cell.hpp"

#include <cmath>

#include "../autograd/nn_ops.hpp"
#include "checks.hpp"

namespace xgrad::nn {

template <class T>
LSTMCell<T>::LSTMCell(std::size_t n_x, std::size_t n_a) : n_x_(n_x), n_a_(n_a) {
  if (n_x == 0 || n_a == 0)
    throw ValueError("LSTMCell: sizes must be positive, got n_x " + std::to_string(n_x) + ", n_a " +
                     std::to_string(n_a));
  const double k = 1.0 / std::sqrt(static_cast<double>(n_a));
  Wx = this->register_parameter("Wx", uniform<T>({4 * n_a, n_x}, k));
  Wa = this->register_parameter("Wa", uniform<T>({4 * n_a, n_a}, k));
  b = this->register_parameter("b", uniform<T>({4 * n_a}, k));
}

template <class T>
LSTMState<T> LSTMCell<T>::forward(const Var<T>& x, const LSTMState<T>& state) const {
  detail::check_matrix("LSTMCell", "input x", x, 0, n_x_);
  detail::check_matrix("LSTMCell", "hidden state a_prev", state.a, x.shape()[0], n_a_);
  detail::check_matrix("LSTMCell", "memory cell c_prev", state.c, x.shape()[0], n_a_);
  return step(input_projection(x), state);
}

template <class T>
LSTMState<T> LSTMCell<T>::forward(const Var<T>& x) const {
  detail::check_matrix("LSTMCell", "input x", x, 0, n_x_);
  return step(input_projection(x), zero_state(x.shape()[0]));
}

// x (N, n_x) -> x·Wxᵀ + b (N, 4·n_a)
template <class T>
Var<T> LSTMCell<T>::input_projection(const Var<T>& x) const {
  detail::check_matrix("LSTMCell", "input x", x, 0, n_x_);
  return linear(x, Wx, b);
}

// onehot(ids) (N, n_x) -> Wx[:, ids]ᵀ + b (N, 4·n_a), a gather
template <class T>
Var<T> LSTMCell<T>::input_projection(const std::vector<int>& ids) const {
  return linear_onehot(ids, Wx, b);
}

template <class T>
LSTMState<T> LSTMCell<T>::step(const Var<T>& px, const LSTMState<T>& state) const {
  const std::size_t n = n_a_;
  detail::check_matrix("LSTMCell", "input projection", px, 0, 4 * n);
  detail::check_matrix("LSTMCell", "hidden state a_prev", state.a, px.shape()[0], n);
  detail::check_matrix("LSTMCell", "memory cell c_prev", state.c, px.shape()[0], n);
  Var<T> act = lstm_gates(addmm_nt(px, state.a, Wa));  // px + a_prev·Waᵀ (m, 4·n_a) → [σ(i) | σ(f) | tanh(g) | σ(o)]
  Var<T> c_next = lstm_memory(act, state.c);  // σ(f)∘c_prev + σ(i)∘tanh(g)
  Var<T> a_next = lstm_hidden(act, c_next);  // σ(o)∘tanh(c_next)
  return {a_next, c_next};
}

template <class T>
LSTMState<T> LSTMCell<T>::zero_state(std::size_t m) const {
  return {constant<T>(xt::zeros<T>({m, n_a_})), constant<T>(xt::zeros<T>({m, n_a_}))};
}

template struct LSTMState<float>;
template struct LSTMState<double>;
template class LSTMCell<float>;
template class LSTMCell<double>;

}  // namespace xgrad::nn
