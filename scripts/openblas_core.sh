# Sourced by the scripts (and by hand: `. scripts/openblas_core.sh`): unless OPENBLAS_CORETYPE is
# set already, sets it to the kernels OpenBLAS picks for the CPUs it knows with this CPU's
# features, the rule of autograd/blas.hpp (openblas_core_for_cpu): AVX-512 F, CD, BW, DQ and VL
# -> SkylakeX; AVX2 and FMA -> Haswell. Debian's OpenBLAS falls back to its generic SSE3 kernels
# on a CPU model newer than its release, several times slower; OpenBLAS reads the setting when
# a program starts. Not for programs under valgrind, which has no AVX-512.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
  xgrad_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2 || true) "
  xgrad_has() {
    local f
    for f in "$@"; do [[ "$xgrad_flags" == *" $f "* ]] || return 1; done
  }
  if xgrad_has avx512f avx512cd avx512bw avx512dq avx512vl; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif xgrad_has avx2 fma; then
    export OPENBLAS_CORETYPE=Haswell
  fi
  unset -f xgrad_has
  unset xgrad_flags
fi
