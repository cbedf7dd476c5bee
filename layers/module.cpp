#include "module.hpp"

namespace xgrad::nn {

template <class T>
Array<T> uniform(const Shape& shape, double bound) {
  Array<T> a = Array<T>::from_shape(shape);
  std::uniform_real_distribution<double> dist(-bound, bound);
  auto& gen = generator();
  for (T& v : a) v = static_cast<T>(dist(gen));
  return a;
}

template <class T>
std::vector<Var<T>> Module<T>::parameters() const {
  std::vector<Var<T>> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

template <class T>
std::vector<std::pair<std::string, Var<T>>> Module<T>::named_parameters() const {
  std::vector<std::pair<std::string, Var<T>>> out;
  collect("", out);
  return out;
}

template <class T>
void Module<T>::collect(const std::string& prefix, std::vector<std::pair<std::string, Var<T>>>& out) const {
  for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

template <class T>
void Module<T>::zero_grad() const {
  for (const auto& p : parameters()) p.zero_grad();
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

template <class T>
Var<T> Module<T>::register_parameter(const std::string& name, Array<T> value) {
  for (const auto& [n, p] : params_)
    if (n == name) throw ValueError("register_parameter: a parameter named '" + name + "' already exists");
  Var<T> p = param(std::move(value));
  params_.emplace_back(name, p);
  return p;
}

template <class T>
void Module<T>::register_module(const std::string& name, Module<T>& child) {
  for (const auto& [n, c] : children_)
    if (n == name) throw ValueError("register_module: a sub-module named '" + name + "' already exists");
  children_.emplace_back(name, &child);
}

template class Module<float>;
template class Module<double>;
template Array<float> uniform(const Shape&, double);
template Array<double> uniform(const Shape&, double);

}  // namespace xgrad::nn
