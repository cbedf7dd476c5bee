// A job in which rank 1 fails while the others wait for it in a collective: the job must end
// with rank 1's message instead of hanging. Modes:
//   uncaught  the exception leaves main (the terminate path: message, then MPI_Abort)
//   caught    the exception leaves the Session's scope and main reports it and returns 3
//   abort     the program catches it and calls dist::abort itself
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <xgrad/dist.hpp>
#include <xgrad/xgrad.hpp>

namespace {

void run(const char* mode) {
  std::vector<xgrad::Var<double>> params{xgrad::param<double>(xgrad::Array<double>{1.0, 2.0})};
  xgrad::dist::broadcast_parameters(params);
  if (xgrad::dist::rank() == 1) {
    const std::string what = "the data of this rank is bad: 7 streams for 8 ranks";
    if (std::strcmp(mode, "abort") == 0) xgrad::dist::abort("stopping: " + what, 4);
    throw xgrad::DataError(what);
  }
  // The others wait for rank 1 here.
  xgrad::dist::all_reduce_gradients(params, 1.0);
  xgrad::dist::barrier();
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "uncaught";
  if (std::strcmp(mode, "caught") == 0) {
    try {
      xgrad::dist::Session session(argc, argv);
      run(mode);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "failing_rank: %s\n", e.what());
      return 3;
    }
    return 0;
  }
  xgrad::dist::Session session(argc, argv);
  run(mode);
  return 0;
}
