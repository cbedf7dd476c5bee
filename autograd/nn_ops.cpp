// The ops of nn_ops.hpp: elementwise functions, reductions along an axis, masking, layer
// normalisation and dropout, each with its checks, its forward value and, beside it, its
// backward rule.
#include "nn_ops.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include <xtensor/xbroadcast.hpp>

#include "ops_detail.hpp"
#include "random.hpp"
#include "record.hpp"

namespace xgrad {

using detail::add_grad;
using detail::add_grad_each;
using detail::blocks;
using detail::Blocks;
using detail::broadcast_shape;
using detail::check_live;
using detail::grad_ref;
using detail::map_into;
using detail::norm_axis;
using detail::num_str;
using detail::OpRecord;
using detail::saved;

namespace {

// The backward of an elementwise y = f(a): da (+)= g[k] · d(a[k], y[k]), d = f'.
template <class T, class D>
void grad_map(Node<T>& n, D d) {
  const T* a = n.in(0).value.data();
  const T* y = n.value.data();
  const T* g = n.grad.data();
  add_grad_each(n.in(0), n.elements(), [a, y, g, d](std::size_t k) { return g[k] * d(a[k], y[k]); });
}

// 1 / (1 + e^-a) without overflow for large |a|.
template <class T>
T stable_sigmoid(T a) {
  if (a >= T(0)) return T(1) / (T(1) + std::exp(-a));
  const T e = std::exp(a);
  return e / (T(1) + e);
}

// log(1 + e^a) = max(a, 0) + log1p(e^-|a|), finite for any finite a.
template <class T>
T stable_softplus(T a) {
  return std::max(a, T(0)) + std::log1p(std::exp(-std::abs(a)));
}

constexpr double kInvSqrt2 = 0.70710678118654752440;    // 1/√2
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/√(2π)

// What the ops below save for their backward (OpRecord::save, read back with saved<S>).
struct PowSaved {
  double p;
};
struct ClampSaved {
  double lo, hi;
};
struct SlopeSaved {
  double slope;
};
struct ReduceSaved {  // sum and mean along an axis: the gradient times `scale` (1 or 1/len)
  std::size_t axis;
  double scale;
};
struct AxisSaved {  // max and min: the axis; the extreme's position along it in saved_ids
  std::size_t axis;
};

}  // namespace

// ---------------------------------------------------------------- elementwise

// y = a^p; da = p·a^(p−1) ∘ g (0 for p = 0)
template <class T>
Var<T> pow(const Var<T>& a, double p) {
  check_live("pow", a);
  if (!std::isfinite(p)) throw ValueError("pow: the exponent must be finite, got " + num_str(p));
  OpRecord<T> r("pow", {&a});
  const T tp = static_cast<T>(p);
  map_into(r.value(), a.value(), [tp](T x) { return std::pow(x, tp); });
  r.save(PowSaved{p});
  return r.finish([](Node<T>& n) {
    const T p = static_cast<T>(saved<PowSaved>(n).p);
    grad_map(n, [p](T x, T) { return p == T(0) ? T(0) : p * std::pow(x, p - T(1)); });
  });
}

// y = |a|; da = sign(a) ∘ g, 0 at a = 0
template <class T>
Var<T> abs(const Var<T>& a) {
  OpRecord<T> r("abs", {&a});
  map_into(r.value(), a.value(), [](T x) { return std::abs(x); });
  return r.finish([](Node<T>& n) {
    grad_map(n, [](T x, T) { return x > T(0) ? T(1) : x < T(0) ? T(-1) : T(0); });
  });
}

// y = min(max(a, lo), hi); da = g where lo <= a <= hi, else 0
template <class T>
Var<T> clamp(const Var<T>& a, double lo, double hi) {
  check_live("clamp", a);
  if (!(lo <= hi))
    throw ValueError("clamp: lower bound " + num_str(lo) + " exceeds upper bound " + num_str(hi));
  OpRecord<T> r("clamp", {&a});
  const T tlo = static_cast<T>(lo), thi = static_cast<T>(hi);
  map_into(r.value(), a.value(), [tlo, thi](T x) { return std::min(std::max(x, tlo), thi); });
  r.save(ClampSaved{lo, hi});
  return r.finish([](Node<T>& n) {
    const ClampSaved s = saved<ClampSaved>(n);
    const T lo = static_cast<T>(s.lo), hi = static_cast<T>(s.hi);
    grad_map(n, [lo, hi](T x, T) { return x >= lo && x <= hi ? T(1) : T(0); });
  });
}

// y = log(1 + a); da = g / (1 + a)
template <class T>
Var<T> log1p(const Var<T>& a) {
  OpRecord<T> r("log1p", {&a});
  map_into(r.value(), a.value(), [](T x) { return std::log1p(x); });
  return r.finish([](Node<T>& n) { grad_map(n, [](T x, T) { return T(1) / (T(1) + x); }); });
}

// y = log(1 + e^a); da = sigmoid(a) ∘ g
template <class T>
Var<T> softplus(const Var<T>& a) {
  OpRecord<T> r("softplus", {&a});
  map_into(r.value(), a.value(), [](T x) { return stable_softplus(x); });
  return r.finish([](Node<T>& n) { grad_map(n, [](T x, T) { return stable_sigmoid(x); }); });
}

// y = log sigmoid(a) = −softplus(−a); da = sigmoid(−a) ∘ g
template <class T>
Var<T> log_sigmoid(const Var<T>& a) {
  OpRecord<T> r("log_sigmoid", {&a});
  map_into(r.value(), a.value(), [](T x) { return -stable_softplus(-x); });
  return r.finish([](Node<T>& n) { grad_map(n, [](T x, T) { return stable_sigmoid(-x); }); });
}

// y = a for a > 0, slope·a otherwise; da = (1 or slope) ∘ g
template <class T>
Var<T> leaky_relu(const Var<T>& a, double slope) {
  OpRecord<T> r("leaky_relu", {&a});
  const T s = static_cast<T>(slope);
  map_into(r.value(), a.value(), [s](T x) { return x > T(0) ? x : s * x; });
  r.save(SlopeSaved{slope});
  return r.finish([](Node<T>& n) {
    const T s = static_cast<T>(saved<SlopeSaved>(n).slope);
    grad_map(n, [s](T x, T) { return x > T(0) ? T(1) : s; });
  });
}

// y = a·Φ(a), Φ(a) = (1 + erf(a/√2))/2; da = (Φ(a) + a·φ(a)) ∘ g, φ(a) = e^(−a²/2)/√(2π)
template <class T>
Var<T> gelu(const Var<T>& a) {
  OpRecord<T> r("gelu", {&a});
  map_into(r.value(), a.value(), [](T x) { return x * T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2))); });
  return r.finish([](Node<T>& n) {
    grad_map(n, [](T x, T) {
      const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
      const T pdf = std::exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
      return cdf + x * pdf;
    });
  });
}

