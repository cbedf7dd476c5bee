#include "sequence.hpp"

#include <random>

#include "checks.hpp"

namespace xgrad::nn {

namespace {

template <class T>
const Var<T>& hidden(const Var<T>& s) {
  return s;
}
template <class T>
const Var<T>& hidden(const LSTMState<T>& s) {
  return s.a;
}

// mask∘s_new + keep∘s_old, keep = 1 − mask: examples whose sequence has ended keep their state.
template <class T>
Var<T> blend(const Var<T>& mask, const Var<T>& keep, const Var<T>& s_new, const Var<T>& s_old) {
  return mask * s_new + keep * s_old;
}
template <class T>
LSTMState<T> blend(const Var<T>& mask, const Var<T>& keep, const LSTMState<T>& s_new, const LSTMState<T>& s_old) {
  return {blend(mask, keep, s_new.a, s_old.a), blend(mask, keep, s_new.c, s_old.c)};
}

template <class T>
void check_state(const char* layer, const std::string& where, const Var<T>& s, std::size_t m, std::size_t n_a) {
  detail::check_matrix(layer, (where + " hidden state").c_str(), s, m, n_a);
}
template <class T>
void check_state(const char* layer, const std::string& where, const LSTMState<T>& s, std::size_t m,
                 std::size_t n_a) {
  detail::check_matrix(layer, (where + " hidden state a").c_str(), s.a, m, n_a);
  detail::check_matrix(layer, (where + " memory cell c").c_str(), s.c, m, n_a);
}

}  // namespace

namespace detail {

template <class T, class Cell>
template <class... CellArgs>
SequenceLayer<T, Cell>::SequenceLayer(const char* name, std::size_t n_x, std::size_t n_a, std::size_t layers,
                                      bool bidirectional, double dropout, CellArgs... cell_args)
    : name_(name), n_x_(n_x), n_a_(n_a), layers_(layers), directions_(bidirectional ? 2 : 1), dropout_(dropout) {
  if (n_x == 0 || n_a == 0)
    throw ValueError(std::string(name) + ": sizes must be positive, got n_x " + std::to_string(n_x) + ", n_a " +
                     std::to_string(n_a));
  if (layers == 0) throw ValueError(std::string(name) + ": needs at least one layer, got layers = 0");
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw ValueError(std::string(name) + ": dropout must be in [0, 1), got " + std::to_string(dropout));
  for (std::size_t k = 0; k < layers; ++k) {
    const std::size_t n_in = k == 0 ? n_x : directions_ * n_a;
    for (std::size_t d = 0; d < directions_; ++d) {
      cells_.push_back(std::make_unique<Cell>(n_in, n_a, cell_args...));
      this->register_module("layers." + std::to_string(k) + (d == 1 ? ".reverse" : ""), *cells_.back());
    }
  }
}

template <class T, class Cell>
const Cell& SequenceLayer<T, Cell>::cell(std::size_t k, bool reverse) const {
  if (k >= layers_ || (reverse && directions_ == 1))
    throw IndexError(std::string(name_) + ": no cell for layer " + std::to_string(k) +
                     (reverse ? " (reverse)" : "") + " in " + std::to_string(layers_) + " layer(s), " +
                     std::to_string(directions_) + " direction(s)");
  return *cells_[k * directions_ + (reverse ? 1 : 0)];
}

template <class T, class Cell>
void SequenceLayer<T, Cell>::check(const Shape& s, const std::vector<State>& initial,
                                   const std::vector<int>& lengths) const {
  const std::string name(name_);
  if (s.size() != 3)
    throw ShapeError(name + ": input must have shape (T, m, n_x), got " + shape_str(s));
  if (s[2] != n_x_)
    throw ShapeError(name + ": input of shape " + shape_str(s) + " does not fit n_x = " + std::to_string(n_x_) +
                     ": expected (T, m, " + std::to_string(n_x_) + ")");
  if (s[0] == 0) throw ValueError(name + ": empty sequence: input of shape " + shape_str(s) + " has T = 0");
  if (s[1] == 0) throw ValueError(name + ": empty batch: input of shape " + shape_str(s) + " has m = 0");
  const std::size_t steps = s[0], m = s[1];
  if (!initial.empty()) {
    if (initial.size() != layers_ * directions_)
      throw ShapeError(name + ": initial state has " + std::to_string(initial.size()) +
                       " entries, expected layers·directions = " + std::to_string(layers_ * directions_) +
                       " for input " + shape_str(s));
    for (std::size_t i = 0; i < initial.size(); ++i)
      check_state(name_,
                  "initial state of layer " + std::to_string(i / directions_) +
                      (i % directions_ == 1 ? " (reverse)" : ""),
                  initial[i], m, n_a_);
  }
  if (!lengths.empty()) {
    if (lengths.size() != m)
      throw ShapeError(name + ": " + std::to_string(lengths.size()) + " lengths for a batch of m = " +
                       std::to_string(m) + " (input shape " + shape_str(s) + ")");
    for (std::size_t i = 0; i < m; ++i)
      if (lengths[i] < 1 || static_cast<std::size_t>(lengths[i]) > steps)
        throw IndexError(name + ": length " + std::to_string(lengths[i]) + " of example " + std::to_string(i) +
                         " is outside [1, T = " + std::to_string(steps) + "] (input shape " + shape_str(s) + ")");
  }
}

template <class T, class Cell>
std::pair<Var<T>, std::vector<typename SequenceLayer<T, Cell>::State>> SequenceLayer<T, Cell>::run(
    const Var<T>& x, const std::vector<State>& initial, const std::vector<int>& lengths) const {
  check(Shape(x.shape().begin(), x.shape().end()), initial, lengths);
  return run_layers(&x, nullptr, x.shape()[1], initial, lengths);
}

template <class T, class Cell>
std::pair<Var<T>, std::vector<typename SequenceLayer<T, Cell>::State>> SequenceLayer<T, Cell>::run_onehot(
    const std::vector<int>& ids, std::size_t steps, const std::vector<State>& initial,
    const std::vector<int>& lengths) const {
  const std::string name(name_);
  if (steps == 0 || ids.empty() || ids.size() % steps != 0)
    throw ShapeError(name + ": " + std::to_string(ids.size()) + " one-hot ids do not split into T = " +
                     std::to_string(steps) + " steps of a non-empty batch");
  for (std::size_t j = 0; j < ids.size(); ++j)
    if (ids[j] < 0 || static_cast<std::size_t>(ids[j]) >= n_x_)
      throw IndexError(name + ": one-hot id " + std::to_string(ids[j]) + " at position " + std::to_string(j) +
                       " is outside [0, n_x = " + std::to_string(n_x_) + ")");
  const std::size_t m = ids.size() / steps;
  check(Shape{steps, m, n_x_}, initial, lengths);
  return run_layers(nullptr, &ids, m, initial, lengths);
}

template <class T, class Cell>
std::pair<Var<T>, std::vector<typename SequenceLayer<T, Cell>::State>> SequenceLayer<T, Cell>::run_layers(
    const Var<T>* x, const std::vector<int>* ids, std::size_t m, const std::vector<State>& initial,
    const std::vector<int>& lengths) const {
  const std::size_t steps = x ? x->shape()[0] : ids->size() / m;
  std::vector<State> final_state;
  Var<T> input;  // (T, m, n_in); layer 0 reads *x or ids
  for (std::size_t k = 0; k < layers_; ++k) {
    std::vector<Var<T>> outputs;
    const Var<T>* in = k == 0 ? x : &input;
    const std::vector<int>* in_ids = k == 0 ? ids : nullptr;
    for (std::size_t d = 0; d < directions_; ++d) {
      const std::size_t i = k * directions_ + d;
      State state = initial.empty() ? cells_[i]->zero_state(m) : initial[i];
      outputs.push_back(run_direction(*cells_[i], in, in_ids, steps, m, state, d == 1, lengths));
      final_state.push_back(state);
    }
    Var<T> y = outputs.size() == 1 ? outputs[0] : concat(outputs, 2);  // (T, m, directions·n_a)
    if (this->is_training() && dropout_ > 0 && k + 1 < layers_) {
      // Inverted dropout: keep with probability 1 − p, scaled by 1/(1 − p).
      Array<T> mask = Array<T>::from_shape(y.shape());
      std::bernoulli_distribution keep(1.0 - dropout_);
      const T scale = static_cast<T>(1.0 / (1.0 - dropout_));
      for (T& v : mask) v = keep(generator()) ? scale : T(0);
      y = y * constant(std::move(mask));
    }
    input = y;
  }
  return {input, final_state};
}

// input (T, m, n_in) -> outputs (T, m, n_a); `state` goes in as the initial state and comes out
// as the final one.
template <class T, class Cell>
Var<T> SequenceLayer<T, Cell>::run_direction(const Cell& cell, const Var<T>* input, const std::vector<int>* ids,
                                             std::size_t steps, std::size_t m, State& state, bool reverse,
                                             const std::vector<int>& lengths) const {
  // Dense input: all T input projections in one GEMM, (T·m, n_in) -> (T, m, gates·n_a), each
  // step selecting its block. One-hot ids: each step gathers its own block (no product, no copy).
  Var<T> px;
  if (input != nullptr) {
    const std::size_t n_in = input->shape()[2];
    px = cell.input_projection(reshape(*input, {steps * m, n_in}));
    const std::size_t g = px.shape()[1];
    px = reshape(px, {steps, m, g});
  }
  std::vector<int> step_ids;
  std::vector<Var<T>> outputs(steps);
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t t = reverse ? steps - 1 - s : s;
    std::size_t active = m;
    if (!lengths.empty()) {
      active = 0;
      for (int len : lengths) active += t < static_cast<std::size_t>(len) ? 1 : 0;
    }
    if (active == 0) {  // every sequence has ended: zero output, state unchanged
      outputs[t] = constant<T>(xt::zeros<T>({m, n_a_}));
      continue;
    }
    Var<T> px_t;
    if (input != nullptr) {
      px_t = select(px, static_cast<long>(t));
    } else {
      step_ids.assign(ids->begin() + static_cast<long>(t * m), ids->begin() + static_cast<long>((t + 1) * m));
      px_t = cell.input_projection(step_ids);
    }
    State next = cell.step(px_t, state);
    if (active == m) {
      outputs[t] = hidden(next);
      state = next;
      continue;
    }
    // mask (m, 1): 1 for examples still running at step t, 0 for those whose sequence has ended.
    Array<T> mask_v = Array<T>::from_shape({m, 1});
    for (std::size_t i = 0; i < m; ++i) mask_v(i, 0) = t < static_cast<std::size_t>(lengths[i]) ? T(1) : T(0);
    Var<T> keep = constant<T>(Array<T>(T(1) - mask_v));
    Var<T> mask = constant<T>(std::move(mask_v));
    outputs[t] = hidden(next) * mask;
    state = blend(mask, keep, next, state);
  }
  return stack(outputs);
}

template class SequenceLayer<float, RNNCell<float>>;
template class SequenceLayer<double, RNNCell<double>>;
template class SequenceLayer<float, LSTMCell<float>>;
template class SequenceLayer<double, LSTMCell<double>>;
template class SequenceLayer<float, GRUCell<float>>;
template class SequenceLayer<double, GRUCell<double>>;

}  // namespace detail

