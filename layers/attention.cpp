#include "attention.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <xtensor/xbuilder.hpp>

#include "../autograd/nn_ops.hpp"
#include "../autograd/tensor_ops.hpp"

namespace xgrad::nn {

namespace {

const char* kind_name(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::dot: return "dot";
    case AttentionKind::general: return "general";
    case AttentionKind::additive: return "additive";
  }
  return "unknown";
}

}  // namespace

template <class T>
Attention<T>::Attention(std::size_t query_size, std::size_t key_size, const AttentionOptions& options)
    : n_q_(query_size), n_k_(key_size), kind_(options.kind()), scaled_(options.scaled()) {
  const std::string kind = kind_name(kind_);
  if (query_size == 0 || key_size == 0)
    throw ValueError("Attention: sizes must be positive, got query_size " + std::to_string(query_size) +
                     ", key_size " + std::to_string(key_size));
  if (kind_ == AttentionKind::dot && query_size != key_size)
    throw ValueError("Attention: dot scores need query_size == key_size, got query_size " +
                     std::to_string(query_size) + ", key_size " + std::to_string(key_size) +
                     " (general and additive scores take different sizes)");
  if (scaled_ && kind_ == AttentionKind::additive)
    throw ValueError("Attention: option scaled applies to dot and general scores, not to additive ones");
  if (options.hidden_size() != 0 && kind_ != AttentionKind::additive)
    throw ValueError("Attention: option hidden_size applies to additive scores only, got hidden_size " +
                     std::to_string(options.hidden_size()) + " with " + kind + " scores");
  auto bound = [](std::size_t n) { return 1.0 / std::sqrt(static_cast<double>(n)); };
  if (kind_ == AttentionKind::general) {
    W = this->register_parameter("W", uniform<T>({n_q_, n_k_}, bound(n_k_)));
  } else if (kind_ == AttentionKind::additive) {
    n_h_ = options.hidden_size() != 0 ? options.hidden_size() : key_size;
    Wq = this->register_parameter("Wq", uniform<T>({n_h_, n_q_}, bound(n_q_)));
    Wk = this->register_parameter("Wk", uniform<T>({n_h_, n_k_}, bound(n_k_)));
    v = this->register_parameter("v", uniform<T>({n_h_}, bound(n_h_)));
  }
}

template <class T>
void Attention<T>::check(const Var<T>& query, const Var<T>& keys, const Var<T>& values,
                         const std::vector<int>& key_lengths) const {
  const auto &qs = query.shape(), &ks = keys.shape(), &vs = values.shape();
  const std::string shapes = " (query " + shape_str(qs) + ", keys " + shape_str(ks) + ", values " + shape_str(vs) + ")";
  const std::string nk = std::to_string(n_k_), nq = std::to_string(n_q_);
  if (ks.size() != 3 || ks[2] != n_k_ || ks[0] == 0 || ks[1] == 0)
    throw ShapeError("Attention: keys of shape " + shape_str(ks) + " do not fit key_size " + nk + ": expected (S, m, " +
                     nk + ") with S, m > 0" + shapes);
  const std::size_t S = ks[0], m = ks[1];
  const bool steps = qs.size() == 3;
  if ((qs.size() != 2 && !steps) || qs[qs.size() - 1] != n_q_ || qs[0] == 0)
    throw ShapeError("Attention: query of shape " + shape_str(qs) + " does not fit query_size " + nq +
                     ": expected (m, " + nq + ") or (T_q, m, " + nq + ")" + shapes);
  if (qs[qs.size() - 2] != m)
    throw ShapeError("Attention: query of shape " + shape_str(qs) + " has " + std::to_string(qs[qs.size() - 2]) +
                     " batch rows, keys of shape " + shape_str(ks) + " have m = " + std::to_string(m) + shapes);
  if (vs.size() != 3 || vs[0] != S || vs[1] != m || vs[2] == 0)
    throw ShapeError("Attention: values of shape " + shape_str(vs) + " do not fit keys of shape " + shape_str(ks) +
                     ": expected (" + std::to_string(S) + ", " + std::to_string(m) + ", n_v) with n_v > 0" + shapes);
  if (key_lengths.empty()) return;
  if (key_lengths.size() != m)
    throw ShapeError("Attention: " + std::to_string(key_lengths.size()) + " key lengths for a batch of m = " +
                     std::to_string(m) + shapes);
  for (std::size_t i = 0; i < m; ++i)
    if (key_lengths[i] < 1 || static_cast<std::size_t>(key_lengths[i]) > S)
      throw IndexError("Attention: key length " + std::to_string(key_lengths[i]) + " of example " + std::to_string(i) +
                       " is outside [1, S = " + std::to_string(S) + "]" + shapes);
}