// ---------------------------------------------------------------- reductions along an axis

namespace {

// The shape of a reduced along axis: the axis removed, or kept with length 1.
template <class S>
Shape reduced_shape(const S& shape, std::size_t axis, bool keepdims) {
  Shape s(shape.begin(), shape.end());
  if (keepdims)
    s[axis] = 1;
  else
    s.erase(s.begin() + static_cast<long>(axis));
  return s;
}

// The axis of a normalised for a reduction that needs at least one entry along it.
template <class T>
std::size_t nonempty_axis(const char* op, const Var<T>& a, long axis) {
  check_live(op, a);
  const std::size_t ax = norm_axis(op, axis, a.shape());
  if (a.shape()[ax] == 0)
    throw ValueError(std::string(op) + ": axis " + std::to_string(axis) + " of shape " + shape_str(a.shape()) +
                     " is empty");
  return ax;
}

// y = scale · Σ_axis a, or its keepdims form (same elements). In row-major order a is `outer`
// blocks of len × inner; y is outer × inner.
template <class T>
Var<T> scaled_sum(const char* op, const Var<T>& a, std::size_t ax, bool keepdims, double scale) {
  OpRecord<T> r(op, {&a});
  Array<T>& y = r.value();
  y.resize(reduced_shape(a.shape(), ax, keepdims));
  std::fill(y.begin(), y.end(), T(0));
  const Blocks bl = blocks(a.shape(), ax);
  const std::size_t len = a.shape()[ax];
  const T* src = a.value().data();
  for (std::size_t o = 0; o < bl.outer; ++o)
    for (std::size_t j = 0; j < len; ++j) detail::add_into(y.data() + o * bl.inner, src + o * bl.row + j * bl.inner, bl.inner);
  const T s = static_cast<T>(scale);
  if (s != T(1))
    for (T& v : y) v *= s;
  r.save(ReduceSaved{ax, scale});
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    const ReduceSaved rs = saved<ReduceSaved>(n);
    const T s = static_cast<T>(rs.scale);
    const Blocks bl = blocks(A.value.shape(), rs.axis);
    const std::size_t len = A.value.shape()[rs.axis];
    T* ga = grad_ref(A).data();
    const T* g = n.grad.data();
    for (std::size_t o = 0; o < bl.outer; ++o)
      for (std::size_t j = 0; j < len; ++j) {
        T* dst = ga + o * bl.row + j * bl.inner;
        const T* src = g + o * bl.inner;
        for (std::size_t i = 0; i < bl.inner; ++i) dst[i] += s * src[i];
      }
  });
}

