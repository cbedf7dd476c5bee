#include "gradcheck_module.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace xgrad {

namespace {

// `count` distinct flat indices of [0, n), ascending, drawn by a partial Fisher–Yates shuffle
// from a generator of their own (std::mt19937_64 and % are the same on every platform).
std::vector<std::size_t> sample_elements(std::size_t n, std::size_t count, std::uint64_t seed) {
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t{0});
  std::mt19937_64 gen(seed);
  for (std::size_t j = 0; j < count; ++j) std::swap(all[j], all[j + gen() % (n - j)]);
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

// The scalar loss_fn returns, checked to be one.
Var<double> scalar_loss(const std::function<Var<double>()>& loss_fn) {
  Var<double> loss = loss_fn();
  if (!loss.defined()) throw ValueError("gradcheck: loss_fn returned an empty Var");
  if (loss.size() != 1)
    throw ValueError("gradcheck: loss_fn must return a scalar loss, got shape " + shape_str(loss.shape()));
  return loss;
}

// Puts every parameter's gradient back as it was, however the check ends.
struct RestoreGrads {
  const std::vector<Var<double>>& params;
  std::vector<Array<double>> saved;
  ~RestoreGrads() {
    for (std::size_t i = 0; i < saved.size(); ++i) params[i].mutable_grad() = std::move(saved[i]);
  }
};

}  // namespace

GradcheckResult gradcheck(const nn::Module<double>& module, const std::function<Var<double>()>& loss_fn,
                          const GradcheckOptions& options) {
  if (!(options.eps() > 0))
    throw ValueError("gradcheck: eps must be positive, got " + std::to_string(options.eps()));
  if (!(options.tolerance() >= 0))
    throw ValueError("gradcheck: tolerance must be non-negative, got " + std::to_string(options.tolerance()));
  std::vector<std::string> names;
  std::vector<Var<double>> params;
  std::unordered_set<const void*> seen;
  for (const auto& [name, p] : module.named_parameters()) {
    if (!seen.insert(p.leaf().get()).second) continue;  // shared: checked under its first name
    names.push_back(name);
    params.push_back(p);
  }
  if (params.empty()) throw ValueError("gradcheck: the module has no parameters");

  RestoreGrads restore{params, {}};
  for (const auto& p : params) {
    restore.saved.push_back(p.grad());
    p.zero_grad();
  }
  Var<double> loss = scalar_loss(loss_fn);
  if (!loss.requires_grad())
    throw ValueError("gradcheck: the loss loss_fn returns does not depend on any parameter of the module");
  const double recorded = loss.value().flat(0);
  loss.backward();
  std::vector<Array<double>> analytic;
  for (const auto& p : params) analytic.push_back(p.grad());

  auto eval = [&] {
    NoGradGuard no_grad;
    return scalar_loss(loss_fn).value().flat(0);
  };
  const double again = eval();
  if (!(std::abs(again - recorded) <= 1e-12 * std::max(1.0, std::abs(recorded)))) {
    std::ostringstream msg;
    msg.precision(17);
    msg << "gradcheck: loss_fn gave " << recorded << " and then " << again
        << " at the same parameters; it must be deterministic (dropout: call eval() on the module first)";
    throw ValueError(msg.str());
  }

  std::vector<std::vector<std::size_t>> elements(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::size_t n = params[i].size();
    const std::size_t cap = options.max_elements();
    if (cap == 0 || n <= cap) {
      elements[i].resize(n);
      std::iota(elements[i].begin(), elements[i].end(), std::size_t{0});
    } else {
      elements[i] = sample_elements(n, cap, options.seed() + 0x9E3779B97F4A7C15ull * (i + 1));
    }
  }
  GradcheckResult result =
      detail::compare_finite_differences(params, analytic, eval, elements, options.eps(), options.tolerance());
  result.name = names[result.input];
  return result;
}

}  // namespace xgrad