// qb (m, T_q, n_q), keys (S, m, n_k) -> e (m, T_q, S)
template <class T>
Var<T> Attention<T>::scores(const Var<T>& qb, const Var<T>& keys) const {
  const std::size_t S = keys.shape()[0], m = keys.shape()[1], Tq = qb.shape()[1];
  if (kind_ == AttentionKind::additive) {
    // vᵀ·tanh(Wq·q + Wk·k) for every (query step, key position) pair: (m, T_q, S, n_h) before v.
    Var<T> pq = reshape(matmul_nt(reshape(qb, {m * Tq, n_q_}), Wq), {m, Tq, 1, n_h_});       // (m, T_q, 1, n_h)
    Var<T> pk = unsqueeze(transpose(reshape(matmul_nt(reshape(keys, {S * m, n_k_}), Wk), {S, m, n_h_}), 0, 1),
                          1);                                                                   // (m, 1, S, n_h)
    Var<T> h = tanh(pq + pk);                                                                   // (m, T_q, S, n_h)
    return reshape(matmul_nt(reshape(h, {m * Tq * S, n_h_}), reshape(v, {1, n_h_})), {m, Tq, S});
  }
  Var<T> kb = transpose(keys, 0, 1);  // (m, S, n_k)
  const Var<T> e = kind_ == AttentionKind::general
                       ? bmm_nt(reshape(matmul(reshape(qb, {m * Tq, n_q_}), W), {m, Tq, n_k_}), kb)  // (q·W)·kᵀ
                       : bmm_nt(qb, kb);
  return scaled_ ? e * static_cast<T>(1.0 / std::sqrt(static_cast<double>(n_k_))) : e;
}

template <class T>
AttentionResult<T> Attention<T>::forward(const Var<T>& query, const Var<T>& keys, const Var<T>& values,
                                         const std::vector<int>& key_lengths) const {
  check(query, keys, values, key_lengths);
  const std::size_t S = keys.shape()[0], m = keys.shape()[1];
  const bool steps = query.dim() == 3;
  // Batch-major for the batched products: one (T_q, S) score matrix per example.
  const Var<T> qb = steps ? transpose(query, 0, 1) : unsqueeze(query, 1);  // (m, T_q, n_q)
  Var<T> e = scores(qb, keys);                                              // (m, T_q, S)
  if (!key_lengths.empty()) {
    // The lowest finite value rather than −inf: its exponential is exactly 0 all the same, and
    // DetectAnomaly, which stops at the first Inf, can watch a model with padding.
    xt::xarray<bool> padding = xt::zeros<bool>({m, std::size_t(1), S});
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t s = static_cast<std::size_t>(key_lengths[i]); s < S; ++s) padding(i, 0, s) = true;
    e = masked_fill(e, padding, static_cast<double>(std::numeric_limits<T>::lowest()));
  }
  const Var<T> alpha = softmax(e, 2);                           // (m, T_q, S)
  const Var<T> context = bmm(alpha, transpose(values, 0, 1));  // (m, T_q, n_v)
  if (steps) return {transpose(context, 0, 1), transpose(alpha, 0, 1)};
  return {squeeze(context, 1), squeeze(alpha, 1)};
}

template class Attention<float>;
template class Attention<double>;

}  // namespace xgrad::nn