// The position along axis of the first extreme entry of each outer × inner line: the first
// largest when `largest`, else the first smallest.
template <class T>
std::vector<int> extreme_positions(const Array<T>& a, std::size_t ax, bool largest) {
  const Blocks bl = blocks(a.shape(), ax);
  const std::size_t len = a.shape()[ax];
  std::vector<int> pos(bl.outer * bl.inner, 0);
  const T* p = a.data();
  for (std::size_t o = 0; o < bl.outer; ++o)
    for (std::size_t i = 0; i < bl.inner; ++i) {
      const T* line = p + o * bl.row + i;
      std::size_t best = 0;
      for (std::size_t j = 1; j < len; ++j) {
        const T v = line[j * bl.inner], b = line[best * bl.inner];
        if (largest ? v > b : v < b) best = j;
      }
      pos[o * bl.inner + i] = static_cast<int>(best);
    }
  return pos;
}

// y = the first extreme entry along axis (removed); da = g at that entry, 0 elsewhere.
template <class T>
Var<T> extreme(const char* op, const Var<T>& a, long axis, bool largest) {
  const std::size_t ax = nonempty_axis(op, a, axis);
  std::vector<int> pos = extreme_positions(a.value(), ax, largest);
  OpRecord<T> r(op, {&a});
  Array<T>& y = r.value();
  y.resize(reduced_shape(a.shape(), ax, false));
  const Blocks bl = blocks(a.shape(), ax);
  const T* src = a.value().data();
  for (std::size_t o = 0; o < bl.outer; ++o)
    for (std::size_t i = 0; i < bl.inner; ++i)
      y.data()[o * bl.inner + i] = src[o * bl.row + static_cast<std::size_t>(pos[o * bl.inner + i]) * bl.inner + i];
  r.save(AxisSaved{ax});
  if (r.needs_backward()) r.node()->saved_ids = std::move(pos);
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    const Blocks bl = blocks(A.value.shape(), saved<AxisSaved>(n).axis);
    const std::vector<int>& pos = n.saved_ids;
    T* ga = grad_ref(A).data();
    const T* g = n.grad.data();
    for (std::size_t o = 0; o < bl.outer; ++o)
      for (std::size_t i = 0; i < bl.inner; ++i)
        ga[o * bl.row + static_cast<std::size_t>(pos[o * bl.inner + i]) * bl.inner + i] += g[o * bl.inner + i];
  });
}

}  // namespace

// y = Σ_axis a, the axis kept with length 1 when keepdims; da = g broadcast along the axis
template <class T>
Var<T> sum(const Var<T>& a, long axis, bool keepdims) {
  check_live("sum", a);
  return scaled_sum("sum_axis", a, norm_axis("sum", axis, a.shape()), keepdims, 1.0);
}

// y = Σ_axis a / len; da = g / len broadcast along the axis
template <class T>
Var<T> mean(const Var<T>& a, long axis, bool keepdims) {
  const std::size_t ax = nonempty_axis("mean", a, axis);
  return scaled_sum("mean_axis", a, ax, keepdims, 1.0 / static_cast<double>(a.shape()[ax]));
}

template <class T>
Var<T> mean(const Var<T>& a, long axis) {
  return mean(a, axis, false);
}

template <class T>
Var<T> max(const Var<T>& a, long axis) {
  return extreme("max", a, axis, true);
}

