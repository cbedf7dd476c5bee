#include "lstm.hpp"

#include <string>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xbuilder.hpp>
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

// Checks every parameter against Wf (n_a, n_a + n_x) and Wy (n_y, n_a); returns n_a.
template <class T>
std::size_t require_params(const char* fn, const LSTMParams<T>& p) {
  if (p.Wf.dimension() != 2 || p.Wy.dimension() != 2 || p.Wf.shape()[1] <= p.Wf.shape()[0])
    throw ShapeError(std::string(fn) + ": Wf " + sh(p.Wf) + " must be (n_a, n_a + n_x) and Wy " + sh(p.Wy) +
                     " (n_y, n_a)");
  const std::size_t n_a = p.Wf.shape()[0], n_in = p.Wf.shape()[1], n_y = p.Wy.shape()[0];
  require_shape(fn, "Wi", p.Wi, n_a, n_in);
  require_shape(fn, "Wc", p.Wc, n_a, n_in);
  require_shape(fn, "Wo", p.Wo, n_a, n_in);
  require_shape(fn, "Wy", p.Wy, n_y, n_a);
  for (const Array<T>* b : {&p.bf, &p.bi, &p.bc, &p.bo}) require_shape(fn, "a gate bias", *b, n_a, 1);
  require_shape(fn, "by", p.by, n_y, 1);
  return n_a;
}

template <class T>
Array<T> sigmoid(const Array<T>& z) {
  return T(1) / (T(1) + xt::exp(-z));
}

template <class T>
Array<T> tr(const Array<T>& a) {
  return xt::transpose(a);
}

// Rows [g·n, (g+1)·n) of a.
template <class T>
Array<T> block(const Array<T>& a, std::size_t g, std::size_t n) {
  return xt::view(a, xt::range(g * n, (g + 1) * n));
}

}  // namespace

template <class T>
LSTMCellForward<T> lstm_cell_forward(const Array<T>& xt, const Array<T>& a_prev, const Array<T>& c_prev,
                                     const LSTMParams<T>& parameters) {
  const LSTMParams<T>& p = parameters;
  const std::size_t n_a = require_params("lstm_cell_forward", p), n_x = p.Wf.shape()[1] - n_a;
  if (xt.dimension() != 2) throw ShapeError("lstm_cell_forward: xt must be (n_x, m), got " + sh(xt));
  const std::size_t m = xt.shape()[1];
  require_shape("lstm_cell_forward", "xt", xt, n_x, m);
  require_shape("lstm_cell_forward", "a_prev", a_prev, n_a, m);
  require_shape("lstm_cell_forward", "c_prev", c_prev, n_a, m);
  Array<T> concat = xt::concatenate(xt::xtuple(a_prev, xt), 0);  // (n_a + n_x, m)
  Array<T> ft = sigmoid<T>(dot(p.Wf, concat) + p.bf);
  Array<T> it = sigmoid<T>(dot(p.Wi, concat) + p.bi);
  Array<T> cct = xt::tanh(dot(p.Wc, concat) + p.bc);
  Array<T> c_next = ft * c_prev + it * cct;
  Array<T> ot = sigmoid<T>(dot(p.Wo, concat) + p.bo);
  Array<T> a_next = ot * xt::tanh(c_next);
  Array<T> yt_pred = softmax<T>(dot(p.Wy, a_next) + p.by);
  return {a_next, c_next, yt_pred, {a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p}};
}

