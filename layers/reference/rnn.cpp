#include "rnn.hpp"

#include <string>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "common.hpp"

namespace xgrad::reference {

using xt::linalg::dot;

using detail::require_shape;
using detail::row_sums;
using detail::sh;

namespace {

template <class T>
void require_params(const char* fn, const RNNParams<T>& p) {
  if (p.Wax.dimension() != 2 || p.Wya.dimension() != 2)
    throw ShapeError(std::string(fn) + ": Wax " + sh(p.Wax) + " and Wya " + sh(p.Wya) + " must be matrices");
  const std::size_t n_a = p.Wax.shape()[0], n_y = p.Wya.shape()[0];
  require_shape(fn, "Waa", p.Waa, n_a, n_a);
  require_shape(fn, "Wya", p.Wya, n_y, n_a);
  require_shape(fn, "ba", p.ba, n_a, 1);
  require_shape(fn, "by", p.by, n_y, 1);
}

}  // namespace

template <class T>
Array<T> softmax(const Array<T>& z) {
  Array<T> e = xt::exp(z - xt::amax(z, {0}, xt::keep_dims | xt::evaluation_strategy::immediate));
  return e / xt::sum(e, {0}, xt::keep_dims | xt::evaluation_strategy::immediate);
}

// a_next = tanh(Wax·xt + Waa·a_prev + ba), yt_pred = softmax(Wya·a_next + by)
template <class T>
RNNCellForward<T> rnn_cell_forward(const Array<T>& xt, const Array<T>& a_prev, const RNNParams<T>& parameters) {
  const RNNParams<T>& p = parameters;
  require_params("rnn_cell_forward", p);
  if (xt.dimension() != 2) throw ShapeError("rnn_cell_forward: xt must be (n_x, m), got " + sh(xt));
  require_shape("rnn_cell_forward", "xt", xt, p.Wax.shape()[1], xt.shape()[1]);
  require_shape("rnn_cell_forward", "a_prev", a_prev, p.Wax.shape()[0], xt.shape()[1]);
  Array<T> a_next = xt::tanh(dot(p.Wax, xt) + dot(p.Waa, a_prev) + p.ba);
  Array<T> yt_pred = softmax<T>(dot(p.Wya, a_next) + p.by);
  return {a_next, yt_pred, {a_next, a_prev, xt, p}};
}

template <class T>
RNNForward<T> rnn_forward(const Array<T>& x, const Array<T>& a0, const RNNParams<T>& parameters) {
  require_params("rnn_forward", parameters);
  if (x.dimension() != 3) throw ShapeError("rnn_forward: x must be (n_x, m, T_x), got " + sh(x));
  const std::size_t m = x.shape()[1], T_x = x.shape()[2];
  if (T_x == 0) throw ValueError("rnn_forward: empty sequence: x of shape " + sh(x) + " has T_x = 0");
  const std::size_t n_y = parameters.Wya.shape()[0], n_a = parameters.Wya.shape()[1];
  RNNForward<T> out;
  out.a = xt::zeros<T>({n_a, m, T_x});
  out.y_pred = xt::zeros<T>({n_y, m, T_x});
  Array<T> a_next = a0;
  for (std::size_t t = 0; t < T_x; ++t) {
    Array<T> xt = xt::view(x, xt::all(), xt::all(), t);
    auto step = rnn_cell_forward<T>(xt, a_next, parameters);
    a_next = step.a_next;
    xt::view(out.a, xt::all(), xt::all(), t) = step.a_next;
    xt::view(out.y_pred, xt::all(), xt::all(), t) = step.yt_pred;
    out.caches.caches.push_back(std::move(step.cache));
  }
  out.caches.x = x;
  return out;
}

// dtanh = (1 − a_next²)∘da_next; dxt = Waxᵀ·dtanh, dWax = dtanh·xtᵀ, da_prev = Waaᵀ·dtanh,
// dWaa = dtanh·a_prevᵀ, dba = Σ_columns dtanh
template <class T>
RNNCellGradients<T> rnn_cell_backward(const Array<T>& da_next, const RNNCache<T>& cache) {
  const auto& [a_next, a_prev, xt, parameters] = cache;
  require_shape("rnn_cell_backward", "da_next", da_next, a_next.shape()[0], a_next.shape()[1]);
  Array<T> dtanh = (T(1) - a_next * a_next) * da_next;
  RNNCellGradients<T> g;
  g.dxt = dot(Array<T>(xt::transpose(parameters.Wax)), dtanh);
  g.dWax = dot(dtanh, Array<T>(xt::transpose(xt)));
  g.da_prev = dot(Array<T>(xt::transpose(parameters.Waa)), dtanh);
  g.dWaa = dot(dtanh, Array<T>(xt::transpose(a_prev)));
  g.dba = row_sums(dtanh);
  return g;
}

// Back through time: the gradient into a<t> is da[:, :, t] plus what step t+1 sends back.
template <class T>
RNNGradients<T> rnn_backward(const Array<T>& da, const RNNCaches<T>& caches) {
  if (caches.caches.empty()) throw ValueError("rnn_backward: no caches (empty sequence)");
  const RNNCache<T>& first = caches.caches[0];
  const std::size_t n_x = first.xt.shape()[0], m = first.xt.shape()[1], n_a = first.a_next.shape()[0];
  const std::size_t T_x = caches.caches.size();
  if (da.dimension() != 3 || da.shape()[0] != n_a || da.shape()[1] != m || da.shape()[2] != T_x)
    throw ShapeError("rnn_backward: da has shape " + sh(da) + ", expected (" + std::to_string(n_a) + ", " +
                     std::to_string(m) + ", " + std::to_string(T_x) + ")");
  RNNGradients<T> g;
  g.dx = xt::zeros<T>({n_x, m, T_x});
  g.dWax = xt::zeros<T>({n_a, n_x});
  g.dWaa = xt::zeros<T>({n_a, n_a});
  g.dba = xt::zeros<T>({n_a, std::size_t(1)});
  Array<T> da_prevt = xt::zeros<T>({n_a, m});
  for (std::size_t t = T_x; t-- > 0;) {
    Array<T> da_t = xt::view(da, xt::all(), xt::all(), t) + da_prevt;
    auto [dxt, da_prev, dWaxt, dWaat, dbat] = rnn_cell_backward<T>(da_t, caches.caches[t]);
    xt::view(g.dx, xt::all(), xt::all(), t) = dxt;
    da_prevt = std::move(da_prev);
    g.dWax += dWaxt;
    g.dWaa += dWaat;
    g.dba += dbat;
  }
  g.da0 = std::move(da_prevt);
  return g;
}

template <class T>
Array<T> to_layers_layout(const Array<T>& a) {
  return xt::transpose(a);
}

template <class T>
Array<T> to_seed_layout(const Array<T>& a) {
  return xt::transpose(a);
}

template <class T>
RNNParams<T> rnn_params_from_layers(const Array<T>& Wax, const Array<T>& Waa, const Array<T>& ba,
                                    const Array<T>& Wya, const Array<T>& by) {
  RNNParams<T> p{Wax, Waa, Wya, ba, by};
  p.ba.reshape({ba.size(), std::size_t(1)});
  p.by.reshape({by.size(), std::size_t(1)});
  require_params("rnn_params_from_layers", p);
  return p;
}

template <class T>
RNNParams<T> to_reference(const nn::RNNCell<T>& cell, const nn::Linear<T>& head) {
  if (head.in_features() != cell.hidden_size())
    throw ShapeError("to_reference: head weight " + sh(head.weight.value()) + " does not fit n_a = " +
                     std::to_string(cell.hidden_size()));
  return rnn_params_from_layers<T>(cell.Wax.value(), cell.Waa.value(), cell.ba.value(), head.weight.value(),
                                   head.bias.value());
}

template <class T>
void from_reference(const RNNParams<T>& p, nn::RNNCell<T>& cell) {
  const std::size_t n_a = cell.hidden_size(), n_x = cell.input_size();
  require_shape("from_reference", "Wax", p.Wax, n_a, n_x);
  require_shape("from_reference", "Waa", p.Waa, n_a, n_a);
  require_shape("from_reference", "ba", p.ba, n_a, 1);
  cell.Wax.set_value(p.Wax);
  cell.Waa.set_value(p.Waa);
  cell.ba.set_value(xt::flatten(p.ba));
}

template <class T>
void from_reference(const RNNParams<T>& p, nn::RNNCell<T>& cell, nn::Linear<T>& head) {
  require_shape("from_reference", "Wya", p.Wya, head.out_features(), head.in_features());
  require_shape("from_reference", "by", p.by, head.out_features(), 1);
  from_reference(p, cell);
  head.weight.set_value(p.Wya);
  head.bias.set_value(xt::flatten(p.by));
}

#define XGRAD_REFERENCE_RNN_INSTANTIATE(T)                                                        \
  template struct RNNParams<T>;                                                                   \
  template struct RNNCache<T>;                                                                    \
  template Array<T> softmax(const Array<T>&);                                                     \
  template RNNCellForward<T> rnn_cell_forward(const Array<T>&, const Array<T>&, const RNNParams<T>&); \
  template RNNForward<T> rnn_forward(const Array<T>&, const Array<T>&, const RNNParams<T>&);      \
  template RNNCellGradients<T> rnn_cell_backward(const Array<T>&, const RNNCache<T>&);            \
  template RNNGradients<T> rnn_backward(const Array<T>&, const RNNCaches<T>&);                    \
  template Array<T> to_layers_layout(const Array<T>&);                                            \
  template Array<T> to_seed_layout(const Array<T>&);                                              \
  template RNNParams<T> rnn_params_from_layers(const Array<T>&, const Array<T>&, const Array<T>&, \
                                               const Array<T>&, const Array<T>&);                 \
  template RNNParams<T> to_reference(const nn::RNNCell<T>&, const nn::Linear<T>&);                \
  template void from_reference(const RNNParams<T>&, nn::RNNCell<T>&);                            \
  template void from_reference(const RNNParams<T>&, nn::RNNCell<T>&, nn::Linear<T>&);
XGRAD_REFERENCE_RNN_INSTANTIATE(float)
XGRAD_REFERENCE_RNN_INSTANTIATE(double)

}  // namespace xgrad::reference
