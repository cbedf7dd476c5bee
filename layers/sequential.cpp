#include "sequential.hpp"

#include <cxxabi.h>

#include <cstdlib>

namespace xgrad::nn {

namespace {

// "xgrad::nn::Linear<double>" for a type, readable in an error message.
std::string type_name(const std::type_info& t) {
  int status = 0;
  char* s = abi::__cxa_demangle(t.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && s != nullptr ? s : t.name();
  std::free(s);
  return name;
}

}  // namespace

template <class T>
Function<T>::Function(Fn f) : f_(std::move(f)) {
  if (!f_) throw ValueError("Function: the function is empty");
}

template <class T>
Function<T>& Sequential<T>::add(typename Function<T>::Fn f) {
  if (!f) throw ValueError("Sequential: add() got an empty function (step " + std::to_string(size()) + ")");
  return add(std::make_unique<Function<T>>(std::move(f)));
}

template <class T>
Var<T> Sequential<T>::forward(const Var<T>& x) const {
  Var<T> y = x;
  for (const Step& s : steps_) y = s.forward(y);
  return y;
}

template <class T>
std::size_t Sequential<T>::checked(std::size_t i) const {
  if (i >= steps_.size())
    throw IndexError("Sequential: index " + std::to_string(i) + " is outside [0, " + std::to_string(steps_.size()) +
                     ") (" + std::to_string(steps_.size()) + " step(s))");
  return i;
}

template <class T>
void Sequential<T>::append(std::unique_ptr<Module<T>> module, std::function<Var<T>(const Var<T>&)> forward) {
  this->register_module(std::to_string(steps_.size()), *module);
  steps_.push_back({std::move(module), std::move(forward)});
}

template <class T>
void Sequential<T>::throw_wrong_type(std::size_t i, const std::type_info& wanted) const {
  const Module<T>& m = *steps_[i].module;
  throw ValueError("Sequential: step " + std::to_string(i) + " is a " + type_name(typeid(m)) + ", not a " +
                   type_name(wanted));
}

template class Function<float>;
template class Function<double>;
template class Sequential<float>;
template class Sequential<double>;

}  // namespace xgrad::nn
