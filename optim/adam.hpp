// Adam and AdamW, PyTorch's torch.optim.Adam / AdamW rules. At step t, with g = grad
// (+ weight_decay·p for Adam; AdamW instead first decays p ← p·(1 − lr·weight_decay)):
//   m = β1·m + (1 − β1)·g;   v = β2·v + (1 − β2)·g²
//   amsgrad: v̂ = max(v̂, v), else v̂ = v
//   p −= lr/(1 − β1ᵗ) · m / (√v̂ / √(1 − β2ᵗ) + eps)
// Defaults as PyTorch: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (AdamW 1e-2).
#pragma once

#include "optimizer.hpp"

namespace xgrad::optim {

// The options Adam and AdamW share; Self is AdamOptions or AdamWOptions.
template <class Self>
struct AdamFamilyOptions {
  Self& betas(double b1, double b2) { return beta1(b1).beta2(b2); }
  XGRAD_OPTION(Self, double, beta1, 0.9)
  XGRAD_OPTION(Self, double, beta2, 0.999)
  XGRAD_OPTION(Self, double, eps, 1e-8)
  XGRAD_OPTION(Self, bool, amsgrad, false)
};

struct AdamOptions : AdamFamilyOptions<AdamOptions> {
  XGRAD_OPTION(AdamOptions, double, weight_decay, 0.0)
};

struct AdamWOptions : AdamFamilyOptions<AdamWOptions> {
  XGRAD_OPTION(AdamWOptions, double, weight_decay, 1e-2)
};

template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Var<T>> params, double lr = 1e-3, const AdamOptions& options = {});
  const char* kind() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return options_; }

 protected:
  // decoupled: AdamW's weight decay.
  Adam(std::vector<Var<T>> params, double lr, const AdamOptions& options, bool decoupled);
  void update() override;

 private:
  AdamOptions options_;
  bool decoupled_;
  std::size_t exp_avg_ = 0, exp_avg_sq_ = 0, max_exp_avg_sq_ = 0;
};

template <class T>
class AdamW : public Adam<T> {
 public:
  AdamW(std::vector<Var<T>> params, double lr = 1e-3, const AdamWOptions& options = {});
};

}  // namespace xgrad::optim
