#include "losses.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ops_detail.hpp"
#include "parallel.hpp"
#include "record.hpp"
#include "vmath.hpp"

namespace xgrad {

using detail::check_live;
using detail::grad_ref;
using detail::OpRecord;
using detail::saved;

namespace {

// What cross_entropy saves beside the softmax (saved_array) and the targets (saved_ids, −1 for
// an ignored row).
struct CrossEntropySaved {
  double smoothing;
  double counted;  // rows not ignored
  Reduction reduction;
};

// Row i's loss −(1 − ε)·log p[t_i] − ε/C·Σ_c log p[c], p = softmax(x_i), for the rows whose
// target is not *ignore (no row is ignored when ignore is null); reduced by `reduction`.
// dx_i = s_i · (p − (1 − ε)·onehot(t_i) − ε/C) with s_i = g / counted (mean), g (sum), g_i (none),
// and 0 for an ignored row.
template <class T>
Var<T> cross_entropy_rows(const Var<T>& logits, const std::vector<int>& targets, const long* ignore,
                          Reduction reduction, double smoothing) {
  check_live("cross_entropy", logits);
  if (logits.dim() < 2)
    throw ShapeError("cross_entropy: logits must be (N, C) or (..., C), got shape " + shape_str(logits.shape()));
  const std::size_t C = logits.shape()[logits.dim() - 1];
  if (logits.size() == 0) throw ValueError("cross_entropy: empty logits of shape " + shape_str(logits.shape()));
  const std::size_t N = logits.size() / C;
  if (targets.size() != N)
    throw ShapeError("cross_entropy: " + std::to_string(targets.size()) + " targets for logits of shape " +
                     shape_str(logits.shape()));
  if (!(smoothing >= 0 && smoothing < 1))
    throw ValueError("cross_entropy: label_smoothing must lie in [0, 1), got " + detail::num_str(smoothing));
  if (reduction != Reduction::mean && reduction != Reduction::sum && reduction != Reduction::none)
    throw ValueError("cross_entropy: unknown reduction " + std::to_string(static_cast<int>(reduction)));
  std::size_t counted = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (ignore && targets[i] == *ignore) continue;
    if (targets[i] < 0 || static_cast<std::size_t>(targets[i]) >= C)
      throw IndexError("cross_entropy: class id " + std::to_string(targets[i]) + " (row " + std::to_string(i) +
                       ") outside the logits' " + std::to_string(C) + " classes");
    ++counted;
  }
  OpRecord<T> r("cross_entropy", {&logits});
  Array<T> scratch;
  Array<T>& p = r.needs_backward() ? r.node()->saved_array : scratch;
  p.resize({N, C});  // the softmax, one row per position
  Array<T>& y = r.value();
  if (reduction == Reduction::none)
    y.resize(Shape(logits.shape().begin(), logits.shape().end() - 1));
  else
    y.resize(Shape{});
  const T* x = logits.value().data();
  const double eps = smoothing;
  // Rows in parallel blocks, each row's loss kept and summed in row order afterwards, so the
  // result does not depend on the thread count.
  std::vector<double> losses(N);
  parallel::parallel_for(N, parallel::kElementwiseGrain / C + 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const T* row = x + i * C;
      T* prow = p.data() + i * C;
      double loss = 0;
      if (!(ignore && targets[i] == *ignore)) {
        const T mx = *std::max_element(row, row + C);
        T s = 0;
        bool done = false;
        if constexpr (std::is_same_v<T, float>) {
          if (vmath::available()) {  // 8 or 16 exponentials at a time
            s = vmath::exp_sum(row, mx, prow, C);
            done = true;
          }
        }
        if (!done)
          for (std::size_t c = 0; c < C; ++c) s += (prow[c] = std::exp(row[c] - mx));
        const T inv = T(1) / s;
        for (std::size_t c = 0; c < C; ++c) prow[c] *= inv;
        const double log_s = static_cast<double>(std::log(s));
        loss = log_s - static_cast<double>(row[targets[i]] - mx);
        if (eps > 0) {
          double shifted_sum = 0;  // Σ_c (x_c − max)
          for (std::size_t c = 0; c < C; ++c) shifted_sum += static_cast<double>(row[c] - mx);
          loss = (1 - eps) * loss + eps * (log_s - shifted_sum / static_cast<double>(C));
        }
      }
      losses[i] = loss;
    }
  });
  double total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    if (reduction == Reduction::none) y.data()[i] = static_cast<T>(losses[i]);
    total += losses[i];
  }
  if (reduction == Reduction::mean) y() = static_cast<T>(counted > 0 ? total / static_cast<double>(counted) : 0.0);
  if (reduction == Reduction::sum) y() = static_cast<T>(total);
  if (r.needs_backward()) {
    std::vector<int>& ids = r.node()->saved_ids;
    ids = targets;
    if (ignore)
      for (int& t : ids)
        if (t == *ignore) t = -1;
  }
  r.save(CrossEntropySaved{smoothing, static_cast<double>(counted), reduction});
  return r.finish([](Node<T>& n) {
    const Array<T>& softmax = n.saved_array;  // (N, C)
    const std::vector<int>& targets = n.saved_ids;
    const CrossEntropySaved cs = saved<CrossEntropySaved>(n);
    Slot<T>& X = n.in(0);
    const std::size_t N = softmax.shape()[0], C = softmax.shape()[1];
    const bool per_row = cs.reduction == Reduction::none;
    const T scale = per_row ? T(1)
                    : cs.reduction == Reduction::sum ? n.grad.flat(0)
                    : cs.counted > 0 ? n.grad.flat(0) / static_cast<T>(cs.counted) : T(0);
    const T on = static_cast<T>(1 - cs.smoothing), off = static_cast<T>(cs.smoothing / static_cast<double>(C));
    T* g = grad_ref(X).data();
    const T* p = softmax.data();
    parallel::parallel_for(N, parallel::kElementwiseGrain / C + 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) {
        if (targets[i] < 0) continue;
        const T s = per_row ? n.grad.data()[i] : scale;
        for (std::size_t c = 0; c < C; ++c) g[i * C + c] += s * (p[i * C + c] - off);
        g[i * C + static_cast<std::size_t>(targets[i])] -= s * on;
      }
    });
  }, detail::kReadsNothing);
}

}  // namespace

// loss = -1/N Σ_i log softmax(x_i)[t_i]; dx_i = g/N · (softmax(x_i) - onehot(t_i)).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int>& targets) {
  return cross_entropy_rows(logits, targets, nullptr, Reduction::mean, 0.0);
}

template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int>& targets, const CrossEntropyOptions& options) {
  const long ignore = options.ignore_index();
  return cross_entropy_rows(logits, targets, &ignore, options.reduction(), options.label_smoothing());
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
    const std::size_t n = P.elements();
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
    const std::size_t n = A.elements();
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
template Var<float> cross_entropy(const Var<float>&, const std::vector<int>&, const CrossEntropyOptions&);
template Var<double> cross_entropy(const Var<double>&, const std::vector<int>&, const CrossEntropyOptions&);
template Var<float> binary_cross_entropy(const Var<float>&, const Var<float>&);
template Var<double> binary_cross_entropy(const Var<double>&, const Var<double>&);
template Var<float> mse_loss(const Var<float>&, const Var<float>&);
template Var<double> mse_loss(const Var<double>&, const Var<double>&);

}  // namespace xgrad