template <class T>
Var<T> min(const Var<T>& a, long axis) {
  return extreme("min", a, axis, false);
}

template <class T>
xt::xarray<std::size_t> argmax(const Var<T>& a, long axis) {
  const std::size_t ax = nonempty_axis("argmax", a, axis);
  const std::vector<int> pos = extreme_positions(a.value(), ax, true);
  xt::xarray<std::size_t> out = xt::xarray<std::size_t>::from_shape(reduced_shape(a.shape(), ax, false));
  std::copy(pos.begin(), pos.end(), out.begin());
  return out;
}

// ---------------------------------------------------------------- masking

namespace {

// The mask broadcast to `shape` as 1 (true) and 0 (false), for the backward.
template <class T>
void mask_values(Array<T>& m, const xt::xarray<bool>& mask, const Shape& shape) {
  m.resize(shape);
  auto b = xt::broadcast(mask, shape);
  std::transform(b.begin(), b.end(), m.begin(), [](bool v) { return v ? T(1) : T(0); });
}

}  // namespace

// y = a where mask, b elsewhere (mask, a and b broadcast together);
// da = g ∘ mask, db = g ∘ (1 − mask), each summed back to its input's shape
template <class T>
Var<T> where(xt::xarray<bool> mask, Var<T> a, Var<T> b) {
  check_live("where", a, b);
  const Shape ab = broadcast_shape("where", a.shape(), b.shape());
  const Shape out = broadcast_shape("where", mask.shape(), ab);
  OpRecord<T> r("where", {&a, &b});
  Array<T> scratch;
  Array<T>& m = r.needs_backward() ? r.node()->saved_array : scratch;
  mask_values(m, mask, out);
  Array<T>& y = r.value();
  y.resize(out);
  auto va = xt::broadcast(a.value(), out);
  auto vb = xt::broadcast(b.value(), out);
  auto ia = va.begin();
  auto ib = vb.begin();
  const T* pm = m.data();
  for (std::size_t k = 0; k < y.size(); ++k, ++ia, ++ib) y.data()[k] = pm[k] != T(0) ? *ia : *ib;
  return r.finish([](Node<T>& n) {
    const Array<T>& m = n.saved_array;
    add_grad(n.in(0), n.grad * m);
    add_grad(n.in(1), n.grad * (T(1) - m));
  });
}

// y = value where mask (broadcast to a's shape), a elsewhere; da = g ∘ (1 − mask)
template <class T>
Var<T> masked_fill(const Var<T>& a, const xt::xarray<bool>& mask, double value) {
  check_live("masked_fill", a);
  const Shape out = broadcast_shape("masked_fill", mask.shape(), a.shape());
  if (!detail::shapes_equal(out, a.shape()))
    throw ShapeError("masked_fill: mask " + shape_str(mask.shape()) + " does not broadcast to the input's shape " +
                     shape_str(a.shape()));
  OpRecord<T> r("masked_fill", {&a});
  Array<T> scratch;
  Array<T>& m = r.needs_backward() ? r.node()->saved_array : scratch;
  mask_values(m, mask, out);
  const T v = static_cast<T>(value);
  Array<T>& y = r.value();
  y.resize(out);
  const T* pa = a.value().data();
  const T* pm = m.data();
  for (std::size_t k = 0; k < y.size(); ++k) y.data()[k] = pm[k] != T(0) ? v : pa[k];
  return r.finish([](Node<T>& n) {
    const T* m = n.saved_array.data();
    const T* g = n.grad.data();
    add_grad_each(n.in(0), n.elements(), [m, g](std::size_t k) { return m[k] != T(0) ? T(0) : g[k]; });
  });
}

// ---------------------------------------------------------------- layer normalisation

