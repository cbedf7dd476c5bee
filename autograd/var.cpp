#include "var.hpp"

#include <algorithm>

#include "record.hpp"

namespace xgrad {

template <class T>
const Array<T>& Var<T>::grad() const {
  Slot<T>& s = slot("grad");
  if (leaf_ == nullptr) {
    Node<T>& n = tape_->node(index_);
    if (n.released)
      throw ValueError(std::string("grad: the gradient of this intermediate value (") + n.op + ", tape position " +
                       std::to_string(index_) +
                       ") was not kept after backward(); call retain_grad() on it before backward()");
  }
  if (!s.has_grad) {
    detail::grad_ref(s);  // zeros: no gradient reached this value
    if (leaf_ == nullptr) s.has_grad = false;
  }
  return s.grad;
}

template <class T>
const Var<T>& Var<T>::retain_grad() const {
  slot("retain_grad");
  if (leaf_ == nullptr) tape_->node(index_).retain = true;
  return *this;
}

template <class T>
void Var<T>::backward() const {
  Slot<T>& s = slot("backward");
  if (s.elements() != 1)
    throw ValueError("backward: called on a value of shape " + shape_str(s.value.shape()) +
                     "; it needs a scalar (one element): reduce it first with sum or mean");
  if (!s.requires_grad)
    throw ValueError("backward: the value does not depend on any parameter, so there is no gradient");
  if (tape_ == nullptr) {  // a parameter that is itself the loss
    detail::grad_ref(s).flat(0) += T(1);
    return;
  }
  tape_->backward(index_);
}

template <class T>
Var<T> Var<T>::detach() const {
  return constant(Array<T>(slot("detach").value));
}

template <class T>
Leaf<T>& Var<T>::param_leaf(const char* what) const {
  slot(what);
  if (!is_param()) throw ValueError(std::string(what) + ": only a parameter has this (this Var is not one)");
  return *leaf_;
}

template <class T>
void Var<T>::zero_grad() const {
  Leaf<T>& l = param_leaf("zero_grad");
  std::fill(l.grad.begin(), l.grad.end(), T(0));
}

template <class T>
void Var<T>::set_value(const Array<T>& v) const {
  Leaf<T>& l = param_leaf("set_value");
  if (!detail::shapes_equal(v.shape(), l.value.shape()))
    throw ShapeError("set_value: new value has shape " + shape_str(v.shape()) + " but the parameter has shape " +
                     shape_str(l.value.shape()));
  std::copy(v.begin(), v.end(), l.value.begin());
  l.version = detail::next_leaf_version();
}

template <class T>
Array<T>& Var<T>::mutable_grad() const {
  return param_leaf("mutable_grad").grad;
}

template <class T>
Array<T>& Var<T>::mutable_value() const {
  Leaf<T>& l = param_leaf("mutable_value");
  l.version = detail::next_leaf_version();
  return l.value;
}

template <class T>
void Var<T>::throw_stale(const char* who) const {
  if (slot_ == nullptr) throw StaleHandleError(std::string(who) + ": use of an empty Var (default-constructed)");
  throw StaleHandleError(std::string(who) + ": stale handle: its tape was cleared (generation " +
                         std::to_string(generation_) + ", tape at " + std::to_string(tape_->generation()) +
                         "); keep values across clear_tape() with detach()");
}

template <class T>
Var<T> param(Array<T> value) {
  auto leaf = std::make_shared<Leaf<T>>();
  leaf->grad = xt::zeros<T>(value.shape());
  leaf->value = std::move(value);
  leaf->requires_grad = true;
  leaf->has_grad = true;
  return Var<T>(std::move(leaf));
}

template <class T>
Var<T> constant(Array<T> value) {
  auto leaf = std::make_shared<Leaf<T>>();
  leaf->value = std::move(value);
  return Var<T>(std::move(leaf));
}

template class Var<float>;
template class Var<double>;
template Var<float> param(Array<float>);
template Var<double> param(Array<double>);
template Var<float> constant(Array<float>);
template Var<double> constant(Array<double>);

}  // namespace xgrad