template <class T>
LSTMForward<T> lstm_forward(const Array<T>& x, const Array<T>& a0, const LSTMParams<T>& parameters) {
  const std::size_t n_a = require_params("lstm_forward", parameters);
  if (x.dimension() != 3) throw ShapeError("lstm_forward: x must be (n_x, m, T_x), got " + sh(x));
  const std::size_t m = x.shape()[1], T_x = x.shape()[2], n_y = parameters.Wy.shape()[0];
  if (T_x == 0) throw ValueError("lstm_forward: empty sequence: x of shape " + sh(x) + " has T_x = 0");
  LSTMForward<T> out;
  out.a = xt::zeros<T>({n_a, m, T_x});
  out.c = xt::zeros<T>({n_a, m, T_x});
  out.y = xt::zeros<T>({n_y, m, T_x});
  Array<T> a_next = a0;
  Array<T> c_next = xt::zeros<T>({n_a, m});
  for (std::size_t t = 0; t < T_x; ++t) {
    Array<T> xt = xt::view(x, xt::all(), xt::all(), t);
    auto step = lstm_cell_forward<T>(xt, a_next, c_next, parameters);
    a_next = step.a_next;
    c_next = step.c_next;
    xt::view(out.a, xt::all(), xt::all(), t) = step.a_next;
    xt::view(out.c, xt::all(), xt::all(), t) = step.c_next;
    xt::view(out.y, xt::all(), xt::all(), t) = step.yt_pred;
    out.caches.caches.push_back(std::move(step.cache));
  }
  out.caches.x = x;
  return out;
}

// With tc = tanh(c_next):
//   dot  = da_next∘tc∘Γo(1 − Γo)
//   dc   = dc_next + da_next∘Γo∘(1 − tc²)              (everything reaching c_next)
//   dcct = dc∘Γi∘(1 − c̃²),  dit = dc∘c̃∘Γi(1 − Γi),  dft = dc∘c_prev∘Γf(1 − Γf)
//   dW_g = d_g·concatᵀ,  db_g = Σ_columns d_g,  dconcat = Σ_g W_gᵀ·d_g = [da_prev; dxt]
//   dc_prev = dc∘Γf
template <class T>
LSTMCellGradients<T> lstm_cell_backward(const Array<T>& da_next, const Array<T>& dc_next,
                                        const LSTMCache<T>& cache) {
  const auto& [a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters] = cache;
  const std::size_t n_a = a_next.shape()[0], m = a_next.shape()[1];
  require_shape("lstm_cell_backward", "da_next", da_next, n_a, m);
  require_shape("lstm_cell_backward", "dc_next", dc_next, n_a, m);
  const LSTMParams<T>& p = parameters;
  Array<T> tc = xt::tanh(c_next);
  Array<T> d_o = da_next * tc * ot * (T(1) - ot);
  Array<T> dc = dc_next + da_next * ot * (T(1) - tc * tc);
  Array<T> dcct = dc * it * (T(1) - cct * cct);
  Array<T> dit = dc * cct * it * (T(1) - it);
  Array<T> dft = dc * c_prev * ft * (T(1) - ft);
  Array<T> concat_t = tr<T>(xt::concatenate(xt::xtuple(a_prev, xt), 0));  // (m, n_a + n_x)
  LSTMCellGradients<T> g;
  g.dWf = dot(dft, concat_t);
  g.dWi = dot(dit, concat_t);
  g.dWc = dot(dcct, concat_t);
  g.dWo = dot(d_o, concat_t);
  g.dbf = row_sums(dft);
  g.dbi = row_sums(dit);
  g.dbc = row_sums(dcct);
  g.dbo = row_sums(d_o);
  Array<T> dconcat = dot(tr(p.Wf), dft) + dot(tr(p.Wi), dit) + dot(tr(p.Wc), dcct) + dot(tr(p.Wo), d_o);
  g.da_prev = xt::view(dconcat, xt::range(0, n_a));
  g.dxt = xt::view(dconcat, xt::range(n_a, dconcat.shape()[0]));
  g.dc_prev = dc * ft;
  return g;
}

