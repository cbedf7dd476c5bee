// Internal to autograd/: the axis, broadcasting and block helpers that the op files share.
#pragma once

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>

#include <xtensor/xstrided_view.hpp>

#include "errors.hpp"
#include "var.hpp"

namespace xgrad::detail {

// axis in [-dim, dim) made non-negative, or an IndexError (the shape is formatted only then).
template <class S>
std::size_t norm_axis(const char* op, long axis, const S& shape) {
  const long d = static_cast<long>(shape.size());
  if (axis < -d || axis >= d)
    throw IndexError(std::string(op) + ": axis " + std::to_string(axis) + " out of range for shape " +
                     shape_str(shape));
  return static_cast<std::size_t>(axis < 0 ? axis + d : axis);
}

// NumPy broadcast shape of a and b, or a ShapeError naming the op.
template <class A, class B>
Shape broadcast_shape(const char* op, const A& a, const B& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const std::size_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                       " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// A number for an error message: "0.5", "-1e-05", "inf", "nan".
inline std::string num_str(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// A strided view selecting [begin, end) along `axis`.
inline xt::xstrided_slice_vector axis_range(std::size_t dim, std::size_t axis, std::size_t begin, std::size_t end) {
  xt::xstrided_slice_vector sv(dim, xt::all());
  sv[axis] = xt::range(begin, end);
  return sv;
}

// A row-major array seen along `axis`: `outer` rows of `row` = len·inner elements.
struct Blocks {
  std::size_t outer = 1, inner = 1, row = 1;
};
template <class S>
Blocks blocks(const S& shape, std::size_t axis) {
  Blocks b;
  for (std::size_t d = 0; d < axis; ++d) b.outer *= shape[d];
  for (std::size_t d = axis + 1; d < shape.size(); ++d) b.inner *= shape[d];
  b.row = shape[axis] * b.inner;
  return b;
}

// Contiguous add: dst[0..n) += src[0..n).
template <class T>
void add_into(T* dst, const T* src, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) dst[k] += src[k];
}

}  // namespace xgrad::detail
