// LayerNormLSTMCell: one step of the layer-normalised LSTM of Ba, Kiros & Hinton (2016), gate
// blocks in LSTMCell's (PyTorch's) order i, f, c, o:
//   [i f g o] = LN(x·Wxᵀ; gx, bx) + LN(a_prev·Waᵀ; ga, ba) + b   (m, 4·n_a), blocks of n_a columns
//   Γi = σ(i), Γf = σ(f), c̃ = tanh(g), Γo = σ(o)
//   c_next = Γf∘c_prev + Γi∘c̃,   a_next = Γo∘tanh(LN(c_next; gc, bc))   (m, n_a)
// LN(z; g, β) normalises each row of z over all its columns (the 4·n_a gate pre-activations
// together, or the n_a memory cells), then scales by g and shifts by β (layers/layer_norm.hpp).
// The state is LSTMState {a, c} as LSTMCell's; c_next itself is carried, not its normalisation.
//
// Parameters, in this order:
//   Wx (4·n_a, n_x), Wa (4·n_a, n_a), b (4·n_a)   drawn uniformly from ±1/√n_a, as LSTMCell's;
//   ln_x.weight = gx, ln_x.bias = bx (4·n_a)      ones, zeros: the normalisation of x·Wxᵀ;
//   ln_a.weight = ga, ln_a.bias = ba (4·n_a)      ones, zeros: the normalisation of a_prev·Waᵀ;
//   ln_c.weight = gc, ln_c.bias = bc (n_a)        ones, zeros: the normalisation of c_next.
// As in the paper, b adds to the shifts bx + ba and only their sum reaches the gates: b carries
// LSTMCell's random initial bias while bx and ba start at zero, as LayerNorm's shifts do.
// input_projection folds b into ln_x's shift, so a sequence adds it once, not at every step.
//
// Over a sequence: nn::Recurrent<LayerNormLSTMCell<T>> (layers/recurrent.hpp), instantiated for
// float and double in the library; parameters layers.<k>.Wx, layers.<k>.ln_x.weight, ... and
// layers.<k>.reverse.*.
#pragma once

#include <cstddef>
#include <vector>

#include "../autograd/ops.hpp"
#include "layer_norm.hpp"
#include "lstm_cell.hpp"
#include "module.hpp"
#include "recurrent.hpp"

namespace xgrad::nn {

template <class T>
class LayerNormLSTMCell : public Module<T> {
 public:
  using State = LSTMState<T>;

  LayerNormLSTMCell(std::size_t n_x, std::size_t n_a);

  // x (m, n_x), state {a_prev, c_prev} each (m, n_a) -> {a_next, c_next}.
  LSTMState<T> forward(const Var<T>& x, const LSTMState<T>& state) const;
  // The same from a zero state.
  LSTMState<T> forward(const Var<T>& x) const;
  LSTMState<T> operator()(const Var<T>& x, const LSTMState<T>& state) const { return forward(x, state); }
  LSTMState<T> operator()(const Var<T>& x) const { return forward(x); }

  // forward() split in two: input_projection(x) = LN(x·Wxᵀ; gx, bx) + b   x (N, n_x) -> (N, 4·n_a),
  // each of the N rows normalised on its own, so a whole sequence (T·m rows) takes one product
  // and one normalisation; step(px, state) does the rest of one step   px (m, 4·n_a).
  Var<T> input_projection(const Var<T>& x) const;
  // The same for one-hot inputs given by their ids (N), ids in [0, n_x): the columns of Wx
  // picked by id, normalised.
  Var<T> input_projection(const std::vector<int>& ids) const;
  LSTMState<T> step(const Var<T>& px, const LSTMState<T>& state) const;
  // Zeros {a, c}, each (m, n_a), constants.
  LSTMState<T> zero_state(std::size_t m) const;

  std::size_t input_size() const { return n_x_; }
  std::size_t hidden_size() const { return n_a_; }

  Var<T> Wx;  // (4·n_a, n_x), row blocks i, f, c, o
  Var<T> Wa;  // (4·n_a, n_a)
  Var<T> b;   // (4·n_a)
  LayerNorm<T> ln_x;  // over the 4·n_a columns of x·Wxᵀ
  LayerNorm<T> ln_a;  // over the 4·n_a columns of a_prev·Waᵀ
  LayerNorm<T> ln_c;  // over the n_a columns of c_next

 private:
  // LN(z; gx, bx + b): ln_x with b folded into its shift, one fused op on (N, 4·n_a).
  Var<T> normalize_input(const Var<T>& z) const;

  std::size_t n_x_, n_a_;
};

extern template class Recurrent<LayerNormLSTMCell<float>>;
extern template class Recurrent<LayerNormLSTMCell<double>>;

}  // namespace xgrad::nn
