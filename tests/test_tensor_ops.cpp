// The N-d layout ops and batched products (autograd/tensor_ops.hpp): forward values against
// xtensor, gradients against central finite differences in double, over shapes with size-1
// axes and negative axes; every error path names the op and the shapes and records nothing.
// B is the batch of a bmm: a (B, n, k), b (B, k, p) or, for bmm_nt, (B, p, k).
#include <gtest/gtest.h>

#include <array>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xdynamic_view.hpp>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xview.hpp>
#include <xtensor-blas/xlinalg.hpp>

#include <xgrad/xgrad.hpp>

#include "op_testing.hpp"
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

// a_i·b_i (or a_i·b_iᵀ) for each batch entry i, written with xtensor.
A reference_bmm(const A& a, const A& b, bool b_transposed) {
  const std::size_t batch = a.shape()[0], n = a.shape()[1], p = b_transposed ? b.shape()[1] : b.shape()[2];
  A y = A::from_shape({batch, n, p});
  for (std::size_t i = 0; i < batch; ++i) {
    A bi = xt::view(b, i);
    xt::view(y, i) = xt::linalg::dot(A(xt::view(a, i)), b_transposed ? A(xt::transpose(bi)) : bi);
  }
  return y;
}

std::size_t positive_axis(long axis, std::size_t rank) {
  return static_cast<std::size_t>(axis < 0 ? axis + static_cast<long>(rank) : axis);
}

// The entries ids along axis, through xtensor's keep slice.
A reference_index_select(const A& x, long axis, const std::vector<int>& ids) {
  xt::xdynamic_slice_vector sv(x.dimension(), xt::all());
  sv[positive_axis(axis, x.dimension())] = xt::keep(std::vector<std::ptrdiff_t>(ids.begin(), ids.end()));
  return A(xt::dynamic_view(x, sv));
}

std::string str(const std::vector<std::size_t>& v) {
  std::string s;
  for (std::size_t x : v) s += (s.empty() ? "" : "_") + std::to_string(x);
  return s;
}

