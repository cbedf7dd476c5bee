// Gradient clipping, applied to the parameters' accumulated gradients between backward() and
// step().
#pragma once

#include <vector>

#include "../autograd/var.hpp"

namespace xgrad::optim {

// Scales every gradient by max_norm / (N + 1e-6) when the global norm
// N = (Σ over all parameters and elements |g|^norm_type)^(1/norm_type) exceeds max_norm
// (norm_type = infinity: N = max |g|). Returns N, the norm before clipping, as PyTorch's
// clip_grad_norm_. A non-finite N leaves the gradients unchanged (the caller may skip the step).
template <class T>
double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm, double norm_type = 2.0);

// Clamps every gradient element to [-limit, limit] (as np.clip(g, -limit, limit) does).
template <class T>
void clip_grad_value(const std::vector<Var<T>>& params, double limit);

}  // namespace xgrad::optim