namespace {

// Rows of x (..., n): N = size / n rows of n entries; saved_array holds (N, 2): each row's mean
// and 1/sqrt(var + eps).
template <class T>
Var<T> layer_norm_op(const Var<T>& x, const Var<T>* weight, const Var<T>* bias, double eps) {
  if (weight) check_live("layer_norm", x, *weight, *bias);
  else check_live("layer_norm", x);
  if (x.dim() == 0) throw ShapeError("layer_norm: needs at least one axis, got a 0-d value");
  const std::size_t n = x.shape()[x.dim() - 1];
  if (n == 0 || x.size() == 0) throw ValueError("layer_norm: empty input of shape " + shape_str(x.shape()));
  if (!(eps > 0)) throw ValueError("layer_norm: eps must be positive, got " + num_str(eps));
  for (const Var<T>* p : {weight, bias})
    if (p && (p->dim() != 1 || p->shape()[0] != n))
      throw ShapeError(std::string("layer_norm: ") + (p == weight ? "weight " : "bias ") + shape_str(p->shape()) +
                       " does not fit input " + shape_str(x.shape()) + ": expected (" + std::to_string(n) + ",)");
  const std::size_t N = x.size() / n;
  OpRecord<T> r = weight ? OpRecord<T>("layer_norm", {&x, weight, bias}) : OpRecord<T>("layer_norm", {&x});
  Array<T> scratch;
  Array<T>& stats = r.needs_backward() ? r.node()->saved_array : scratch;
  stats.resize({N, std::size_t(2)});
  Array<T>& y = r.value();
  y.resize(x.shape());
  const T* px = x.value().data();
  const T* w = weight ? weight->value().data() : nullptr;
  const T* b = bias ? bias->value().data() : nullptr;
  for (std::size_t i = 0; i < N; ++i) {
    const T* row = px + i * n;
    T* out = y.data() + i * n;
    T mu = 0, var = 0;
    for (std::size_t j = 0; j < n; ++j) mu += row[j];
    mu /= static_cast<T>(n);
    for (std::size_t j = 0; j < n; ++j) var += (row[j] - mu) * (row[j] - mu);
    var /= static_cast<T>(n);
    const T rstd = T(1) / std::sqrt(var + static_cast<T>(eps));
    for (std::size_t j = 0; j < n; ++j) out[j] = (row[j] - mu) * rstd;
    if (w)
      for (std::size_t j = 0; j < n; ++j) out[j] = out[j] * w[j] + b[j];
    stats(i, 0) = mu;
    stats(i, 1) = rstd;
  }
  // x̂ = (x − μ)·rstd, ĝ = g ∘ w (g without affine):
  // dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ ∘ x̂)) per row;  dw = Σ_rows g ∘ x̂;  db = Σ_rows g.
  return r.finish([](Node<T>& nd) {
    Slot<T>& X = nd.in(0);
    const bool affine = nd.inputs.size() == 3;
    const std::size_t n = X.value.shape()[X.value.dimension() - 1], N = X.elements() / n;
    const T* px = X.value.data();
    const T* g = nd.grad.data();
    const T* w = affine ? nd.in(1).value.data() : nullptr;
    T* dx = X.requires_grad ? grad_ref(X).data() : nullptr;
    T* dw = affine && nd.in(1).requires_grad ? grad_ref(nd.in(1)).data() : nullptr;
    T* db = affine && nd.in(2).requires_grad ? grad_ref(nd.in(2)).data() : nullptr;
    std::vector<T> ghat(n);
    for (std::size_t i = 0; i < N; ++i) {
      const T* row = px + i * n;
      const T* gi = g + i * n;
      const T mu = nd.saved_array(i, 0), rstd = nd.saved_array(i, 1);
      T mean_g = 0, mean_gx = 0;
      for (std::size_t j = 0; j < n; ++j) {
        const T xhat = (row[j] - mu) * rstd;
        ghat[j] = w ? gi[j] * w[j] : gi[j];
        mean_g += ghat[j];
        mean_gx += ghat[j] * xhat;
        if (dw) dw[j] += gi[j] * xhat;
        if (db) db[j] += gi[j];
      }
      mean_g /= static_cast<T>(n);
      mean_gx /= static_cast<T>(n);
      if (dx)
        for (std::size_t j = 0; j < n; ++j) {
          const T xhat = (row[j] - mu) * rstd;
          dx[i * n + j] += rstd * (ghat[j] - mean_g - xhat * mean_gx);
        }
    }
  });
}

}  // namespace

template <class T>
Var<T> layer_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps) {
  return layer_norm_op(x, &weight, &bias, eps);
}

template <class T>
Var<T> layer_norm(const Var<T>& x, double eps) {
  return layer_norm_op<T>(x, nullptr, nullptr, eps);
}

// ---------------------------------------------------------------- dropout

