// Every differentiable op: its checks, its forward value and, beside it, its backward rule.
#include "ops.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include <xtensor/xbroadcast.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xreducer.hpp>
#include <xtensor/xstrided_view.hpp>
#include <xtensor/xview.hpp>

#include "blas.hpp"
#include "ops_detail.hpp"
#include "record.hpp"
#include "vmath.hpp"

namespace xgrad {

using detail::add_grad;
using detail::add_grad_each;
using detail::add_into;
using detail::axis_range;
using detail::broadcast_shape;
using detail::blocks;
using detail::Blocks;
using detail::check_live;
using detail::grad_ref;
using detail::norm_axis;
using detail::OpRecord;
using detail::saved;

namespace {

template <class T>
void check_broadcast(const char* op, const Var<T>& a, const Var<T>& b) {
  broadcast_shape(op, a.shape(), b.shape());
}

// What the ops below save for their backward (OpRecord::save, read back with saved<S>).
struct AxisSaved {  // sum over an axis, softmax, log_softmax, concat
  std::size_t axis;
};
struct SliceSaved {  // slice keeps [begin, end) along axis
  std::size_t axis, begin, end;
};
struct SelectSaved {  // select takes a[index] along axis 0
  std::size_t index;
};
template <class T>
struct AffineSaved {  // y = alpha·a + beta
  T alpha;
};

template <class T>
void require_matrix(const char* op, const Var<T>& a, const char* what) {
  if (a.dim() != 2)
    throw ShapeError(std::string(op) + ": " + what + " must be a matrix, got shape " + shape_str(a.shape()));
  if (a.size() == 0) throw ValueError(std::string(op) + ": " + what + " is empty, shape " + shape_str(a.shape()));
}

template <class T>
void require_nonempty(const char* op, const Var<T>& a) {
  if (a.size() == 0) throw ValueError(std::string(op) + ": empty input of shape " + shape_str(a.shape()));
}

// y = f(a[k], b[k]) in one pass when a and b have one shape (the common case), else through
// xtensor's broadcasting expression e.
template <class T, class F, class E>
void elementwise(OpRecord<T>& r, const Var<T>& a, const Var<T>& b, F f, E&& e) {
  if (detail::shapes_equal(a.shape(), b.shape())) {
    Array<T>& y = r.output(a.shape());
    const T* pa = a.value().data();
    const T* pb = b.value().data();
    T* py = y.data();
    detail::for_blocks(y.size(), [pa, pb, py, &f](std::size_t begin, std::size_t end) {
      for (std::size_t k = begin; k < end; ++k) py[k] = f(pa[k], pb[k]);
    });
  } else {
    xt::noalias(r.value()) = std::forward<E>(e);
  }
}

// in.grad (+)= f(k) over the output's elements when `in` was not broadcast (same element count),
// else the expression e summed back to in's shape.
template <class T, class F, class E>
void grad_each_or(Node<T>& n, std::size_t i, F f, E&& e) {
  Slot<T>& in = n.in(i);
  if (!in.requires_grad) return;
  if (in.elements() == n.elements())
    add_grad_each(in, n.elements(), f);
  else
    add_grad(in, std::forward<E>(e));
}

}  // namespace

// ---------------------------------------------------------------- arithmetic

// y = a + b
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  check_live("add", a, b);
  check_broadcast("add", a, b);
  OpRecord<T> r("add", {&a, &b});
  elementwise(r, a, b, [](T x, T y) { return x + y; }, a.value() + b.value());
  return r.finish([](Node<T>& n) {
    const T* g = n.grad.data();
    grad_each_or(n, 0, [g](std::size_t k) { return g[k]; }, n.grad);
    grad_each_or(n, 1, [g](std::size_t k) { return g[k]; }, n.grad);
  }, detail::kReadsNothing);
}

// y = a - b
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  check_live("sub", a, b);
  check_broadcast("sub", a, b);
  OpRecord<T> r("sub", {&a, &b});
  elementwise(r, a, b, [](T x, T y) { return x - y; }, a.value() - b.value());
  return r.finish([](Node<T>& n) {
    const T* g = n.grad.data();
    grad_each_or(n, 0, [g](std::size_t k) { return g[k]; }, n.grad);
    grad_each_or(n, 1, [g](std::size_t k) { return -g[k]; }, -n.grad);
  }, detail::kReadsNothing);
}

// y = a ∘ b; da = g ∘ b, db = g ∘ a
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  check_live("mul", a, b);
  check_broadcast("mul", a, b);
  OpRecord<T> r("mul", {&a, &b});
  elementwise(r, a, b, [](T x, T y) { return x * y; }, a.value() * b.value());
  return r.finish([](Node<T>& n) {
    const T* g = n.grad.data();
    if (n.in(0).elements() == n.elements() && n.in(1).elements() == n.elements()) {
      const T* va = n.in(0).value.data();
      const T* vb = n.in(1).value.data();
      add_grad_each(n.in(0), n.elements(), [g, vb](std::size_t k) { return g[k] * vb[k]; });
      add_grad_each(n.in(1), n.elements(), [g, va](std::size_t k) { return g[k] * va[k]; });
      return;
    }
    add_grad(n.in(0), n.grad * n.in(1).value);
    add_grad(n.in(1), n.grad * n.in(0).value);
  }, detail::reads_inputs(0b11));
}

