// Every differentiable op. Forward and backward of each are written together in ops.cpp.
//
// Elementwise binary ops broadcast as NumPy does; their backward sums the gradient back to
// each input's shape. Matrices are row-major (rows are examples).
//
// Adding an op. An op is one function template in ops.cpp (losses: losses.cpp), in this order:
//   1. checks: detail::check_live(op, inputs...) when the checks read the inputs, then the
//      shape, axis and index checks, throwing ShapeError/IndexError/ValueError that name the op
//      and the shapes; nothing is recorded yet, so a failed check changes nothing;
//   2. forward: detail::OpRecord<T> r("name", {&a, &b}), then the value written into r.value();
//      what the backward needs beyond the inputs and the output goes into the node: a small
//      struct of named fields with r.save(MySaved{...}), or r.node()->saved_array / saved_ids
//      when r.needs_backward();
//   3. backward: return r.finish([](Node<T>& n) { ... }), a lambda capturing nothing that sends
//      n.grad to each input n.in(i) through add_grad / add_grad_each / grad_ref (record.hpp),
//      reading saved<MySaved>(n) for what was saved.
// Then its declaration below, its line in XGRAD_OPS_INSTANTIATE at the end of ops.cpp, and its
// entry in cases() of tests/test_ops.cpp (name, input shapes, input domain, the op, the same
// computation in xtensor), which checks the forward value and the gradient by finite
// differences in double; its error messages get an expect_error_with line there.
#pragma once

#include <initializer_list>
#include <type_traits>
#include <utility>
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

// A Var with an xtensor expression (an xt::xarray<T>, a view, arr * 2, xt::ones<T>(shape)): the
// expression becomes a constant and the op is recorded, so v + arr is v + constant(arr), with
// broadcasting, and the gradient flows to v. Without these, xtensor's own operators would take
// the Var for a scalar and build a silent xtensor expression. The Var is taken by value (a
// handle): that makes these overloads more specialized than xtensor's forwarding-reference ones
// for every value category of both operands.
namespace detail {
template <class E>
using if_xexpression = std::enable_if_t<xt::is_xexpression<E>::value, int>;
template <class T, class E>
Var<T> constant_of(E&& e) { return constant(Array<T>(std::forward<E>(e))); }
}  // namespace detail
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator+(Var<T> a, E&& e) { return add(a, detail::constant_of<T>(std::forward<E>(e))); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator+(E&& e, Var<T> a) { return add(detail::constant_of<T>(std::forward<E>(e)), a); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator-(Var<T> a, E&& e) { return sub(a, detail::constant_of<T>(std::forward<E>(e))); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator-(E&& e, Var<T> a) { return sub(detail::constant_of<T>(std::forward<E>(e)), a); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator*(Var<T> a, E&& e) { return mul(a, detail::constant_of<T>(std::forward<E>(e))); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator*(E&& e, Var<T> a) { return mul(detail::constant_of<T>(std::forward<E>(e)), a); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator/(Var<T> a, E&& e) { return div(a, detail::constant_of<T>(std::forward<E>(e))); }
template <class T, class E, detail::if_xexpression<E> = 0>
Var<T> operator/(E&& e, Var<T> a) { return div(detail::constant_of<T>(std::forward<E>(e)), a); }

}  // namespace xgrad
