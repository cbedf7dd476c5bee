#include "dist.hpp"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "../autograd/errors.hpp"

namespace xgrad::dist {
namespace {

// Largest message of a fused exchange: big enough that the per-message latency is amortised,
// small enough that the buffer stays a modest addition to the model's memory.
constexpr std::size_t kFusedBytes = std::size_t(4) << 20;

struct State {
  bool alive = false;  // a Session exists
  bool owns = false;   // it initialised MPI, so it finalises it
  int rank = 0, size = 1;
  // A duplicate of MPI_COMM_WORLD, so that the library's messages never match a program's own.
  MPI_Comm comm = MPI_COMM_NULL;
  std::terminate_handler previous = nullptr;
};
State g;

// Collectives go over MPI only when there is someone to talk to; one rank acts locally, so a
// program without mpirun computes exactly what it computes without dist.
bool distributed() { return g.alive && g.size > 1; }

bool mpi_running() {
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  return initialised && !finalised;
}

// An exception nobody caught: say which rank failed and why, then end the whole job, since the
// other ranks may be waiting in a collective for this one forever.
[[noreturn]] void on_terminate() {
  std::string what = "terminate called without an active exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
      what = "an exception that is not a std::exception";
    }
  }
  abort(what);
}

// Whether a launcher (mpirun, mpiexec, srun) started this process: each sets its process
// management interface's variables. Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE and PMIX_RANK,
// srun --mpi=pmix PMIX_RANK, Hydra and srun --mpi=pmi2 PMI_RANK.
bool started_by_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

void start(int* argc, char*** argv) {
  if (g.alive) throw Error("dist::Session: a session is already alive (create one per program)");
  int initialised = 0, finalised = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalised);
  if (finalised) throw Error("dist::Session: MPI was already finalised and cannot be initialised again");
  State s;
  if (!initialised && !started_by_launcher()) {
    // Alone: rank 0 of 1 without starting MPI, whose singleton start would spawn a helper
    // daemon and keep memory it never frees. The collectives act locally.
    s.previous = std::set_terminate(on_terminate);
    s.alive = true;
    g = s;
    return;
  }
  if (!initialised) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw Error("dist::Session: the MPI library provides thread level " + std::to_string(provided) +
                  ", below MPI_THREAD_FUNNELED (" + std::to_string(MPI_THREAD_FUNNELED) + ")");
    }
    s.owns = true;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &s.comm);
  MPI_Comm_rank(s.comm, &s.rank);
  MPI_Comm_size(s.comm, &s.size);
  s.previous = std::set_terminate(on_terminate);
  s.alive = true;
  g = s;
}

MPI_Datatype mpi_type(float) { return MPI_FLOAT; }
MPI_Datatype mpi_type(double) { return MPI_DOUBLE; }

// The shapes of a parameter list as one array of integers: the count, then each parameter's
// rank (number of dimensions) and dimensions. Also checks each element is a parameter.
template <class T>
std::vector<std::int64_t> describe(const std::vector<Var<T>>& params, const char* who) {
  std::vector<std::int64_t> d{std::int64_t(params.size())};
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].is_param())
      throw ValueError(std::string(who) + ": element " + std::to_string(i) + " of the list is not a parameter");
    const auto& shape = params[i].shape();
    d.push_back(std::int64_t(shape.size()));
    for (auto n : shape) d.push_back(std::int64_t(n));
  }
  return d;
}

// The shapes of each parameter in a description made by describe().
std::vector<std::vector<std::int64_t>> shapes_of(const std::int64_t* d) {
  std::vector<std::vector<std::int64_t>> shapes(static_cast<std::size_t>(d[0]));
  const std::int64_t* p = d + 1;
  for (auto& s : shapes) {
    s.assign(p + 1, p + 1 + *p);
    p += 1 + *p;
  }
  return shapes;
}