// y = a / b; da = g / b, db = -g ∘ y / b
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  check_live("div", a, b);
  check_broadcast("div", a, b);
  OpRecord<T> r("div", {&a, &b});
  xt::noalias(r.output(a.shape())) = a.value() / b.value();
  return r.finish([](Node<T>& n) {
    add_grad(n.in(0), n.grad / n.in(1).value);
    add_grad(n.in(1), -n.grad * n.value / n.in(1).value);
  });
}

// y = -a
template <class T>
Var<T> neg(const Var<T>& a) {
  OpRecord<T> r("neg", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [](const auto& x) { return -x; });
  return r.finish([](Node<T>& n) { add_grad(n.in(0), -n.grad); }, detail::kReadsNothing);
}

// y = alpha·a + beta; da = alpha·g
template <class T>
Var<T> affine(const Var<T>& a, T alpha, T beta) {
  OpRecord<T> r("affine", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [alpha, beta](const auto& x) { return alpha * x + beta; });
  r.save(AffineSaved<T>{alpha});
  return r.finish([](Node<T>& n) {
    const T* g = n.grad.data();
    const T alpha = saved<AffineSaved<T>>(n).alpha;
    add_grad_each(n.in(0), n.elements(), [g, alpha](std::size_t k) { return alpha * g[k]; });
  }, detail::kReadsNothing);
}

// y = s / a; da = -g ∘ y / a
template <class T>
Var<T> rdiv(T s, const Var<T>& a) {
  OpRecord<T> r("rdiv", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [s](const auto& x) { return s / x; });
  return r.finish([](Node<T>& n) { add_grad(n.in(0), -n.grad * n.value / n.in(0).value); });
}

// ---------------------------------------------------------------- elementwise functions

namespace {
// y[k] = f(a[k]) over every element of a, where f(x, y, n) maps n elements: over for_blocks'
// blocks of parallel::kFunctionGrain.
template <class T>
void map_n(Array<T>& y, const Array<T>& a, void (*f)(const T*, T*, std::size_t)) {
  detail::over_blocks_of(y, a, [f](const T* pa, T* py, std::size_t begin, std::size_t end) {
    f(pa + begin, py + begin, end - begin);
  }, parallel::kFunctionGrain);
}
}  // namespace

// y = tanh(a); da = (1 - y²) ∘ g
template <class T>
Var<T> tanh(const Var<T>& a) {
  OpRecord<T> r("tanh", {&a});
  map_n(r.output(a.shape()), a.value(), detail::tanh_n<T>);
  return r.finish([](Node<T>& n) {
    const T* y = n.value.data();
    const T* g = n.grad.data();
    add_grad_each(n.in(0), n.elements(), [y, g](std::size_t k) { return (T(1) - y[k] * y[k]) * g[k]; });
  }, detail::kReadsOutput);
}

// y = 1 / (1 + e^-a); da = y(1 - y) ∘ g
template <class T>
Var<T> sigmoid(const Var<T>& a) {
  OpRecord<T> r("sigmoid", {&a});
  map_n(r.output(a.shape()), a.value(), detail::sigmoid_n<T>);
  return r.finish([](Node<T>& n) {
    const T* y = n.value.data();
    const T* g = n.grad.data();
    add_grad_each(n.in(0), n.elements(), [y, g](std::size_t k) { return y[k] * (T(1) - y[k]) * g[k]; });
  }, detail::kReadsOutput);
}

// y = max(a, 0); da = [a > 0] ∘ g
template <class T>
Var<T> relu(const Var<T>& a) {
  OpRecord<T> r("relu", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [](const auto& x) { return xt::maximum(x, T(0)); });
  return r.finish([](Node<T>& n) {
    const T* y = n.value.data();
    const T* g = n.grad.data();
    add_grad_each(n.in(0), n.elements(), [y, g](std::size_t k) { return y[k] > T(0) ? g[k] : T(0); });
  }, detail::kReadsOutput);
}

// y = e^a; da = y ∘ g
template <class T>
Var<T> exp(const Var<T>& a) {
  OpRecord<T> r("exp", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [](const auto& x) { return xt::exp(x); });
  return r.finish([](Node<T>& n) {
    const T* y = n.value.data();
    const T* g = n.grad.data();
    add_grad_each(n.in(0), n.elements(), [y, g](std::size_t k) { return y[k] * g[k]; });
  }, detail::kReadsOutput);
}

// y = ln a; da = g / a
template <class T>
Var<T> log(const Var<T>& a) {
  OpRecord<T> r("log", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [](const auto& x) { return xt::log(x); });
  return r.finish([](Node<T>& n) { add_grad(n.in(0), n.grad / n.in(0).value); }, detail::reads_inputs(0b1));
}

// y = a²; da = 2a ∘ g
template <class T>
Var<T> square(const Var<T>& a) {
  OpRecord<T> r("square", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [](const auto& x) { return x * x; });
  return r.finish([](Node<T>& n) { add_grad(n.in(0), T(2) * n.in(0).value * n.grad); }, detail::reads_inputs(0b1));
}

// y = √a; da = g / (2y)
template <class T>
Var<T> sqrt(const Var<T>& a) {
  OpRecord<T> r("sqrt", {&a});
  detail::map_expr(r.output(a.shape()), a.value(), [](const auto& x) { return xt::sqrt(x); });
  return r.finish([](Node<T>& n) { add_grad(n.in(0), n.grad / (T(2) * n.value)); }, detail::kReadsOutput);
}