template <class T>
RNN<T>::RNN(std::size_t n_x, std::size_t n_a, const RNNOptions& o)
    : detail::SequenceLayer<T, RNNCell<T>>("RNN", n_x, n_a, o.layers(), o.bidirectional(), o.dropout(),
                                           o.relu() ? Nonlinearity::relu : Nonlinearity::tanh) {}

template <class T>
RNNResult<T> RNN<T>::forward(const Var<T>& x, const std::vector<Var<T>>& initial_state,
                             const std::vector<int>& lengths) const {
  auto [output, state] = this->run(x, initial_state, lengths);
  return {output, std::move(state)};
}

template <class T>
RNNResult<T> RNN<T>::forward_onehot(const std::vector<int>& ids, std::size_t steps,
                                    const std::vector<Var<T>>& initial_state, const std::vector<int>& lengths) const {
  auto [output, state] = this->run_onehot(ids, steps, initial_state, lengths);
  return {output, std::move(state)};
}

template <class T>
LSTM<T>::LSTM(std::size_t n_x, std::size_t n_a, const LSTMOptions& o)
    : detail::SequenceLayer<T, LSTMCell<T>>("LSTM", n_x, n_a, o.layers(), o.bidirectional(), o.dropout()) {}

template <class T>
LSTMResult<T> LSTM<T>::forward(const Var<T>& x, const std::vector<LSTMState<T>>& initial_state,
                               const std::vector<int>& lengths) const {
  auto [output, state] = this->run(x, initial_state, lengths);
  return {output, std::move(state)};
}

