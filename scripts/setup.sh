#!/usr/bin/env bash
# Installs xgrad's dependencies from Debian's packages (only what is missing, so it can be run
# again) and builds everything in Release into build/.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake make g++ pkg-config libxtensor-dev libxtensor-blas-dev libopenblas-dev libgtest-dev libgmock-dev
          libbenchmark-dev nlohmann-json3-dev graphviz libopenmpi-dev openmpi-bin fortunes wamerican wngerman wfrench wspanish witalian wportuguese wdutch wswedish)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
