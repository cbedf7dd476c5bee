// The hand-written RNN, forward and backward, in the column layout of docs/design.md:
// columns are examples, x is (n_x, m, T_x), a hidden state (n_a, m).
//   a_next  = tanh(Wax·xt + Waa·a_prev + ba)        (n_a, m)
//   yt_pred = softmax(Wya·a_next + by)              (n_y, m), softmax over rows
// Each result is a struct whose fields are the return values of the step-by-step equations in
// docs/design.md, in their order, so `auto [a, y_pred, caches] = rnn_forward(x, a0, p);` reads
// like the equations. The autodiff layers
// are tested against these functions.
#pragma once

#include <vector>

#include <xtensor/xarray.hpp>

#include "../linear.hpp"
#include "../rnn_cell.hpp"

namespace xgrad::reference {

template <class T>
using Array = xt::xarray<T>;

template <class T>
struct RNNParams {
  Array<T> Wax;  // (n_a, n_x)
  Array<T> Waa;  // (n_a, n_a)
  Array<T> Wya;  // (n_y, n_a)
  Array<T> ba;   // (n_a, 1)
  Array<T> by;   // (n_y, 1)
};

// What rnn_cell_backward needs: (a_next, a_prev, xt, parameters).
template <class T>
struct RNNCache {
  Array<T> a_next;  // (n_a, m)
  Array<T> a_prev;  // (n_a, m)
  Array<T> xt;      // (n_x, m)
  RNNParams<T> parameters;
};

// (list of caches, x)
template <class T>
struct RNNCaches {
  std::vector<RNNCache<T>> caches;  // one per time step
  Array<T> x;                       // (n_x, m, T_x)
};

template <class T>
struct RNNCellForward {
  Array<T> a_next;   // (n_a, m)
  Array<T> yt_pred;  // (n_y, m)
  RNNCache<T> cache;
};

template <class T>
struct RNNForward {
  Array<T> a;       // (n_a, m, T_x)
  Array<T> y_pred;  // (n_y, m, T_x)
  RNNCaches<T> caches;
};

template <class T>
struct RNNCellGradients {
  Array<T> dxt;      // (n_x, m)
  Array<T> da_prev;  // (n_a, m)
  Array<T> dWax;     // (n_a, n_x)
  Array<T> dWaa;     // (n_a, n_a)
  Array<T> dba;      // (n_a, 1)
};

template <class T>
struct RNNGradients {
  Array<T> dx;    // (n_x, m, T_x)
  Array<T> da0;   // (n_a, m)
  Array<T> dWax;  // (n_a, n_x)
  Array<T> dWaa;  // (n_a, n_a)
  Array<T> dba;   // (n_a, 1)
};

// Softmax over axis 0 (each column is one example's scores), max-shifted.
template <class T>
Array<T> softmax(const Array<T>& z);

template <class T>
RNNCellForward<T> rnn_cell_forward(const Array<T>& xt, const Array<T>& a_prev, const RNNParams<T>& parameters);
// x (n_x, m, T_x), a0 (n_a, m).
template <class T>
RNNForward<T> rnn_forward(const Array<T>& x, const Array<T>& a0, const RNNParams<T>& parameters);
// da_next (n_a, m): gradient of the loss with respect to a_next.
template <class T>
RNNCellGradients<T> rnn_cell_backward(const Array<T>& da_next, const RNNCache<T>& cache);
// da (n_a, m, T_x): the gradient reaching each a<t> from outside the recurrence.
template <class T>
RNNGradients<T> rnn_backward(const Array<T>& da, const RNNCaches<T>& caches);

// ---- converters between the column layout and the layers' layout

// Reverses the axes: (n_x, m, T) <-> (T, m, n_x), and (n_a, m) <-> (m, n_a).
template <class T>
Array<T> to_layers_layout(const Array<T>& a);
template <class T>
Array<T> to_seed_layout(const Array<T>& a);

// Reference parameters from arrays stored as the layers store them: Wax (n_a, n_x), Waa (n_a, n_a),
// ba (n_a), and an output head Wya (n_y, n_a), by (n_y) as nn::Linear stores weight and bias.
// Given the layers' gradients instead, it gives the gradients in the reference's shapes.
template <class T>
RNNParams<T> rnn_params_from_layers(const Array<T>& Wax, const Array<T>& Waa, const Array<T>& ba,
                                    const Array<T>& Wya, const Array<T>& by);
// A cell and its output head (n_a -> n_y) as reference parameters.
template <class T>
RNNParams<T> to_reference(const nn::RNNCell<T>& cell, const nn::Linear<T>& head);
// Loads reference parameters into a cell (and head). ShapeError when the sizes differ.
template <class T>
void from_reference(const RNNParams<T>& p, nn::RNNCell<T>& cell);
template <class T>
void from_reference(const RNNParams<T>& p, nn::RNNCell<T>& cell, nn::Linear<T>& head);

}  // namespace xgrad::reference