// FNV-1a over the description, in 62 bits so that its negation fits too.
std::int64_t fingerprint(const std::vector<std::int64_t>& d) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::int64_t v : d)
    for (int b = 0; b < 8; ++b) h = (h ^ ((std::uint64_t(v) >> (8 * b)) & 0xff)) * 1099511628211ull;
  return std::int64_t(h & ((std::uint64_t(1) << 62) - 1));
}

// Collective: returns when every rank's description equals rank ref's, else throws the same
// ShapeError on every rank, naming the first parameter that differs and both shapes. The common
// case costs one reduction of two integers; the descriptions are exchanged only on a mismatch.
void check_same_shapes(const std::vector<std::int64_t>& mine, int ref, const char* who) {
  const std::int64_t h = fingerprint(mine);
  std::int64_t v[2] = {h, -h};  // max(h) and −min(h): equal to h and −h on every rank iff all agree
  MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT64_T, MPI_MAX, g.comm);
  if (v[0] == h && v[1] == -h) return;

  const int n = int(mine.size());
  std::vector<int> counts(std::size_t(g.size)), offsets(std::size_t(g.size), 0);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, g.comm);
  for (int r = 1; r < g.size; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<std::int64_t> all(std::size_t(offsets.back() + counts.back()));
  MPI_Allgatherv(mine.data(), n, MPI_INT64_T, all.data(), counts.data(), offsets.data(), MPI_INT64_T, g.comm);

  const auto expected = shapes_of(all.data() + offsets[ref]);
  for (int r = 0; r < g.size; ++r) {
    const auto got = shapes_of(all.data() + offsets[r]);
    if (got.size() != expected.size())
      throw ShapeError(std::string(who) + ": rank " + std::to_string(r) + " has " + std::to_string(got.size()) +
                       " parameters but rank " + std::to_string(ref) + " has " + std::to_string(expected.size()));
    for (std::size_t i = 0; i < got.size(); ++i)
      if (got[i] != expected[i])
        throw ShapeError(std::string(who) + ": parameter " + std::to_string(i) + " has shape " +
                         shape_str(expected[i]) + " on rank " + std::to_string(ref) + " but " + shape_str(got[i]) +
                         " on rank " + std::to_string(r));
  }
  throw ShapeError(std::string(who) + ": the ranks' parameter lists differ");  // a fingerprint collision
}

template <class T>
std::vector<T>& scratch() {
  static std::vector<T> buffer;  // reused by every exchange: no allocation per step
  return buffer;
}

// Moves one array per parameter (its value or its gradient) through MPI in few large messages:
// consecutive parameters are packed into a buffer of up to kFusedBytes (a larger one split
// over several), `exchange(buffer, count)` runs one collective on it, and the result is
// unpacked. pack(p, offset, count, out) writes elements [offset, offset + count) of p's array
// to out; unpack(p, offset, count, in) reads them back.
template <class T, class Pack, class Exchange, class Unpack>
void fused(const std::vector<Var<T>>& params, Pack pack, Exchange exchange, Unpack unpack) {
  struct Piece {
    std::size_t param, offset, count;
  };
  const std::size_t cap = kFusedBytes / sizeof(T);
  std::size_t total = 0;
  for (const auto& p : params) total += p.size();
  std::vector<T>& buffer = scratch<T>();
  buffer.resize(std::min(cap, total));

  std::vector<Piece> pieces;
  std::size_t used = 0;
  auto flush = [&] {
    if (used == 0) return;
    T* b = buffer.data();
    for (const Piece& q : pieces) pack(params[q.param], q.offset, q.count, b), b += q.count;
    exchange(buffer.data(), int(used));
    b = buffer.data();
    for (const Piece& q : pieces) unpack(params[q.param], q.offset, q.count, b), b += q.count;
    pieces.clear();
    used = 0;
  };
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::size_t n = params[i].size();
    for (std::size_t offset = 0; offset < n;) {
      const std::size_t take = std::min(n - offset, cap - used);
      pieces.push_back({i, offset, take});
      used += take;
      offset += take;
      if (used == cap) flush();
    }
  }
  flush();
}

}  // namespace