// ---------------------------------------------------------------- matrix products

namespace {

// C (m, n) = A (m, k)·op(B) + beta·C, op(B) = B (k, n) or, with b_transposed, Bᵀ for B (n, k).
// With few rows, B a parameter (a leaf that requires a gradient: constants and detached values
// may change at every step) and `tape` recording (or sweeping) the product, it reads B packed
// once for the tape's generation (Tape::packed): a recurrent weight is read so at every step.
template <class T>
void product_with(Tape<T>* tape, bool b_transposed, std::size_t m, std::size_t n, std::size_t k, const T* A,
                  const Slot<T>& B, T beta, T* C) {
  const bool packed = tape != nullptr && !B.is_node && B.requires_grad && m >= 2 && m <= Tape<T>::kPackMaxRows &&
                      k > 0 && blas::packed_available();
  if (packed)
    return blas::gemm_packed(m, A, tape->packed(static_cast<const Leaf<T>&>(B), b_transposed), beta, C);
  blas::gemm(false, b_transposed, m, n, k, T(1), A, B.value.data(), beta, C);
}

// The gradients of y = a·op(b) from g = dL/dy (m, n), where op(b) is b (k, n) or, with
// b_transposed, bᵀ for b (n, k):  da += g·op(b)ᵀ (m, k);  db += aᵀ·g (k, n) or gᵀ·a (n, k).
// Both through GEMM with the transpose flags, accumulating with beta = 1 where a gradient is.
// db goes through Tape::weight_grad: a weight used in many small products (a recurrent weight,
// once per time step) gets their sum in one large GEMM later in the sweep.
// a may have more than two axes: its rows are all but the last (m = a.size / k).
template <class T>
void product_backward(const T* g, Slot<T>& A, Slot<T>& B, bool b_transposed) {
  const std::size_t k = b_transposed ? B.value.shape()[1] : B.value.shape()[0];
  const std::size_t n = b_transposed ? B.value.shape()[0] : B.value.shape()[1];
  const std::size_t m = A.elements() / k;
  if (A.requires_grad) {
    T beta;
    T* da = A.grad_buffer(beta);
    product_with(&Tape<T>::active(), !b_transposed, m, k, n, g, B, beta, da);
  }
  if (B.requires_grad) Tape<T>::weight_grad(B, g, A.value.data(), m, n, k, b_transposed);
}

}  // namespace

// y = a·b   a (m, k), b (k, n); da += g·bᵀ, db += aᵀ·g
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  check_live("matmul", a, b);
  require_matrix("matmul", a, "left operand");
  require_matrix("matmul", b, "right operand");
  if (a.shape()[1] != b.shape()[0])
    throw ShapeError("matmul: inner dimensions differ: " + shape_str(a.shape()) + " x " + shape_str(b.shape()));
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  OpRecord<T> r("matmul", {&a, &b});
  r.output(Shape{m, n});
  product_with(r.tape(), false, m, n, k, a.value().data(), b.slot("matmul"), T(0), r.value().data());
  return r.finish([](Node<T>& nd) { product_backward(nd.grad.data(), nd.in(0), nd.in(1), false); }, detail::reads_inputs(0b11));
}

// y = a·bᵀ   a (m, k), b (n, k); da += g·b, db += gᵀ·a
template <class T>
Var<T> matmul_nt(const Var<T>& a, const Var<T>& b) {
  check_live("matmul_nt", a, b);
  require_matrix("matmul_nt", a, "left operand");
  require_matrix("matmul_nt", b, "right operand");
  if (a.shape()[1] != b.shape()[1])
    throw ShapeError("matmul_nt: inner dimensions differ: " + shape_str(a.shape()) + " x " +
                     shape_str(b.shape()) + "ᵀ");
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[0];
  OpRecord<T> r("matmul_nt", {&a, &b});
  r.output(Shape{m, n});
  product_with(r.tape(), true, m, n, k, a.value().data(), b.slot("matmul_nt"), T(0), r.value().data());
  return r.finish([](Node<T>& nd) { product_backward(nd.grad.data(), nd.in(0), nd.in(1), true); }, detail::reads_inputs(0b11));
}

// y = x·wᵀ + b   x (m, in), w (out, in), b (out); dx += g·w, dw += gᵀ·x, db += Σ_rows g.
// x may have more axes, (..., in) -> (..., out), every position a row: a sequence layer's
// output (T, m, n_a) goes through the output layer without a reshape.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  check_live("linear", x, w, b);
  require_matrix("linear", w, "weight");
  if (x.dim() < 2 || x.shape()[x.dim() - 1] != w.shape()[1])
    throw ShapeError("linear: input " + shape_str(x.shape()) + " does not fit weight " + shape_str(w.shape()) +
                     " (out, in): expected (..., " + std::to_string(w.shape()[1]) + ")");
  if (x.size() == 0) throw ValueError("linear: input is empty, shape " + shape_str(x.shape()));
  if (b.dim() != 1 || b.shape()[0] != w.shape()[0])
    throw ShapeError("linear: bias " + shape_str(b.shape()) + " does not fit weight " + shape_str(w.shape()));
  const std::size_t k = w.shape()[1], n = w.shape()[0], m = x.size() / k;
  Shape out_shape(x.shape().begin(), x.shape().end());
  out_shape.back() = n;
  OpRecord<T> r("linear", {&x, &w, &b});
  Array<T>& y = r.output(out_shape);
  for (std::size_t i = 0; i < m; ++i) std::copy(b.value().begin(), b.value().end(), y.data() + i * n);
  product_with(r.tape(), true, m, n, k, x.value().data(), w.slot("linear"), T(1), y.data());
  return r.finish([](Node<T>& nd) {
    product_backward(nd.grad.data(), nd.in(0), nd.in(1), true);
    Slot<T>& B = nd.in(2);
    const std::size_t n = B.elements(), m = nd.grad.size() / n;
    if (B.requires_grad) {
      T* db = grad_ref(B).data();
      const T* g = nd.grad.data();
      for (std::size_t i = 0; i < m; ++i) add_into(db, g + i * n, n);
    }
  }, detail::reads_inputs(0b011));
}

