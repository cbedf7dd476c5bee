// Internal to layers/reference/: the shape checks and column helpers both reference models use.
#pragma once

#include <string>

#include <xtensor/xmath.hpp>

#include "../../autograd/errors.hpp"
#include "../../autograd/tape.hpp"

namespace xgrad::reference::detail {

template <class T>
std::string sh(const Array<T>& a) {
  return shape_str(a.shape());
}

template <class T>
void require_shape(const char* fn, const char* what, const Array<T>& a, std::size_t rows, std::size_t cols) {
  if (a.dimension() != 2 || a.shape()[0] != rows || a.shape()[1] != cols)
    throw ShapeError(std::string(fn) + ": " + what + " has shape " + sh(a) + ", expected (" + std::to_string(rows) +
                     ", " + std::to_string(cols) + ")");
}

// Σ over columns (the examples), kept as a column: (rows, m) -> (rows, 1).
template <class T>
Array<T> row_sums(const Array<T>& a) {
  Array<T> s = xt::sum(a, {1}, xt::evaluation_strategy::immediate);
  s.reshape({a.shape()[0], std::size_t(1)});
  return s;
}

}  // namespace xgrad::reference::detail
