#include "vmath.hpp"

#include <cmath>

#include "simd.hpp"

namespace xgrad::vmath {
namespace {

using V = simd::Vec<float>;
constexpr std::size_t kW = V::kWidth;

// e^x, 8 lanes: n = round(x / ln2), r = x - n·ln2 (ln2 in two parts, so r is exact to float),
// e^r by the polynomial 1 + r + r²·p(r), times 2^n as 2^(n/2)·2^(n - n/2), each factor a normal
// float over the whole range: results from the smallest subnormal to FLT_MAX. Beyond
// [-103.98, 88.73] the result is 0 or +inf.
XGRAD_AVX2 __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-103.972084045410f), hi = _mm256_set1_ps(88.72283935546875f);
  // max/min return their second operand when either is NaN: a NaN x goes through as NaN.
  const __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.f));
  const __m256i ni = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(ni, 1), bias = _mm256_set1_epi32(127);
  auto pow2 = [&](__m256i e) XGRAD_AVX2 { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, bias), 23)); };
  y = _mm256_mul_ps(_mm256_mul_ps(y, pow2(half)), pow2(_mm256_sub_epi32(ni, half)));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
}

// The sign bit of every lane.
XGRAD_AVX2 __m256 sign_bits() { return _mm256_set1_ps(-0.f); }

// 1 / (1 + e^-x) from e = e^-|x| <= 1: 1 / (1 + e) for x >= 0, e / (1 + e) below, so that
// neither side divides by a huge number or loses the small values of a very negative x.
XGRAD_AVX2 __m256 sigmoid8(__m256 x) {
  const __m256 e = exp8(_mm256_or_ps(x, sign_bits()));
  const __m256 d = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_add_ps(_mm256_set1_ps(1.f), e));
  return _mm256_blendv_ps(_mm256_mul_ps(e, d), d, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}

// tanh: below |x| = 0.625 the odd polynomial x + x³·q(x²) (1 - e^-2|x| would lose digits to
// cancellation there), above it (1 - e) / (1 + e) with e = e^-2|x|; both of |x|, then x's sign
// (so tanh(-0) = -0).
XGRAD_AVX2 __m256 tanh8(__m256 x) {
  const __m256 ax = _mm256_andnot_ps(sign_bits(), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 q = _mm256_set1_ps(-5.70498872745e-3f);
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(2.06390887954e-2f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-5.37397155531e-2f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(1.33314422036e-1f));
  q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q, z), ax, ax);
  const __m256 e = exp8(_mm256_mul_ps(ax, _mm256_set1_ps(-2.f)));
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 large = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
  const __m256 t = _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
  return _mm256_or_ps(t, _mm256_and_ps(x, sign_bits()));
}

struct Exp {
  XGRAD_AVX2 static __m256 f(__m256 x) { return exp8(x); }
};
struct Sigmoid {
  XGRAD_AVX2 static __m256 f(__m256 x) { return sigmoid8(x); }
};
struct Tanh {
  XGRAD_AVX2 static __m256 f(__m256 x) { return tanh8(x); }
};

// y = F::f(x) over n elements, the last partial register masked.
template <class F>
XGRAD_AVX2 void map(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + kW <= n; i += kW) V::store(y + i, F::f(V::load(x + i)));
  if (i < n) {
    const V::M m = V::mask(n - i);
    V::store(y + i, m, F::f(V::load(x + i, m)));
  }
}

XGRAD_AVX2 float exp_sum8(const float* x, float shift, float* y, std::size_t n) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + kW <= n; i += kW) {
    const __m256 e = exp8(_mm256_sub_ps(V::load(x + i), s));
    V::store(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {
    const V::M m = V::mask(n - i);
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(V::load(x + i, m), s)), _mm256_castsi256_ps(m));
    V::store(y + i, m, e);
    acc = _mm256_add_ps(acc, e);
  }
  return V::sum(acc);
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
  if (available()) return exp_sum8(x, shift, y, n);
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

}  // namespace xgrad::vmath
