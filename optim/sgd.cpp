#include "sgd.hpp"

namespace xgrad::optim {

template <class T>
SGD<T>::SGD(std::vector<Var<T>> params, double lr, const SGDOptions& o) : Optimizer<T>(std::move(params), lr), options_(o) {
  check_option(o.momentum() >= 0, "SGD", "momentum", ">= 0", o.momentum());
  check_option(o.weight_decay() >= 0, "SGD", "weight_decay", ">= 0", o.weight_decay());
  if (o.nesterov() && (o.momentum() <= 0 || o.dampening() != 0))
    throw ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum " +
                     std::to_string(o.momentum()) + ", dampening " + std::to_string(o.dampening()));
  if (o.momentum() != 0) momentum_buffer_ = this->add_buffer("momentum_buffer");
}

template <class T>
void SGD<T>::update() {
  const T lr = T(this->lr()), wd = T(options_.weight_decay()), mu = T(options_.momentum());
  const T keep = T(1 - options_.dampening());
  const bool first = this->step_count() == 1, nesterov = options_.nesterov();
  const auto& params = this->params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    T* p = params[i].mutable_value().data();
    const T* g = params[i].mutable_grad().data();
    const std::size_t n = params[i].size();
    if (mu == T(0)) {
      for (std::size_t j = 0; j < n; ++j) p[j] -= lr * (g[j] + wd * p[j]);
      continue;
    }
    T* b = this->buffer(momentum_buffer_, i).data();
    for (std::size_t j = 0; j < n; ++j) {
      const T d = g[j] + wd * p[j];
      b[j] = first ? d : mu * b[j] + keep * d;
      p[j] -= lr * (nesterov ? d + mu * b[j] : b[j]);
    }
  }
}

template class SGD<float>;
template class SGD<double>;

}  // namespace xgrad::optim
