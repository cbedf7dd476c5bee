// Dropout: inverted dropout as a module, as PyTorch's nn.Dropout. In training mode each entry
// is zeroed with probability p and the survivors scaled by 1/(1 − p), so the expected value is
// unchanged; in eval mode (after eval()) the input passes through untouched. The masks come
// from nn::generator(), so a run is reproducible from nn::manual_seed().
#pragma once

#include "../autograd/nn_ops.hpp"
#include "module.hpp"

namespace xgrad::nn {

template <class T>
class Dropout : public Module<T> {
 public:
  // p in [0, 1]: the probability of zeroing an entry (p = 1 zeroes all of them, as in PyTorch).
  explicit Dropout(double p = 0.5);

  // x (any shape) -> the same shape, through the op dropout(x, p, is_training()).
  Var<T> forward(const Var<T>& x) const;
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

  double p() const { return p_; }

 private:
  double p_;
};

}  // namespace xgrad::nn