template <class T>
LSTMResult<T> LSTM<T>::forward_onehot(const std::vector<int>& ids, std::size_t steps,
                                      const std::vector<LSTMState<T>>& initial_state,
                                      const std::vector<int>& lengths) const {
  auto [output, state] = this->run_onehot(ids, steps, initial_state, lengths);
  return {output, std::move(state)};
}

template <class T>
GRU<T>::GRU(std::size_t n_x, std::size_t n_a, const GRUOptions& o)
    : detail::SequenceLayer<T, GRUCell<T>>("GRU", n_x, n_a, o.layers(), o.bidirectional(), o.dropout()) {}

template <class T>
GRUResult<T> GRU<T>::forward(const Var<T>& x, const std::vector<Var<T>>& initial_state,
                             const std::vector<int>& lengths) const {
  auto [output, state] = this->run(x, initial_state, lengths);
  return {output, std::move(state)};
}

template <class T>
GRUResult<T> GRU<T>::forward_onehot(const std::vector<int>& ids, std::size_t steps,
                                    const std::vector<Var<T>>& initial_state, const std::vector<int>& lengths) const {
  auto [output, state] = this->run_onehot(ids, steps, initial_state, lengths);
  return {output, std::move(state)};
}

template class RNN<float>;
template class RNN<double>;
template class LSTM<float>;
template class LSTM<double>;
template class GRU<float>;
template class GRU<double>;

}  // namespace xgrad::nn
