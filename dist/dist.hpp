// Data-parallel training over MPI (target xgrad::dist, built when MPI is found; the core xgrad
// target never depends on MPI). Each process (rank) holds the whole model and a share of the
// data; after backward the ranks sum their weighted gradients, so every rank takes the same
// optimizer step and the parameters stay identical everywhere.
//
//   int main(int argc, char** argv) {
//     xgrad::dist::Session session(argc, argv);     // rank 0 of 1 when not started by mpirun
//     ... build the model with the same seed on every rank ...
//     xgrad::dist::broadcast_parameters(model.parameters());          // or after a resume
//     for (...) {
//       ... forward and backward on this rank's share, the loss a mean over its n_r tokens ...
//       double weight = n_r / xgrad::dist::all_reduce_sum(n_r);
//       xgrad::dist::all_reduce_gradients(model.parameters(), weight);
//       ... clip, step: identical on every rank ...
//     }
//   }
//
// With weight = n_r / N, Σ_r weight_r · ∇(mean over rank r's tokens) = ∇(mean over all N tokens):
// the step is the one a single process takes on the whole batch.
//
// Every function here is collective: each rank calls it, in the same order, with a parameter
// list of the same shapes. Without a live Session a program is rank 0 of 1 and the functions
// act locally (all_reduce_sum returns x, all_reduce_gradients scales by weight).
//
// Shares of the data: xgrad::data::shard and shard_of (data/data.hpp), which need no MPI.
#pragma once

#include <string>
#include <vector>

#include "../autograd/var.hpp"

namespace xgrad::dist {

// Initialises MPI (MPI_Init_thread, funneled: only this thread calls MPI) unless it is already
// initialised, and finalises it when destroyed if it initialised it. Started by a launcher
// (mpirun, mpiexec, srun: seen from the variables each sets) it joins the job; started alone the
// program is rank 0 of 1 and MPI is not started at all (no daemon, nothing to free), the
// collectives acting locally. A second Session while one is alive is an Error.
//
// A failing rank must not leave the others waiting in a collective. While a session is alive:
// - an exception that ends the program (uncaught) prints "rank r: <what()>" on stderr and
//   aborts the whole job (MPI_Abort);
// - a Session destroyed by an exception passing through its scope (caught further out) does not
//   finalise MPI when there are other ranks, so the job ends when this process exits;
// - a program that catches an error itself and wants to stop calls dist::abort(message).
class Session {
 public:
  Session(int& argc, char**& argv);
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

int rank();        // 0 without a session
int world_size();  // 1 without a session

// Prints "rank r: message" on stderr and ends the whole job with exit code `code` (MPI_Abort;
// without a session, this process only).
[[noreturn]] void abort(const std::string& message, int code = 1);

// Every parameter's value set to root's (in place; shapes checked equal on every rank first:
// a mismatch is a ShapeError on every rank naming the parameter and both shapes, and no value
// changes). root outside [0, world_size()) is a ValueError.
template <class T>
void broadcast_parameters(const std::vector<Var<T>>& params, int root = 0);

// Each parameter's gradient replaced by the sum over ranks of weight · that rank's gradient
// (a parameter with no gradient on a rank counts as zeros there). The gradients are packed into
// buffers of up to 4 MiB and each reduced with one MPI_Allreduce, not one message per parameter.
// Shapes differing between ranks are a ShapeError on every rank, as for broadcast_parameters;
// a weight that is not finite is a ValueError.
template <class T>
void all_reduce_gradients(const std::vector<Var<T>>& params, double weight);

double all_reduce_sum(double x);
void barrier();

}  // namespace xgrad::dist
