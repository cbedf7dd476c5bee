#include "vmath.hpp"

#include <atomic>
#include <cmath>

#include "simd.hpp"

// The lane functions below are always inlined into the kernels' functions at the end, each
// compiled for its instructions, so no call passes vectors in the baseline ABI that -Wpsabi
// warns of; and GCC 12 takes the AVX-512 headers' deliberately undefined pass-through operand
// (of _mm512_max_ps and others, inlined here) for an uninitialised variable.
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

#define XGRAD_LANES template <class S> __attribute__((always_inline)) inline typename S::R

// e^x: n = round(x / ln2), r = x - n·ln2 (ln2 in two parts, so r is exact to float), e^r by the
// polynomial 1 + r + r²·p(r), times 2^n as 2^(n/2)·2^(n - n/2), each factor a normal float over
// the whole range: results from the smallest subnormal to FLT_MAX. Beyond [-103.98, 88.73] the
// result is 0 or +inf.
XGRAD_LANES exp_v(typename S::R x) {
  const auto lo = S::set1(-103.972084045410f), hi = S::set1(88.72283935546875f);
  const auto xc = S::min(hi, S::max(lo, x));  // a NaN x goes through as NaN
  const auto n = S::round(S::mul(xc, S::set1(1.44269504088896341f)));
  auto r = S::fnma(n, S::set1(0.693359375f), xc);
  r = S::fnma(n, S::set1(-2.12194440e-4f), r);
  auto p = S::set1(1.9875691500e-4f);
  p = S::fma(p, r, S::set1(1.3981999507e-3f));
  p = S::fma(p, r, S::set1(8.3334519073e-3f));
  p = S::fma(p, r, S::set1(4.1665795894e-2f));
  p = S::fma(p, r, S::set1(1.6666665459e-1f));
  p = S::fma(p, r, S::set1(5.0000001201e-1f));
  auto y = S::add(S::fma(p, S::mul(r, r), r), S::set1(1.f));
  const auto ni = S::to_int(n), h = S::half(ni);
  y = S::mul(S::mul(y, S::pow2(h)), S::pow2(S::isub(ni, h)));
  y = S::select(S::gt(x, hi), S::set1(__builtin_inff()), y);
  return S::select(S::lt(x, lo), S::zero(), y);
}

// 1 / (1 + e^-x) from e = e^-|x| <= 1: 1 / (1 + e) for x >= 0, e / (1 + e) below, so that
// neither side divides by a huge number or loses the small values of a very negative x.
XGRAD_LANES sigmoid_v(typename S::R x) {
  const auto e = exp_v<S>(S::or_(x, S::set1(-0.f)));
  const auto d = S::div(S::set1(1.f), S::add(S::set1(1.f), e));
  return S::select(S::ge(x, S::zero()), d, S::mul(e, d));
}

// tanh: below |x| = 0.625 the odd polynomial x + x³·q(x²) (1 - e^-2|x| would lose digits to
// cancellation there), above it (1 - e) / (1 + e) with e = e^-2|x|; both of |x|, then x's sign
// (so tanh(-0) = -0).
XGRAD_LANES tanh_v(typename S::R x) {
  const auto sign = S::set1(-0.f);
  const auto ax = S::andnot(sign, x);
  const auto z = S::mul(x, x);
  auto q = S::set1(-5.70498872745e-3f);
  q = S::fma(q, z, S::set1(2.06390887954e-2f));
  q = S::fma(q, z, S::set1(-5.37397155531e-2f));
  q = S::fma(q, z, S::set1(1.33314422036e-1f));
  q = S::fma(q, z, S::set1(-3.33332819422e-1f));
  const auto small = S::fma(S::mul(q, z), ax, ax);
  const auto e = exp_v<S>(S::mul(ax, S::set1(-2.f)));
  const auto one = S::set1(1.f);
  const auto large = S::div(S::sub(one, e), S::add(one, e));
  const auto t = S::select(S::lt(ax, S::set1(0.625f)), small, large);
  return S::or_(t, S::and_(x, sign));
}
#undef XGRAD_LANES

struct Exp {
  template <class S>
  __attribute__((always_inline)) static typename S::R f(typename S::R x) { return exp_v<S>(x); }
};
struct Sigmoid {
  template <class S>
  __attribute__((always_inline)) static typename S::R f(typename S::R x) { return sigmoid_v<S>(x); }
};
struct Tanh {
  template <class S>
  __attribute__((always_inline)) static typename S::R f(typename S::R x) { return tanh_v<S>(x); }
};

// y = F::f(x) over n elements, the last partial register masked.
template <class S, class F>
__attribute__((always_inline)) inline void map_in(const float* x, float* y, std::size_t n) {
  constexpr std::size_t w = S::kWidth;
  std::size_t i = 0;
  for (; i + w <= n; i += w) S::store(y + i, F::template f<S>(S::load(x + i)));
  if (i < n) {
    const auto t = S::tail(n - i);
    S::store(y + i, t, F::template f<S>(S::load(x + i, t)));
  }
}

// y = e^(x - shift) over n elements; returns their sum (over the lanes, then the lanes added).
template <class S>
__attribute__((always_inline)) inline float exp_sum_in(const float* x, float shift, float* y, std::size_t n) {
  constexpr std::size_t w = S::kWidth;
  const auto s = S::set1(shift);
  auto acc = S::zero();
  std::size_t i = 0;
  for (; i + w <= n; i += w) {
    const auto e = exp_v<S>(S::sub(S::load(x + i), s));
    S::store(y + i, e);
    acc = S::add(acc, e);
  }
  if (i < n) {
    const auto t = S::tail(n - i);
    const auto e = S::keep(t, exp_v<S>(S::sub(S::load(x + i, t), s)));
    S::store(y + i, t, e);
    acc = S::add(acc, e);
  }
  return S::sum(acc);
}

template <class F>
XGRAD_AVX2 void map_avx2(const float* x, float* y, std::size_t n) {
  map_in<Avx2, F>(x, y, n);
}
template <class F>
XGRAD_AVX512 void map_avx512(const float* x, float* y, std::size_t n) {
  map_in<Avx512, F>(x, y, n);
}
XGRAD_AVX2 float exp_sum_avx2(const float* x, float shift, float* y, std::size_t n) {
  return exp_sum_in<Avx2>(x, shift, y, n);
}
XGRAD_AVX512 float exp_sum_avx512(const float* x, float shift, float* y, std::size_t n) {
  return exp_sum_in<Avx512>(x, shift, y, n);
}

std::atomic<bool> g_avx512{true};  // detail::use_avx512
bool avx512() { return g_avx512.load(std::memory_order_relaxed) && simd::avx512(); }

template <class F>
void map(const float* x, float* y, std::size_t n) {
  if (avx512()) return map_avx512<F>(x, y, n);
  map_avx2<F>(x, y, n);
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
  if (available()) return map<Exp>(x, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

float exp_sum(const float* x, float shift, float* y, std::size_t n) {
  if (available()) return avx512() ? exp_sum_avx512(x, shift, y, n) : exp_sum_avx2(x, shift, y, n);
  float total = 0;
  for (std::size_t i = 0; i < n; ++i) total += (y[i] = std::exp(x[i] - shift));
  return total;
}

void sigmoid(const float* x, float* y, std::size_t n) {
  if (available()) return map<Sigmoid>(x, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
}

void tanh(const float* x, float* y, std::size_t n) {
  if (available()) return map<Tanh>(x, y, n);
  for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

namespace detail {
void use_avx512(bool on) { g_avx512.store(on, std::memory_order_relaxed); }
}  // namespace detail

}  // namespace xgrad::vmath
