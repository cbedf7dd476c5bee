// Adagrad, PyTorch's torch.optim.Adagrad rule. With g = grad + weight_decay·p and
// clr = lr / (1 + (t − 1)·lr_decay) at step t:
//   s += g²;   p −= clr·g / (√s + eps)
// Defaults as PyTorch: eps 1e-10, lr_decay 0, initial_accumulator_value 0.
// eps_inside_sqrt(true) gives min-char-rnn's own form, p −= lr·g / √(s + eps) (it uses eps 1e-8).
#pragma once

#include "optimizer.hpp"

namespace xgrad::optim {

struct AdagradOptions {
  XGRAD_OPTION(AdagradOptions, double, lr_decay, 0.0)
  XGRAD_OPTION(AdagradOptions, double, weight_decay, 0.0)
  XGRAD_OPTION(AdagradOptions, double, initial_accumulator_value, 0.0)
  XGRAD_OPTION(AdagradOptions, double, eps, 1e-10)
  XGRAD_OPTION(AdagradOptions, bool, eps_inside_sqrt, false)
};

template <class T>
class Adagrad : public Optimizer<T> {
 public:
  Adagrad(std::vector<Var<T>> params, double lr = 1e-2, const AdagradOptions& options = {});
  const char* kind() const override { return "Adagrad"; }
  const AdagradOptions& options() const { return options_; }

 protected:
  void update() override;

 private:
  AdagradOptions options_;
  std::size_t sum_ = 0;
};

}  // namespace xgrad::optim
