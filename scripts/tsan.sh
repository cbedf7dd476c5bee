#!/usr/bin/env bash
# Every test that starts threads, built with ThreadSanitizer (-DXGRAD_TSAN=ON: -O1 -g): any
# report fails. Only the library and the test programs that start threads are built (with
# Ninja when it is there: make builds several targets one after the other).
# A test that starts threads has "Thread" in its name (TapeTest.EachThreadRecordsOnItsOwnTape,
# Threads.*, Anomaly.GuardIsPerThread) and lives in a tests/test_*.cpp that uses std::thread or
# std::async: those files are found by grep, so a new one is built without editing this script.
# The examples start no threads of their own (--threads sets OpenBLAS's pool, which is not
# instrumented), and the tests above already run OpenBLAS's pool under two threads of xgrad.
# JOBS=N limits parallel builds and tests (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/openblas_core.sh
jobs="${JOBS:-$(nproc)}"
build=build-tsan

mapfile -t tests < <(grep -lE 'std::(thread|jthread|async)\b' tests/test_*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
[ "${#tests[@]}" -gt 0 ] || { echo "tsan.sh: no test file uses threads" >&2; exit 1; }
generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug -DXGRAD_TSAN=ON -DXGRAD_SANITIZE=OFF \
      -DXGRAD_BUILD_TESTS=ON -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF -DXGRAD_FUZZ=OFF >/dev/null
echo "tsan.sh: building ${tests[*]}"
cmake --build "$build" -j "$jobs" --target "${tests[@]}"

# halt_on_error: the first report ends the program with exitcode, so ctest and this script fail.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66:history_size=4"
ctest --test-dir "$build" --output-on-failure -j "$jobs" -R Thread --no-tests=error

echo "tsan.sh: no ThreadSanitizer reports"
