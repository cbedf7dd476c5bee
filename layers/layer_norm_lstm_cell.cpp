#include "layer_norm_lstm_cell.hpp"

#include <cmath>
#include <string>

#include "../autograd/nn_ops.hpp"
#include "checks.hpp"

namespace xgrad::nn {

namespace {

// The sizes are checked before any member is built, so a bad size names this cell.
std::size_t checked_gates(std::size_t n_x, std::size_t n_a) {
  if (n_x == 0 || n_a == 0)
    throw ValueError("LayerNormLSTMCell: sizes must be positive, got n_x " + std::to_string(n_x) + ", n_a " +
                     std::to_string(n_a));
  return 4 * n_a;
}

}  // namespace

template <class T>
LayerNormLSTMCell<T>::LayerNormLSTMCell(std::size_t n_x, std::size_t n_a)
    : ln_x(checked_gates(n_x, n_a)), ln_a(4 * n_a), ln_c(n_a), n_x_(n_x), n_a_(n_a) {
  const double k = 1.0 / std::sqrt(static_cast<double>(n_a));
  Wx = this->register_parameter("Wx", uniform<T>({4 * n_a, n_x}, k));
  Wa = this->register_parameter("Wa", uniform<T>({4 * n_a, n_a}, k));
  b = this->register_parameter("b", uniform<T>({4 * n_a}, k));
  this->register_module("ln_x", ln_x);
  this->register_module("ln_a", ln_a);
  this->register_module("ln_c", ln_c);
}

template <class T>
LSTMState<T> LayerNormLSTMCell<T>::forward(const Var<T>& x, const LSTMState<T>& state) const {
  detail::check_matrix("LayerNormLSTMCell", "input x", x, 0, n_x_);
  detail::check_matrix("LayerNormLSTMCell", "hidden state a_prev", state.a, x.shape()[0], n_a_);
  detail::check_matrix("LayerNormLSTMCell", "memory cell c_prev", state.c, x.shape()[0], n_a_);
  return step(input_projection(x), state);
}

template <class T>
LSTMState<T> LayerNormLSTMCell<T>::forward(const Var<T>& x) const {
  detail::check_matrix("LayerNormLSTMCell", "input x", x, 0, n_x_);
  return step(input_projection(x), zero_state(x.shape()[0]));
}

template <class T>
Var<T> LayerNormLSTMCell<T>::normalize_input(const Var<T>& z) const {
  return layer_norm(z, ln_x.weight, ln_x.bias + b, ln_x.eps());
}

// x (N, n_x) -> LN(x·Wxᵀ; gx, bx) + b (N, 4·n_a)
template <class T>
Var<T> LayerNormLSTMCell<T>::input_projection(const Var<T>& x) const {
  detail::check_matrix("LayerNormLSTMCell", "input x", x, 0, n_x_);
  return normalize_input(matmul_nt(x, Wx));
}

// onehot(ids) (N, n_x) -> LN(Wx[:, ids]ᵀ; gx, bx) + b (N, 4·n_a): a gather, then one normalisation
template <class T>
Var<T> LayerNormLSTMCell<T>::input_projection(const std::vector<int>& ids) const {
  const Var<T> no_bias = constant<T>(xt::zeros<T>({4 * n_a_}));
  return normalize_input(linear_onehot(ids, Wx, no_bias));
}

template <class T>
LSTMState<T> LayerNormLSTMCell<T>::step(const Var<T>& px, const LSTMState<T>& state) const {
  const std::size_t n = n_a_;
  detail::check_matrix("LayerNormLSTMCell", "input projection", px, 0, 4 * n);
  detail::check_matrix("LayerNormLSTMCell", "hidden state a_prev", state.a, px.shape()[0], n);
  detail::check_matrix("LayerNormLSTMCell", "memory cell c_prev", state.c, px.shape()[0], n);
  Var<T> act = lstm_gates(px + ln_a(matmul_nt(state.a, Wa)));  // (m, 4·n_a) → [σ(i) | σ(f) | tanh(g) | σ(o)]
  Var<T> c_next = lstm_memory(act, state.c);  // σ(f)∘c_prev + σ(i)∘tanh(g)
  Var<T> a_next = lstm_hidden(act, ln_c(c_next));  // σ(o)∘tanh(ln_c(c_next))
  return {a_next, c_next};
}

template <class T>
LSTMState<T> LayerNormLSTMCell<T>::zero_state(std::size_t m) const {
  return {constant<T>(xt::zeros<T>({m, n_a_})), constant<T>(xt::zeros<T>({m, n_a_}))};
}

template class LayerNormLSTMCell<float>;
template class LayerNormLSTMCell<double>;
template class Recurrent<LayerNormLSTMCell<float>>;
template class Recurrent<LayerNormLSTMCell<double>>;

}  // namespace xgrad::nn
