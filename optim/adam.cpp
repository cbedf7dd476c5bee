#include "adam.hpp"

#include <algorithm>
#include <cmath>

#include "../autograd/parallel.hpp"

namespace xgrad::optim {

namespace {

// One Adam update of elements [begin, end): the lerp of the first moment as PyTorch writes it,
// the second moment, then the step (AMSGrad keeps the largest second moment seen).
template <bool kAmsgrad, class T>
void adam_elements(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax,
                   std::size_t begin, std::size_t end, T wd, T shrink, T c1, T beta2, T c2, T step_size,
                   T bc2_sqrt, T eps) {
  for (std::size_t j = begin; j < end; ++j) {
    const T d = g[j] + wd * p[j];
    const T pj = p[j] * shrink;
    const T mj = m[j] + c1 * (d - m[j]);
    const T vj = beta2 * v[j] + c2 * d * d;
    m[j] = mj;
    v[j] = vj;
    T vhat = vj;
    if constexpr (kAmsgrad) vhat = vmax[j] = std::max(vmax[j], vj);
    p[j] = pj - step_size * mj / (std::sqrt(vhat) / bc2_sqrt + eps);
  }
}

}  // namespace

template <class T>
Adam<T>::Adam(std::vector<Var<T>> params, double lr, const AdamOptions& o) : Adam(std::move(params), lr, o, false) {}

template <class T>
Adam<T>::Adam(std::vector<Var<T>> params, double lr, const AdamOptions& o, bool decoupled)
    : Optimizer<T>(std::move(params), lr), options_(o), decoupled_(decoupled) {
  const char* what = kind();
  check_option(o.beta1() >= 0 && o.beta1() < 1, what, "beta1", "in [0, 1)", o.beta1());
  check_option(o.beta2() >= 0 && o.beta2() < 1, what, "beta2", "in [0, 1)", o.beta2());
  check_option(o.eps() >= 0, what, "eps", ">= 0", o.eps());
  check_option(o.weight_decay() >= 0, what, "weight_decay", ">= 0", o.weight_decay());
  exp_avg_ = this->add_buffer("exp_avg");
  exp_avg_sq_ = this->add_buffer("exp_avg_sq");
  if (o.amsgrad()) max_exp_avg_sq_ = this->add_buffer("max_exp_avg_sq");
}

template <class T>
void Adam<T>::update() {
  const double t = double(this->step_count());
  const double b1 = options_.beta1(), b2 = options_.beta2();
  const T step_size = T(this->lr() / (1 - std::pow(b1, t)));
  const T bc2_sqrt = T(std::sqrt(1 - std::pow(b2, t)));
  const T eps = T(options_.eps()), c1 = T(1 - b1), beta2 = T(b2), c2 = T(1 - b2);
  const T wd = decoupled_ ? T(0) : T(options_.weight_decay());
  const T shrink = decoupled_ ? T(1 - this->lr() * options_.weight_decay()) : T(1);
  const bool amsgrad = options_.amsgrad();
  const auto& params = this->params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    T* p = params[i].mutable_value().data();
    const T* g = params[i].mutable_grad().data();
    T* m = this->buffer(exp_avg_, i).data();
    T* v = this->buffer(exp_avg_sq_, i).data();
    T* vmax = amsgrad ? this->buffer(max_exp_avg_sq_, i).data() : nullptr;
    // Each element on its own: a large parameter's elements are split over the threads. The
    // two loops (with and without AMSGrad) have no branch inside and restrict-qualified
    // pointers, so the compiler vectorises them, square root included (-fno-math-errno).
    parallel::parallel_for(params[i].size(), parallel::kElementwiseGrain, [&](std::size_t begin, std::size_t end) {
      if (amsgrad)
        adam_elements<true>(p, g, m, v, vmax, begin, end, wd, shrink, c1, beta2, c2, step_size, bc2_sqrt, eps);
      else
        adam_elements<false>(p, g, m, v, vmax, begin, end, wd, shrink, c1, beta2, c2, step_size, bc2_sqrt, eps);
    });
  }
}

template <class T>
AdamW<T>::AdamW(std::vector<Var<T>> params, double lr, const AdamWOptions& o)
    : Adam<T>(std::move(params), lr,
              AdamOptions().betas(o.beta1(), o.beta2()).eps(o.eps()).weight_decay(o.weight_decay()).amsgrad(o.amsgrad()),
              true) {}

template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;

}  // namespace xgrad::optim
