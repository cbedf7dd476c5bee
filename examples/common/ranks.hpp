// The examples' view of data-parallel training: xgrad::dist when the program is built with it
// (XGRAD_EXAMPLES_DIST, defined for a program linked with xgrad::dist), otherwise one process
// that is rank 0 of 1, so an example has one code path whether MPI is there or not.
//
//   ranks::Session session(argc, argv);  // inside guarded_main: an error leaves through it
//   const data::Shard mine = data::shard(B, ranks::rank(), ranks::world_size());
//   ... each step: this rank's rows; then ranks::all_reduce_gradients(params, weight) ...
//
// Header only: the examples' common library does not link MPI, a program that uses this does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include <xgrad/autograd/var.hpp>
#include <xgrad/data/data.hpp>
#ifdef XGRAD_EXAMPLES_DIST
#include <xgrad/dist.hpp>
#endif

namespace xgrad::examples::ranks {

#ifdef XGRAD_EXAMPLES_DIST
constexpr bool kAvailable = true;
using Session = dist::Session;
inline int rank() { return dist::rank(); }
inline int world_size() { return dist::world_size(); }
inline double all_reduce_sum(double x) { return dist::all_reduce_sum(x); }
template <class T>
void broadcast_parameters(const std::vector<Var<T>>& params, int root = 0) { dist::broadcast_parameters(params, root); }
template <class T>
void all_reduce_gradients(const std::vector<Var<T>>& params, double weight) { dist::all_reduce_gradients(params, weight); }
#else
constexpr bool kAvailable = false;
struct Session {
  Session(int&, char**&) {}
};
inline int rank() { return 0; }
inline int world_size() { return 1; }
inline double all_reduce_sum(double x) { return x; }
template <class T>
void broadcast_parameters(const std::vector<Var<T>>&, int = 0) {}
template <class T>
void all_reduce_gradients(const std::vector<Var<T>>& params, double weight) {
  if (weight != 1.0)
    for (const auto& p : params) p.mutable_grad() *= T(weight);
}
#endif

// The shape of a (B, ...) array with `batch` rows instead.
template <class T>
Shape with_rows(const Array<T>& a, std::size_t batch) {
  Shape shape(a.shape().begin(), a.shape().end());
  shape[0] = batch;
  return shape;
}

// Elements per row of a row-major array whose first axis is the batch (B, ...).
template <class T>
std::size_t row_size(const Array<T>& a) {
  std::size_t n = 1;
  for (std::size_t k = 1; k < a.dimension(); ++k) n *= a.shape()[k];
  return n;
}

// Rows [begin, end) of a (B, ...) array: a rank's share of the batch.
template <class T>
Array<T> rows(const Array<T>& a, std::size_t begin, std::size_t end) {
  Array<T> out = Array<T>::from_shape(with_rows(a, end - begin));
  std::copy(a.data() + begin * row_size(a), a.data() + end * row_size(a), out.data());
  return out;
}

// The whole batch (B, ...) on every rank from each rank's rows [shard(B, r, N)): rank r's rows
// are broadcast from it in turn. `mine` are this rank's arrays, all of one batch; the result
// holds the same arrays with all B rows. With one rank it is `mine`.
template <class T>
std::vector<Array<T>> gather_rows(const std::vector<Array<T>>& mine, std::size_t batch) {
  const int world = world_size(), me = rank();
  if (world == 1) return mine;
  std::vector<Array<T>> whole;
  for (const Array<T>& a : mine) whole.push_back(Array<T>::from_shape(with_rows(a, batch)));
  for (int r = 0; r < world; ++r) {
    const auto share = data::shard(batch, r, world);
    std::vector<Var<T>> theirs;  // broadcast moves parameters' values
    for (const Array<T>& a : mine)
      theirs.push_back(param(r == me ? a : Array<T>(xt::zeros<T>(with_rows(a, share.end - share.begin)))));
    broadcast_parameters(theirs, r);
    for (std::size_t i = 0; i < mine.size(); ++i) {
      const Array<T>& part = theirs[i].value();
      std::copy(part.begin(), part.end(), whole[i].data() + share.begin * row_size(part));
    }
  }
  return whole;
}

}  // namespace xgrad::examples::ranks
