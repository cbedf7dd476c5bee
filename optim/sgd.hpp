// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay,
// PyTorch's torch.optim.SGD rule. With g = grad + weight_decay·p:
//   step 1:  b = g                      later:  b = momentum·b + (1 − dampening)·g
//   d = g + momentum·b (Nesterov)  or  d = b  (momentum > 0)  or  d = g  (momentum = 0)
//   p −= lr·d
#pragma once

#include "optimizer.hpp"

namespace xgrad::optim {

struct SGDOptions {
  XGRAD_OPTION(SGDOptions, double, momentum, 0.0)
  XGRAD_OPTION(SGDOptions, double, dampening, 0.0)
  XGRAD_OPTION(SGDOptions, double, weight_decay, 0.0)
  XGRAD_OPTION(SGDOptions, bool, nesterov, false)
};

template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Var<T>> params, double lr, const SGDOptions& options = {});
  const char* kind() const override { return "SGD"; }
  const SGDOptions& options() const { return options_; }

 protected:
  void update() override;

 private:
  SGDOptions options_;
  std::size_t momentum_buffer_ = 0;
};

}  // namespace xgrad::optim