template <class T>
LSTMGradients<T> lstm_backward(const Array<T>& da, const LSTMCaches<T>& caches) {
  if (caches.caches.empty()) throw ValueError("lstm_backward: no caches (empty sequence)");
  const LSTMCache<T>& first = caches.caches[0];
  const std::size_t n_x = first.xt.shape()[0], m = first.xt.shape()[1], n_a = first.a_next.shape()[0];
  const std::size_t T_x = caches.caches.size();
  if (da.dimension() != 3 || da.shape()[0] != n_a || da.shape()[1] != m || da.shape()[2] != T_x)
    throw ShapeError("lstm_backward: da has shape " + sh(da) + ", expected (" + std::to_string(n_a) + ", " +
                     std::to_string(m) + ", " + std::to_string(T_x) + ")");
  LSTMGradients<T> g;
  g.dx = xt::zeros<T>({n_x, m, T_x});
  for (Array<T>* w : {&g.dWf, &g.dWi, &g.dWc, &g.dWo}) *w = xt::zeros<T>({n_a, n_a + n_x});
  for (Array<T>* b : {&g.dbf, &g.dbi, &g.dbc, &g.dbo}) *b = xt::zeros<T>({n_a, std::size_t(1)});
  Array<T> da_prevt = xt::zeros<T>({n_a, m});
  Array<T> dc_prevt = xt::zeros<T>({n_a, m});
  for (std::size_t t = T_x; t-- > 0;) {
    Array<T> da_t = xt::view(da, xt::all(), xt::all(), t) + da_prevt;
    auto s = lstm_cell_backward<T>(da_t, dc_prevt, caches.caches[t]);
    xt::view(g.dx, xt::all(), xt::all(), t) = s.dxt;
    da_prevt = std::move(s.da_prev);
    dc_prevt = std::move(s.dc_prev);
    g.dWf += s.dWf;
    g.dWi += s.dWi;
    g.dWc += s.dWc;
    g.dWo += s.dWo;
    g.dbf += s.dbf;
    g.dbi += s.dbi;
    g.dbc += s.dbc;
    g.dbo += s.dbo;
  }
  g.da0 = std::move(da_prevt);
  return g;
}

// Layer gate g (i = 0, f = 1, c = 2, o = 3) <-> reference gate: W_g = [Wa block g | Wx block g].
template <class T>
LSTMParams<T> lstm_params_from_layers(const Array<T>& Wx, const Array<T>& Wa, const Array<T>& b,
                                      const Array<T>& Wy, const Array<T>& by) {
  if (Wa.dimension() != 2 || Wa.shape()[0] != 4 * Wa.shape()[1] || Wx.dimension() != 2 ||
      Wx.shape()[0] != Wa.shape()[0] || b.dimension() != 1 || b.shape()[0] != Wa.shape()[0])
    throw ShapeError("lstm_params_from_layers: Wx " + sh(Wx) + ", Wa " + sh(Wa) + ", b " + sh(b) +
                     " must be (4·n_a, n_x), (4·n_a, n_a), (4·n_a)");
  const std::size_t n = Wa.shape()[1];
  auto W = [&](std::size_t g) -> Array<T> { return xt::concatenate(xt::xtuple(block(Wa, g, n), block(Wx, g, n)), 1); };
  auto B = [&](std::size_t g) -> Array<T> {
    Array<T> col = xt::view(b, xt::range(g * n, (g + 1) * n));
    col.reshape({n, std::size_t(1)});
    return col;
  };
  LSTMParams<T> p{W(1), B(1), W(0), B(0), W(2), B(2), W(3), B(3), Wy, by};
  p.by.reshape({by.size(), std::size_t(1)});
  require_params("lstm_params_from_layers", p);
  return p;
}