// y = x ∘ mask, mask = 1/(1 − p) with probability 1 − p, else 0; dx = g ∘ mask
template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training) {
  check_live("dropout", x);
  if (!(p >= 0 && p <= 1)) throw ValueError("dropout: probability p must lie in [0, 1], got " + num_str(p));
  if (!training || p == 0) return x;
  OpRecord<T> r("dropout", {&x});
  Array<T> scratch;
  Array<T>& mask = r.needs_backward() ? r.node()->saved_array : scratch;
  mask.resize(x.shape());
  std::bernoulli_distribution keep(1.0 - p);
  const T scale = p < 1 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  std::mt19937_64& gen = nn::generator();
  for (T& v : mask) v = keep(gen) ? scale : T(0);
  Array<T>& y = r.value();
  y.resize(x.shape());
  const T* px = x.value().data();
  for (std::size_t k = 0; k < y.size(); ++k) y.data()[k] = px[k] * mask.data()[k];
  return r.finish([](Node<T>& n) {
    const T* m = n.saved_array.data();
    const T* g = n.grad.data();
    add_grad_each(n.in(0), n.elements(), [m, g](std::size_t k) { return g[k] * m[k]; });
  });
}

// ---------------------------------------------------------------- LSTM's elementwise steps

namespace {

// n, for act (m, 4n) with n > 0, or a ShapeError naming the op.
template <class T>
std::size_t gate_width(const char* op, const char* what, const Var<T>& act) {
  if (act.dim() != 2 || act.shape()[1] == 0 || act.shape()[1] % 4 != 0)
    throw ShapeError(std::string(op) + ": " + what + " must be (m, 4·n) with n > 0 (the blocks i, f, g, o), got " +
                     shape_str(act.shape()));
  return act.shape()[1] / 4;
}

// v is (m, n) beside act (m, 4n), or a ShapeError naming both shapes.
template <class T>
void check_beside(const char* op, const char* what, const Var<T>& act, const Var<T>& v, std::size_t n) {
  const auto& s = v.shape();
  if (s.size() != 2 || s[0] != act.shape()[0] || s[1] != n)
    throw ShapeError(std::string(op) + ": " + what + " " + shape_str(s) + " does not fit act " + shape_str(act.shape()) +
                     ": it must be (" + std::to_string(act.shape()[0]) + ", " + std::to_string(n) + ")");
}

// The checks of lstm_memory and lstm_hidden: act (m, 4n) and v (m, n), both live. Returns n.
template <class T>
std::size_t check_act_and(const char* op, const char* what, const Var<T>& act, const Var<T>& v) {
  check_live(op, act, v);
  const std::size_t n = gate_width(op, "act", act);
  check_beside(op, what, act, v, n);
  return n;
}

// f(begin, end) over the rows [0, m), `width` elements each: on the library's threads when they
// hold two blocks of parallel::kFunctionGrain elements (the LSTM ops' work per element), else in
// one call here.
template <class F>
void for_rows(std::size_t m, std::size_t width, F f) {
  const std::size_t grain = std::max<std::size_t>(1, parallel::kFunctionGrain / width);
  if (m < 2 * grain) return f(std::size_t(0), m);
  parallel::parallel_for(m, grain, f);
}

// dst[j] (+)= f(j) for j in [0, n): added when `add`, else written (a fresh buffer).
template <class T, class F>
void put(bool add, T* dst, std::size_t n, F f) {
  if (add)
    for (std::size_t j = 0; j < n; ++j) dst[j] += f(j);
  else
    for (std::size_t j = 0; j < n; ++j) dst[j] = f(j);
}

// The gradient of s (m, w) for a rule that writes the columns [lo, hi) of each row: allocated
// if this sweep has not written it, its other columns then zeroed. Returns whether the rule
// adds (the buffer held a gradient) or writes.
template <class T>
bool open_columns(Slot<T>& s, std::size_t lo, std::size_t hi) {
  if (s.has_grad) return true;
  s.fresh_grad();
  const std::size_t m = s.value.shape()[0], w = s.value.shape()[1];
  T* g = s.grad.data();
  for (std::size_t i = 0; i < m; ++i) {
    std::fill(g + i * w, g + i * w + lo, T(0));
    std::fill(g + i * w + hi, g + (i + 1) * w, T(0));
  }
  return false;
}

// s.grad (+)= f over s's elements, s (m, n), f(i, j) for row i, column j.
template <class T, class F>
void add_grad_rows(Slot<T>& s, F f) {
  if (!s.requires_grad) return;
  const std::size_t m = s.value.shape()[0], n = s.value.shape()[1];
  const bool add = s.has_grad;
  if (!add) s.fresh_grad();
  T* g = s.grad.data();
  for_rows(m, n, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) put(add, g + i * n, n, [&f, i](std::size_t j) { return f(i, j); });
  });
}

}  // namespace