// y = c + a·bᵀ   c (m, n), a (m, k), b (n, k); dc += g, da += g·b, db += gᵀ·a.
// One GEMM with beta = 1 onto a copy of c: a recurrent step's input projection plus its
// hidden-state product, without a separate add and its arrays.
template <class T>
Var<T> addmm_nt(const Var<T>& c, const Var<T>& a, const Var<T>& b) {
  check_live("addmm_nt", c, a, b);
  require_matrix("addmm_nt", a, "left operand");
  require_matrix("addmm_nt", b, "right operand");
  if (a.shape()[1] != b.shape()[1])
    throw ShapeError("addmm_nt: inner dimensions differ: " + shape_str(a.shape()) + " x " +
                     shape_str(b.shape()) + "ᵀ");
  const std::size_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[0];
  if (c.dim() != 2 || c.shape()[0] != m || c.shape()[1] != n)
    throw ShapeError("addmm_nt: addend " + shape_str(c.shape()) + " does not fit the product " +
                     shape_str(a.shape()) + " x " + shape_str(b.shape()) + "ᵀ, expected (" + std::to_string(m) +
                     ", " + std::to_string(n) + ")");
  OpRecord<T> r("addmm_nt", {&c, &a, &b});
  Array<T>& y = r.output(Shape{m, n});
  std::copy(c.value().data(), c.value().data() + m * n, y.data());
  product_with(r.tape(), true, m, n, k, a.value().data(), b.slot("addmm_nt"), T(1), y.data());
  return r.finish([](Node<T>& nd) {
    product_backward(nd.grad.data(), nd.in(1), nd.in(2), true);
    detail::pass_grad(nd, 0);  // the addend's gradient is g: the buffer, handed over
  }, detail::reads_inputs(0b110));
}

