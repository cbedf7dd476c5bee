#include "clip.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "optimizer.hpp"

namespace xgrad::optim {

template <class T>
double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm, double norm_type) {
  check_option(max_norm >= 0, "clip_grad_norm", "max_norm", ">= 0", max_norm);
  check_option(norm_type > 0, "clip_grad_norm", "norm_type", "> 0", norm_type);
  const bool inf = std::isinf(norm_type);
  double acc = 0;  // Σ|g|^p, or max|g|, in double
  for (const auto& p : params) {
    const T* g = p.mutable_grad().data();
    const std::size_t n = p.size();
    if (inf) {
      for (std::size_t j = 0; j < n; ++j) acc = std::max(acc, double(std::abs(g[j])));
    } else if (norm_type == 2.0) {
      for (std::size_t j = 0; j < n; ++j) acc += double(g[j]) * double(g[j]);
    } else {
      for (std::size_t j = 0; j < n; ++j) acc += std::pow(std::abs(double(g[j])), norm_type);
    }
  }
  const double norm = inf ? acc : (norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type));
  if (!std::isfinite(norm)) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1) {
    const T c = T(coef);
    for (const auto& p : params) {
      T* g = p.mutable_grad().data();
      const std::size_t n = p.size();
      for (std::size_t j = 0; j < n; ++j) g[j] *= c;
    }
  }
  return norm;
}

template <class T>
void clip_grad_value(const std::vector<Var<T>>& params, double limit) {
  check_option(limit >= 0, "clip_grad_value", "limit", ">= 0", limit);
  const T hi = T(limit), lo = -hi;
  for (const auto& p : params) {
    T* g = p.mutable_grad().data();
    const std::size_t n = p.size();
    for (std::size_t j = 0; j < n; ++j) g[j] = g[j] < lo ? lo : (g[j] > hi ? hi : g[j]);  // NaN stays NaN
  }
}

template double clip_grad_norm(const std::vector<Var<float>>&, double, double);
template double clip_grad_norm(const std::vector<Var<double>>&, double, double);
template void clip_grad_value(const std::vector<Var<float>>&, double);
template void clip_grad_value(const std::vector<Var<double>>&, double);

}  // namespace xgrad::optim
