// Attention: a query looks at S keys and takes the weighted mean of their values.
//   e_s = score(q, k_s)                 one score per key position s
//   α   = softmax_s(e)   (positions s ≥ the example's key length get weight exactly 0)
//   c   = Σ_s α_s v_s                   the context
// Scores:
//   dot       q·k                       (Luong et al. 2015), n_q = n_k; scaled: q·k / √n_k
//   general   q·W·k                     (Luong et al. 2015), W (n_q, n_k); scaled: / √n_k
//   additive  vᵀ·tanh(Wq·q + Wk·k)      (Bahdanau et al. 2015), Wq (n_h, n_q), Wk (n_h, n_k), v (n_h)
// Sequences are time-major: keys (S, m, n_k), values (S, m, n_v), as a sequence layer's output.
// A query is one decoder step (m, n_q), or all T_q steps at once (T_q, m, n_q), which gives the
// same as the steps one by one, stacked.
#pragma once

#include <cstddef>
#include <vector>

#include "../autograd/ops.hpp"
#include "../autograd/options.hpp"
#include "module.hpp"

namespace xgrad::nn {

enum class AttentionKind { dot, general, additive };

// Options with chained setters: AttentionOptions().kind(AttentionKind::additive).hidden_size(64)
// (autograd/options.hpp: how to add one).
struct AttentionOptions {
  // How a query is scored against a key (see above).
  XGRAD_OPTION(AttentionOptions, AttentionKind, kind, AttentionKind::dot)
  // dot and general: scores divided by √key_size (Vaswani et al. 2017), which keeps the
  // softmax from saturating as key_size grows.
  XGRAD_FLAG(AttentionOptions, scaled)
  // additive: n_h, the size of tanh(Wq·q + Wk·k); 0 means key_size.
  XGRAD_OPTION(AttentionOptions, std::size_t, hidden_size, 0)
};

template <class T>
struct AttentionResult {
  Var<T> context;  // (m, n_v), or (T_q, m, n_v) for a query of all steps
  Var<T> weights;  // (m, S), or (T_q, m, S); each row sums to 1
};

// Parameters (none for dot): general W (n_q, n_k), drawn uniformly from ±1/√n_k; additive Wq
// (n_h, n_q), Wk (n_h, n_k), v (n_h), drawn from ±1/√n_q, ±1/√n_k, ±1/√n_h, no biases. The
// weights are stored (out, in) as Linear's, so Wq·q for rows q is q·Wqᵀ.
template <class T>
class Attention : public Module<T> {
 public:
  // Sizes must be positive; dot needs query_size == key_size; scaled applies to dot and general,
  // hidden_size to additive only (ValueError otherwise, naming the option).
  Attention(std::size_t query_size, std::size_t key_size, const AttentionOptions& options = AttentionOptions());

  // query (m, n_q) or (T_q, m, n_q); keys (S, m, n_k); values (S, m, n_v), keys when not given;
  // key_lengths (m) in [1, S]: example i attends to positions [0, key_lengths[i]) only (empty:
  // to all S). Shapes that do not fit are a ShapeError, a length outside [1, S] an IndexError,
  // thrown before anything is recorded.
  AttentionResult<T> forward(const Var<T>& query, const Var<T>& keys) const { return forward(query, keys, keys, {}); }
  AttentionResult<T> forward(const Var<T>& query, const Var<T>& keys, const Var<T>& values) const {
    return forward(query, keys, values, {});
  }
  AttentionResult<T> forward(const Var<T>& query, const Var<T>& keys, const Var<T>& values,
                             const std::vector<int>& key_lengths) const;
  AttentionResult<T> operator()(const Var<T>& query, const Var<T>& keys) const { return forward(query, keys); }
  AttentionResult<T> operator()(const Var<T>& query, const Var<T>& keys, const Var<T>& values) const {
    return forward(query, keys, values);
  }
  AttentionResult<T> operator()(const Var<T>& query, const Var<T>& keys, const Var<T>& values,
                                const std::vector<int>& key_lengths) const {
    return forward(query, keys, values, key_lengths);
  }

  std::size_t query_size() const { return n_q_; }
  std::size_t key_size() const { return n_k_; }
  // n_h of additive scores; 0 for dot and general.
  std::size_t hidden_size() const { return n_h_; }
  AttentionKind kind() const { return kind_; }
  bool scaled() const { return scaled_; }

  Var<T> W;   // general: (n_q, n_k)
  Var<T> Wq;  // additive: (n_h, n_q)
  Var<T> Wk;  // additive: (n_h, n_k)
  Var<T> v;   // additive: (n_h)

 private:
  void check(const Var<T>& query, const Var<T>& keys, const Var<T>& values, const std::vector<int>& key_lengths) const;
  // qb (m, T_q, n_q), keys (S, m, n_k) -> scores (m, T_q, S).
  Var<T> scores(const Var<T>& qb, const Var<T>& keys) const;

  std::size_t n_q_, n_k_, n_h_ = 0;
  AttentionKind kind_;
  bool scaled_;
};

}  // namespace xgrad::nn
