// Internal to autograd/: the axis and block helpers that ops.cpp and tensor_ops.cpp share.
#pragma once

#include <cstddef>
#include <string>

#include <xtensor/xstrided_view.hpp>

#include "errors.hpp"

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