namespace {

// linear_onehot gathers (and its backward scatters) weight columns: a column is `out` values
// `in` apart, one cache line each. A parameter of at most Tape::kBatchBytes is gathered from
// its transpose, made once per generation (Tape::transposed), and its gradient is scattered
// into a transpose held through the sweep (Tape::onehot_grad): contiguous rows both ways.
// Otherwise, with at least as many ids as columns, it pays to transpose the weight (and its
// gradient) at each call.
bool onehot_by_rows(std::size_t ids, std::size_t in) { return ids >= in; }
// Otherwise the rows of w (and of its gradient) are read in tiles of this many.
constexpr std::size_t kOnehotTile = 16;

// The thread's buffer for a transposed weight, grown as needed and kept for the next step.
template <class T>
T* onehot_scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace

// y = x·wᵀ + b for the one-hot rows x = onehot(ids, in): y[i] = w[:, ids[i]] + b, a column
// gather instead of a product.   w (out, in), b (out) -> (ids.size(), out);
// dw[:, ids[i]] += g[i], db += Σ_i g[i].
template <class T>
Var<T> linear_onehot(const std::vector<int>& ids, const Var<T>& w, const Var<T>& b) {
  check_live("linear_onehot", w, b);
  require_matrix("linear_onehot", w, "weight");
  const std::size_t out = w.shape()[0], in = w.shape()[1];
  if (b.dim() != 1 || b.shape()[0] != out)
    throw ShapeError("linear_onehot: bias " + shape_str(b.shape()) + " does not fit weight " + shape_str(w.shape()) +
                     " (out, in)");
  if (ids.empty()) throw ValueError("linear_onehot: no ids");
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= in)
      throw IndexError("linear_onehot: id " + std::to_string(ids[i]) + " (position " + std::to_string(i) +
                       ") outside the weight's " + std::to_string(in) + " input columns, shape " +
                       shape_str(w.shape()));
  OpRecord<T> r("linear_onehot", {&w, &b});
  Array<T>& y = r.output(Shape{ids.size(), out});
  const T* pw = w.value().data();
  const T* pb = b.value().data();
  const Slot<T>& W = w.slot("linear_onehot");
  const T* wt = nullptr;  // wᵀ, when the tape holds it
  if (r.tape() != nullptr && !W.is_node && W.requires_grad && out * in * sizeof(T) <= Tape<T>::kBatchBytes)
    wt = r.tape()->transposed(static_cast<const Leaf<T>&>(W));
  if (wt != nullptr || onehot_by_rows(ids.size(), in)) {
    if (wt == nullptr) {
      T* scratch = onehot_scratch<T>(in * out);
      blas::transpose(out, in, pw, scratch);
      wt = scratch;
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const T* src = wt + static_cast<std::size_t>(ids[i]) * out;
      T* row = y.data() + i * out;
      for (std::size_t o = 0; o < out; ++o) row[o] = src[o] + pb[o];
    }
  } else {
    // 16 rows of w at a time (4 kB at in = 65, in cache while every id reads one value of
    // each), each id writing 16 consecutive values of its row of y (one line). A whole column
    // of w per id (as before) touched a line per value; one row of w at a time (tried) writes
    // y's rows 4·out bytes apart, which at out = 1024 all fall in one set of the L1 cache:
    // perf of W3, the backward's share of the step 6.1% by columns, 15.8% by rows, 5.2% tiled.
    const std::size_t n = ids.size();
    T* py = y.data();
    for (std::size_t o0 = 0; o0 < out; o0 += kOnehotTile) {
      const std::size_t o1 = std::min(out, o0 + kOnehotTile);
      for (std::size_t i = 0; i < n; ++i) {
        T* yi = py + i * out;
        const std::size_t id = static_cast<std::size_t>(ids[i]);
        for (std::size_t o = o0; o < o1; ++o) yi[o] = pw[o * in + id] + pb[o];
      }
    }
  }
  if (r.needs_backward()) r.node()->saved_ids = ids;
  return r.finish([](Node<T>& nd) {
    const std::vector<int>& ids = nd.saved_ids;
    Slot<T>& W = nd.in(0);
    Slot<T>& B = nd.in(1);
    const std::size_t out = W.value.shape()[0], in = W.value.shape()[1];
    const T* g = nd.grad.data();
    // One pass over g (ids, out) for both gradients, unless the tape takes dw's rows. Each
    // element of dw and db is the same sum in the same order (i = 0, 1, ...) on either path
    // here; the tape's adds the sweep's sum to the gradient dw held before it.
    const std::size_t n = ids.size();
    const bool taken = W.requires_grad && Tape<T>::onehot_grad(W, ids.data(), n, g);
    T* dw = W.requires_grad && !taken ? grad_ref(W).data() : nullptr;
    T* db = B.requires_grad ? grad_ref(B).data() : nullptr;
    if (dw && onehot_by_rows(n, in)) {  // on dwᵀ's contiguous rows
      T* dwt = onehot_scratch<T>(in * out);
      blas::transpose(out, in, dw, dwt);
      for (std::size_t i = 0; i < n; ++i) {
        add_into(dwt + static_cast<std::size_t>(ids[i]) * out, g + i * out, out);
        if (db) add_into(db, g + i * out, out);
      }
      blas::transpose(in, out, dwt, dw);
    } else if (!dw) {
      if (db)
        for (std::size_t i = 0; i < n; ++i) add_into(db, g + i * out, out);
    } else {
      // 16 rows of dw at a time, as the forward reads w.
      for (std::size_t o0 = 0; o0 < out; o0 += kOnehotTile) {
        const std::size_t o1 = std::min(out, o0 + kOnehotTile);
        for (std::size_t i = 0; i < n; ++i) {
          const T* gi = g + i * out;
          if (dw) {
            const std::size_t id = static_cast<std::size_t>(ids[i]);
            for (std::size_t o = o0; o < o1; ++o) dw[o * in + id] += gi[o];
          }
          if (db)
            for (std::size_t o = o0; o < o1; ++o) db[o] += gi[o];
        }
      }
    }
  }, detail::kReadsNothing);
}

// ---------------------------------------------------------------- reductions

// y = Σ a (0-d); da = g everywhere
template <class T>
Var<T> sum(const Var<T>& a) {
  OpRecord<T> r("sum", {&a});
  r.value().resize(Shape{});
  r.value()() = std::accumulate(a.value().begin(), a.value().end(), T(0));
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    Array<T>& g = grad_ref(A);
    const T s = n.grad.flat(0);
    for (T& v : g) v += s;
  }, detail::kReadsNothing);
}

// y = Σ_axis a (the axis removed); da = g broadcast back along the axis
template <class T>
Var<T> sum(const Var<T>& a, long axis) {
  check_live("sum", a);
  const std::size_t ax = norm_axis("sum", axis, a.shape());
  OpRecord<T> r("sum_axis", {&a});
  r.value() = xt::sum(a.value(), {ax}, xt::evaluation_strategy::immediate);
  r.save(AxisSaved{ax});
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    const std::size_t ax = saved<AxisSaved>(n).axis;
    add_grad(A, xt::broadcast(xt::expand_dims(n.grad, ax), A.value.shape()));
  }, detail::kReadsNothing);
}

// y = Σ a / N (0-d)
template <class T>
Var<T> mean(const Var<T>& a) {
  check_live("mean", a);
  require_nonempty("mean", a);
  OpRecord<T> r("mean", {&a});
  r.value().resize(Shape{});
  r.value()() = std::accumulate(a.value().begin(), a.value().end(), T(0)) / static_cast<T>(a.size());
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    Array<T>& g = grad_ref(A);
    const T s = n.grad.flat(0) / static_cast<T>(A.elements());
    for (T& v : g) v += s;
  }, detail::kReadsNothing);
}

