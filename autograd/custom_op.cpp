#include "custom_op.hpp"

#include "record.hpp"

namespace xgrad {

template <class T>
const Array<T>& CustomOpInputs<T>::at(std::size_t i) const {
  if (i >= n_)
    throw IndexError("custom op: input " + std::to_string(i) + " asked for, but the op has " + std::to_string(n_) +
                     " inputs");
  return (*this)[i];
}

namespace detail {

namespace {

// The custom op's closure, which the tape keeps alive while the node is in use.
template <class T>
struct CustomSaved {
  const CustomBackward<T>* backward;
};

// Every gradient backward returned has its input's shape, or no elements; checked before any
// is used, so a wrong one changes no gradient.
template <class T>
void check_custom_grads(const std::string& op, const Node<T>& n, const std::vector<Array<T>>& grads) {
  if (grads.size() != n.inputs.size())
    throw ShapeError("custom op " + op + ": backward returned " + std::to_string(grads.size()) + " gradients for " +
                     std::to_string(n.inputs.size()) + " inputs (one array per input, no_gradient() for an input " +
                     "it does not differentiate)");
  for (std::size_t i = 0; i < grads.size(); ++i) {
    const auto& want = n.inputs[i]->value.shape();
    if (grads[i].size() == 0 || shapes_equal(grads[i].shape(), want)) continue;
    std::string msg = "custom op " + op + ": backward's gradient for input " + std::to_string(i) + " has shape " +
                      shape_str(grads[i].shape()) + ", but input " + std::to_string(i) + " has shape " +
                      shape_str(want);
    if (grads[i].dimension() == 0)
      msg += " (a default-constructed Array is 0-d; return no_gradient() for no gradient)";
    throw ShapeError(msg);
  }
}

}  // namespace

template <class T>
std::vector<Slot<T>*> custom_op_inputs(const char* op, const std::vector<Var<T>>& inputs) {
  std::vector<Slot<T>*> slots;
  slots.reserve(inputs.size());
  const Tape<T>* tape = grad_enabled() ? &Tape<T>::current() : nullptr;
  for (const Var<T>& v : inputs) {
    slots.push_back(&v.slot(op));
    if (tape != nullptr && v.tape() != nullptr && v.tape() != tape)
      throw Error(std::string(op) + ": an input was recorded on another thread's tape");
  }
  return slots;
}

template <class T>
Var<T> record_custom_op(const char* op, const std::vector<Var<T>>& inputs, Array<T> value,
                        std::shared_ptr<CustomBackward<T>> backward) {
  OpRecord<T> r(op, inputs);
  r.value() = std::move(value);
  if (r.node() != nullptr) {
    r.save(CustomSaved<T>{backward.get()});
    Tape<T>::current().keep(std::move(backward));  // before finish: the node names the op through it
  }
  return r.finish([](Node<T>& n) {
    const CustomBackward<T>& fn = *saved<CustomSaved<T>>(n).backward;
    const std::vector<Array<T>> grads = fn.run(n.grad, CustomOpInputs<T>(n.inputs.data(), n.inputs.size()), n.value);
    check_custom_grads(fn.name(), n, grads);
    for (std::size_t i = 0; i < grads.size(); ++i)
      if (grads[i].size() != 0) add_grad_copy(n.in(i), grads[i].data());
  });
}

#define XGRAD_CUSTOM_OP_INSTANTIATE(T)                                                                        \
  template std::vector<Slot<T>*> custom_op_inputs(const char*, const std::vector<Var<T>>&);                   \
  template Var<T> record_custom_op(const char*, const std::vector<Var<T>>&, Array<T>,                         \
                                   std::shared_ptr<CustomBackward<T>>);
XGRAD_CUSTOM_OP_INSTANTIATE(float)
XGRAD_CUSTOM_OP_INSTANTIATE(double)
#undef XGRAD_CUSTOM_OP_INSTANTIATE

}  // namespace detail

template class CustomOpInputs<float>;
template class CustomOpInputs<double>;

}  // namespace xgrad