std::vector<OpCase> cases() {
  std::vector<OpCase> c;
  // {B, n, k, p}: B = 1, n = 1, k = 1, p = 1 and all four at once.
  for (const std::array<std::size_t, 4>& d : std::vector<std::array<std::size_t, 4>>{
           {2, 3, 4, 5}, {1, 3, 4, 2}, {3, 1, 4, 2}, {2, 3, 1, 4}, {2, 3, 4, 1}, {1, 1, 1, 1}}) {
    const auto [batch, n, k, p] = d;
    const std::string sizes = str({batch, n, k, p});
    c.push_back({"bmm_" + sizes, {{batch, n, k}, {batch, k, p}}, Domain::any,
                 [](const Vars& v) { return bmm(v[0], v[1]); },
                 [](const std::vector<A>& x) { return reference_bmm(x[0], x[1], false); }});
    c.push_back({"bmm_nt_" + sizes, {{batch, n, k}, {batch, p, k}}, Domain::any,
                 [](const Vars& v) { return bmm_nt(v[0], v[1]); },
                 [](const std::vector<A>& x) { return reference_bmm(x[0], x[1], true); }});
  }
  // One input on both sides (q·qᵀ of attention): both gradients add into it.
  c.push_back({"bmm_nt_self", {{2, 3, 4}}, Domain::any, [](const Vars& v) { return bmm_nt(v[0], v[0]); },
               [](const std::vector<A>& x) { return reference_bmm(x[0], x[0], true); }});
  c.push_back({"bmm_self", {{2, 3, 3}}, Domain::any, [](const Vars& v) { return bmm(v[0], v[0]); },
               [](const std::vector<A>& x) { return reference_bmm(x[0], x[0], false); }});

  const std::vector<std::pair<Shape, std::vector<std::size_t>>> permutations = {
      {{2, 3, 4}, {2, 0, 1}}, {{2, 3, 4}, {0, 2, 1}}, {{2, 3, 4}, {1, 0, 2}}, {{2, 3, 4}, {0, 1, 2}},
      {{2, 1, 4}, {1, 2, 0}}, {{2, 3, 1, 4}, {0, 2, 1, 3}}, {{2, 3, 1, 4}, {3, 1, 0, 2}},
      {{3, 2, 4, 2}, {2, 3, 0, 1}}, {{1, 3}, {1, 0}}, {{5}, {0}}, {{}, {}}};
  for (const auto& [shape, axes] : permutations)
    c.push_back({"permute_" + shape_str(shape) + "_" + str(axes), {shape}, Domain::any,
                 [axes = axes](const Vars& v) { return permute(v[0], axes); },
                 [axes = axes](const std::vector<A>& x) { return A(xt::transpose(x[0], axes)); }});

  const std::vector<std::tuple<Shape, long, long>> swaps = {
      {{2, 3, 4}, 0, 2}, {{2, 3, 4}, -1, -2}, {{2, 3, 4}, 1, 1}, {{2, 1, 3, 2}, 1, 3}, {{2, 1, 3, 2}, 0, -1},
      {{3, 4}, 0, 1}, {{1, 4}, -1, 0}};
  for (const auto& [shape, i, j] : swaps)
    c.push_back({"transpose_" + shape_str(shape) + "_" + std::to_string(i) + "_" + std::to_string(j), {shape},
                 Domain::any, [i = i, j = j](const Vars& v) { return transpose(v[0], i, j); },
                 [i = i, j = j](const std::vector<A>& x) {
                   std::vector<std::size_t> axes(x[0].dimension());
                   std::iota(axes.begin(), axes.end(), std::size_t(0));
                   std::swap(axes[positive_axis(i, axes.size())], axes[positive_axis(j, axes.size())]);
                   return A(xt::transpose(x[0], axes));
                 }});

  const std::vector<std::pair<Shape, long>> unsqueezes = {
      {{2, 3}, 0}, {{2, 3}, 1}, {{2, 3}, 2}, {{2, 3}, -1}, {{2, 3}, -3}, {{1, 4}, -2}, {{4}, -1}, {{}, 0}};
  for (const auto& [shape, axis] : unsqueezes)
    c.push_back({"unsqueeze_" + shape_str(shape) + "_" + std::to_string(axis), {shape}, Domain::any,
                 [axis = axis](const Vars& v) { return unsqueeze(v[0], axis); },
                 [axis = axis](const std::vector<A>& x) {
                   return A(xt::expand_dims(x[0], positive_axis(axis, x[0].dimension() + 1)));
                 }});

  const std::vector<std::pair<Shape, long>> squeezes = {
      {{2, 1, 3}, 1}, {{2, 1, 3}, -2}, {{1, 4}, 0}, {{3, 1}, -1}, {{1, 1, 2}, 1}, {{1}, 0}};
  for (const auto& [shape, axis] : squeezes)
    c.push_back({"squeeze_" + shape_str(shape) + "_" + std::to_string(axis), {shape}, Domain::any,
                 [axis = axis](const Vars& v) { return squeeze(v[0], axis); },
                 [axis = axis](const std::vector<A>& x) {
                   return A(xt::squeeze(x[0], positive_axis(axis, x[0].dimension()), xt::check_policy::full()));
                 }});
  for (const Shape& shape : std::vector<Shape>{{1, 3, 1, 2}, {2, 3}, {1, 1}, {4, 1}})
    c.push_back({"squeeze_all_" + shape_str(shape), {shape}, Domain::any,
                 [](const Vars& v) { return squeeze(v[0]); },
                 [](const std::vector<A>& x) { return A(xt::squeeze(x[0])); }});

  // Every piece weighted by its own factor (1, 2, 3, ...) and joined again: each piece's place
  // shows in the forward value and each piece's gradient in the finite differences.
  const std::vector<std::tuple<Shape, long, std::vector<std::size_t>>> splits = {
      {{2, 5, 3}, 1, {2, 1, 2}}, {{2, 5, 3}, -1, {3}}, {{2, 5, 3}, 0, {1, 1}}, {{6}, 0, {1, 2, 3}},
      {{4, 1}, -1, {1}}, {{3, 4}, -2, {2, 1}}};
  for (const auto& [shape, axis, sizes] : splits)
    c.push_back({"split_" + shape_str(shape) + "_" + std::to_string(axis) + "_" + str(sizes), {shape},
                 Domain::any,
                 [axis = axis, sizes = sizes](const Vars& v) {
                   std::vector<Var<double>> pieces = split(v[0], axis, sizes);
                   EXPECT_EQ(pieces.size(), sizes.size());
                   for (std::size_t i = 0; i < pieces.size(); ++i) pieces[i] = pieces[i] * double(i + 1);
                   return concat(pieces, axis);
                 },
                 [axis = axis, sizes = sizes](const std::vector<A>& x) {
                   A y = x[0];
                   const std::size_t ax = positive_axis(axis, y.dimension());
                   std::size_t begin = 0;
                   for (std::size_t i = 0; i < sizes.size(); ++i) {
                     xt::xstrided_slice_vector sv(y.dimension(), xt::all());
                     sv[ax] = xt::range(begin, begin + sizes[i]);
                     xt::strided_view(y, sv) *= double(i + 1);
                     begin += sizes[i];
                   }
                   return y;
                 }});
  // One piece alone (the others unused): its values, and a gradient only in its block.
  for (std::size_t piece : {0, 1, 2})
    c.push_back({"split_piece" + std::to_string(piece), {{2, 6, 2}}, Domain::any,
                 [piece](const Vars& v) { return split(v[0], 1, {1, 3, 2})[piece]; },
                 [piece](const std::vector<A>& x) {
                   const std::size_t begin[] = {0, 1, 4}, end[] = {1, 4, 6};
                   return A(xt::view(x[0], xt::all(), xt::range(begin[piece], end[piece])));
                 }});

  const std::vector<std::tuple<Shape, long, std::vector<int>>> selections = {
      {{5, 3}, 0, {4, 0, 4, 2}}, {{2, 4, 3}, 1, {3, 3, 0}}, {{2, 4, 3}, -1, {2}}, {{2, 1, 3}, 1, {0, 0}},
      {{3}, 0, {1, 2, 0, 1}}, {{2, 3}, -2, {}}};
  for (const auto& [shape, axis, ids] : selections)
    c.push_back({"index_select_" + shape_str(shape) + "_" + std::to_string(axis) + "_" + std::to_string(ids.size()),
                 {shape}, Domain::any, [axis = axis, ids = ids](const Vars& v) { return index_select(v[0], axis, ids); },
                 [axis = axis, ids = ids](const std::vector<A>& x) { return reference_index_select(x[0], axis, ids); }});
  return c;
}

}  // namespace

