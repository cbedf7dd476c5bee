// Internal to layers/: the shape checks every recurrent layer makes, with messages that name
// the layer, the argument and both shapes.
#pragma once

#include <cstddef>
#include <string>

#include "../autograd/var.hpp"

namespace xgrad::nn::detail {

// "(m, 4)" or "(3, 4)": the expected shape of a matrix whose row count may be free (rows = 0).
inline std::string expected_str(std::size_t rows, std::size_t cols) {
  return "(" + (rows == 0 ? std::string("m") : std::to_string(rows)) + ", " + std::to_string(cols) + ")";
}

// v must be a matrix (rows, cols); rows == 0 accepts any non-zero row count.
template <class T>
void check_matrix(const char* layer, const char* what, const Var<T>& v, std::size_t rows, std::size_t cols) {
  const auto& s = v.shape();
  const bool ok = s.size() == 2 && s[1] == cols && (rows == 0 ? s[0] > 0 : s[0] == rows);
  if (!ok)
    throw ShapeError(std::string(layer) + ": " + what + " has shape " + shape_str(s) + ", expected " +
                     expected_str(rows, cols));
}

}  // namespace xgrad::nn::detail
