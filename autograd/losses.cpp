#include "losses.hpp"

#include <algorithm>
#include <cmath>

#include "record.hpp"

namespace xgrad {

using detail::check_live;
using detail::grad_ref;
using detail::OpRecord;

// loss = -1/N Σ_i log softmax(x_i)[t_i]; dx_i = g/N · (softmax(x_i) - onehot(t_i)).
// Saved for the backward pass: the softmax of each row (saved_array) and the targets (saved_ids).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int>& targets) {
  check_live("cross_entropy", logits);
  if (logits.dim() < 2)
    throw ShapeError("cross_entropy: logits must be (N, C) or (..., C), got shape " + shape_str(logits.shape()));
  const std::size_t C = logits.shape()[logits.dim() - 1];
  if (logits.size() == 0) throw ValueError("cross_entropy: empty logits of shape " + shape_str(logits.shape()));
  const std::size_t N = logits.size() / C;
  if (targets.size() != N)
    throw ShapeError("cross_entropy: " + std::to_string(targets.size()) + " targets for logits of shape " +
                     shape_str(logits.shape()));
  for (std::size_t i = 0; i < N; ++i)
    if (targets[i] < 0 || static_cast<std::size_t>(targets[i]) >= C)
      throw IndexError("cross_entropy: class id " + std::to_string(targets[i]) + " (row " + std::to_string(i) +
                       ") outside the logits' " + std::to_string(C) + " classes");
  OpRecord<T> r("cross_entropy", {&logits});
  Array<T> scratch;
  Array<T>& p = r.needs_backward() ? r.node()->saved_array : scratch;
  p.resize({N, C});  // the softmax, one row per position
  const T* x = logits.value().data();
  double total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const T* row = x + i * C;
    T* prow = p.data() + i * C;
    const T mx = *std::max_element(row, row + C);
    T s = 0;
    for (std::size_t c = 0; c < C; ++c) {
      prow[c] = std::exp(row[c] - mx);
      s += prow[c];
    }
    const T inv = T(1) / s;
    for (std::size_t c = 0; c < C; ++c) prow[c] *= inv;
    total -= static_cast<double>(row[targets[i]] - mx - std::log(s));
  }
  r.value().resize(Shape{});
  r.value()() = static_cast<T>(total / static_cast<double>(N));
  if (r.needs_backward()) r.node()->saved_ids = targets;
  return r.finish([](Node<T>& n) {
    const Array<T>& softmax = n.saved_array;  // (N, C)
    const std::vector<int>& targets = n.saved_ids;
    Slot<T>& X = n.in(0);
    const std::size_t N = softmax.shape()[0], C = softmax.shape()[1];
    const T scale = n.grad.flat(0) / static_cast<T>(N);
    T* g = grad_ref(X).data();
    const T* p = softmax.data();
    for (std::size_t i = 0; i < N; ++i) {
      for (std::size_t c = 0; c < C; ++c) g[i * C + c] += scale * p[i * C + c];
      g[i * C + static_cast<std::size_t>(targets[i])] -= scale;
    }
  });
}

namespace {

template <class T>
void check_shapes_equal(const char* op, const Var<T>& a, const Var<T>& b) {
  check_live(op, a, b);
  if (!detail::shapes_equal(a.shape(), b.shape()))
    throw ShapeError(std::string(op) + ": shapes differ: " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  if (a.size() == 0) throw ValueError(std::string(op) + ": empty inputs of shape " + shape_str(a.shape()));
}

template <class T>
T clamped_log(T v) {
  return std::max(std::log(v), T(-100));
}

}  // namespace

// loss = -1/N Σ t·log p + (1 - t)·log(1 - p)
// dp = g/N · (p - t) / max(p(1 - p), ε);  dt = -g/N · (log p - log(1 - p))
template <class T>
Var<T> binary_cross_entropy(const Var<T>& probs, const Var<T>& targets) {
  check_shapes_equal("binary_cross_entropy", probs, targets);
  for (T v : probs.value())
    if (!(v >= T(0) && v <= T(1)))
      throw ValueError("binary_cross_entropy: probabilities must lie in [0, 1], got " + std::to_string(v));
  OpRecord<T> r("binary_cross_entropy", {&probs, &targets});
  const T* p = probs.value().data();
  const T* t = targets.value().data();
  const std::size_t n = probs.size();
  double total = 0;
  for (std::size_t i = 0; i < n; ++i)
    total -= static_cast<double>(t[i] * clamped_log(p[i]) + (T(1) - t[i]) * clamped_log(T(1) - p[i]));
  r.value().resize(Shape{});
  r.value()() = static_cast<T>(total / static_cast<double>(n));
  return r.finish([](Node<T>& nd) {
    Slot<T>& P = nd.in(0);
    Slot<T>& Tg = nd.in(1);
    const std::size_t n = P.value.size();
    const T scale = nd.grad.flat(0) / static_cast<T>(n);
    const T* p = P.value.data();
    const T* t = Tg.value.data();
    if (P.requires_grad) {
      T* g = grad_ref(P).data();
      for (std::size_t i = 0; i < n; ++i)
        g[i] += scale * (p[i] - t[i]) / std::max(p[i] * (T(1) - p[i]), T(1e-12));
    }
    if (Tg.requires_grad) {
      T* g = grad_ref(Tg).data();
      for (std::size_t i = 0; i < n; ++i) g[i] -= scale * (clamped_log(p[i]) - clamped_log(T(1) - p[i]));
    }
  });
}

// loss = 1/N Σ (a - b)²; da = 2g/N · (a - b), db = -da
template <class T>
Var<T> mse_loss(const Var<T>& a, const Var<T>& b) {
  check_shapes_equal("mse_loss", a, b);
  OpRecord<T> r("mse_loss", {&a, &b});
  const T* x = a.value().data();
  const T* y = b.value().data();
  const std::size_t n = a.size();
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) total += static_cast<double>((x[i] - y[i]) * (x[i] - y[i]));
  r.value().resize(Shape{});
  r.value()() = static_cast<T>(total / static_cast<double>(n));
  return r.finish([](Node<T>& nd) {
    Slot<T>& A = nd.in(0);
    Slot<T>& B = nd.in(1);
    const std::size_t n = A.value.size();
    const T scale = T(2) * nd.grad.flat(0) / static_cast<T>(n);
    const T* x = A.value.data();
    const T* y = B.value.data();
    if (A.requires_grad) {
      T* g = grad_ref(A).data();
      for (std::size_t i = 0; i < n; ++i) g[i] += scale * (x[i] - y[i]);
    }
    if (B.requires_grad) {
      T* g = grad_ref(B).data();
      for (std::size_t i = 0; i < n; ++i) g[i] -= scale * (x[i] - y[i]);
    }
  });
}

template Var<float> cross_entropy(const Var<float>&, const std::vector<int>&);
template Var<double> cross_entropy(const Var<double>&, const std::vector<int>&);
template Var<float> binary_cross_entropy(const Var<float>&, const Var<float>&);
template Var<double> binary_cross_entropy(const Var<double>&, const Var<double>&);
template Var<float> mse_loss(const Var<float>&, const Var<float>&);
template Var<double> mse_loss(const Var<double>&, const Var<double>&);

}  // namespace xgrad
