// Module: named parameters and sub-modules, train/eval, and the random source for initialisation.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/random.hpp"
#include "../autograd/var.hpp"

namespace xgrad::nn {

// An array of `shape` drawn uniformly from [-bound, bound] with generator().
template <class T>
Array<T> uniform(const Shape& shape, double bound);

template <class T>
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Sub-modules are registered by address: a module is neither copied nor moved.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its sub-modules, in registration order.
  std::vector<Var<T>> parameters() const;
  // The same with dotted names: "layers.0.Wax", "fc.weight".
  std::vector<std::pair<std::string, Var<T>>> named_parameters() const;
  void zero_grad() const;
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // The direct sub-modules with their registered names, in registration order.
  std::vector<std::pair<std::string, const Module*>> named_children() const {
    return {children_.begin(), children_.end()};
  }

 protected:
  Var<T> register_parameter(const std::string& name, Array<T> value);
  // `child` must live as long as this module (a member, or owned through a unique_ptr member).
  void register_module(const std::string& name, Module<T>& child);

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Var<T>>>& out) const;

  std::vector<std::pair<std::string, Var<T>>> params_;
  std::vector<std::pair<std::string, Module<T>*>> children_;
  bool training_ = true;
};

}  // namespace xgrad::nn
