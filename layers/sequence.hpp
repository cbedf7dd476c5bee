// Sequence layers RNN, LSTM, GRU: a cell run over time-major input x (T, m, n_x), optionally
// several layers deep and in both directions, from a zero or given initial state, on batches of
// sequences of different lengths. Every step is ordinary autograd ops, so the tape holds the
// unrolled graph and one backward() is backpropagation through time.
//
//   output (T, m, directions·n_a): layer L-1's hidden state at every step, the forward
//          direction in columns [0, n_a), the reverse one in [n_a, 2·n_a);
//   state  one entry per layer and direction, index layer·directions + direction (PyTorch's
//          h_n order): the state after the last real step of each example.
//
// Variable lengths: lengths[i] in [1, T] is example i's length. Its outputs at t ≥ lengths[i]
// are zero, its state stops changing there (the reverse direction starts at lengths[i] − 1), and
// padding gets no gradient: the cell's new state at a padded step is multiplied by a zero mask.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/options.hpp"
#include "gru_cell.hpp"
#include "lstm_cell.hpp"
#include "module.hpp"
#include "rnn_cell.hpp"

namespace xgrad::nn {

// Options shared by the sequence layers, with chained setters: RNNOptions().layers(2).dropout(0.1).
// Derived is RNNOptions, LSTMOptions or GRUOptions (autograd/options.hpp: how to add one).
template <class Derived>
struct SequenceOptions {
  // Stacked layers; layer k > 0 reads layer k−1's output.
  XGRAD_OPTION(Derived, std::size_t, layers, 1)
  // A second cell per layer runs from the end of each sequence to its start.
  XGRAD_FLAG(Derived, bidirectional)
  // Probability of zeroing an element of a layer's output before the next layer (not after the
  // last), in training mode only; survivors are scaled by 1/(1 − p). Masks come from generator().
  XGRAD_OPTION(Derived, double, dropout, 0.0)
};

struct RNNOptions : SequenceOptions<RNNOptions> {
  // relu instead of tanh.
  XGRAD_FLAG(RNNOptions, relu)
};
struct LSTMOptions : SequenceOptions<LSTMOptions> {};
struct GRUOptions : SequenceOptions<GRUOptions> {};

template <class T>
struct RNNResult {
  Var<T> output;             // (T, m, directions·n_a)
  std::vector<Var<T>> state;  // layers·directions entries, each (m, n_a)
};
template <class T>
using GRUResult = RNNResult<T>;

template <class T>
struct LSTMResult {
  Var<T> output;                    // (T, m, directions·n_a)
  std::vector<LSTMState<T>> state;  // layers·directions entries {a, c}, each (m, n_a)
};

namespace detail {

// What RNN, LSTM and GRU share: the cells, the time loop, masks, dropout and the checks.
template <class T, class Cell>
class SequenceLayer : public Module<T> {
 public:
  using State = decltype(std::declval<const Cell&>().zero_state(1));  // Var<T> or LSTMState<T>

  std::size_t input_size() const { return n_x_; }
  std::size_t hidden_size() const { return n_a_; }
  std::size_t num_layers() const { return layers_; }
  std::size_t directions() const { return directions_; }
  double dropout() const { return dropout_; }
  // The cell of layer k, forward or reverse direction.
  const Cell& cell(std::size_t k, bool reverse = false) const;

 protected:
  template <class... CellArgs>
  SequenceLayer(const char* name, std::size_t n_x, std::size_t n_a, std::size_t layers, bool bidirectional,
                double dropout, CellArgs... cell_args);

  // x (T, m, n_x); initial: empty (zeros) or layers·directions states; lengths: empty (all T) or m.
  std::pair<Var<T>, std::vector<State>> run(const Var<T>& x, const std::vector<State>& initial,
                                            const std::vector<int>& lengths) const;
  // The same on one-hot input given by ids (T·m, time-major: ids[t·m + i]), n_x classes: layer 0
  // gathers its input projection by id (cell.input_projection(ids)) instead of a product.
  std::pair<Var<T>, std::vector<State>> run_onehot(const std::vector<int>& ids, std::size_t steps,
                                                   const std::vector<State>& initial,
                                                   const std::vector<int>& lengths) const;

 private:
  // shape: the input's (T, m, n_x).
  void check(const Shape& shape, const std::vector<State>& initial, const std::vector<int>& lengths) const;
  std::pair<Var<T>, std::vector<State>> run_layers(const Var<T>* x, const std::vector<int>* ids, std::size_t m,
                                                   const std::vector<State>& initial,
                                                   const std::vector<int>& lengths) const;
  // One layer in one direction: input (T, m, n_in), or one-hot ids (T·m) when ids is given,
  // -> outputs (T, m, n_a) and the final state.
  Var<T> run_direction(const Cell& cell, const Var<T>* input, const std::vector<int>* ids, std::size_t steps,
                       std::size_t m, State& state, bool reverse, const std::vector<int>& lengths) const;

