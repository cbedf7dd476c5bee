#include "gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace xgrad {

std::string GradcheckResult::report() const {
  std::ostringstream os;
  std::string at = "[";
  for (std::size_t d = 0; d < position.size(); ++d) at += (d ? ", " : "") + std::to_string(position[d]);
  at += "]";
  os << (ok ? "gradcheck passed" : "gradcheck FAILED") << ": worst element is ";
  if (name.empty())
    os << "input " << input << " index " << index << " " << at;
  else
    os << name << at << " (parameter " << input << ", flat index " << index << ")";
  os << ": analytic " << analytic << ", numeric " << numeric << ", error " << error << " (" << checked
     << " elements checked)";
  return os.str();
}

GradcheckResult gradcheck(const std::function<Var<double>(const std::vector<Var<double>>&)>& f,
                          const std::vector<Array<double>>& inputs, double eps, double tolerance) {
  std::vector<Var<double>> vars;
  for (const auto& x : inputs) vars.push_back(param(x));
  Var<double> loss = f(vars);
  if (loss.size() != 1)
    throw ValueError("gradcheck: f must return a scalar, got shape " + shape_str(loss.shape()));
  loss.backward();

  std::vector<Array<double>> analytic;
  for (const auto& v : vars) analytic.push_back(v.grad());
  auto eval = [&]() {
    NoGradGuard no_grad;
    return f(vars).value().flat(0);
  };
  return detail::compare_finite_differences(vars, analytic, eval, {}, eps, tolerance);
}

namespace detail {

GradcheckResult compare_finite_differences(const std::vector<Var<double>>& vars,
                                           const std::vector<Array<double>>& analytic,
                                           const std::function<double()>& loss,
                                           const std::vector<std::vector<std::size_t>>& elements, double eps,
                                           double tolerance) {
  GradcheckResult result;
  result.error = -1;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    // Every write takes mutable_value() anew, which marks the value changed (Leaf::version).
    const Array<double>& x = vars[i].value();
    const Array<double>& g = analytic[i];
    const std::size_t n = elements.empty() ? x.size() : elements[i].size();
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t k = elements.empty() ? j : elements[i][j];
      const double saved = x.flat(k);
      struct Restore {  // the exact value back, also when loss() throws
        const Var<double>& var;
        std::size_t k;
        double value;
        void set(double v) const { var.mutable_value().flat(k) = v; }
        ~Restore() { set(value); }
      } restore{vars[i], k, saved};
      restore.set(saved + eps);
      const double up = loss();
      restore.set(saved - eps);
      const double down = loss();
      restore.set(saved);
      const double numeric = (up - down) / (2 * eps);
      const double analytic_k = g.flat(k);
      const double err =
          std::abs(analytic_k - numeric) / std::max({1.0, std::abs(analytic_k), std::abs(numeric)});
      ++result.checked;
      if (err > result.error || std::isnan(err)) {
        result.error = std::isnan(err) ? INFINITY : err;
        result.input = i;
        result.index = k;
        result.analytic = analytic_k;
        result.numeric = numeric;
      }
    }
  }
  if (result.error < 0) result.error = 0;
  if (result.checked > 0) {
    // The flat index as a multi-index, last axis fastest.
    const auto& shape = vars[result.input].shape();
    result.position.assign(shape.size(), 0);
    std::size_t rest = result.index;
    for (std::size_t d = shape.size(); d-- > 0;) {
      result.position[d] = rest % shape[d];
      rest /= shape[d];
    }
  }
  result.ok = result.error <= tolerance;
  return result;
}

}  // namespace detail

}  // namespace xgrad