Session::Session(int& argc, char**& argv) { start(&argc, &argv); }

Session::Session() { start(nullptr, nullptr); }

Session::~Session() {
  std::set_terminate(g.previous);
  if (std::uncaught_exceptions() > 0 && g.size > 1) {
    // An exception is leaving the session's scope on this rank while the others may be waiting
    // for it in a collective; finalising would wait for them in turn. Left initialised, MPI ends
    // the whole job when this process exits, after whoever catches the exception has reported it.
    g = State{};
    return;
  }
  if (g.comm != MPI_COMM_NULL) MPI_Comm_free(&g.comm);
  if (g.owns) MPI_Finalize();
  g = State{};
}

int rank() { return g.alive ? g.rank : 0; }

int world_size() { return g.alive ? g.size : 1; }

void abort(const std::string& message, int code) {
  std::fprintf(stderr, "rank %d: %s\n", rank(), message.c_str());
  std::fflush(stderr);
  if (mpi_running()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

template <class T>
void broadcast_parameters(const std::vector<Var<T>>& params, int root) {
  constexpr const char* who = "broadcast_parameters";
  if (root < 0 || root >= world_size())
    throw ValueError(std::string(who) + ": root " + std::to_string(root) + " is not a rank of this job of " +
                     std::to_string(world_size()));
  const auto shapes = describe(params, who);
  if (!distributed()) return;
  check_same_shapes(shapes, root, who);
  const bool is_root = g.rank == root;
  fused(
      params,
      [&](const Var<T>& p, std::size_t offset, std::size_t count, T* out) {
        if (is_root) std::copy_n(p.value().data() + offset, count, out);
      },
      [&](T* buffer, int count) { MPI_Bcast(buffer, count, mpi_type(T()), root, g.comm); },
      [&](const Var<T>& p, std::size_t offset, std::size_t count, const T* in) {
        if (!is_root) std::copy_n(in, count, p.mutable_value().data() + offset);
      });
}

template <class T>
void all_reduce_gradients(const std::vector<Var<T>>& params, double weight) {
  constexpr const char* who = "all_reduce_gradients";
  if (!std::isfinite(weight))
    throw ValueError(std::string(who) + ": the weight must be finite, not " + std::to_string(weight));
  const auto shapes = describe(params, who);
  if (distributed()) check_same_shapes(shapes, 0, who);
  // A parameter whose gradient buffer is missing takes part with zeros.
  for (const auto& p : params)
    if (p.mutable_grad().size() != p.size()) p.mutable_grad() = xt::zeros<T>(p.shape());
  const T w = T(weight);
  if (!distributed()) {
    if (weight != 1.0)
      for (const auto& p : params) p.mutable_grad() *= w;
    return;
  }
  fused(
      params,
      [&](const Var<T>& p, std::size_t offset, std::size_t count, T* out) {
        const T* grad = p.mutable_grad().data() + offset;
        for (std::size_t j = 0; j < count; ++j) out[j] = w * grad[j];
      },
      [&](T* buffer, int count) { MPI_Allreduce(MPI_IN_PLACE, buffer, count, mpi_type(T()), MPI_SUM, g.comm); },
      [&](const Var<T>& p, std::size_t offset, std::size_t count, const T* in) {
        std::copy_n(in, count, p.mutable_grad().data() + offset);
      });
}

double all_reduce_sum(double x) {
  if (distributed()) MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, g.comm);
  return x;
}

void barrier() {
  if (distributed()) MPI_Barrier(g.comm);
}

template void broadcast_parameters(const std::vector<Var<float>>&, int);
template void broadcast_parameters(const std::vector<Var<double>>&, int);
template void all_reduce_gradients(const std::vector<Var<float>>&, double);
template void all_reduce_gradients(const std::vector<Var<double>>&, double);

}  // namespace xgrad::dist