  const char* name_;
  std::size_t n_x_, n_a_, layers_, directions_;
  double dropout_;
  std::vector<std::unique_ptr<Cell>> cells_;  // index k·directions + direction
};

}  // namespace detail

// Vanilla RNN over a sequence: cells RNNCell (tanh, or relu with RNNOptions().relu()).
// Parameters layers.<k>.Wax, layers.<k>.Waa, layers.<k>.ba and layers.<k>.reverse.*.
template <class T>
class RNN : public detail::SequenceLayer<T, RNNCell<T>> {
 public:
  RNN(std::size_t n_x, std::size_t n_a, const RNNOptions& options = RNNOptions());

  RNNResult<T> forward(const Var<T>& x) const { return forward(x, {}, {}); }
  RNNResult<T> forward(const Var<T>& x, const std::vector<Var<T>>& initial_state) const {
    return forward(x, initial_state, {});
  }
  RNNResult<T> forward(const Var<T>& x, const std::vector<Var<T>>& initial_state,
                       const std::vector<int>& lengths) const;
  // One-hot input without the one-hot array: ids (T·m) time-major, ids[t·m + i] in [0, n_x)
  // is example i's class at step t. Same result as forward(onehot(ids)).
  RNNResult<T> forward_onehot(const std::vector<int>& ids, std::size_t steps,
                              const std::vector<Var<T>>& initial_state = {},
                              const std::vector<int>& lengths = {}) const;
  RNNResult<T> operator()(const Var<T>& x) const { return forward(x); }
  RNNResult<T> operator()(const Var<T>& x, const std::vector<Var<T>>& initial_state) const {
    return forward(x, initial_state);
  }
  RNNResult<T> operator()(const Var<T>& x, const std::vector<Var<T>>& initial_state,
                          const std::vector<int>& lengths) const {
    return forward(x, initial_state, lengths);
  }
};

// LSTM over a sequence: cells LSTMCell. Parameters layers.<k>.Wx, .Wa, .b and layers.<k>.reverse.*.
template <class T>
class LSTM : public detail::SequenceLayer<T, LSTMCell<T>> {
 public:
  LSTM(std::size_t n_x, std::size_t n_a, const LSTMOptions& options = LSTMOptions());

  LSTMResult<T> forward(const Var<T>& x) const { return forward(x, {}, {}); }
  LSTMResult<T> forward(const Var<T>& x, const std::vector<LSTMState<T>>& initial_state) const {
    return forward(x, initial_state, {});
  }
  LSTMResult<T> forward(const Var<T>& x, const std::vector<LSTMState<T>>& initial_state,
                        const std::vector<int>& lengths) const;
  // One-hot input given by ids (T·m), time-major, as RNN::forward_onehot.
  LSTMResult<T> forward_onehot(const std::vector<int>& ids, std::size_t steps,
                               const std::vector<LSTMState<T>>& initial_state = {},
                               const std::vector<int>& lengths = {}) const;
  LSTMResult<T> operator()(const Var<T>& x) const { return forward(x); }
  LSTMResult<T> operator()(const Var<T>& x, const std::vector<LSTMState<T>>& initial_state) const {
    return forward(x, initial_state);
  }
  LSTMResult<T> operator()(const Var<T>& x, const std::vector<LSTMState<T>>& initial_state,
                           const std::vector<int>& lengths) const {
    return forward(x, initial_state, lengths);
  }
};

// GRU over a sequence: cells GRUCell. Parameters layers.<k>.Wx, .Wa, .bx, .ba and layers.<k>.reverse.*.
template <class T>
class GRU : public detail::SequenceLayer<T, GRUCell<T>> {
 public:
  GRU(std::size_t n_x, std::size_t n_a, const GRUOptions& options = GRUOptions());

  GRUResult<T> forward(const Var<T>& x) const { return forward(x, {}, {}); }
  GRUResult<T> forward(const Var<T>& x, const std::vector<Var<T>>& initial_state) const {
    return forward(x, initial_state, {});
  }
  GRUResult<T> forward(const Var<T>& x, const std::vector<Var<T>>& initial_state,
                       const std::vector<int>& lengths) const;
  // One-hot input given by ids (T·m), time-major, as RNN::forward_onehot.
  GRUResult<T> forward_onehot(const std::vector<int>& ids, std::size_t steps,
                              const std::vector<Var<T>>& initial_state = {},
                              const std::vector<int>& lengths = {}) const;
  GRUResult<T> operator()(const Var<T>& x) const { return forward(x); }
  GRUResult<T> operator()(const Var<T>& x, const std::vector<Var<T>>& initial_state) const {
    return forward(x, initial_state);
  }
  GRUResult<T> operator()(const Var<T>& x, const std::vector<Var<T>>& initial_state,
                          const std::vector<int>& lengths) const {
    return forward(x, initial_state, lengths);
  }
};

}  // namespace xgrad::nn
