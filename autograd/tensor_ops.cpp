// The N-d layout ops and batched products: their checks, forward values and, beside them,
// their backward rules. B is the batch of a bmm; a (B, n, k), b (B, k, p) or (B, p, k).
#include "tensor_ops.hpp"

#include <algorithm>
#include <numeric>
#include <string>

#include "blas.hpp"
#include "ops.hpp"
#include "ops_detail.hpp"
#include "record.hpp"

namespace xgrad {

using detail::add_into;
using detail::blocks;
using detail::Blocks;
using detail::check_live;
using detail::grad_ref;
using detail::norm_axis;
using detail::OpRecord;
using detail::saved;

namespace {

// ---------------------------------------------------------------- batched products

// The sizes of a bmm: a (B, n, k) times b (B, k, p), or bᵀ for b (B, p, k) when b_transposed.
struct BmmSaved {
  std::size_t batch, n, k, p;
};

template <class T>
BmmSaved check_bmm(const char* op, const Var<T>& a, const Var<T>& b, bool b_transposed) {
  check_live(op, a, b);
  const auto& sa = a.shape();
  const auto& sb = b.shape();
  if (sa.size() != 3)
    throw ShapeError(std::string(op) + ": left operand must be (B, n, k), got shape " + shape_str(sa));
  if (sb.size() != 3)
    throw ShapeError(std::string(op) + ": right operand must be " + (b_transposed ? "(B, p, k)" : "(B, k, p)") +
                     ", got shape " + shape_str(sb));
  if (sa[0] != sb[0])
    throw ShapeError(std::string(op) + ": batch sizes differ: " + shape_str(sa) + " and " + shape_str(sb));
  const std::size_t kb = b_transposed ? sb[2] : sb[1];
  if (sa[2] != kb)
    throw ShapeError(std::string(op) + ": inner dimensions differ: " + shape_str(sa) + " x " + shape_str(sb) +
                     (b_transposed ? "ᵀ" : ""));
  if (a.size() == 0) throw ValueError(std::string(op) + ": left operand is empty, shape " + shape_str(sa));
  if (b.size() == 0) throw ValueError(std::string(op) + ": right operand is empty, shape " + shape_str(sb));
  return {sa[0], sa[1], sa[2], b_transposed ? sb[1] : sb[2]};
}

// y_i = a_i·op(b_i) for each batch entry i, one GEMM each: y (B, n, p); op(b_i) is b_iᵀ when
// b_transposed.
template <bool b_transposed, class T>
Var<T> batched_product(const char* op, const Var<T>& a, const Var<T>& b) {
  const BmmSaved s = check_bmm(op, a, b, b_transposed);
  OpRecord<T> r(op, {&a, &b});
  r.value().resize({s.batch, s.n, s.p});
  const T* pa = a.value().data();
  const T* pb = b.value().data();
  T* py = r.value().data();
  for (std::size_t i = 0; i < s.batch; ++i)
    blas::gemm(false, b_transposed, s.n, s.p, s.k, T(1), pa + i * s.n * s.k, pb + i * s.k * s.p, T(0),
               py + i * s.n * s.p);
  r.save(s);
  // Per batch entry, from g_i (n, p):  da_i += g_i·op(b_i)ᵀ (n, k);  db_i += a_iᵀ·g_i (k, p), or
  // g_iᵀ·a_i (p, k) when b was transposed. GEMM's beta = 1 accumulates where a gradient is.
  return r.finish([](Node<T>& nd) {
    const BmmSaved s = saved<BmmSaved>(nd);
    Slot<T>& A = nd.in(0);
    Slot<T>& B = nd.in(1);
    const T* g = nd.grad.data();
    const std::size_t na = s.n * s.k, nb = s.k * s.p, ng = s.n * s.p;
    T beta;
    if (A.requires_grad) {
      T* da = A.grad_buffer(beta);
      for (std::size_t i = 0; i < s.batch; ++i)
        blas::gemm(false, !b_transposed, s.n, s.k, s.p, T(1), g + i * ng, B.value.data() + i * nb, beta,
                   da + i * na);
    }
    if (B.requires_grad) {
      T* db = B.grad_buffer(beta);
      const T* va = A.value.data();
      for (std::size_t i = 0; i < s.batch; ++i) {
        if (b_transposed)
          blas::gemm(true, false, s.p, s.k, s.n, T(1), g + i * ng, va + i * na, beta, db + i * nb);
        else
          blas::gemm(true, false, s.k, s.p, s.n, T(1), va + i * na, g + i * ng, beta, db + i * nb);
      }
    }
  });
}

// ---------------------------------------------------------------- layout

// Calls f(o, i) for every element of y = a permuted by axes (y's axis d is a's axis axes[d]),
// in y's row-major order: o is the element's offset in y, i its offset in a.
template <class S, class F>
void for_each_permuted(const S& a_shape, const std::vector<std::size_t>& axes, F f) {
  const std::size_t rank = axes.size();
  if (rank == 0) {
    f(std::size_t(0), std::size_t(0));
    return;
  }
  std::vector<std::size_t> a_stride(rank, 1), len(rank), stride(rank), idx(rank, 0);
  for (std::size_t d = rank - 1; d > 0; --d) a_stride[d - 1] = a_stride[d] * a_shape[d];
  for (std::size_t d = 0; d < rank; ++d) {
    len[d] = a_shape[axes[d]];
    stride[d] = a_stride[axes[d]];
  }
  const std::size_t total = std::accumulate(len.begin(), len.end(), std::size_t(1), std::multiplies<>());
  const std::size_t last = len[rank - 1], step = stride[rank - 1];
  std::size_t i = 0;
  for (std::size_t o = 0; o < total; o += last) {
    for (std::size_t j = 0; j < last; ++j) f(o + j, i + j * step);
    for (std::size_t d = rank - 1; d-- > 0;) {  // the next row: an odometer over axes rank-2 .. 0
      i += stride[d];
      if (++idx[d] < len[d]) break;
      i -= stride[d] * len[d];
      idx[d] = 0;
    }
  }
}

// y = a with its axes permuted; the gradient goes back through the same index map. `axes` has
// been checked; it is saved in the node's ids.
template <class T>
Var<T> permuted(const char* op, const Var<T>& a, const std::vector<std::size_t>& axes) {
  OpRecord<T> r(op, {&a});
  Shape s(axes.size());
  for (std::size_t d = 0; d < axes.size(); ++d) s[d] = a.shape()[axes[d]];
  r.value().resize(s);
  const T* src = a.value().data();
  T* dst = r.value().data();
  for_each_permuted(a.shape(), axes, [src, dst](std::size_t o, std::size_t i) { dst[o] = src[i]; });
  if (r.needs_backward()) r.node()->saved_ids.assign(axes.begin(), axes.end());
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    const std::vector<std::size_t> axes(n.saved_ids.begin(), n.saved_ids.end());
    T* da = grad_ref(A).data();
    const T* g = n.grad.data();
    for_each_permuted(A.value.shape(), axes, [da, g](std::size_t o, std::size_t i) { da[i] += g[o]; });
  });
}