template <class T>
LSTMLayerParams<T> lstm_params_to_layers(const LSTMParams<T>& p) {
  const std::size_t n = require_params("lstm_params_to_layers", p), n_in = p.Wf.shape()[1];
  const Array<T>* W[4] = {&p.Wi, &p.Wf, &p.Wc, &p.Wo};  // layers' order i, f, c, o
  const Array<T>* B[4] = {&p.bi, &p.bf, &p.bc, &p.bo};
  LSTMLayerParams<T> out;
  out.Wx = xt::zeros<T>({4 * n, n_in - n});
  out.Wa = xt::zeros<T>({4 * n, n});
  out.b = xt::zeros<T>({4 * n});
  for (std::size_t g = 0; g < 4; ++g) {
    xt::view(out.Wa, xt::range(g * n, (g + 1) * n)) = xt::view(*W[g], xt::all(), xt::range(0, n));
    xt::view(out.Wx, xt::range(g * n, (g + 1) * n)) = xt::view(*W[g], xt::all(), xt::range(n, n_in));
    xt::view(out.b, xt::range(g * n, (g + 1) * n)) = xt::flatten(*B[g]);
  }
  return out;
}

template <class T>
LSTMParams<T> to_reference(const nn::LSTMCell<T>& cell, const nn::Linear<T>& head) {
  if (head.in_features() != cell.hidden_size())
    throw ShapeError("to_reference: head weight " + sh(head.weight.value()) + " does not fit n_a = " +
                     std::to_string(cell.hidden_size()));
  return lstm_params_from_layers<T>(cell.Wx.value(), cell.Wa.value(), cell.b.value(), head.weight.value(),
                                    head.bias.value());
}

template <class T>
void from_reference(const LSTMParams<T>& p, nn::LSTMCell<T>& cell) {
  const std::size_t n_a = require_params("from_reference", p);
  if (n_a != cell.hidden_size() || p.Wf.shape()[1] != n_a + cell.input_size())
    throw ShapeError("from_reference: Wf " + sh(p.Wf) + " does not fit an LSTMCell with n_a = " +
                     std::to_string(cell.hidden_size()) + ", n_x = " + std::to_string(cell.input_size()));
  LSTMLayerParams<T> l = lstm_params_to_layers(p);
  cell.Wx.set_value(l.Wx);
  cell.Wa.set_value(l.Wa);
  cell.b.set_value(l.b);
}

template <class T>
void from_reference(const LSTMParams<T>& p, nn::LSTMCell<T>& cell, nn::Linear<T>& head) {
  require_shape("from_reference", "Wy", p.Wy, head.out_features(), head.in_features());
  require_shape("from_reference", "by", p.by, head.out_features(), 1);
  from_reference(p, cell);
  head.weight.set_value(p.Wy);
  head.bias.set_value(xt::flatten(p.by));
}

#define XGRAD_REFERENCE_LSTM_INSTANTIATE(T)                                                                  \
  template struct LSTMParams<T>;                                                                             \
  template struct LSTMCache<T>;                                                                              \
  template LSTMCellForward<T> lstm_cell_forward(const Array<T>&, const Array<T>&, const Array<T>&,           \
                                                const LSTMParams<T>&);                                       \
  template LSTMForward<T> lstm_forward(const Array<T>&, const Array<T>&, const LSTMParams<T>&);              \
  template LSTMCellGradients<T> lstm_cell_backward(const Array<T>&, const Array<T>&, const LSTMCache<T>&);   \
  template LSTMGradients<T> lstm_backward(const Array<T>&, const LSTMCaches<T>&);                            \
  template LSTMParams<T> lstm_params_from_layers(const Array<T>&, const Array<T>&, const Array<T>&,          \
                                                 const Array<T>&, const Array<T>&);                          \
  template LSTMLayerParams<T> lstm_params_to_layers(const LSTMParams<T>&);                                   \
  template LSTMParams<T> to_reference(const nn::LSTMCell<T>&, const nn::Linear<T>&);                         \
  template void from_reference(const LSTMParams<T>&, nn::LSTMCell<T>&);                                     \
  template void from_reference(const LSTMParams<T>&, nn::LSTMCell<T>&, nn::Linear<T>&);
XGRAD_REFERENCE_LSTM_INSTANTIATE(float)
XGRAD_REFERENCE_LSTM_INSTANTIATE(double)

}  // namespace xgrad::reference
