#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan, the library instrumented too)
# in build-fuzz/ and runs each for FUZZ_SECONDS (default 60) from its seed corpus in
# fuzz/corpus/<target>/. A crash fails the stage; the input is left in build-fuzz/artifacts/
# and belongs in a regression test in tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${JOBS:-$(nproc)}"
seconds="${FUZZ_SECONDS:-60}"
targets=(fuzz_checkpoint fuzz_safetensors fuzz_utf8 fuzz_vocab)

# clang, and libFuzzer's runtime (libclang_rt.fuzzer) from compiler-rt.
missing=()
for p in clang libclang-rt-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
      -DXGRAD_FUZZ=ON -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OPENBLAS_NUM_THREADS=1
mkdir -p build-fuzz/artifacts

# One target's bounded run; its verdict goes to build-fuzz/<target>.verdict.
fuzz_one() {
  local t="$1" log="build-fuzz/$1.log"
  # New inputs go to the scratch corpus; the committed seeds are only read.
  mkdir -p "build-fuzz/corpus/$t"
  if "build-fuzz/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="build-fuzz/artifacts/$t-" "build-fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
    local execs cov
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    echo "fuzz.sh: $t: $execs executions in ${seconds} s, $cov, no crash" >"build-fuzz/$t.verdict"
  else
    echo "FAILED" >"build-fuzz/$t.verdict"
  fi
}

# Each fuzzer is single-threaded: run as many at once as there are cores, so every target still
# gets its full time and the stage takes a fraction of the sum.
failed=()
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  batch=("${targets[@]:i:jobs}")
  for t in "${batch[@]}"; do fuzz_one "$t" & done
  wait
  for t in "${batch[@]}"; do
    if grep -q '^FAILED' "build-fuzz/$t.verdict"; then
      tail -n 60 "build-fuzz/$t.log"
      echo "fuzz.sh: $t FAILED (input in build-fuzz/artifacts/, log in build-fuzz/$t.log)"
      failed+=("$t")
    else
      cat "build-fuzz/$t.verdict"
    fi
  done
done
[ ${#failed[@]} -eq 0 ] || exit 1
