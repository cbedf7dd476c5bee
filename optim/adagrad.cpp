#include "adagrad.hpp"

#include <cmath>

namespace xgrad::optim {

template <class T>
Adagrad<T>::Adagrad(std::vector<Var<T>> params, double lr, const AdagradOptions& o)
    : Optimizer<T>(std::move(params), lr), options_(o) {
  check_option(o.lr_decay() >= 0, "Adagrad", "lr_decay", ">= 0", o.lr_decay());
  check_option(o.weight_decay() >= 0, "Adagrad", "weight_decay", ">= 0", o.weight_decay());
  check_option(o.initial_accumulator_value() >= 0, "Adagrad", "initial_accumulator_value", ">= 0",
               o.initial_accumulator_value());
  check_option(o.eps() >= 0, "Adagrad", "eps", ">= 0", o.eps());
  sum_ = this->add_buffer("sum");
  for (std::size_t i = 0; i < this->params().size(); ++i) this->buffer(sum_, i).fill(T(o.initial_accumulator_value()));
}

template <class T>
void Adagrad<T>::update() {
  const T clr = T(this->lr() / (1 + double(this->step_count() - 1) * options_.lr_decay()));
  const T wd = T(options_.weight_decay()), eps = T(options_.eps());
  const bool inside = options_.eps_inside_sqrt();
  const auto& params = this->params();
  for (std::size_t i = 0; i < params.size(); ++i) {
    T* p = params[i].mutable_value().data();
    const T* g = params[i].mutable_grad().data();
    T* s = this->buffer(sum_, i).data();
    const std::size_t n = params[i].size();
    for (std::size_t j = 0; j < n; ++j) {
      const T d = g[j] + wd * p[j];
      s[j] += d * d;
      p[j] -= clr * d / (inside ? std::sqrt(s[j] + eps) : std::sqrt(s[j]) + eps);
    }
  }
}

template class Adagrad<float>;
template class Adagrad<double>;

}  // namespace xgrad::optim
