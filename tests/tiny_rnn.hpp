// A small recurrent language model built from Module and autograd ops directly, for the
// optimizer and checkpoint tests:  a_t = tanh(x_t·Waxᵀ + a_{t-1}·Waaᵀ + ba),
// y_t = a_t·Wyaᵀ + by,  loss = mean over t of cross_entropy(y_t, targets_t).
#pragma once

#include <random>

#include <xgrad/xgrad.hpp>

namespace xgrad_test {

using namespace xgrad;

template <class T>
struct TinyRNN : nn::Module<T> {
  std::size_t n_x, n_a;
  Var<T> Wax, Waa, ba, Wya, by;

  TinyRNN(std::size_t vocab, std::size_t hidden) : n_x(vocab), n_a(hidden) {
    Wax = this->register_parameter("Wax", nn::uniform<T>({hidden, vocab}, 0.5));
    Waa = this->register_parameter("Waa", nn::uniform<T>({hidden, hidden}, 0.5));
    ba = this->register_parameter("ba", xt::zeros<T>({hidden}));
    Wya = this->register_parameter("Wya", nn::uniform<T>({vocab, hidden}, 0.5));
    by = this->register_parameter("by", xt::zeros<T>({vocab}));
  }

  // Mean cross-entropy over the batch's T steps; a (B, n_a) is the state carried in and out.
  // With input_dropout > 0, each one-hot input element is dropped with that probability using
  // nn::generator(), so the random-number state matters to the result.
  Var<T> loss(const data::SequenceBatch& b, Var<T>& a, double input_dropout = 0.0) {
    Var<T> total;
    std::bernoulli_distribution keep(1.0 - input_dropout);
    for (std::size_t t = 0; t < b.steps; ++t) {
      Array<T> x = data::one_hot<T>(b.inputs_at(t), n_x);  // (B, n_x)
      if (input_dropout > 0)
        for (auto& v : x) v *= keep(nn::generator()) ? T(1 / (1 - input_dropout)) : T(0);
      a = tanh(matmul_nt(constant(x), Wax) + matmul_nt(a, Waa) + ba);
      Var<T> ce = cross_entropy(matmul_nt(a, Wya) + by, b.targets_at(t));
      total = t == 0 ? ce : total + ce;
    }
    return total * T(1.0 / double(b.steps));
  }

  Var<T> zero_state(std::size_t batch) const { return constant(Array<T>(xt::zeros<T>({batch, n_a}))); }
};

// A short repetitive text, so that a tiny model can learn it.
inline std::vector<int> tiny_corpus(std::size_t n, std::size_t vocab) {
  std::vector<int> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = int((i * 3 + i / 7) % vocab);
  return ids;
}

}  // namespace xgrad_test