XGRAD_OP_TABLE_TESTS(TensorOps, cases())

namespace {

Var<double> zeros(const Shape& s) { return constant<double>(xt::zeros<double>(s)); }

// Float gives the same forward values as double, to float precision.
TEST(Bmm, FloatMatchesDouble) {
  std::mt19937_64 gen(5);
  const A a = random_array({3, 4, 6}, Domain::any, gen), b = random_array({3, 6, 5}, Domain::any, gen);
  const A bt = random_array({3, 5, 6}, Domain::any, gen);
  const Array<float> af = xt::cast<float>(a), bf = xt::cast<float>(b), btf = xt::cast<float>(bt);
  EXPECT_TRUE(close(xt::cast<double>(bmm(constant(af), constant(bf)).value()), bmm(constant(a), constant(b)).value(), 1e-5));
  EXPECT_TRUE(close(xt::cast<double>(bmm_nt(constant(af), constant(btf)).value()),
                    bmm_nt(constant(a), constant(bt)).value(), 1e-5));
  clear_tape();
}

// The float instantiations run forward and backward (the table checks double only).
TEST(TensorOps, FloatForwardAndBackward) {
  auto x = param<float>(xt::arange<float>(24).reshape({2, 3, 4}));
  auto y = index_select(squeeze(unsqueeze(permute(x, {1, 0, 2}), 0), 0), -1, {3, 0});
  auto pieces = split(transpose(y, 0, 2), 0, {1, 1});
  sum(bmm_nt(pieces[0], pieces[1])).backward();
  EXPECT_EQ(Shape(x.grad().shape().begin(), x.grad().shape().end()), (Shape{2, 3, 4}));
  EXPECT_EQ(x.grad()(0, 0, 1), 0.0f);  // column 1 is never selected
  EXPECT_NE(x.grad()(0, 0, 0), 0.0f);
  clear_tape();
}

// Under no-grad nothing is saved, and the values are the same.
TEST(TensorOps, NoGradGivesTheSameValues) {
  std::mt19937_64 gen(9);
  const A a = random_array({2, 3, 4}, Domain::any, gen);
  auto x = param(a);
  const A with = index_select(permute(x, {2, 0, 1}), 1, {1, 1, 0}).value();
  NoGradGuard guard;
  const A without = index_select(permute(x, {2, 0, 1}), 1, {1, 1, 0}).value();
  EXPECT_EQ(with, without);
  EXPECT_EQ(bmm(x, permute(x, {0, 2, 1})).value(), bmm_nt(x, x).value());
  clear_tape();
}

// As the header says: embedding(table, ids) is index_select(table, 0, ids), value and gradient.
TEST(IndexSelect, AlongAxis0IsEmbedding) {
  std::mt19937_64 gen(13);
  auto table = param(random_array({5, 3}, Domain::any, gen));
  const A w = random_array({4, 3}, Domain::any, gen);
  const std::vector<int> ids = {4, 1, 4, 0};
  sum(embedding(table, ids) * w).backward();
  const A by_embedding = table.grad();
  table.zero_grad();
  auto y = index_select(table, 0, ids);
  EXPECT_EQ(y.value(), embedding(table, ids).value());
  sum(y * w).backward();
  EXPECT_EQ(table.grad(), by_embedding);
  clear_tape();
}

TEST(TensorOpsErrors, BatchedProductsNameTheOpAndTheShapes) {
  XGRAD_EXPECT_THROW_MSG(bmm(zeros({2, 3, 4}), zeros({5, 4, 6})), ShapeError, "bmm: batch sizes differ: (2, 3, 4) and (5, 4, 6)");
  XGRAD_EXPECT_THROW_MSG(bmm(zeros({2, 3, 4}), zeros({2, 5, 6})), ShapeError, "bmm: inner dimensions differ", "(2, 3, 4)", "(2, 5, 6)");
  XGRAD_EXPECT_THROW_MSG(bmm(zeros({3, 4}), zeros({2, 4, 6})), ShapeError, "bmm: left operand", "(B, n, k)", "(3, 4)");
  XGRAD_EXPECT_THROW_MSG(bmm(zeros({2, 3, 4}), zeros({2, 4, 6, 1})), ShapeError, "bmm: right operand", "(B, k, p)", "(2, 4, 6, 1)");
  XGRAD_EXPECT_THROW_MSG(bmm(zeros({0, 3, 4}), zeros({0, 4, 6})), ValueError, "bmm: left operand is empty", "(0, 3, 4)");
  XGRAD_EXPECT_THROW_MSG(bmm(zeros({2, 3, 4}), zeros({2, 4, 0})), ValueError, "bmm: right operand is empty", "(2, 4, 0)");
  XGRAD_EXPECT_THROW_MSG(bmm_nt(zeros({2, 3, 4}), zeros({2, 4, 6})), ShapeError, "bmm_nt: inner dimensions differ", "(2, 3, 4)", "(2, 4, 6)");
  XGRAD_EXPECT_THROW_MSG(bmm_nt(zeros({2, 3, 4}), zeros({3, 5, 4})), ShapeError, "bmm_nt: batch sizes differ", "(3, 5, 4)");
  XGRAD_EXPECT_THROW_MSG(bmm_nt(zeros({2, 3, 4}), zeros({5, 4})), ShapeError, "bmm_nt: right operand", "(B, p, k)", "(5, 4)");
  XGRAD_EXPECT_THROW_MSG(bmm_nt(zeros({4}), zeros({2, 5, 4})), ShapeError, "bmm_nt: left operand", "(4,)");
}

TEST(TensorOpsErrors, PermutationsAndAxes) {
  auto a = zeros({2, 3, 4});
  XGRAD_EXPECT_THROW_MSG(permute(a, {0, 1}), ValueError, "permute", "(0, 1)", "not a permutation", "(2, 3, 4)");
  XGRAD_EXPECT_THROW_MSG(permute(a, {0, 1, 1}), ValueError, "permute", "(0, 1, 1)", "not a permutation");
  XGRAD_EXPECT_THROW_MSG(permute(a, {0, 1, 2, 3}), ValueError, "permute", "(0, 1, 2, 3)");
  XGRAD_EXPECT_THROW_MSG(permute(a, {0, 3, 1}), IndexError, "permute: axis 3 out of range", "(2, 3, 4)");
  XGRAD_EXPECT_THROW_MSG(transpose(a, 0, 3), IndexError, "transpose: axis 3 out of range", "(2, 3, 4)");
  XGRAD_EXPECT_THROW_MSG(transpose(a, -4, 0), IndexError, "transpose: axis -4");
  XGRAD_EXPECT_THROW_MSG(unsqueeze(a, 4), IndexError, "unsqueeze: axis 4 out of range", "(2, 3, 4)", "-4 .. 3");
  XGRAD_EXPECT_THROW_MSG(unsqueeze(a, -5), IndexError, "unsqueeze: axis -5");
  XGRAD_EXPECT_THROW_MSG(squeeze(a, 1), ShapeError, "squeeze: axis 1 of shape (2, 3, 4) has size 3, not 1");
  XGRAD_EXPECT_THROW_MSG(squeeze(a, 3), IndexError, "squeeze: axis 3 out of range", "(2, 3, 4)");
  XGRAD_EXPECT_THROW_MSG(squeeze(zeros({}), 0), IndexError, "squeeze: axis 0", "()");
}

TEST(TensorOpsErrors, SplitSizesAndIds) {
  auto a = zeros({2, 5});
  XGRAD_EXPECT_THROW_MSG(split(a, 1, {2, 2}), ShapeError, "split: sizes (2, 2) sum to 4", "5", "axis 1", "(2, 5)");
  XGRAD_EXPECT_THROW_MSG(split(a, -1, {3, 3}), ShapeError, "split", "sum to 6");
  XGRAD_EXPECT_THROW_MSG(split(a, 0, {}), ShapeError, "split: sizes () sum to 0");
  XGRAD_EXPECT_THROW_MSG(split(a, 1, {2, 0, 3}), ValueError, "split: piece 1", "(2, 0, 3)", "empty");
  XGRAD_EXPECT_THROW_MSG(split(a, 2, {2}), IndexError, "split: axis 2 out of range", "(2, 5)");
  XGRAD_EXPECT_THROW_MSG(index_select(a, 1, {0, 5}), IndexError, "index_select: id 5 (position 1)", "5 entries", "axis 1", "(2, 5)");
  XGRAD_EXPECT_THROW_MSG(index_select(a, 0, {-1}), IndexError, "index_select: id -1", "2 entries");
  XGRAD_EXPECT_THROW_MSG(index_select(a, -3, {0}), IndexError, "index_select: axis -3 out of range", "(2, 5)");
}

TEST(TensorOpsErrors, StaleInputsNameTheOp) {
  auto x = param<double>(xt::ones<double>({2, 3, 4}));
  auto y = x * 2.0;
  clear_tape();
  XGRAD_EXPECT_THROW_MSG(bmm(y, x), StaleHandleError, "bmm");
  XGRAD_EXPECT_THROW_MSG(bmm_nt(x, y), StaleHandleError, "bmm_nt");
  XGRAD_EXPECT_THROW_MSG(permute(y, {0, 1, 2}), StaleHandleError, "permute");
  XGRAD_EXPECT_THROW_MSG(transpose(y, 0, 1), StaleHandleError, "transpose");
  XGRAD_EXPECT_THROW_MSG(unsqueeze(y, 0), StaleHandleError, "unsqueeze");
  XGRAD_EXPECT_THROW_MSG(squeeze(y, 0), StaleHandleError, "squeeze");
  XGRAD_EXPECT_THROW_MSG(squeeze(y), StaleHandleError, "squeeze");
  XGRAD_EXPECT_THROW_MSG(split(y, 0, {2}), StaleHandleError, "split");
  XGRAD_EXPECT_THROW_MSG(index_select(y, 0, {0}), StaleHandleError, "index_select");
}

TEST(TensorOpsErrors, AFailedOpLeavesTheTapeUnchanged) {
  clear_tape();
  auto x = param<double>(xt::ones<double>({2, 3, 4}));
  auto y = x * 2.0;
  const std::size_t before = Tape<double>::current().size();
  EXPECT_THROW(bmm(y, y), ShapeError);
  EXPECT_THROW(bmm_nt(y, zeros({3, 3, 4})), ShapeError);
  EXPECT_THROW(permute(y, {0, 0, 1}), ValueError);
  EXPECT_THROW(transpose(y, 0, 5), IndexError);
  EXPECT_THROW(unsqueeze(y, 5), IndexError);
  EXPECT_THROW(squeeze(y, 2), ShapeError);
  EXPECT_THROW(split(y, 2, {1, 1, 1}), ShapeError);
  EXPECT_THROW(split(y, 2, {4, 0}), ValueError);
  EXPECT_THROW(index_select(y, 1, {0, 3}), IndexError);
  EXPECT_EQ(Tape<double>::current().size(), before);
  clear_tape();
}

}  // namespace
