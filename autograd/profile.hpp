// The profiler: per op name, how often it ran and where the time and memory went.
//
//   {
//     xgrad::Profile profile;            // this thread records into it while it lives
//     auto loss = model_loss(batch);
//     loss.backward();
//     profile.print(std::cout);          // the table, sorted by total time
//     profile.write_csv("profile.csv");
//   }
//
// Forward time runs from an op's record being opened (after its checks) to its output being
// finished, so it is the op's arithmetic; backward time is its backward rule in the sweep. An op
// run under NoGradGuard counts as a forward call (its time and value bytes) and never has a
// backward. Custom ops (custom_op.hpp) count under their own names like built-ins.
//
// Each thread has its own profiles: a Profile sees only the ops of the thread that made it.
// Profiles nest: an op is counted by every Profile alive on its thread, the inner one seeing
// only what ran while it lived. Off (no Profile alive) an op tests a pointer in the thread's
// state block it reads anyway (detail::ThreadState) and reads no clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tape.hpp"

namespace xgrad {

struct OpProfile {
  std::string op;
  std::size_t calls = 0;           // forward calls, no-grad ones included
  double forward_seconds = 0;
  std::size_t backward_calls = 0;  // backward rules run in sweeps
  double backward_seconds = 0;
  std::size_t value_bytes = 0;     // bytes of the output values the forward calls produced
  std::size_t grad_bytes = 0;      // bytes of the inputs' gradient buffers the backward calls sent
                                   // to (a whole buffer, even where the op fills a slice: select)
  double total_seconds() const { return forward_seconds + backward_seconds; }
};

class Profile {
 public:
  Profile();
  ~Profile();
  Profile(const Profile&) = delete;
  Profile& operator=(const Profile&) = delete;

  // Stops recording early (the results stay readable); only the innermost recording Profile of
  // this thread may stop, else Error. A second stop() does nothing.
  void stop();
  bool recording() const { return recording_; }

  // Every op seen, by total time, longest first (ties by name).
  std::vector<OpProfile> ops() const;
  // The op named `op`: zeros if it never ran.
  OpProfile op(const std::string& op) const;
  // The table: op, calls, forward ms, backward calls, backward ms, total ms, share of the
  // total, value and gradient bytes; a total row last.
  void print(std::ostream& os) const;
  std::string report() const;
  // op,calls,forward_seconds,backward_calls,backward_seconds,total_seconds,value_bytes,grad_bytes
  // with a header line, rows in ops() order, names quoted as CSV requires. Error if the file
  // cannot be written.
  void write_csv(const std::string& path) const;

 private:
  std::unique_ptr<detail::ProfileState> state_;
  bool recording_ = true;
};

namespace detail {

using ProfileClock = std::chrono::steady_clock;

// The innermost recording Profile of this thread, or null: all an op reads of it when off.
inline ProfileState* profile_state() { return tl_thread.profile; }
// Adds one call of `op` to `state` and the Profiles around it.
void profile_forward(ProfileState* state, const char* op, ProfileClock::time_point start, std::size_t value_bytes);
void profile_backward(ProfileState* state, const char* op, ProfileClock::time_point start, std::size_t grad_bytes);

}  // namespace detail

}  // namespace xgrad