// y = a's elements under another shape (unsqueeze, squeeze), recorded as `op`.
template <class T>
Var<T> reshaped(const char* op, const Var<T>& a, const Shape& shape) {
  OpRecord<T> r(op, {&a});
  r.value().resize(shape);
  std::copy(a.value().begin(), a.value().end(), r.value().data());
  return r.finish([](Node<T>& n) { detail::pass_grad(n, 0); });
}

struct IndexSelectSaved {
  std::size_t axis;
};

}  // namespace

// y_i = a_i·b_i   a (B, n, k), b (B, k, p) -> (B, n, p)
template <class T>
Var<T> bmm(const Var<T>& a, const Var<T>& b) {
  return batched_product<false>("bmm", a, b);
}

// y_i = a_i·b_iᵀ   a (B, n, k), b (B, p, k) -> (B, n, p)
template <class T>
Var<T> bmm_nt(const Var<T>& a, const Var<T>& b) {
  return batched_product<true>("bmm_nt", a, b);
}

// y's axis d is a's axis axes[d]
template <class T>
Var<T> permute(const Var<T>& a, const std::vector<std::size_t>& axes) {
  check_live("permute", a);
  const std::size_t rank = a.dim();
  std::vector<bool> seen(rank, false);
  bool is_permutation = axes.size() == rank;
  for (std::size_t d = 0; is_permutation && d < rank; ++d) {
    if (axes[d] >= rank)
      throw IndexError("permute: axis " + std::to_string(axes[d]) + " out of range for shape " +
                       shape_str(a.shape()));
    is_permutation = !seen[axes[d]];
    seen[axes[d]] = true;
  }
  if (!is_permutation)
    throw ValueError("permute: axes " + shape_str(axes) + " are not a permutation of the " + std::to_string(rank) +
                     " axes of shape " + shape_str(a.shape()));
  return permuted("permute", a, axes);
}

// y = a with axes axis0 and axis1 swapped
template <class T>
Var<T> transpose(const Var<T>& a, long axis0, long axis1) {
  check_live("transpose", a);
  const std::size_t i = norm_axis("transpose", axis0, a.shape()), j = norm_axis("transpose", axis1, a.shape());
  std::vector<std::size_t> axes(a.dim());
  std::iota(axes.begin(), axes.end(), std::size_t(0));
  std::swap(axes[i], axes[j]);
  return permuted("transpose", a, axes);
}

// A new size-1 axis at `axis` of the result: a (2, 3), axis 1 or -2 -> (2, 1, 3)
template <class T>
Var<T> unsqueeze(const Var<T>& a, long axis) {
  check_live("unsqueeze", a);
  const long d = static_cast<long>(a.dim()) + 1;
  if (axis < -d || axis >= d)
    throw IndexError("unsqueeze: axis " + std::to_string(axis) + " out of range for shape " + shape_str(a.shape()) +
                     " (a new axis goes at " + std::to_string(-d) + " .. " + std::to_string(d - 1) + ")");
  Shape s(a.shape().begin(), a.shape().end());
  s.insert(s.begin() + (axis < 0 ? axis + d : axis), 1);
  return reshaped("unsqueeze", a, s);
}

