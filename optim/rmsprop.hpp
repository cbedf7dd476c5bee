// RMSprop, PyTorch's torch.optim.RMSprop rule. With g = grad + weight_decay·p:
//   v = α·v + (1 − α)·g²
//   centered:  ḡ = α·ḡ + (1 − α)·g;  d = √(v − ḡ²) + eps       else  d = √v + eps
//   momentum > 0:  b = momentum·b + g/d;  p −= lr·b              else  p −= lr·g/d
// Defaults as PyTorch: lr 1e-2, alpha 0.99, eps 1e-8.
#pragma once

#include "optimizer.hpp"

namespace xgrad::optim {

struct RMSpropOptions {
  XGRAD_OPTION(RMSpropOptions, double, alpha, 0.99)
  XGRAD_OPTION(RMSpropOptions, double, eps, 1e-8)
  XGRAD_OPTION(RMSpropOptions, double, weight_decay, 0.0)
  XGRAD_OPTION(RMSpropOptions, double, momentum, 0.0)
  XGRAD_OPTION(RMSpropOptions, bool, centered, false)
};

template <class T>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(std::vector<Var<T>> params, double lr = 1e-2, const RMSpropOptions& options = {});
  const char* kind() const override { return "RMSprop"; }
  const RMSpropOptions& options() const { return options_; }

 protected:
  void update() override;

 private:
  RMSpropOptions options_;
  std::size_t square_avg_ = 0, momentum_buffer_ = 0, grad_avg_ = 0;
};

}  // namespace xgrad::optim
