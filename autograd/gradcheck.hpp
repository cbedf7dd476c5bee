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
  std::size_t input = 0;  // which input
  std::size_t index = 0;  // flat index into it
  double analytic = 0;
  double numeric = 0;
  // |analytic - numeric| / max(1, |analytic|, |numeric|): relative above magnitude 1, absolute below.
  double error = 0;
  std::string report() const;
};

// Compares the gradient of the scalar f(inputs) from backward() with (f(x + eps) - f(x - eps)) / 2eps
// for every element of every input. f receives the inputs as parameters.
GradcheckResult gradcheck(const std::function<Var<double>(const std::vector<Var<double>>&)>& f,
                          const std::vector<Array<double>>& inputs, double eps = 1e-6, double tolerance = 1e-6);

}  // namespace xgrad
