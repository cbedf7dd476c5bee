#include "gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace xgrad {

std::string GradcheckResult::report() const {
  std::ostringstream os;
  os << (ok ? "gradcheck passed" : "gradcheck FAILED") << ": worst element is input " << input << " index " << index
     << ": analytic " << analytic << ", numeric " << numeric << ", error " << error;
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

  auto eval = [&]() {
    NoGradGuard no_grad;
    return f(vars).value().flat(0);
  };
  GradcheckResult result;
  result.error = -1;
  for (std::size_t i = 0; i < vars.size(); ++i) {
    Array<double>& x = vars[i].mutable_value();
    const Array<double>& g = vars[i].grad();
    for (std::size_t k = 0; k < x.size(); ++k) {
      const double saved = x.flat(k);
      x.flat(k) = saved + eps;
      const double up = eval();
      x.flat(k) = saved - eps;
      const double down = eval();
      x.flat(k) = saved;
      const double numeric = (up - down) / (2 * eps);
      const double analytic = g.flat(k);
      const double err = std::abs(analytic - numeric) / std::max({1.0, std::abs(analytic), std::abs(numeric)});
      if (err > result.error || std::isnan(err)) {
        result.error = std::isnan(err) ? INFINITY : err;
        result.input = i;
        result.index = k;
        result.analytic = analytic;
        result.numeric = numeric;
      }
    }
  }
  if (result.error < 0) result.error = 0;
  result.ok = result.error <= tolerance;
  return result;
}

}  // namespace xgrad
