// N-d layout ops and batched products: what attention and custom models need beside ops.hpp's
// matrix ops. Forward and backward of each are written together in tensor_ops.cpp, as ops.hpp
// describes ("Adding an op"); the finite-difference table is tests/test_tensor_ops.cpp.
// Axes are long and may be negative (−1 is the last), as in ops.hpp. B is the batch of a bmm.
// Every result is a new array (no op returns a view of its input), and every check below
// throws before anything is recorded: ShapeError for shapes that do not fit, IndexError for an
// axis or id out of range, ValueError for a bad permutation, an empty product or an empty piece.
#pragma once

#include <cstddef>
#include <vector>

#include "var.hpp"

namespace xgrad {

// Batched matrix products through GEMM, one per batch entry; the backward is two GEMMs per
// entry (da_i += g_i·b_iᵀ, db_i += a_iᵀ·g_i). Both operands have rank 3 and equal B; empty
// operands are a ValueError, as for matmul.
// a (B, n, k), b (B, k, p) -> (B, n, p).
template <class T> Var<T> bmm(const Var<T>& a, const Var<T>& b);
// a (B, n, k), b (B, p, k) -> a·bᵀ per batch entry (B, n, p), without copying bᵀ.
template <class T> Var<T> bmm_nt(const Var<T>& a, const Var<T>& b);

// Axis i of the result is axis axes[i] of a; axes is a permutation of 0 .. rank−1: an entry
// ≥ rank is an IndexError, a wrong count or a repeat a ValueError.
// permute(x (B, T, h, d), {0, 2, 1, 3}) -> (B, h, T, d).
template <class T> Var<T> permute(const Var<T>& a, const std::vector<std::size_t>& axes);
// Swaps two axes of an array of any rank.
template <class T> Var<T> transpose(const Var<T>& a, long axis0, long axis1);
// Inserts a size-1 axis at `axis` (in the result's axes: −1 appends one).
template <class T> Var<T> unsqueeze(const Var<T>& a, long axis);
// Removes `axis`, which must have size 1 (else a ShapeError).
template <class T> Var<T> squeeze(const Var<T>& a, long axis);
// Removes every size-1 axis: (1, 3, 1) -> (3,); all of size 1 -> 0-d.
template <class T> Var<T> squeeze(const Var<T>& a);
// Consecutive pieces along axis of the given sizes, which sum to that axis's size (else a
// ShapeError) and are each at least 1 (else a ValueError). Each piece is recorded as a slice of
// a, so its gradient goes back into its own block; unused pieces send none.
template <class T> std::vector<Var<T>> split(const Var<T>& a, long axis, const std::vector<std::size_t>& sizes);
// The entries ids along axis (repeats allowed, their gradients add up; each id in [0, n)):
// a (.., n, ..) -> (.., ids.size(), ..). embedding(table, ids) is index_select(table, 0, ids).
template <class T> Var<T> index_select(const Var<T>& a, long axis, const std::vector<int>& ids);

}  // namespace xgrad
