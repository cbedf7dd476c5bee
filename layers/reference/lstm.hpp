// The hand-written LSTM, forward and backward, in the column layout (columns are examples,
// x is (n_x, m, T_x)). Each gate acts on the concatenation concat = [a_prev; xt] (n_a + n_x, m):
//   Γf = σ(Wf·concat + bf)   forget          Γi = σ(Wi·concat + bi)   update (input)
//   c̃  = tanh(Wc·concat + bc) candidate      Γo = σ(Wo·concat + bo)   output
//   c_next = Γf∘c_prev + Γi∘c̃,  a_next = Γo∘tanh(c_next),  yt_pred = softmax(Wy·a_next + by)
// Results are structs whose fields are the return values of the step-by-step equations in
// docs/design.md, in order (structured bindings).
#pragma once

#include <vector>

#include "../lstm_cell.hpp"
#include "rnn.hpp"

namespace xgrad::reference {

template <class T>
struct LSTMParams {
  Array<T> Wf, bf;  // (n_a, n_a + n_x), (n_a, 1)
  Array<T> Wi, bi;
  Array<T> Wc, bc;
  Array<T> Wo, bo;
  Array<T> Wy, by;  // (n_y, n_a), (n_y, 1)
};

// (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters), each (n_a, m) but xt (n_x, m).
template <class T>
struct LSTMCache {
  Array<T> a_next, c_next, a_prev, c_prev;
  Array<T> ft, it, cct, ot;
  Array<T> xt;
  LSTMParams<T> parameters;
};

template <class T>
struct LSTMCaches {
  std::vector<LSTMCache<T>> caches;  // one per time step
  Array<T> x;                        // (n_x, m, T_x)
};

template <class T>
struct LSTMCellForward {
  Array<T> a_next;   // (n_a, m)
  Array<T> c_next;   // (n_a, m)
  Array<T> yt_pred;  // (n_y, m)
  LSTMCache<T> cache;
};

template <class T>
struct LSTMForward {
  Array<T> a;  // (n_a, m, T_x)
  Array<T> y;  // (n_y, m, T_x)
  Array<T> c;  // (n_a, m, T_x)
  LSTMCaches<T> caches;
};

template <class T>
struct LSTMCellGradients {
  Array<T> dxt;                  // (n_x, m)
  Array<T> da_prev, dc_prev;     // (n_a, m)
  Array<T> dWf, dWi, dWc, dWo;   // (n_a, n_a + n_x)
  Array<T> dbf, dbi, dbc, dbo;   // (n_a, 1)
};

template <class T>
struct LSTMGradients {
  Array<T> dx;                   // (n_x, m, T_x)
  Array<T> da0;                  // (n_a, m)
  Array<T> dWf, dWi, dWc, dWo;   // (n_a, n_a + n_x)
  Array<T> dbf, dbi, dbc, dbo;   // (n_a, 1)
};

template <class T>
LSTMCellForward<T> lstm_cell_forward(const Array<T>& xt, const Array<T>& a_prev, const Array<T>& c_prev,
                                     const LSTMParams<T>& parameters);
// x (n_x, m, T_x), a0 (n_a, m); the memory cell starts at zero.
template <class T>
LSTMForward<T> lstm_forward(const Array<T>& x, const Array<T>& a0, const LSTMParams<T>& parameters);
template <class T>
LSTMCellGradients<T> lstm_cell_backward(const Array<T>& da_next, const Array<T>& dc_next,
                                        const LSTMCache<T>& cache);
// da (n_a, m, T_x): the gradient reaching each a<t> from outside the recurrence.
template <class T>
LSTMGradients<T> lstm_backward(const Array<T>& da, const LSTMCaches<T>& caches);

// ---- converters to and from the layers' layout

// The layers' parameters: row blocks i, f, c, o (PyTorch's order), inputs and hidden state apart.
template <class T>
struct LSTMLayerParams {
  Array<T> Wx;  // (4·n_a, n_x)
  Array<T> Wa;  // (4·n_a, n_a)
  Array<T> b;   // (4·n_a)
};

// Reference parameters from the layers' arrays (W_g = [Wa block g | Wx block g]) and an output
// head Wy (n_y, n_a), by (n_y). Given the layers' gradients, it gives dWf, dbf, ... likewise.
template <class T>
LSTMParams<T> lstm_params_from_layers(const Array<T>& Wx, const Array<T>& Wa, const Array<T>& b,
                                      const Array<T>& Wy, const Array<T>& by);
// The inverse for the gates (Wy, by are the head's and are left out).
template <class T>
LSTMLayerParams<T> lstm_params_to_layers(const LSTMParams<T>& p);
template <class T>
LSTMParams<T> to_reference(const nn::LSTMCell<T>& cell, const nn::Linear<T>& head);
template <class T>
void from_reference(const LSTMParams<T>& p, nn::LSTMCell<T>& cell);
template <class T>
void from_reference(const LSTMParams<T>& p, nn::LSTMCell<T>& cell, nn::Linear<T>& head);

}  // namespace xgrad::reference
