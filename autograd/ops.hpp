// Every differentiable op. Forward and backward of each are written together in ops.cpp.
//
// Elementwise binary ops broadcast as NumPy does; their backward sums the gradient back to
// each input's shape. Matrices are row-major (rows are examples).
#pragma once

#include <initializer_list>
#include <vector>

#include "var.hpp"

namespace xgrad {

// Arithmetic, with broadcasting.
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> neg(const Var<T>& a);
// alpha * a + beta, elementwise (the scalar overloads of + - * /).
template <class T> Var<T> affine(const Var<T>& a, T alpha, T beta);
// s / a, elementwise.
template <class T> Var<T> rdiv(T s, const Var<T>& a);

// Elementwise functions.
template <class T> Var<T> tanh(const Var<T>& a);
template <class T> Var<T> sigmoid(const Var<T>& a);
template <class T> Var<T> relu(const Var<T>& a);
template <class T> Var<T> exp(const Var<T>& a);
template <class T> Var<T> log(const Var<T>& a);
template <class T> Var<T> square(const Var<T>& a);
template <class T> Var<T> sqrt(const Var<T>& a);

// Matrix products through GEMM. a (m, k), b (k, n) -> (m, n).
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
// a (m, k), b (n, k) -> a·bᵀ (m, n), without copying bᵀ.
template <class T> Var<T> matmul_nt(const Var<T>& a, const Var<T>& b);
// x (m, in), w (out, in), b (out) -> x·wᵀ + b (m, out), one GEMM and a bias row; x (..., in)
// -> (..., out) with every position a row.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b);
// c (m, n), a (m, k), b (n, k) -> c + a·bᵀ (m, n), one GEMM accumulating onto c.
template <class T> Var<T> addmm_nt(const Var<T>& c, const Var<T>& a, const Var<T>& b);
// linear(x, w, b) for one-hot rows x = onehot(ids, in) without building x: the columns of
// w (out, in) picked by ids, plus b (out) -> (ids.size(), out).
template <class T> Var<T> linear_onehot(const std::vector<int>& ids, const Var<T>& w, const Var<T>& b);

// Reductions.
template <class T> Var<T> sum(const Var<T>& a);                  // scalar (0-d)
template <class T> Var<T> sum(const Var<T>& a, long axis);       // removes the axis
template <class T> Var<T> mean(const Var<T>& a);                 // scalar (0-d)
template <class T> Var<T> softmax(const Var<T>& a, long axis);
template <class T> Var<T> log_softmax(const Var<T>& a, long axis);

// Shape.
template <class T> Var<T> concat(const std::vector<Var<T>>& vars, long axis);
template <class T> Var<T> concat(std::initializer_list<Var<T>> vars, long axis);
// Keeps [begin, end) along axis.
template <class T> Var<T> slice(const Var<T>& a, long axis, long begin, long end);
// a[i] along axis 0, which is removed: x (T, m, n) -> x_t (m, n).
template <class T> Var<T> select(const Var<T>& a, long index);
// Stacks equal shapes along a new axis 0: T x (m, n) -> (T, m, n).
template <class T> Var<T> stack(const std::vector<Var<T>>& vars);
template <class T> Var<T> stack(std::initializer_list<Var<T>> vars);
template <class T> Var<T> reshape(const Var<T>& a, const Shape& shape);
// Swaps the two axes of a matrix.
template <class T> Var<T> transpose(const Var<T>& a);
// Rows of table (num, dim) picked by ids -> (ids.size(), dim).
template <class T> Var<T> embedding(const Var<T>& table, const std::vector<int>& ids);

// Operators.
template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
template <class T> Var<T> operator-(const Var<T>& a) { return neg(a); }
template <class T> Var<T> operator+(const Var<T>& a, T s) { return affine(a, T(1), s); }
template <class T> Var<T> operator+(T s, const Var<T>& a) { return affine(a, T(1), s); }
template <class T> Var<T> operator-(const Var<T>& a, T s) { return affine(a, T(1), -s); }
template <class T> Var<T> operator-(T s, const Var<T>& a) { return affine(a, T(-1), s); }
template <class T> Var<T> operator*(const Var<T>& a, T s) { return affine(a, s, T(0)); }
template <class T> Var<T> operator*(T s, const Var<T>& a) { return affine(a, s, T(0)); }
template <class T> Var<T> operator/(const Var<T>& a, T s) { return affine(a, T(1) / s, T(0)); }
template <class T> Var<T> operator/(T s, const Var<T>& a) { return rdiv(s, a); }
// Integer and other arithmetic literals (x * 2, 1 - x) convert to T.
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator+(const Var<T>& a, S s) { return a + T(s); }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator+(S s, const Var<T>& a) { return T(s) + a; }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator-(const Var<T>& a, S s) { return a - T(s); }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator-(S s, const Var<T>& a) { return T(s) - a; }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator*(const Var<T>& a, S s) { return a * T(s); }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator*(S s, const Var<T>& a) { return T(s) * a; }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator/(const Var<T>& a, S s) { return a / T(s); }
template <class T, class S, class = std::enable_if_t<std::is_arithmetic_v<S> && !std::is_same_v<S, T>>>
Var<T> operator/(S s, const Var<T>& a) { return T(s) / a; }

}  // namespace xgrad
