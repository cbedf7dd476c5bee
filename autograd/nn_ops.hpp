// Elementwise functions, reductions and masking that models need beside ops.hpp's: written
// together with their backward in nn_ops.cpp, as ops.hpp describes ("Adding an op"); the
// finite-difference table is tests/test_nn_ops.cpp. Axes are long and may be negative.
// Masks are xt::xarray<bool>, broadcast (NumPy rules) to the array they mask. Errors, thrown
// before anything is recorded: an axis out of range is an IndexError; a reduction that needs an
// entry (mean, max, min, argmax) over an empty axis, clamp with lo > hi, a non-finite pow
// exponent, layer_norm's eps <= 0 and dropout's p outside [0, 1] are ValueErrors; shapes that do
// not fit are ShapeErrors naming both shapes.
#pragma once

#include <cstddef>

#include <xtensor/xarray.hpp>

#include "var.hpp"

namespace xgrad {

// Elementwise.
template <class T> Var<T> pow(const Var<T>& a, double p);      // a^p (a > 0 unless p is an integer); p = 0: gradient 0
template <class T> Var<T> abs(const Var<T>& a);                // gradient sign(a), 0 at 0
template <class T> Var<T> clamp(const Var<T>& a, double lo, double hi);  // gradient 1 on [lo, hi], bounds included
template <class T> Var<T> log1p(const Var<T>& a);
template <class T> Var<T> softplus(const Var<T>& a);           // log(1 + e^a), stable for large |a|
template <class T> Var<T> log_sigmoid(const Var<T>& a);        // −softplus(−a)
template <class T> Var<T> leaky_relu(const Var<T>& a, double slope = 0.01);  // gradient slope at a <= 0
template <class T> Var<T> gelu(const Var<T>& a);               // a·Φ(a), the exact (erf) form

// Reductions along one axis: removed, or kept with length 1 (keepdims). sum of an empty axis
// is 0.
template <class T> Var<T> sum(const Var<T>& a, long axis, bool keepdims);
template <class T> Var<T> mean(const Var<T>& a, long axis);
template <class T> Var<T> mean(const Var<T>& a, long axis, bool keepdims);
// The largest / smallest entry along axis, which is removed; the gradient goes to the first
// extreme entry along the axis.
template <class T> Var<T> max(const Var<T>& a, long axis);
template <class T> Var<T> min(const Var<T>& a, long axis);
// Index of the first largest entry along axis, which is removed (no gradient).
template <class T> xt::xarray<std::size_t> argmax(const Var<T>& a, long axis);

// Masking. where: a where mask is true, b elsewhere; mask, a and b broadcast together.
// Everything is taken by value (the Vars are handles): that makes this overload more
// specialized than xt::where, which argument-dependent lookup also finds through the mask, for
// every value category of the arguments. The mask must be an xt::xarray<bool>, not a lazy
// expression (xt::xarray<bool>(x > 0)).
template <class T> Var<T> where(xt::xarray<bool> mask, Var<T> a, Var<T> b);
// a with `value` where mask (broadcast to a's shape) is true; those entries get no gradient.
template <class T> Var<T> masked_fill(const Var<T>& a, const xt::xarray<bool>& mask, double value);

// Normalisation over the last axis: x (..., n), every position a row of n entries, normalised
// to (x − mean) / sqrt(var + eps), var the biased variance; then times weight (n) plus bias (n)
// in the first form. One fused op whose backward is in closed form (no graph of small ops).
template <class T> Var<T> layer_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps = 1e-5);
template <class T> Var<T> layer_norm(const Var<T>& x, double eps = 1e-5);

// The elementwise part of an LSTM step, in three ops that each read and write a row of the
// batch in one pass (a step of ten small ops becomes three, each one node on the tape). The
// gates' pre-activations z (m, 4n) hold [i | f | g | o] in blocks of n columns:
//   act = lstm_gates(z)         [σ(i) | σ(f) | tanh(g) | σ(o)]          (m, 4n)
//   c   = lstm_memory(act, c0)  σ(f)∘c0 + σ(i)∘tanh(g)                 (m, n)
//   a   = lstm_hidden(act, c)   σ(o)∘tanh(c)                           (m, n)
// The same values as sigmoid, tanh, slice, * and + composed (the sigmoid and tanh are theirs).
// A cell of one's own reuses what fits: LayerNormLSTMCell passes its normalised c to lstm_hidden.
// Shapes that do not fit (act not 2-D with 4n columns, c0 or c not (m, n)) are ShapeErrors.
template <class T> Var<T> lstm_gates(const Var<T>& z);
template <class T> Var<T> lstm_memory(const Var<T>& act, const Var<T>& c_prev);
template <class T> Var<T> lstm_hidden(const Var<T>& act, const Var<T>& c);

// Inverted dropout: in training, each entry is zeroed with probability p and the survivors
// scaled by 1/(1 − p), the mask drawn from nn::generator() (autograd/random.hpp) in row-major
// order, one Bernoulli draw per entry, so nn::manual_seed reproduces it; p = 1 zeroes all.
// Otherwise (or p = 0) x itself, the same handle, nothing recorded.
template <class T> Var<T> dropout(const Var<T>& x, double p, bool training = true);

}  // namespace xgrad
