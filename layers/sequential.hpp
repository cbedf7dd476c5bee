// Sequential: modules applied one after another, as PyTorch's nn.Sequential:
//   nn::Sequential<float> mlp;
//   mlp.emplace<nn::Linear<float>>(4, 8);                        // step 0
//   mlp.add([](const Var<float>& x) { return relu(x); });        // step 1, no parameters
//   mlp.add(std::make_unique<nn::Linear<float>>(8, 2));          // step 2
//   Var<float> y = mlp(x);                                       // Linear(relu(Linear(x)))
// Each step is a sub-module named by its position, so the parameters are "0.weight", "0.bias",
// "2.weight", "2.bias", in the order of the steps (PyTorch's state_dict names). train() and
// eval() reach every step. With no steps, forward(x) is x.
//
// A step is any Module<T> with a unary forward(const Var<T>&) returning Var<T> (Linear,
// LayerNorm, Dropout, Function, another Sequential, a module of your own); its type is erased
// when it is added, and get<M>(i) gives it back typed. A module without one (a cell, whose
// forward returns a state; a sequence layer, which returns a result; Embedding, which reads
// ids) is a compile error at add(): wrap it in a module whose forward(const Var<T>&) picks out
// the Var wanted.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "module.hpp"

namespace xgrad::nn {

// Whether M& has forward(const Var<T>&) whose result converts to Var<T>: what Sequential needs.
template <class M, class T, class = void>
struct has_unary_forward : std::false_type {};
template <class M, class T>
struct has_unary_forward<M, T, std::void_t<decltype(std::declval<M&>().forward(std::declval<const Var<T>&>()))>>
    : std::is_convertible<decltype(std::declval<M&>().forward(std::declval<const Var<T>&>())), Var<T>> {};
template <class M, class T>
inline constexpr bool has_unary_forward_v = has_unary_forward<M, T>::value;

// A function Var<T> -> Var<T> as a module without parameters: relu, tanh, a reshape, a lambda.
template <class T>
class Function : public Module<T> {
 public:
  using Fn = std::function<Var<T>(const Var<T>&)>;
  // f must not be empty (else ValueError).
  explicit Function(Fn f);

  Var<T> forward(const Var<T>& x) const { return f_(x); }
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

 private:
  Fn f_;
};

template <class T>
class Sequential : public Module<T> {
 public:
  Sequential() = default;

  // Appends a module, taking ownership; returns it. A null pointer is a ValueError.
  template <class M>
  M& add(std::unique_ptr<M> module);
  // Appends a module built in place from args: emplace<Linear<T>>(4, 8).
  template <class M, class... Args>
  M& emplace(Args&&... args) {
    return add(std::make_unique<M>(std::forward<Args>(args)...));
  }
  // Appends a function step (a Function module): add([](const Var<T>& x) { return relu(x); }).
  Function<T>& add(typename Function<T>::Fn f);

  // x -> the last step's output: step_{k−1}(... step_1(step_0(x))).
  Var<T> forward(const Var<T>& x) const;
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

  std::size_t size() const { return steps_.size(); }
  bool empty() const { return steps_.empty(); }
  // Step i, i in [0, size()) (else IndexError).
  Module<T>& operator[](std::size_t i) { return *steps_[checked(i)].module; }
  const Module<T>& operator[](std::size_t i) const { return *steps_[checked(i)].module; }
  // Step i as the type it was added with (a base of it also works); another type is a
  // ValueError naming both, an index outside [0, size()) an IndexError.
  template <class M>
  M& get(std::size_t i);
  template <class M>
  const M& get(std::size_t i) const {
    return const_cast<Sequential*>(this)->template get<M>(i);
  }

 private:
  struct Step {
    std::unique_ptr<Module<T>> module;
    std::function<Var<T>(const Var<T>&)> forward;  // module's own forward, typed at add()
  };
  std::size_t checked(std::size_t i) const;
  void append(std::unique_ptr<Module<T>> module, std::function<Var<T>(const Var<T>&)> forward);
  [[noreturn]] void throw_wrong_type(std::size_t i, const std::type_info& wanted) const;

  std::vector<Step> steps_;
};

template <class T>
template <class M>
M& Sequential<T>::add(std::unique_ptr<M> module) {
  static_assert(std::is_base_of_v<Module<T>, M>,
                "nn::Sequential<T>::add: a step must be an nn::Module<T> of the same T (a plain function goes in "
                "as add([](const Var<T>& x) { ... }))");
  static_assert(has_unary_forward_v<M, T>,
                "nn::Sequential<T>::add: a step needs forward(const Var<T>&) returning Var<T>; a cell (which returns "
                "a state), a sequence layer (a result) or Embedding (ids) must be wrapped in a module of your own "
                "whose forward(const Var<T>&) returns the Var wanted");
  if (!module) throw ValueError("Sequential: add() got an empty module pointer (step " + std::to_string(size()) + ")");
  M* raw = module.get();
  append(std::move(module), [raw](const Var<T>& x) -> Var<T> { return raw->forward(x); });
  return *raw;
}

template <class T>
template <class M>
M& Sequential<T>::get(std::size_t i) {
  Module<T>& m = *steps_[checked(i)].module;
  if (M* typed = dynamic_cast<M*>(&m)) return *typed;
  throw_wrong_type(i, typeid(M));
}

}  // namespace xgrad::nn
