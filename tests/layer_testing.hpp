// Helpers for the layer tests: random arrays, relative error, and a finite-difference check of
// a module's parameter gradients through xgrad::gradcheck.
#pragma once

#include "testing.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace xgrad::testing {

// Normal(0, scale) entries from a generator of its own.
template <class T = double>
Array<T> randn(const Shape& shape, std::mt19937_64& gen, double scale = 1.0) {
  Array<T> a = Array<T>::from_shape(shape);
  std::normal_distribution<double> d(0.0, scale);
  for (T& v : a) v = static_cast<T>(d(gen));
  return a;
}

// The shape of a Var or an array as a Shape, for EXPECT_EQ(shape_of(y), (Shape{m, n})).
template <class V>
Shape shape_of(const V& v) {
  return Shape(v.shape().begin(), v.shape().end());
}

// max|a − b| / max(max|a|, max|b|); 0 when both are zero. Shapes must agree (else +inf).
template <class A, class B>
double rel_error(const A& a, const B& b) {
  if (a.size() != b.size() || !std::equal(a.shape().begin(), a.shape().end(), b.shape().begin())) return INFINITY;
  double diff = 0, mag = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = a.flat(i), y = b.flat(i);
    diff = std::max(diff, std::abs(x - y));
    mag = std::max({mag, std::abs(x), std::abs(y)});
  }
  return mag == 0 ? 0 : diff / mag;
}

// Checks, with xgrad::gradcheck, the gradient of loss(inputs) with respect to the inputs and to
// every parameter of `module`. gradcheck perturbs its own copies of the parameters, so f copies
// them into the module before each evaluation; on the recording pass f back-propagates the
// module's loss itself and returns value(L) + Σ_j ⟨v_j − value(v_j), ∂L/∂p_j⟩, whose gradient
// with respect to v_j is exactly the module's autodiff gradient of p_j.
template <class M>
GradcheckResult gradcheck_module(M& module, const std::vector<Array<double>>& inputs,
                                 const std::function<Var<double>(const std::vector<Var<double>>&)>& loss) {
  const std::vector<Var<double>> params = module.parameters();
  const std::size_t n_in = inputs.size();
  std::vector<Array<double>> all = inputs;
  for (const auto& p : params) all.push_back(p.value());
  auto f = [&](const std::vector<Var<double>>& v) -> Var<double> {
    for (std::size_t j = 0; j < params.size(); ++j) params[j].set_value(v[n_in + j].value());
    const std::vector<Var<double>> in(v.begin(), v.begin() + static_cast<long>(n_in));
    if (!grad_enabled()) return loss(in);
    module.zero_grad();
    Var<double> l = loss(in);
    l.backward();
    Var<double> out = constant(Array<double>(l.value()));
    for (std::size_t j = 0; j < params.size(); ++j) {
      const Var<double>& vj = v[n_in + j];
      out = out + sum((vj - constant(Array<double>(vj.value()))) * constant(Array<double>(params[j].grad())));
    }
    return out;
  };
  return gradcheck(f, all);
}

// ⟨y, w⟩ for a fixed random w: a scalar whose gradient with respect to y is w.
inline Var<double> project(const Var<double>& y, std::uint64_t seed = 99) {
  std::mt19937_64 gen(seed);
  Shape s(y.shape().begin(), y.shape().end());
  return sum(y * constant(randn(s, gen)));
}

}  // namespace xgrad::testing