namespace {
// f(base, stride, len) for every lane along axis `ax` of a row-major array of `shape`: the
// elements base + j·stride, j < len. Along the last axis the stride is the constant 1, so f's
// loops over a lane vectorize.
template <class S, class F>
void for_each_lane(const S& shape, std::size_t ax, F f) {
  const Blocks b = blocks(shape, ax);
  const std::size_t len = shape[ax];
  if (b.inner == 1) {
    for (std::size_t o = 0; o < b.outer; ++o) f(o * b.row, std::integral_constant<std::size_t, 1>{}, len);
    return;
  }
  for (std::size_t o = 0; o < b.outer; ++o)
    for (std::size_t i = 0; i < b.inner; ++i) f(o * b.row + i, b.inner, len);
}

// in.grad (+)= v(k) over each lane, v(k) = f(k, lane total) where total = Σ_lane t(k): the
// softmaxes' backward, one pass for the totals and one for the gradient, no temporaries.
template <class T, class Tot, class F>
void lane_grad(Node<T>& n, std::size_t ax, Tot t, F f) {
  Slot<T>& in = n.in(0);
  if (!in.requires_grad) return;
  T beta;
  T* d = in.grad_buffer(beta);
  for_each_lane(n.value.shape(), ax, [&](std::size_t base, auto st, std::size_t len) {
    T total = 0;
    for (std::size_t j = 0, k = base; j < len; ++j, k += st) total += t(k);
    if (beta == T(0)) {
      for (std::size_t j = 0, k = base; j < len; ++j, k += st) d[k] = f(k, total);
    } else {
      for (std::size_t j = 0, k = base; j < len; ++j, k += st) d[k] += f(k, total);
    }
  });
}
}  // namespace

namespace {
// softmax (log: log_softmax) of a along axis, one lane at a time from its max: y = e^(a - max)
// / Σ e^(a - max), or y = a - max - log Σ e^(a - max); the rule reads the output.
template <class T>
Var<T> softmax_op(const char* op, const Var<T>& a, long axis, bool log, BackwardFn<T> rule) {
  check_live(op, a);
  require_nonempty(op, a);
  const std::size_t ax = norm_axis(op, axis, a.shape());
  OpRecord<T> r(op, {&a});
  const T* x = a.value().data();
  T* y = r.output(a.shape()).data();
  for_each_lane(a.shape(), ax, [x, y, log](std::size_t base, auto st, std::size_t len) {
    T m = x[base];
    // (std::max(m, x[k]) would be the same; GCC kept m in memory through its reference, a stall a step)
    for (std::size_t j = 1, k = base + st; j < len; ++j, k += st) m = x[k] > m ? x[k] : m;
    T total = 0;
    // Two nested conditions, not one: clang checks a non-dependent call in a generic lambda
    // unless a condition that is false once T is known discards it.
    if constexpr (std::is_same_v<T, float>) {
      if constexpr (std::is_same_v<decltype(st), std::integral_constant<std::size_t, 1>>) {
        if (vmath::available()) {  // a lane along the last axis, contiguous: 8 or 16 exponentials at a time
          total = vmath::exp_sum(x + base, m, y + base, len);
          if (log) {
            const T lse = std::log(total);
            for (std::size_t k = base; k < base + len; ++k) y[k] = (x[k] - m) - lse;
          } else {
            for (std::size_t k = base; k < base + len; ++k) y[k] /= total;
          }
          return;
        }
      }
    }
    if (log) {
      for (std::size_t j = 0, k = base; j < len; ++j, k += st) total += std::exp(y[k] = x[k] - m);
      const T lse = std::log(total);
      for (std::size_t j = 0, k = base; j < len; ++j, k += st) y[k] -= lse;
    } else {
      for (std::size_t j = 0, k = base; j < len; ++j, k += st) total += (y[k] = std::exp(x[k] - m));
      for (std::size_t j = 0, k = base; j < len; ++j, k += st) y[k] /= total;
    }
  });
  r.save(AxisSaved{ax});
  return r.finish(rule, detail::kReadsOutput);
}
}  // namespace

// da = y ∘ (g - Σ_axis g ∘ y)
template <class T>
Var<T> softmax(const Var<T>& a, long axis) {
  return softmax_op<T>("softmax", a, axis, false, [](Node<T>& n) {
    const T* y = n.value.data();
    const T* g = n.grad.data();
    lane_grad(n, saved<AxisSaved>(n).axis, [y, g](std::size_t k) { return g[k] * y[k]; },
              [y, g](std::size_t k, T total) { return g[k] * y[k] - y[k] * total; });
  });
}

// da = g - softmax(a) ∘ Σ_axis g
template <class T>
Var<T> log_softmax(const Var<T>& a, long axis) {
  return softmax_op<T>("log_softmax", a, axis, true, [](Node<T>& n) {
    const T* y = n.value.data();
    const T* g = n.grad.data();
    lane_grad(n, saved<AxisSaved>(n).axis, [g](std::size_t k) { return g[k]; },
              [y, g](std::size_t k, T total) { return g[k] - std::exp(y[k]) * total; });
  });
}

// ---------------------------------------------------------------- shape

