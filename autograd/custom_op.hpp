// Custom ops: a differentiable op written in the user's own code, recorded on the tape like a
// built-in one (no-grad, DetectAnomaly, to_dot, gradcheck and per-thread tapes all apply).
//
//   // softplus(x) = log(1 + eˣ); d/dx = σ(x) = 1 / (1 + e⁻ˣ)
//   Var<double> y = xgrad::custom_op<double>("softplus", {x},
//       [](const auto& in) { return xgrad::Array<double>(xt::log1p(xt::exp(in[0]))); },
//       [](const auto& grad, const auto& in, const auto& out) {
//         return std::vector<xgrad::Array<double>>{grad / (1.0 + xt::exp(-in[0]))}; });
//
// forward(in) returns the output value (anything an Array<T> is built from). in[i] is input
// i's value, a const Array<T>&, and in.size() the number of inputs.
// backward(grad, in, out) returns one array per input, in order: the loss's gradient with
// respect to input i, of input i's shape. grad is the loss's gradient with respect to the output
// (out's shape) and out the output value, both const Array<T>&. For an input it does not
// differentiate it returns an array with no elements, xgrad::no_gradient<T>() (a
// default-constructed Array<T> is 0-d with one element, a gradient of shape ()).
//
// What is recorded, and when:
// - forward runs first, before anything is recorded: if it throws, the tape is unchanged. A
//   stale input (its tape was cleared) is a StaleHandleError naming the op, before forward runs.
// - Under a NoGradGuard only forward runs and nothing is kept: the result is a constant.
// - Otherwise the op is one node of this thread's tape, and the tape keeps a copy of backward
//   (with whatever it captured: constants, saved arrays) and of the name until clear_tape(),
//   which frees them. Capture by value what backward reads; a captured reference must outlive
//   the tape's generation.
// - backward runs during backward() on the thread that recorded the op, once per sweep, only
//   when some input requires a gradient (it may run again if backward() is called again on the
//   same graph: it must not consume what it captured). Its results are checked before any is
//   used: a wrong count or a wrong shape is a ShapeError naming the op, the input and both shapes.
// - The name appears where a built-in op's would: DetectAnomaly's errors, to_dot's nodes,
//   stale-handle errors.
// Check a custom op's backward against finite differences with gradcheck (autograd/gradcheck.hpp).
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "var.hpp"

namespace xgrad {

// The inputs' values a custom op's forward and backward read: in[i] is input i's value.
template <class T>
class CustomOpInputs {
 public:
  CustomOpInputs(Slot<T>* const* slots, std::size_t n) : slots_(slots), n_(n) {}
  const Array<T>& operator[](std::size_t i) const { return slots_[i]->value; }
  // in[i] after checking i (an IndexError naming the count).
  const Array<T>& at(std::size_t i) const;
  std::size_t size() const { return n_; }

 private:
  Slot<T>* const* slots_;
  std::size_t n_;
};

// What a custom op's backward returns for an input it does not differentiate: no elements.
template <class T>
Array<T> no_gradient() {
  return Array<T>::from_shape({0});
}

namespace detail {

// A custom op's backward and name, kept by the tape while the op's node is in use.
template <class T>
class CustomBackward {
 public:
  explicit CustomBackward(std::string name) : name_(std::move(name)) {}
  virtual ~CustomBackward() = default;
  const std::string& name() const { return name_; }
  virtual std::vector<Array<T>> run(const Array<T>& grad, const CustomOpInputs<T>& in, const Array<T>& out) const = 0;

 private:
  std::string name_;
};

template <class T, class F>
class CustomBackwardOf final : public CustomBackward<T> {
 public:
  template <class G>
  CustomBackwardOf(std::string name, G&& fn) : CustomBackward<T>(std::move(name)), fn_(std::forward<G>(fn)) {}
  std::vector<Array<T>> run(const Array<T>& grad, const CustomOpInputs<T>& in, const Array<T>& out) const override {
    return fn_(grad, in, out);
  }

 private:
  F fn_;
};

// The inputs' slots, after checking each handle is live (StaleHandleError naming `op`) and,
// when recording, on this thread's tape.
template <class T>
std::vector<Slot<T>*> custom_op_inputs(const char* op, const std::vector<Var<T>>& inputs);

// Records the op (or, under no-grad, returns the value as a constant). `backward` is null
// exactly when not recording; `op` is its name, or the caller's name when not recording.
template <class T>
Var<T> record_custom_op(const char* op, const std::vector<Var<T>>& inputs, Array<T> value,
                        std::shared_ptr<CustomBackward<T>> backward);

}  // namespace detail

// The output of the op `name` on `inputs`: forward(in) with backward(grad, in, out) recorded
// for it (see the top of this file).
template <class T, class Forward, class Backward>
Var<T> custom_op(std::string name, const std::vector<Var<T>>& inputs, Forward&& forward, Backward&& backward) {
  const std::vector<Slot<T>*> slots = detail::custom_op_inputs(name.c_str(), inputs);
  const CustomOpInputs<T> in(slots.data(), slots.size());
  Array<T> value = std::forward<Forward>(forward)(in);
  std::shared_ptr<detail::CustomBackward<T>> kept;
  if (grad_enabled())
    kept = std::make_shared<detail::CustomBackwardOf<T, std::decay_t<Backward>>>(std::move(name),
                                                                                  std::forward<Backward>(backward));
  const char* op = kept ? kept->name().c_str() : name.c_str();
  return detail::record_custom_op(op, inputs, std::move(value), std::move(kept));
}

// custom_op<T>("name", {a, b}, ...) and, without naming T, custom_op("name", {a, b}, ...).
template <class T, class Forward, class Backward>
Var<T> custom_op(std::string name, std::initializer_list<Var<T>> inputs, Forward&& forward, Backward&& backward) {
  return custom_op(std::move(name), std::vector<Var<T>>(inputs), std::forward<Forward>(forward),
                   std::forward<Backward>(backward));
}

}  // namespace xgrad
