// Gradient checking by central finite differences, in double.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "var.hpp"

namespace xgrad {

struct GradcheckResult {
  bool ok = true;
  // The worst element over all inputs.
  std::size_t input = 0;  // which input (of a module: which parameter, in named_parameters() order)
  std::size_t index = 0;  // flat index into it
  Shape position;         // the same element's multi-index in the input's shape
  std::string name;       // the parameter's dotted name (gradcheck of a module), else empty
  double analytic = 0;
  double numeric = 0;
  // |analytic - numeric| / max(1, |analytic|, |numeric|): relative above magnitude 1, absolute below.
  double error = 0;
  std::size_t checked = 0;  // elements compared
  std::string report() const;
};

// Compares the gradient of the scalar f(inputs) from backward() with (f(x + eps) - f(x - eps)) / 2eps
// for every element of every input. f receives the inputs as parameters.
GradcheckResult gradcheck(const std::function<Var<double>(const std::vector<Var<double>>&)>& f,
                          const std::vector<Array<double>>& inputs, double eps = 1e-6, double tolerance = 1e-6);

namespace detail {

// The comparison every gradcheck makes: for each element k of vars[i] (a parameter), the value
// moved to x ± eps (and restored exactly afterwards, also when loss() throws), numeric =
// (loss(x + eps) − loss(x − eps)) / 2eps against analytic[i].flat(k); the worst element. Every
// element of every var, or when `elements` is not empty only the flat indices elements[i] of vars[i].
GradcheckResult compare_finite_differences(const std::vector<Var<double>>& vars,
                                           const std::vector<Array<double>>& analytic,
                                           const std::function<double()>& loss,
                                           const std::vector<std::vector<std::size_t>>& elements, double eps,
                                           double tolerance);

}  // namespace detail

}  // namespace xgrad
