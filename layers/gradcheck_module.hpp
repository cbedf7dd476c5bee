// Gradient check of a whole model: every parameter of a Module<double> by central finite
// differences against backward().
//
//   nn::Linear<double> fc(4, 3);
//   auto loss_fn = [&] { return cross_entropy(fc(x), targets); };
//   GradcheckResult r = gradcheck(fc, loss_fn);               // every element of every parameter
//   EXPECT_TRUE(r.ok) << r.report();  // "gradcheck passed: worst element is weight[2, 1] (...)"
//   gradcheck(big_model, loss_fn, GradcheckOptions().max_elements(50).seed(3));  // a sample
//
// loss_fn() builds the graph from the module's current parameter values and returns the scalar
// loss; it is called once recording (for backward()) and twice per checked element under a
// NoGradGuard, with that element moved by ±eps. It must be deterministic: put a model with
// dropout in eval() mode (a loss that differs between two calls at the same parameters is a
// ValueError, not a silent failure).
//
// The result is autograd/gradcheck.hpp's: the worst element over all parameters, with
// `name` the parameter's dotted name from named_parameters(), `input` its position in that list,
// `index` the flat index and `position` the multi-index in the parameter's shape, the analytic
// and numeric derivatives and error = |analytic − numeric| / max(1, |analytic|, |numeric|);
// ok when error ≤ tolerance.
//
// What it leaves as it found it: every parameter's value, exactly (each element is restored to
// its bits after its two evaluations, also when loss_fn throws), and every parameter's gradient
// (saved first, zeroed for the check's own backward(), then put back), so a check in the middle
// of gradient accumulation changes nothing. The recording call's graph stays on this thread's
// tape until the next clear_tape(), like any forward. A parameter registered twice (shared
// between sub-modules) is checked once, under its first name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "../autograd/gradcheck.hpp"
#include "../autograd/options.hpp"
#include "module.hpp"

namespace xgrad {

// Options of gradcheck(module, loss_fn), with chained setters: GradcheckOptions().eps(1e-5).
struct GradcheckOptions {
  // The finite-difference step.
  XGRAD_OPTION(GradcheckOptions, double, eps, 1e-6)
  // The largest error that passes (the convention of gradcheck(f, inputs)).
  XGRAD_OPTION(GradcheckOptions, double, tolerance, 1e-6)
  // At most this many elements per parameter, drawn without replacement (0: every element);
  // the same elements for the same seed and shapes.
  XGRAD_OPTION(GradcheckOptions, std::size_t, max_elements, 0)
  // Seed of that draw.
  XGRAD_OPTION(GradcheckOptions, std::uint64_t, seed, 0)
};

GradcheckResult gradcheck(const nn::Module<double>& module, const std::function<Var<double>()>& loss_fn,
                          const GradcheckOptions& options = GradcheckOptions());

}  // namespace xgrad