// Inputs joined along axis; each input's gradient is its block of g.
template <class T>
Var<T> concat(const std::vector<Var<T>>& vars, long axis) {
  if (vars.empty()) throw ValueError("concat: no inputs");
  check_live("concat", vars);
  const auto& s0 = vars[0].shape();
  const std::size_t ax = norm_axis("concat", axis, s0);
  Shape out_shape(s0.begin(), s0.end());
  out_shape[ax] = 0;
  for (const Var<T>& v : vars) {
    const auto& s = v.shape();
    bool ok = s.size() == s0.size();
    for (std::size_t d = 0; ok && d < s.size(); ++d) ok = d == ax || s[d] == s0[d];
    if (!ok)
      throw ShapeError("concat: shapes " + shape_str(s0) + " and " + shape_str(s) + " differ outside axis " +
                       std::to_string(ax));
    out_shape[ax] += s[ax];
  }
  OpRecord<T> r("concat", vars);
  Array<T>& y = r.output(out_shape);
  std::size_t offset = 0;
  for (const Var<T>& v : vars) {
    const std::size_t w = v.shape()[ax];
    xt::strided_view(y, axis_range(y.dimension(), ax, offset, offset + w)) = v.value();
    offset += w;
  }
  r.save(AxisSaved{ax});
  return r.finish([](Node<T>& n) {
    const std::size_t ax = saved<AxisSaved>(n).axis;
    if (ax == 0) return Tape<T>::grad_blocks(n);  // the inputs' blocks lie one after another
    std::size_t offset = 0;
    for (Slot<T>* in : n.inputs) {
      const std::size_t w = in->value.shape()[ax];
      add_grad(*in, xt::strided_view(n.grad, axis_range(n.grad.dimension(), ax, offset, offset + w)));
      offset += w;
    }
  }, detail::kReadsNothing);
}

template <class T>
Var<T> concat(std::initializer_list<Var<T>> vars, long axis) {
  return concat(std::vector<Var<T>>(vars), axis);
}

// y = a[..., begin:end, ...] along axis; the gradient goes back into that block
template <class T>
Var<T> slice(const Var<T>& a, long axis, long begin, long end) {
  check_live("slice", a);
  const std::size_t ax = norm_axis("slice", axis, a.shape());
  const long len = static_cast<long>(a.shape()[ax]);
  if (begin < 0 || end > len || begin >= end)
    throw IndexError("slice: range [" + std::to_string(begin) + ", " + std::to_string(end) + ") along axis " +
                     std::to_string(ax) + " does not fit shape " + shape_str(a.shape()));
  OpRecord<T> r("slice", {&a});
  Shape s(a.shape().begin(), a.shape().end());
  s[ax] = static_cast<std::size_t>(end - begin);
  r.output(s);
  // Row-major: `outer` blocks of len·inner elements; the slice keeps [begin·inner, end·inner) of each.
  const Blocks bl = blocks(a.shape(), ax);
  const std::size_t keep = s[ax] * bl.inner, from = static_cast<std::size_t>(begin) * bl.inner;
  const T* src = a.value().data();
  T* dst = r.value().data();
  for (std::size_t o = 0; o < bl.outer; ++o) std::copy(src + o * bl.row + from, src + o * bl.row + from + keep, dst + o * keep);
  r.save(SliceSaved{ax, static_cast<std::size_t>(begin), static_cast<std::size_t>(end)});
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    const SliceSaved sv = saved<SliceSaved>(n);
    const Blocks bl = blocks(A.value.shape(), sv.axis);
    const std::size_t keep = (sv.end - sv.begin) * bl.inner, from = sv.begin * bl.inner;
    T* g = grad_ref(A).data();
    const T* src = n.grad.data();
    for (std::size_t o = 0; o < bl.outer; ++o) add_into(g + o * bl.row + from, src + o * keep, keep);
  }, detail::kReadsNothing);
}

// y = a[index] along axis 0: a contiguous block of a
template <class T>
Var<T> select(const Var<T>& a, long index) {
  check_live("select", a);
  if (a.dim() == 0) throw ShapeError("select: needs at least one axis, got a 0-d value");
  const long len = static_cast<long>(a.shape()[0]);
  if (index < 0 || index >= len)
    throw IndexError("select: index " + std::to_string(index) + " out of range for shape " + shape_str(a.shape()));
  Shape s(a.shape().begin() + 1, a.shape().end());
  const std::size_t block = a.size() / a.shape()[0];
  OpRecord<T> r("select", {&a});
  r.output(s);
  const T* src = a.value().data() + static_cast<std::size_t>(index) * block;
  std::copy(src, src + block, r.value().data());
  r.save(SelectSaved{static_cast<std::size_t>(index)});
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    add_into(grad_ref(A).data() + saved<SelectSaved>(n).index * n.elements(), n.grad.data(), n.elements());
  }, detail::kReadsNothing);
}

// y[i] = vars[i], a new axis 0
template <class T>
Var<T> stack(const std::vector<Var<T>>& vars) {
  if (vars.empty()) throw ValueError("stack: no inputs");
  check_live("stack", vars);
  const auto& s0 = vars[0].shape();
  for (const Var<T>& v : vars)
    if (!detail::shapes_equal(v.shape(), s0))
      throw ShapeError("stack: shapes " + shape_str(s0) + " and " + shape_str(v.shape()) + " differ");
  Shape s{vars.size()};
  s.insert(s.end(), s0.begin(), s0.end());
  const std::size_t block = vars[0].size();
  OpRecord<T> r("stack", vars);
  r.output(s);
  for (std::size_t i = 0; i < vars.size(); ++i)
    std::copy(vars[i].value().begin(), vars[i].value().end(), r.value().data() + i * block);
  return r.finish([](Node<T>& n) { Tape<T>::grad_blocks(n); }, detail::kReadsNothing);
}

