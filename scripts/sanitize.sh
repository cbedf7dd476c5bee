#!/usr/bin/env bash
# The test suite built with AddressSanitizer and UndefinedBehaviorSanitizer (-O1 for speed,
# -g1: line tables are all a report's stack trace needs, and compile ~30% faster than -g; no
# benchmarks; the examples are built because tests run them): any report fails.
# JOBS=N limits parallel builds and tests (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/openblas_core.sh
jobs="${JOBS:-$(nproc)}"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DXGRAD_SANITIZE=ON \
      -DXGRAD_BUILD_TESTS=ON -DXGRAD_BUILD_EXAMPLES=ON -DXGRAD_BUILD_BENCH=OFF -DXGRAD_FUZZ=OFF >/dev/null
cmake --build build-sanitize -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OPENBLAS_NUM_THREADS=1
mpi_tests='^(Dist\.|CharLmMpi\.)'
ctest --test-dir build-sanitize --output-on-failure -j "$jobs" -E "^Package\\.|$mpi_tests"
# The programs started by mpirun: Open MPI's own unfreed memory is suppressed, which needs whole
# stacks at each allocation (the slow unwinder: its libraries have no frame pointers), so only
# these tests pay for it.
ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" LSAN_OPTIONS="suppressions=$PWD/tests/dist/lsan.supp" \
  ctest --test-dir build-sanitize --output-on-failure -j "$jobs" -R "$mpi_tests"
