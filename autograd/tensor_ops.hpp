// N-d layout ops and batched products: what attention and custom models need beside ops.hpp's
// matrix ops. Forward and backward of each are written together in tensor_ops.cpp, as ops.hpp
// describes ("Adding an op"); the finite-difference table is tests/test_tensor_ops.cpp.
// Axes are long and may be negative (−1 is the last), as in ops.hpp.
#pragma once

#include <cstddef>
#include <vector>

#include "var.hpp"

namespace xgrad {

// Batched matrix products through GEMM, one per batch entry.
// a (B, n, k), b (B, k, p) -> (B, n, p).
template <class T> Var<T> bmm(const Var<T>& a, const Var<T>& b);
// a (B, n, k), b (B, p, k) -> a·bᵀ per batch entry (B, n, p), without copying bᵀ.
template <class T> Var<T> bmm_nt(const Var<T>& a, const Var<T>& b);

// Axis i of the result is axis axes[i] of a; axes is a permutation of 0 .. rank−1.
template <class T> Var<T> permute(const Var<T>& a, const std::vector<std::size_t>& axes);
// Swaps two axes of an array of any rank.
template <class T> Var<T> transpose(const Var<T>& a, long axis0, long axis1);
// Inserts a size-1 axis at `axis` (in the result's axes: −1 appends one).
template <class T> Var<T> unsqueeze(const Var<T>& a, long axis);
// Removes `axis`, which must have size 1.
template <class T> Var<T> squeeze(const Var<T>& a, long axis);
// Removes every size-1 axis.
template <class T> Var<T> squeeze(const Var<T>& a);
// Consecutive pieces along axis of the given sizes, which sum to that axis's size.
template <class T> std::vector<Var<T>> split(const Var<T>& a, long axis, const std::vector<std::size_t>& sizes);
// The entries ids along axis (repeats allowed): a (.., n, ..) -> (.., ids.size(), ..).
template <class T> Var<T> index_select(const Var<T>& a, long axis, const std::vector<int>& ids);

}  // namespace xgrad