// a without `axis`, which has size 1
template <class T>
Var<T> squeeze(const Var<T>& a, long axis) {
  check_live("squeeze", a);
  const std::size_t ax = norm_axis("squeeze", axis, a.shape());
  if (a.shape()[ax] != 1)
    throw ShapeError("squeeze: axis " + std::to_string(axis) + " of shape " + shape_str(a.shape()) + " has size " +
                     std::to_string(a.shape()[ax]) + ", not 1");
  Shape s(a.shape().begin(), a.shape().end());
  s.erase(s.begin() + static_cast<long>(ax));
  return reshaped("squeeze", a, s);
}

// a without any size-1 axis: (1, 3, 1) -> (3,), (1, 1) -> 0-d
template <class T>
Var<T> squeeze(const Var<T>& a) {
  check_live("squeeze", a);
  Shape s;
  for (std::size_t len : a.shape())
    if (len != 1) s.push_back(len);
  return reshaped("squeeze", a, s);
}

// Consecutive pieces along axis, each a slice of a (the gradient of each goes back into its block)
template <class T>
std::vector<Var<T>> split(const Var<T>& a, long axis, const std::vector<std::size_t>& sizes) {
  check_live("split", a);
  const std::size_t ax = norm_axis("split", axis, a.shape());
  for (std::size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] == 0)
      throw ValueError("split: piece " + std::to_string(i) + " of sizes " + shape_str(sizes) + " is empty");
  const std::size_t total = std::accumulate(sizes.begin(), sizes.end(), std::size_t(0));
  if (total != a.shape()[ax])
    throw ShapeError("split: sizes " + shape_str(sizes) + " sum to " + std::to_string(total) + ", not to the " +
                     std::to_string(a.shape()[ax]) + " of axis " + std::to_string(axis) + " of shape " +
                     shape_str(a.shape()));
  std::vector<Var<T>> pieces;
  pieces.reserve(sizes.size());
  long begin = 0;
  for (std::size_t len : sizes) {
    const long end = begin + static_cast<long>(len);
    pieces.push_back(slice(a, static_cast<long>(ax), begin, end));
    begin = end;
  }
  return pieces;
}

// y = the entries ids along axis (repeats allowed); the gradient blocks add back into them
template <class T>
Var<T> index_select(const Var<T>& a, long axis, const std::vector<int>& ids) {
  check_live("index_select", a);
  const std::size_t ax = norm_axis("index_select", axis, a.shape());
  const std::size_t len = a.shape()[ax];
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= len)
      throw IndexError("index_select: id " + std::to_string(ids[i]) + " (position " + std::to_string(i) +
                       ") outside the " + std::to_string(len) + " entries of axis " + std::to_string(axis) +
                       " of shape " + shape_str(a.shape()));
  Shape s(a.shape().begin(), a.shape().end());
  s[ax] = ids.size();
  OpRecord<T> r("index_select", {&a});
  r.value().resize(s);
  // Row-major: `outer` rows of len·inner elements; each id picks a block of inner of every row.
  const Blocks bl = blocks(a.shape(), ax);
  const T* src = a.value().data();
  T* dst = r.value().data();
  for (std::size_t o = 0; o < bl.outer; ++o)
    for (int id : ids) {
      const T* from = src + o * bl.row + static_cast<std::size_t>(id) * bl.inner;
      dst = std::copy(from, from + bl.inner, dst);
    }
  r.save(IndexSelectSaved{ax});
  if (r.needs_backward()) r.node()->saved_ids = ids;
  return r.finish([](Node<T>& n) {
    Slot<T>& A = n.in(0);
    if (!A.requires_grad) return;
    const Blocks bl = blocks(A.value.shape(), saved<IndexSelectSaved>(n).axis);
    T* da = grad_ref(A).data();
    const T* g = n.grad.data();
    for (std::size_t o = 0; o < bl.outer; ++o)
      for (int id : n.saved_ids) {
        add_into(da + o * bl.row + static_cast<std::size_t>(id) * bl.inner, g, bl.inner);
        g += bl.inner;
      }
  });
}

#define XGRAD_TENSOR_OPS_INSTANTIATE(T)                                                        \
  template Var<T> bmm(const Var<T>&, const Var<T>&);                                           \
  template Var<T> bmm_nt(const Var<T>&, const Var<T>&);                                        \
  template Var<T> permute(const Var<T>&, const std::vector<std::size_t>&);                     \
  template Var<T> transpose(const Var<T>&, long, long);                                        \
  template Var<T> unsqueeze(const Var<T>&, long);                                              \
  template Var<T> squeeze(const Var<T>&, long);                                                \
  template Var<T> squeeze(const Var<T>&);                                                      \
  template std::vector<Var<T>> split(const Var<T>&, long, const std::vector<std::size_t>&);    \
  template Var<T> index_select(const Var<T>&, long, const std::vector<int>&);
XGRAD_TENSOR_OPS_INSTANTIATE(float)
XGRAD_TENSOR_OPS_INSTANTIATE(double)

}  // namespace xgrad
