// RNNCell: one step of the vanilla RNN of docs/design.md, in the batch-as-rows layout:
//   a_t = g(x_t·Waxᵀ + a_{t-1}·Waaᵀ + ba)      x_t (m, n_x), a (m, n_a), g = tanh or relu
#pragma once

#include <cstddef>

#include "../autograd/ops.hpp"
#include "module.hpp"

namespace xgrad::nn {

enum class Nonlinearity { tanh, relu };

template <class T>
class RNNCell : public Module<T> {
 public:
  // Wax (n_a, n_x), Waa (n_a, n_a), ba (n_a), drawn uniformly from ±1/√n_a as in PyTorch.
  RNNCell(std::size_t n_x, std::size_t n_a, Nonlinearity nonlinearity = Nonlinearity::tanh);

  // x (m, n_x), a_prev (m, n_a) -> a_next (m, n_a).
  Var<T> forward(const Var<T>& x, const Var<T>& a_prev) const;
  // The same from a zero state.
  Var<T> forward(const Var<T>& x) const;
  Var<T> operator()(const Var<T>& x, const Var<T>& a_prev) const { return forward(x, a_prev); }
  Var<T> operator()(const Var<T>& x) const { return forward(x); }

  // forward() split in two, so a sequence layer projects all T inputs with one GEMM:
  // input_projection(x) = x·Waxᵀ + ba   x (N, n_x) -> (N, n_a);
  // step(px, a_prev) = g(px + a_prev·Waaᵀ)   px (m, n_a), a_prev (m, n_a) -> (m, n_a).
  Var<T> input_projection(const Var<T>& x) const;
  // The same for one-hot inputs given by their ids (N): the columns of Wax picked by id, plus ba.
  Var<T> input_projection(const std::vector<int>& ids) const;
  Var<T> step(const Var<T>& px, const Var<T>& a_prev) const;
  // Zeros (m, n_a), a constant.
  Var<T> zero_state(std::size_t m) const;

  std::size_t input_size() const { return n_x_; }
  std::size_t hidden_size() const { return n_a_; }
  Nonlinearity nonlinearity() const { return nonlinearity_; }

  Var<T> Wax;  // (n_a, n_x)
  Var<T> Waa;  // (n_a, n_a)
  Var<T> ba;   // (n_a)

 private:
  std::size_t n_x_, n_a_;
  Nonlinearity nonlinearity_;
};

}  // namespace xgrad::nn
