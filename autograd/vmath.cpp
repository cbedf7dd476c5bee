#include "vmath.hpp"

#include <atomic>
#include <cmath>

#include "simd.hpp"

// GCC 12 takes the AVX-512 headers' deliberately undefined pass-through operand (of _mm512_max_ps
// and others, inlined here) for an uninitialised variable.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace xgrad::vmath {
namespace {

// The lane operations of the kernels below, in AVX2 (8 lanes, a comparison's result a vector)
// and in AVX-512 (16 lanes, a comparison's result a mask register), on top of simd.hpp's
// registers (zero, set1, load, store, mul, fma, mask and the masked load and store, sum). Each
// function of the kernels is written once over them and compiled for both; the operations are
// the same per lane (the same roundings, FMAs and selections), so both give the same bits.
struct Avx2 : simd::Vec<float> {
  using I = __m256i;
  using Cmp = __m256;  // a comparison: all ones or zeros per lane
  XGRAD_AVX2 static R add(R a, R b) { return _mm256_add_ps(a, b); }
  XGRAD_AVX2 static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  XGRAD_AVX2 static R div(R a, R b) { return _mm256_div_ps(a, b); }
  XGRAD_AVX2 static R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  // max/min return their second operand when either is NaN.
  XGRAD_AVX2 static R max(R a, R b) { return _mm256_max_ps(a, b); }
  XGRAD_AVX2 static R min(R a, R b) { return _mm256_min_ps(a, b); }
  XGRAD_AVX2 static R round(R x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  XGRAD_AVX2 static I to_int(R x) { return _mm256_cvtps_epi32(x); }
  XGRAD_AVX2 static I half(I e) { return _mm256_srai_epi32(e, 1); }
  XGRAD_AVX2 static I isub(I a, I b) { return _mm256_sub_epi32(a, b); }
  XGRAD_AVX2 static R pow2(I e) {  // 2^e for a normal float's exponent e
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
  }
  XGRAD_AVX2 static R or_(R a, R b) { return _mm256_or_ps(a, b); }
  XGRAD_AVX2 static R and_(R a, R b) { return _mm256_and_ps(a, b); }
  XGRAD_AVX2 static R andnot(R a, R b) { return _mm256_andnot_ps(a, b); }  // ~a & b
  XGRAD_AVX2 static Cmp lt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  XGRAD_AVX2 static Cmp gt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  XGRAD_AVX2 static Cmp ge(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  XGRAD_AVX2 static R select(Cmp c, R t, R f) { return _mm256_blendv_ps(f, t, c); }
  XGRAD_AVX2 static R keep(M m, R v) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }  // zeros past the mask
};

struct Avx512 : simd::Vec512<float> {
  using I = __m512i;
  using Cmp = __mmask16;
  XGRAD_AVX512 static R add(R a, R b) { return _mm512_add_ps(a, b); }
  XGRAD_AVX512 static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  XGRAD_AVX512 static R div(R a, R b) { return _mm512_div_ps(a, b); }
  XGRAD_AVX512 static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  XGRAD_AVX512 static R max(R a, R b) { return _mm512_max_ps(a, b); }
  XGRAD_AVX512 static R min(R a, R b) { return _mm512_min_ps(a, b); }
  XGRAD_AVX512 static R round(R x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  XGRAD_AVX512 static I to_int(R x) { return _mm512_cvtps_epi32(x); }
  XGRAD_AVX512 static I half(I e) { return _mm512_srai_epi32(e, 1); }
  XGRAD_AVX512 static I isub(I a, I b) { return _mm512_sub_epi32(a, b); }
  XGRAD_AVX512 static R pow2(I e) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(127)), 23));
  }
  // The bitwise operations on floats through integers (AVX-512F has them; the float forms are DQ).
  XGRAD_AVX512 static R or_(R a, R b) {
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
  XGRAD_AVX512 static R and_(R a, R b) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
  XGRAD_AVX512 static R andnot(R a, R b) {
    return _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
  XGRAD_AVX512 static Cmp lt(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  XGRAD_AVX512 static Cmp gt(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  XGRAD_AVX512 static Cmp ge(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  XGRAD_AVX512 static R select(Cmp c, R t, R f) { return _mm512_mask_blend_ps(c, f, t); }
  XGRAD_AVX512 static R keep(M m, R v) { return _mm512_maskz_mov_ps(m, v); }
};

// The functions over the lanes (vmath_lanes.inc), compiled for each set's instructions.
enum class Fn { exp, sigmoid, tanh };
namespace avx2 {
#define XGRAD_KERNEL_TARGET XGRAD_AVX2
#include "vmath_lanes.inc"
#undef XGRAD_KERNEL_TARGET
}  // namespace avx2
namespace avx512 {
#define XGRAD_KERNEL_TARGET XGRAD_AVX512
#include "vmath_lanes.inc"
#undef XGRAD_KERNEL_TARGET
}  // namespace avx512

std::atomic<bool> g_avx512{true};  // detail::use_avx512
bool use_avx512() { return g_avx512.load(std::memory_order_relaxed) && simd::avx512(); }

template <Fn F>
void map(const float* x, float* y, std::size_t n) {
  if (use_avx512()) return avx512::map<Avx512, F>(x, y, n);
  avx2::map<Avx2, F>(x, y, n);
}

// The same functions one element at a time, for CPUs without AVX2 (the ops do not call these:
// they keep their own loops there; on such a CPU tests/test_vmath.cpp runs these).
float sigmoid1(float x) {
  const float e = std::exp(-std::fabs(x)), d = 1.f / (1.f + e);
  return x >= 0.f ? d : e * d;
}

}  // namespace

bool available() { return simd::avx2(); }

void exp(const float* x, float* y, std::size_t n) {
  if (available()) return map<Fn::exp>(x, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

float exp_sum(const float* x, float shift, float* y, std::size_t n) {
  if (available()) return use_avx512() ? avx512::exp_sum<Avx512>(x, shift, y, n) : avx2::exp_sum<Avx2>(x, shift, y, n);
  float total = 0;
  for (std::size_t i = 0; i < n; ++i) total += (y[i] = std::exp(x[i] - shift));
  return total;
}

void sigmoid(const float* x, float* y, std::size_t n) {
  if (available()) return map<Fn::sigmoid>(x, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
}

void tanh(const float* x, float* y, std::size_t n) {
  if (available()) return map<Fn::tanh>(x, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

namespace detail {
void use_avx512(bool on) { g_avx512.store(on, std::memory_order_relaxed); }
}  // namespace detail

}  // namespace xgrad::vmath
