#!/usr/bin/env bash
# char_lm for 50 steps under valgrind memcheck, then a resume and a short sample from the
# checkpoint it wrote: any memory error or definitely lost byte fails. Uses the Release build
# in $BUILD_DIR (default build/, made by scripts/test.sh); builds char_lm there if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
jobs="${JOBS:-$(nproc)}"

if ! command -v valgrind >/dev/null; then
  echo "valgrind.sh: installing valgrind"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq valgrind >/dev/null
fi
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$jobs" --target char_lm

# One BLAS thread: OpenBLAS's thread pool is not freed at exit (reachable, not lost), and
# valgrind serialises threads anyway.
export OPENBLAS_NUM_THREADS=1
# valgrind runs no AVX-512: OpenBLAS must pick its kernels from what valgrind reports, not from a
# setting for the real CPU (scripts/openblas_core.sh's, inherited from the caller's shell).
unset OPENBLAS_CORETYPE
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
memcheck=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite
          --show-leak-kinds=definite --track-origins=yes)
char_lm="$build/examples/char_lm"
# One fortune file (19 KB, from the fortunes package that setup.sh installs): the final
# held-out evaluation covers all held-out text, too slow under memcheck for the whole corpus.
data="${VALGRIND_DATA:-/usr/share/games/fortunes/linuxcookie}"

echo "valgrind.sh: char_lm --steps 50 under memcheck"
"${memcheck[@]}" "$char_lm" --data "$data" --steps 50 --hidden 32 --embed 16 --batch 4 --seq-len 16 --seed 1 \
  --threads 1 --checkpoint "$work/run.ckpt" --out "$work/out"
echo "valgrind.sh: char_lm --resume --sample 200 under memcheck"
"${memcheck[@]}" "$char_lm" --resume "$work/run.ckpt" --sample 200 --seed 1 --threads 1 >/dev/null
echo "valgrind.sh: no memory errors, no definitely lost bytes"