template <class T>
Var<T> stack(std::initializer_list<Var<T>> vars) {
  return stack(std::vector<Var<T>>(vars));
}

// Same elements, new shape
template <class T>
Var<T> reshape(const Var<T>& a, const Shape& shape) {
  check_live("reshape", a);
  const std::size_t n = std::accumulate(shape.begin(), shape.end(), std::size_t(1), std::multiplies<>());
  if (n != a.size())
    throw ShapeError("reshape: cannot reshape " + shape_str(a.shape()) + " (" + std::to_string(a.size()) +
                     " elements) to " + shape_str(shape));
  OpRecord<T> r("reshape", {&a});
  r.output(shape);
  std::copy(a.value().begin(), a.value().end(), r.value().data());
  return r.finish([](Node<T>& n) { Tape<T>::grad_blocks(n); }, detail::kReadsNothing);
}

// y = aᵀ for a matrix
template <class T>
Var<T> transpose(const Var<T>& a) {
  check_live("transpose", a);
  if (a.dim() != 2) throw ShapeError("transpose: needs a matrix, got shape " + shape_str(a.shape()));
  OpRecord<T> r("transpose", {&a});
  xt::noalias(r.output(a.shape())) = xt::transpose(a.value());
  return r.finish([](Node<T>& n) { add_grad(n.in(0), xt::transpose(n.grad)); }, detail::kReadsNothing);
}

// y[i] = table[ids[i]]; the gradient rows are added back into the picked rows
template <class T>
Var<T> embedding(const Var<T>& table, const std::vector<int>& ids) {
  check_live("embedding", table);
  if (table.dim() != 2) throw ShapeError("embedding: table must be a matrix, got shape " + shape_str(table.shape()));
  const std::size_t rows = table.shape()[0], dim = table.shape()[1];
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= rows)
      throw IndexError("embedding: id " + std::to_string(ids[i]) + " (position " + std::to_string(i) +
                       ") outside the table's " + std::to_string(rows) + " rows");
  OpRecord<T> r("embedding", {&table});
  r.output(Shape{ids.size(), dim});
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const T* src = table.value().data() + static_cast<std::size_t>(ids[i]) * dim;
    std::copy(src, src + dim, r.value().data() + i * dim);
  }
  if (r.needs_backward()) r.node()->saved_ids = ids;
  return r.finish([](Node<T>& n) {
    Slot<T>& W = n.in(0);
    if (!W.requires_grad) return;
    const std::vector<int>& ids = n.saved_ids;
    const std::size_t dim = W.value.shape()[1];
    T* g = grad_ref(W).data();
    for (std::size_t i = 0; i < ids.size(); ++i)
      add_into(g + static_cast<std::size_t>(ids[i]) * dim, n.grad.data() + i * dim, dim);
  }, detail::kReadsNothing);
}

#define XGRAD_OPS_INSTANTIATE(T)                                                \
  template Var<T> add(const Var<T>&, const Var<T>&);                            \
  template Var<T> sub(const Var<T>&, const Var<T>&);                            \
  template Var<T> mul(const Var<T>&, const Var<T>&);                            \
  template Var<T> div(const Var<T>&, const Var<T>&);                            \
  template Var<T> neg(const Var<T>&);                                           \
  template Var<T> affine(const Var<T>&, T, T);                                  \
  template Var<T> rdiv(T, const Var<T>&);                                       \
  template Var<T> tanh(const Var<T>&);                                          \
  template Var<T> sigmoid(const Var<T>&);                                       \
  template Var<T> relu(const Var<T>&);                                          \
  template Var<T> exp(const Var<T>&);                                           \
  template Var<T> log(const Var<T>&);                                           \
  template Var<T> square(const Var<T>&);                                        \
  template Var<T> sqrt(const Var<T>&);                                          \
  template Var<T> matmul(const Var<T>&, const Var<T>&);                         \
  template Var<T> matmul_nt(const Var<T>&, const Var<T>&);                      \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);          \
  template Var<T> addmm_nt(const Var<T>&, const Var<T>&, const Var<T>&);        \
  template Var<T> linear_onehot(const std::vector<int>&, const Var<T>&, const Var<T>&); \
  template Var<T> sum(const Var<T>&);                                           \
  template Var<T> sum(const Var<T>&, long);                                     \
  template Var<T> mean(const Var<T>&);                                          \
  template Var<T> softmax(const Var<T>&, long);                                 \
  template Var<T> log_softmax(const Var<T>&, long);                             \
  template Var<T> concat(const std::vector<Var<T>>&, long);                     \
  template Var<T> concat(std::initializer_list<Var<T>>, long);                  \
  template Var<T> slice(const Var<T>&, long, long, long);                       \
  template Var<T> select(const Var<T>&, long);                                  \
  template Var<T> stack(const std::vector<Var<T>>&);                            \
  template Var<T> stack(std::initializer_list<Var<T>>);                         \
  template Var<T> reshape(const Var<T>&, const Shape&);                         \
  template Var<T> transpose(const Var<T>&);                                     \
  template Var<T> embedding(const Var<T>&, const std::vector<int>&);
XGRAD_OPS_INSTANTIATE(float)
XGRAD_OPS_INSTANTIATE(double)

}  // namespace xgrad
