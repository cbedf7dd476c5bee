// The exception types of xgrad: one per kind of failure, all std::runtime_error.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace xgrad {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Shapes that do not fit the op: the message names the op and the shapes.
struct ShapeError : Error {
  using Error::Error;
};
// An index, axis, class id or length outside its range.
struct IndexError : Error {
  using Error::Error;
};
// A Var whose tape was cleared, or that was never set.
struct StaleHandleError : Error {
  using Error::Error;
};
// A value that is not allowed: a non-scalar backward, a negative size, an empty tensor.
struct ValueError : Error {
  using Error::Error;
};
// The first NaN or Inf under DetectAnomaly.
struct AnomalyError : Error {
  using Error::Error;
};
// A checkpoint that cannot be written, read or applied.
struct CheckpointError : Error {
  using Error::Error;
};
// Missing, empty or malformed data.
struct DataError : Error {
  using Error::Error;
};

// "(32, 65)" for a shape.
template <class S>
std::string shape_str(const S& shape) {
  std::ostringstream os;
  os << '(';
  bool first = true;
  for (auto d : shape) {
    if (!first) os << ", ";
    os << d;
    first = false;
  }
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

}  // namespace xgrad
