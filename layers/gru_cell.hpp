// GRUCell: one GRU step in PyTorch's convention, gate blocks r, z, n:
//   [xr xz xn] = x·Wxᵀ + bx,   [ar az an] = a_prev·Waᵀ + ba      (m, 3·n_a)
//   r = σ(xr + ar),  z = σ(xz + az),  n = tanh(xn + r∘an)
//   a_next = (1 − z)∘n + z∘a_prev                                 (m, n_a)
// The reset gate multiplies the hidden projection including its bias, so PyTorch's
// weight_ih, weight_hh, bias_ih, bias_hh carry over as Wx, Wa, bx, ba.
#pragma once

#include <cstddef>

#include "../autograd/ops.hpp"
#include "module.hpp"

namespace xgrad::nn {

template <class T>
class GRUCell : public Module<T> {
 public:
  // Wx (3·n_a, n_x), Wa (3·n_a, n_a), bx (3·n_a), ba (3·n_a), drawn uniformly from ±1/√n_a.
  GRUCell(std::size_t n_x, std::size_t n_a);

  // x (m, n_x), a_prev (m, n_a) -> a_next (m, n_a).
  Var<T> forward(const Var<T>& x, const Var<T>& a_prev) const;
  Var<T> forward(const Var<T>& x) const;
  Var<T> operator()(const Var<T>& x, const Var<T>& a_prev) const { return forward(x, a_prev); }
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

  // forward() split in two: input_projection(x) = x·Wxᵀ + bx   x (N, n_x) -> (N, 3·n_a);
  // step(px, a_prev) does the rest   px (m, 3·n_a).
  Var<T> input_projection(const Var<T>& x) const;
  // The same for one-hot inputs given by their ids (N): the columns of Wx picked by id, plus bx.
  Var<T> input_projection(const std::vector<int>& ids) const;
  Var<T> step(const Var<T>& px, const Var<T>& a_prev) const;
  Var<T> zero_state(std::size_t m) const;

  std::size_t input_size() const { return n_x_; }
  std::size_t hidden_size() const { return n_a_; }

  Var<T> Wx;  // (3·n_a, n_x), row blocks r, z, n
  Var<T> Wa;  // (3·n_a, n_a)
  Var<T> bx;  // (3·n_a)
  Var<T> ba;  // (3·n_a)

 private:
  std::size_t n_x_, n_a_;
};

}  // namespace xgrad::nn
