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
// and in AVX-512 (16 lanes, a comparison's result a mask register). Each function of the
// kernels is written once over them and compiled for both; the operations are the same per lane
// (the same roundings, FMAs and selections), so both give the same bits.
struct Avx2 {
  using R = __m256;
  using I = __m256i;
  using M = __m256;  // a comparison: all ones or zeros per lane
  using Tail = __m256i;
  static constexpr std::size_t kWidth = 8;
  XGRAD_AVX2 static R set1(float x) { return _mm256_set1_ps(x); }
  XGRAD_AVX2 static R zero() { return _mm256_setzero_ps(); }
  XGRAD_AVX2 static R add(R a, R b) { return _mm256_add_ps(a, b); }
  XGRAD_AVX2 static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  XGRAD_AVX2 static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  XGRAD_AVX2 static R div(R a, R b) { return _mm256_div_ps(a, b); }
  XGRAD_AVX2 static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
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
  XGRAD_AVX2 static M lt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  XGRAD_AVX2 static M gt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  XGRAD_AVX2 static M ge(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  XGRAD_AVX2 static R select(M m, R t, R f) { return _mm256_blendv_ps(f, t, m); }
  XGRAD_AVX2 static R load(const float* p) { return _mm256_loadu_ps(p); }
  XGRAD_AVX2 static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  // The first r lanes (0 < r < kWidth): loaded (zeros elsewhere), stored, kept.
  XGRAD_AVX2 static Tail tail(std::size_t r) { return simd::Vec<float>::mask(r); }
  XGRAD_AVX2 static R load(const float* p, Tail t) { return _mm256_maskload_ps(p, t); }
  XGRAD_AVX2 static void store(float* p, Tail t, R v) { _mm256_maskstore_ps(p, t, v); }
  XGRAD_AVX2 static R keep(Tail t, R v) { return _mm256_and_ps(v, _mm256_castsi256_ps(t)); }
  XGRAD_AVX2 static float sum(R v) { return simd::Vec<float>::sum(v); }
};

struct Avx512 {
  using R = __m512;
  using I = __m512i;
  using M = __mmask16;
  using Tail = __mmask16;
  static constexpr std::size_t kWidth = 16;
  XGRAD_AVX512 static R set1(float x) { return _mm512_set1_ps(x); }
  XGRAD_AVX512 static R zero() { return _mm512_setzero_ps(); }
  XGRAD_AVX512 static R add(R a, R b) { return _mm512_add_ps(a, b); }
  XGRAD_AVX512 static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  XGRAD_AVX512 static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  XGRAD_AVX512 static R div(R a, R b) { return _mm512_div_ps(a, b); }
  XGRAD_AVX512 static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
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
  XGRAD_AVX512 static M lt(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  XGRAD_AVX512 static M gt(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  XGRAD_AVX512 static M ge(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  XGRAD_AVX512 static R select(M m, R t, R f) { return _mm512_mask_blend_ps(m, f, t); }
  XGRAD_AVX512 static R load(const float* p) { return _mm512_loadu_ps(p); }
  XGRAD_AVX512 static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  XGRAD_AVX512 static Tail tail(std::size_t r) { return __mmask16((1u << r) - 1u); }
  XGRAD_AVX512 static R load(const float* p, Tail t) { return _mm512_maskz_loadu_ps(t, p); }
  XGRAD_AVX512 static void store(float* p, Tail t, R v) { _mm512_mask_storeu_ps(p, t, v); }
  XGRAD_AVX512 static R keep(Tail t, R v) { return _mm512_maskz_mov_ps(t, v); }
  XGRAD_AVX512 static float sum(R v) {  // the lanes' sum, as (0+8) + (4+12) + ... in pairs
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    float pair[8];
    for (int i = 0; i < 8; ++i) pair[i] = t[i] + t[i + 8];
    return ((pair[0] + pair[4]) + (pair[2] + pair[6])) + ((pair[1] + pair[5]) + (pair[3] + pair[7]));
  }
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