// act = [σ(i) | σ(f) | tanh(g) | σ(o)]; dz = g ∘ act(1 − act) on σ's blocks, g ∘ (1 − act²) on tanh's
template <class T>
Var<T> lstm_gates(const Var<T>& z) {
  check_live("lstm_gates", z);
  const std::size_t n = gate_width("lstm_gates", "z", z), m = z.shape()[0], w = 4 * n;
  OpRecord<T> r("lstm_gates", {&z});
  const T* pz = z.value().data();
  T* py = r.output(z.shape()).data();
  for_rows(m, w, [=](std::size_t begin, std::size_t end) {
    for (std::size_t o = begin * w; o < end * w; o += w) {
      detail::sigmoid_n(pz + o, py + o, 2 * n);
      detail::tanh_n(pz + o + 2 * n, py + o + 2 * n, n);
      detail::sigmoid_n(pz + o + 3 * n, py + o + 3 * n, n);
    }
  });
  return r.finish([](Node<T>& nd) {
    Slot<T>& Z = nd.in(0);
    if (!Z.requires_grad) return;
    const std::size_t m = nd.value.shape()[0], w = nd.value.shape()[1], n = w / 4;
    const bool add = Z.has_grad;
    if (!add) Z.fresh_grad();
    const T* y = nd.value.data();
    const T* g = nd.grad.data();
    T* dz = Z.grad.data();
    for_rows(m, w, [=](std::size_t begin, std::size_t end) {
      auto d_sigmoid = [y, g](std::size_t k) { return y[k] * (T(1) - y[k]) * g[k]; };
      auto d_tanh = [y, g](std::size_t k) { return (T(1) - y[k] * y[k]) * g[k]; };
      for (std::size_t o = begin * w; o < end * w; o += w) {
        put(add, dz + o, 2 * n, [&](std::size_t j) { return d_sigmoid(o + j); });
        put(add, dz + o + 2 * n, n, [&](std::size_t j) { return d_tanh(o + 2 * n + j); });
        put(add, dz + o + 3 * n, n, [&](std::size_t j) { return d_sigmoid(o + 3 * n + j); });
      }
    });
  }, detail::kReadsOutput);
}

// c = f∘c0 + i∘g (act's blocks); di = gc∘g, df = gc∘c0, dg = gc∘i, dc0 = gc∘f
template <class T>
Var<T> lstm_memory(const Var<T>& act, const Var<T>& c_prev) {
  const std::size_t n = check_act_and("lstm_memory", "c_prev", act, c_prev), m = act.shape()[0], w = 4 * n;
  OpRecord<T> r("lstm_memory", {&act, &c_prev});
  const T* pa = act.value().data();
  const T* pc = c_prev.value().data();
  T* py = r.output(c_prev.shape()).data();
  for_rows(m, w, [=](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const T* a = pa + i * w;
      const T* c = pc + i * n;
      T* y = py + i * n;
      for (std::size_t j = 0; j < n; ++j) y[j] = a[n + j] * c[j] + a[j] * a[2 * n + j];
    }
  });
  return r.finish([](Node<T>& nd) {
    Slot<T>& A = nd.in(0);
    Slot<T>& C = nd.in(1);
    const std::size_t m = nd.value.shape()[0], n = nd.value.shape()[1], w = 4 * n;
    const T* pa = A.value.data();
    const T* pc = C.value.data();
    const T* pg = nd.grad.data();
    if (A.requires_grad) {
      const bool add = open_columns(A, 0, 3 * n);
      T* da = A.grad.data();
      for_rows(m, w, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
          const T* a = pa + i * w;
          const T* c = pc + i * n;
          const T* g = pg + i * n;
          T* d = da + i * w;
          put(add, d, n, [=](std::size_t j) { return g[j] * a[2 * n + j]; });
          put(add, d + n, n, [=](std::size_t j) { return g[j] * c[j]; });
          put(add, d + 2 * n, n, [=](std::size_t j) { return g[j] * a[j]; });
        }
      });
    }
    add_grad_rows(C, [=](std::size_t i, std::size_t j) { return pg[i * n + j] * pa[i * w + n + j]; });
  }, detail::reads_inputs(0b11));
}

