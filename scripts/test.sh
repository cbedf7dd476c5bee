#!/usr/bin/env bash
# Setup (dependencies + Release build), then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/openblas_core.sh
scripts/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
