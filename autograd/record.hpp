// Internal to autograd/: how an op records itself, and gradient accumulation helpers.
// Every op goes through OpRecord, so no-grad, anomaly detection and the tape's bookkeeping
// live here and nowhere else.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "parallel.hpp"
#include "profile.hpp"
#include "var.hpp"
#include "vmath.hpp"

namespace xgrad::detail {

template <class A, class B>
bool shapes_equal(const A& a, const B& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// g summed over the axes along which `target` was broadcast to g's shape.
template <class T>
Array<T> sum_to(const Array<T>& g, const typename Array<T>::shape_type& target);

// The gradient buffer of s, allocated (zeros) if this sweep has not written it yet.
template <class T>
Array<T>& grad_ref(Slot<T>& s) {
  if (!s.has_grad) {
    s.fresh_grad();
    std::fill(s.grad.begin(), s.grad.end(), T(0));
  }
  return s.grad;
}

// s.grad += e, where e has the shape of the op's output; summed back to s's shape if s was
// broadcast. Writes without temporaries when the shapes agree.
template <class T, class E>
void add_grad(Slot<T>& s, const E& e) {
  if (!s.requires_grad) return;
  if (shapes_equal(e.shape(), s.value.shape())) {
    if (s.has_grad) {
      xt::noalias(s.grad) += e;
    } else {
      s.fresh_grad();
      xt::noalias(s.grad) = e;
    }
  } else {
    Array<T> full = e;
    Array<T> reduced = sum_to<T>(full, s.value.shape());
    if (s.has_grad) {
      xt::noalias(s.grad) += reduced;
    } else {
      s.grad = std::move(reduced);
      s.has_grad = true;
    }
  }
}

// f(begin, end) over [0, n) in contiguous blocks, for elementwise loops (each element written by
// one call, from inputs no call writes): on the library's threads when n holds two blocks of
// `grain` elements, else in one call on this thread. (Measured on W3's step, 2 threads:
// splitting its 8–32k-element arrays of sums and products made it 6% slower, the hand-off and
// the other core's cache costing more than the work; functions such as tanh pay at
// parallel::kFunctionGrain.) Blocks start at multiples of 64 elements, so a block of an aligned
// array is aligned and SIMD loops treat every element as they would in one pass: the results do
// not depend on the split.
template <class F>
void for_blocks(std::size_t n, F f, std::size_t grain = parallel::kElementwiseGrain) {
  constexpr std::size_t kAlign = 64;
  if (n < 2 * grain) return f(std::size_t(0), n);
  parallel::parallel_for((n + kAlign - 1) / kAlign, grain / kAlign,
                         [n, &f](std::size_t begin, std::size_t end) { f(begin * kAlign, std::min(end * kAlign, n)); });
}

// y takes a's shape (an op's output(shape) already has it), then body(pa, py, begin, end) over
// a's elements in for_blocks' blocks of `grain`, pa and py pointing at a's and y's first elements.
template <class T, class Body>
void over_blocks_of(Array<T>& y, const Array<T>& a, Body body, std::size_t grain = parallel::kElementwiseGrain) {
  if (!shapes_equal(y.shape(), a.shape())) y.resize(a.shape());
  const T* pa = a.data();
  T* py = y.data();
  for_blocks(y.size(), [pa, py, &body](std::size_t begin, std::size_t end) { body(pa, py, begin, end); }, grain);
}

// y[k] = f(a[k]) over every element of a. f is called from several threads at once for large
// arrays (for_blocks).
template <class T, class F>
void map_into(Array<T>& y, const Array<T>& a, F f) {
  over_blocks_of(y, a, [&f](const T* pa, T* py, std::size_t begin, std::size_t end) {
    for (std::size_t k = begin; k < end; ++k) py[k] = f(pa[k]);
  });
}

// y = g(x) elementwise, where g builds an xtensor expression of its argument (xt::tanh(x),
// 1 / (1 + xt::exp(-x))): xtensor's SIMD evaluation, block by block as for_blocks cuts them.
template <class T, class G>
void map_expr(Array<T>& y, const Array<T>& a, G g) {
  over_blocks_of(y, a, [&g](const T* pa, T* py, std::size_t begin, std::size_t end) {
    const std::array<std::size_t, 1> shape{end - begin};
    auto x = xt::adapt(pa + begin, end - begin, xt::no_ownership(), shape);
    auto out = xt::adapt(py + begin, end - begin, xt::no_ownership(), shape);
    xt::noalias(out) = g(x);
  });
}

// y[0, n) = g(x[0, n)) as map_expr evaluates it; in float, where the CPU runs them, by the
// vmath kernel f instead. The sigmoid and tanh ops and the LSTM ops share it, so a gate is the
// same value whichever of them computed it.
template <class T, class G>
void map_vmath_n(const T* x, T* y, std::size_t n, void (*f)(const float*, float*, std::size_t), G g) {
  if constexpr (std::is_same_v<T, float>) {
    if (vmath::available()) return f(x, y, n);
  }
  const std::array<std::size_t, 1> shape{n};
  auto in = xt::adapt(x, n, xt::no_ownership(), shape);
  auto out = xt::adapt(y, n, xt::no_ownership(), shape);
  xt::noalias(out) = g(in);
}

// y[0, n) = 1 / (1 + e^-x) and tanh(x), as the sigmoid and tanh ops compute them.
template <class T>
void sigmoid_n(const T* x, T* y, std::size_t n) {
  map_vmath_n(x, y, n, vmath::sigmoid, [](const auto& v) { return T(1) / (T(1) + xt::exp(-v)); });
}
template <class T>
void tanh_n(const T* x, T* y, std::size_t n) {
  map_vmath_n(x, y, n, vmath::tanh, [](const auto& v) { return xt::tanh(v); });
}

// s.grad (+)= f(k) for every element k, when s has the op output's shape (n elements): one pass,
// no temporary, no zero fill (a fresh buffer is written, not added to). f may be called from
// several threads at once (for_blocks): it reads, it does not write.
template <class T, class F>
void add_grad_each(Slot<T>& s, std::size_t n, F f) {
  if (!s.requires_grad) return;
  const bool add = s.has_grad;
  if (!add) s.fresh_grad();
  T* g = s.grad.data();
  for_blocks(n, [g, add, &f](std::size_t begin, std::size_t end) {
    if (add)
      for (std::size_t k = begin; k < end; ++k) g[k] += f(k);
    else
      for (std::size_t k = begin; k < end; ++k) g[k] = f(k);
  });
}

// s.grad (+)= src, src holding s.elements() elements.
template <class T>
void add_grad_copy(Slot<T>& s, const T* src) {
  add_grad_each(s, s.elements(), [src](std::size_t k) { return src[k]; });
}

// n.in(i).grad (+)= n.grad, for a rule whose gradient reaches input i unchanged (an addend, a
// reshape). When that input is a tape node without a gradient yet in this sweep, of n's
// element count, and n's gradient is not retained, the buffer itself is handed over instead of
// copied: the sweep would give it back to the pool right after the rule. So a rule calls this
// last, after every other read of n.grad; n.grad is left holding the input's old storage (or
// none), which the sweep then gives back.
template <class T>
void pass_grad(Node<T>& n, std::size_t i) {
  Slot<T>& s = n.in(i);
  if (!s.requires_grad) return;
  if (!s.has_grad && s.is_node && !n.retain && n.grad.size() == s.elements()) {
    s.grad.storage().swap(n.grad.storage());
    s.grad.resize(s.value.shape());  // the same element count: the storage stays
    s.has_grad = true;
    const std::size_t left = n.grad.storage().size();
    n.grad.resize(Shape{left});  // a shape that fits what n holds now (0: none), as the sweep expects
    return;
  }
  add_grad_copy(s, n.grad.data());
}

// What an op may save in a node's saved_bytes: a trivially copyable struct (copied with memcpy,
// no allocation) that fits.
template <class S, class T>
inline constexpr bool saveable_v = std::is_trivially_copyable_v<S> && sizeof(S) <= Node<T>::kSavedBytes;

// The small struct S that the op of node n saved with OpRecord::save. Each op names its saved
// state with its own struct (SliceSaved{axis, begin, end}), so a backward reads fields, not
// positions; the copy is a few register moves.
template <class S, class T>
S saved(const Node<T>& n) {
  static_assert(saveable_v<S, T>);
  S s;
  std::memcpy(&s, n.saved_bytes, sizeof(S));
  return s;
}

// Throws StaleHandleError naming `op` for an input whose tape was cleared. An op that reads its
// inputs (their shapes, in its checks) before constructing its OpRecord calls this first, so
// the error names the op rather than the accessor.
template <class T, class... More>
void check_live(const char* op, const Var<T>& v, const More&... more) {
  v.slot(op);
  (more.slot(op), ...);
}
template <class T>
void check_live(const char* op, const std::vector<Var<T>>& vars) {
  for (const Var<T>& v : vars) v.slot(op);
}

[[noreturn]] void throw_anomaly(const char* op, std::size_t position, const char* where,
                                const std::vector<std::string>& input_shapes);

template <class T>
bool all_finite(const Array<T>& a) {
  for (T v : a)
    if (!std::isfinite(v)) return false;
  return true;
}

// Which values an op's backward rule reads: its inputs' (bit i for input i) and its own
// output's. A value no rule reads is freed when its last handle goes (Tape::free_value), so
// an op declares the least it reads; an op that declares nothing is taken to read everything.
// A rule may always read the shapes (and elements()) of all of them.
struct Reads {
  unsigned inputs = ~0u;
  bool output = true;
};
inline constexpr Reads kReadsNothing{0u, false};
inline constexpr Reads kReadsOutput{0u, true};
constexpr Reads reads_inputs(unsigned mask, bool output = false) { return Reads{mask, output}; }

// Records one op. Construct it after the op's checks (a failed check must change nothing),
// write the output into value(), then finish() with the backward rule.
template <class T>
class OpRecord {
 public:
  OpRecord(const char* op, std::initializer_list<const Var<T>*> inputs) : op_(op), thread_(thread_state()) {
    profile_start();
    bool any = false;
    for (const Var<T>* v : inputs) any = any || v->slot(op).requires_grad;
    start(any);
    for (const Var<T>* v : inputs) add_input(*v);
  }
  OpRecord(const char* op, const std::vector<Var<T>>& inputs) : op_(op), thread_(thread_state()) {
    profile_start();
    bool any = false;
    for (const Var<T>& v : inputs) any = any || v.slot(op).requires_grad;
    start(any);
    for (const Var<T>& v : inputs) add_input(v);
  }

  Array<T>& value() { return out_->value; }
  // The output sized to `shape`, its storage taken from the tape's pool of freed values.
  Array<T>& output(const Shape& shape) {
    if (node_ != nullptr)
      tape_->size_output(out_->value, shape);
    else
      out_->value.resize(shape);
    return out_->value;
  }
  template <class S>
  Array<T>& output(const S& shape) {
    return output(Shape(shape.begin(), shape.end()));
  }
  // The node being recorded, or null when not recording (no-grad): then the op saves nothing.
  Node<T>* node() { return node_; }
  // The tape recording the op, or null when not recording.
  Tape<T>* tape() { return node_ != nullptr ? tape_ : nullptr; }
  bool needs_backward() const { return node_ != nullptr && node_->requires_grad; }
  // Keeps the op's small struct of saved state (read back with saved<S>) when recording.
  template <class S>
  void save(const S& s) {
    static_assert(saveable_v<S, T>);
    if (node_ != nullptr) std::memcpy(node_->saved_bytes, &s, sizeof(S));
  }

  Var<T> finish(BackwardFn<T> backward, Reads reads = Reads{}) {
    if (thread_.anomaly && !all_finite(out_->value)) {
      std::vector<std::string> shapes;
      std::size_t position = node_ ? tape_->size() - 1 : 0;
      if (node_)
        for (Slot<T>* s : node_->inputs) shapes.push_back(shape_str(s->value.shape()));
      throw_anomaly(op_, position, "forward value", shapes);
    }
    if (profile_ != nullptr) profile_forward(profile_, op_, start_, out_->elements() * sizeof(T));
    if (node_ == nullptr) return Var<T>(std::move(leaf_));
    node_->backward = node_->requires_grad ? backward : nullptr;
    if (node_->requires_grad) {
      for (std::size_t i = 0; i < node_->inputs.size(); ++i)
        if (i >= 32 || ((reads.inputs >> i) & 1u) != 0) node_->inputs[i]->value_read = true;
      node_->value_read = reads.output;
    }
    return Var<T>(tape_, tape_->size() - 1);
  }

 private:
  // Off, a pointer test; on, the clock starts here, after the op's checks.
  void profile_start() {
    profile_ = thread_.profile;
    if (profile_ != nullptr) start_ = ProfileClock::now();
  }
  void start(bool any_requires_grad) {
    if (!thread_.no_grad) {
      tape_ = &Tape<T>::current();
      node_ = &tape_->push(op_);
      node_->requires_grad = any_requires_grad;
      out_ = node_;
    } else {
      leaf_ = no_grad_leaf<T>();
      out_ = leaf_.get();
    }
  }
  void add_input(const Var<T>& v) {
    if (node_ == nullptr) return;
    if (v.tape() != nullptr && v.tape() != tape_)
      throw Error(std::string(op_) + ": an input was recorded on another thread's tape");
    node_->inputs.push_back(&v.slot(op_));
    node_->input_is_param.push_back(v.is_param());
    if (v.leaf()) tape_->hold(v.leaf());
  }

  const char* op_;
  // The thread's state, read once: NoGradGuard, DetectAnomaly and Profile cannot change inside an op.
  const ThreadState thread_;
  Tape<T>* tape_ = nullptr;
  Node<T>* node_ = nullptr;
  Slot<T>* out_ = nullptr;
  std::shared_ptr<Leaf<T>> leaf_;
  ProfileState* profile_ = nullptr;
  ProfileClock::time_point start_;
};

}  // namespace xgrad::detail