// a = o∘tanh(c) (act's last block); do = ga∘tanh(c), dc = (1 − tanh²(c))∘(ga∘o)
template <class T>
Var<T> lstm_hidden(const Var<T>& act, const Var<T>& c) {
  const std::size_t n = check_act_and("lstm_hidden", "c", act, c), m = act.shape()[0], w = 4 * n;
  OpRecord<T> r("lstm_hidden", {&act, &c});
  Array<T> scratch;
  Array<T>& tc = r.needs_backward() ? r.node()->saved_array : scratch;  // tanh(c), which backward reads
  tc.resize(c.shape());
  const T* pa = act.value().data();
  const T* pc = c.value().data();
  T* pt = tc.data();
  T* py = r.output(c.shape()).data();
  for_rows(m, w, [=](std::size_t begin, std::size_t end) {
    detail::tanh_n(pc + begin * n, pt + begin * n, (end - begin) * n);
    for (std::size_t i = begin; i < end; ++i)
      for (std::size_t j = 0; j < n; ++j) py[i * n + j] = pa[i * w + 3 * n + j] * pt[i * n + j];
  });
  return r.finish([](Node<T>& nd) {
    Slot<T>& A = nd.in(0);
    const std::size_t m = nd.value.shape()[0], n = nd.value.shape()[1], w = 4 * n;
    const T* pa = A.value.data();
    const T* pt = nd.saved_array.data();
    const T* pg = nd.grad.data();
    if (A.requires_grad) {
      const bool add = open_columns(A, 3 * n, w);
      T* da = A.grad.data();
      for_rows(m, w, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
          put(add, da + i * w + 3 * n, n, [=](std::size_t j) { return pg[i * n + j] * pt[i * n + j]; });
      });
    }
    add_grad_rows(nd.in(1), [=](std::size_t i, std::size_t j) {
      const T t = pt[i * n + j];
      return (T(1) - t * t) * (pg[i * n + j] * pa[i * w + 3 * n + j]);
    });
  }, detail::reads_inputs(0b01));
}

#define XGRAD_NN_OPS_INSTANTIATE(T)                                                           \
  template Var<T> pow(const Var<T>&, double);                                                 \
  template Var<T> abs(const Var<T>&);                                                         \
  template Var<T> clamp(const Var<T>&, double, double);                                       \
  template Var<T> log1p(const Var<T>&);                                                       \
  template Var<T> softplus(const Var<T>&);                                                    \
  template Var<T> log_sigmoid(const Var<T>&);                                                 \
  template Var<T> leaky_relu(const Var<T>&, double);                                          \
  template Var<T> gelu(const Var<T>&);                                                        \
  template Var<T> sum(const Var<T>&, long, bool);                                             \
  template Var<T> mean(const Var<T>&, long);                                                  \
  template Var<T> mean(const Var<T>&, long, bool);                                            \
  template Var<T> max(const Var<T>&, long);                                                   \
  template Var<T> min(const Var<T>&, long);                                                   \
  template xt::xarray<std::size_t> argmax(const Var<T>&, long);                               \
  template Var<T> where(xt::xarray<bool>, Var<T>, Var<T>);                                    \
  template Var<T> masked_fill(const Var<T>&, const xt::xarray<bool>&, double);                \
  template Var<T> layer_norm(const Var<T>&, const Var<T>&, const Var<T>&, double);            \
  template Var<T> layer_norm(const Var<T>&, double);                                          \
  template Var<T> dropout(const Var<T>&, double, bool);                                       \
  template Var<T> lstm_gates(const Var<T>&);                                                  \
  template Var<T> lstm_memory(const Var<T>&, const Var<T>&);                                  \
  template Var<T> lstm_hidden(const Var<T>&, const Var<T>&);
XGRAD_NN_OPS_INSTANTIATE(float)
XGRAD_NN_OPS_INSTANTIATE(double)

}  // namespace xgrad
