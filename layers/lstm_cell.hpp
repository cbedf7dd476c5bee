// LSTMCell: one LSTM step, all four gates from one product, in PyTorch's gate order i, f, c, o:
//   [i f g o] = x·Wxᵀ + a_prev·Waᵀ + b                         (m, 4·n_a), blocks of n_a columns
//   Γi = σ(i), Γf = σ(f), c̃ = tanh(g), Γo = σ(o)
//   c_next = Γf∘c_prev + Γi∘c̃,   a_next = Γo∘tanh(c_next)        (m, n_a)
// PyTorch's weight_ih, weight_hh carry over as Wx, Wa, and b = bias_ih + bias_hh.
#pragma once

#include <cstddef>

#include "../autograd/ops.hpp"
#include "module.hpp"

namespace xgrad::nn {

// The recurrent state of an LSTM: hidden state a and memory cell c, each (m, n_a).
template <class T>
struct LSTMState {
  Var<T> a;
  Var<T> c;
};

template <class T>
class LSTMCell : public Module<T> {
 public:
  // Wx (4·n_a, n_x), Wa (4·n_a, n_a), b (4·n_a), drawn uniformly from ±1/√n_a.
  LSTMCell(std::size_t n_x, std::size_t n_a);

  // x (m, n_x), state {a_prev, c_prev} each (m, n_a) -> {a_next, c_next}.
  LSTMState<T> forward(const Var<T>& x, const LSTMState<T>& state) const;
  // The same from a zero state.
  LSTMState<T> forward(const Var<T>& x) const;
  LSTMState<T> operator()(const Var<T>& x, const LSTMState<T>& state) const { return forward(x, state); }
  LSTMState<T> operator()(const Var<T>& x) const { return forward(x); }

  // forward() split in two: input_projection(x) = x·Wxᵀ + b   x (N, n_x) -> (N, 4·n_a);
  // step(px, state) does the rest of one step   px (m, 4·n_a).
  Var<T> input_projection(const Var<T>& x) const;
  // The same for one-hot inputs given by their ids (N): the columns of Wx picked by id, plus b.
  Var<T> input_projection(const std::vector<int>& ids) const;
  LSTMState<T> step(const Var<T>& px, const LSTMState<T>& state) const;
  // Zeros {a, c}, each (m, n_a), constants.
  LSTMState<T> zero_state(std::size_t m) const;

  std::size_t input_size() const { return n_x_; }
  std::size_t hidden_size() const { return n_a_; }

  Var<T> Wx;  // (4·n_a, n_x), row blocks i, f, c, o
  Var<T> Wa;  // (4·n_a, n_a)
  Var<T> b;   // (4·n_a)

 private:
  std::size_t n_x_, n_a_;
};

}  // namespace xgrad::nn
