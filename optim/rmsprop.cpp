#include "rmsprop.hpp"

#include <cmath>

namespace xgrad::optim {

template <class T>
RMSprop<T>::RMSprop(std::vector<Var<T>> params, double lr, const RMSpropOptions& o)
    : Optimizer<T>(std::move(params), lr), options_(o) {
  check_option(o.alpha() >= 0 && o.alpha() <= 1, "RMSprop", "alpha", "in [0, 1]", o.alpha());
  check_option(o.eps() >= 0, "RMSprop", "eps", ">= 0", o.eps());
  check_option(o.weight_decay() >= 0, "RMSprop", "weight_decay", ">= 0", o.weight_decay());
  check_option(o.momentum() >= 0, "RMSprop", "momentum", ">= 0", o.momentum());
  square_avg_ = this->add_buffer("square_avg");
  if (o.momentum() > 0) momentum_buffer_ = this->add_buffer("momentum_buffer");
  if (o.centered()) grad_avg_ = this->add_buffer("grad_avg");
}

template <class T>
void RMSprop<T>::update() {
  const T lr = T(this->lr()), alpha = T(options_.alpha()), eps = T(options_.eps());
  const T wd = T(options_.weight_decay()), mu = T(options_.momentum());
  const bool centered = options_.centered(), momentum = options_.momentum() > 0;
  const auto& params = this->params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    T* p = params[i].mutable_value().data();
    const T* g = params[i].mutable_grad().data();
    T* v = this->buffer(square_avg_, i).data();
    T* b = momentum ? this->buffer(momentum_buffer_, i).data() : nullptr;
    T* m = centered ? this->buffer(grad_avg_, i).data() : nullptr;
    const std::size_t n = params[i].size();
    for (std::size_t j = 0; j < n; ++j) {
      const T d = g[j] + wd * p[j];
      v[j] = alpha * v[j] + (1 - alpha) * d * d;
      T denom;
      if (centered) {
        m[j] += (1 - alpha) * (d - m[j]);  // lerp, as PyTorch writes it
        denom = std::sqrt(v[j] - m[j] * m[j]) + eps;
      } else {
        denom = std::sqrt(v[j]) + eps;
      }
      if (momentum) {
        b[j] = mu * b[j] + d / denom;
        p[j] -= lr * b[j];
      } else {
        p[j] -= lr * d / denom;
      }
    }
  }
}

template class RMSprop<float>;
template class RMSprop<double>;

}  // namespace xgrad::optim
