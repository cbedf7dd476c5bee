// Sequence layers RNN, LSTM, GRU: nn::Recurrent (recurrent.hpp) of the cells RNNCell, LSTMCell
// and GRUCell, with their own options structs and the layer's name in every error. Everything
// else (forward, forward_onehot, operator(), the accessors, the result's .output and .state,
// lengths, dropout, recurrent dropout) is Recurrent's:
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
#include <vector>

#include "gru_cell.hpp"
#include "lstm_cell.hpp"
#include "module.hpp"
#include "recurrent.hpp"
#include "rnn_cell.hpp"

namespace xgrad::nn {

// Options of the sequence layers (SequenceOptions, recurrent.hpp: layers, bidirectional, dropout,
// recurrent_dropout), with chained setters: RNNOptions().layers(2).dropout(0.1).
struct RNNOptions : SequenceOptions<RNNOptions> {
  // relu instead of tanh.
  XGRAD_FLAG(RNNOptions, relu)
};
struct LSTMOptions : SequenceOptions<LSTMOptions> {};
struct GRUOptions : SequenceOptions<GRUOptions> {};

// The shared options as RecurrentOptions.
template <class Derived>
RecurrentOptions recurrent_options(const SequenceOptions<Derived>& o) {
  return RecurrentOptions()
      .layers(o.layers())
      .bidirectional(o.bidirectional())
      .dropout(o.dropout())
      .recurrent_dropout(o.recurrent_dropout());
}

template <class T>
using RNNResult = RecurrentResult<T, Var<T>>;  // .output (T, m, directions·n_a), .state: (m, n_a) each
template <class T>
using GRUResult = RNNResult<T>;
template <class T>
using LSTMResult = RecurrentResult<T, LSTMState<T>>;  // .state: {a, c} each (m, n_a)

// Vanilla RNN over a sequence: cells RNNCell (tanh, or relu with RNNOptions().relu()).
// Parameters layers.<k>.Wax, layers.<k>.Waa, layers.<k>.ba and layers.<k>.reverse.*.
template <class T>
class RNN : public Recurrent<RNNCell<T>> {
 public:
  RNN(std::size_t n_x, std::size_t n_a, const RNNOptions& options = RNNOptions());
};

// LSTM over a sequence: cells LSTMCell. Parameters layers.<k>.Wx, .Wa, .b and layers.<k>.reverse.*.
template <class T>
class LSTM : public Recurrent<LSTMCell<T>> {
 public:
  LSTM(std::size_t n_x, std::size_t n_a, const LSTMOptions& options = LSTMOptions());
};

// GRU over a sequence: cells GRUCell. Parameters layers.<k>.Wx, .Wa, .bx, .ba and layers.<k>.reverse.*.
template <class T>
class GRU : public Recurrent<GRUCell<T>> {
 public:
  GRU(std::size_t n_x, std::size_t n_a, const GRUOptions& options = GRUOptions());
};

// Instantiated once, in sequence.cpp.
extern template class Recurrent<RNNCell<float>>;
extern template class Recurrent<RNNCell<double>>;
extern template class Recurrent<LSTMCell<float>>;
extern template class Recurrent<LSTMCell<double>>;
extern template class Recurrent<GRUCell<float>>;
extern template class Recurrent<GRUCell<double>>;
extern template class RNN<float>;
extern template class RNN<double>;
extern template class LSTM<float>;
extern template class LSTM<double>;
extern template class GRU<float>;
extern template class GRU<double>;

}  // namespace xgrad::nn
