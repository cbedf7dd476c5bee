#!/usr/bin/env bash
# The README's main job: set up (dependencies + Release build), then train the character-level
# language model on the fortune-cookie corpus with its defaults. Writes the loss curve to
# out/char_lm/ (char_lm.svg, char_lm.csv) and the checkpoint to out/char_lm/char_lm.ckpt; sample
# from it afterwards with
#   build/examples/char_lm --resume out/char_lm/char_lm.ckpt --sample 500 --temperature 0.8
# Extra arguments go to char_lm (e.g. --threads 2, --steps 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/openblas_core.sh
scripts/setup.sh
mkdir -p out/char_lm
build/examples/char_lm --out out/char_lm --checkpoint out/char_lm/char_lm.ckpt "$@"
