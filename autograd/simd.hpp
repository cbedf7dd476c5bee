// AVX2 and FMA registers for the library's own kernels (packed products, vector products, exp),
// and AVX-512 ones for the packed products. Included by the library's .cpp files only. Each
// kernel function is compiled for its instructions by attribute (XGRAD_AVX2, XGRAD_AVX512) and
// called only where the CPU has them (simd::avx2(), simd::avx512()); the rest of the library
// stays baseline x86-64.
#pragma once

#include <immintrin.h>

#include <cstddef>

#define XGRAD_AVX2 __attribute__((target("avx2,fma")))
#define XGRAD_AVX512 __attribute__((target("avx512f,avx2,fma")))

namespace xgrad::simd {

// The CPU has AVX2 and FMA.
inline bool avx2() {
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return available;
}

// The CPU (and the system, which must save the registers) has AVX-512F, besides AVX2 and FMA.
inline bool avx512() {
  static const bool available = [] {
    __builtin_cpu_init();
    return avx2() && __builtin_cpu_supports("avx512f");
  }();
  return available;
}

// One register of T and what the kernels do with it. mask(r): the lanes below r (0 <= r <= kWidth).
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using R = __m256;
  using M = __m256i;
  static constexpr std::size_t kWidth = 8;
  XGRAD_AVX2 static R zero() { return _mm256_setzero_ps(); }
  XGRAD_AVX2 static R load(const float* p) { return _mm256_loadu_ps(p); }
  XGRAD_AVX2 static R broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  XGRAD_AVX2 static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  XGRAD_AVX2 static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  XGRAD_AVX2 static R set1(float x) { return _mm256_set1_ps(x); }
  XGRAD_AVX2 static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  XGRAD_AVX2 static M mask(std::size_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  XGRAD_AVX2 static R load(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  XGRAD_AVX2 static void store(float* p, M m, R v) { _mm256_maskstore_ps(p, m, v); }
  // The lanes' sum, as ((0+4) + (2+6)) + ((1+5) + (3+7)).
  XGRAD_AVX2 static float sum(R v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
};
template <>
struct Vec<double> {
  using R = __m256d;
  using M = __m256i;
  static constexpr std::size_t kWidth = 4;
  XGRAD_AVX2 static R zero() { return _mm256_setzero_pd(); }
  XGRAD_AVX2 static R load(const double* p) { return _mm256_loadu_pd(p); }
  XGRAD_AVX2 static R broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  XGRAD_AVX2 static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  XGRAD_AVX2 static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  XGRAD_AVX2 static R set1(double x) { return _mm256_set1_pd(x); }
  XGRAD_AVX2 static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  XGRAD_AVX2 static M mask(std::size_t r) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)r), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  XGRAD_AVX2 static R load(const double* p, M m) { return _mm256_maskload_pd(p, m); }
  XGRAD_AVX2 static void store(double* p, M m, R v) { _mm256_maskstore_pd(p, m, v); }
  // The lanes' sum, as (0+2) + (1+3).
  XGRAD_AVX2 static double sum(R v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
};

// The AVX-512 registers, for the packed products' kernel (and, in float, vmath's).
template <class T>
struct Vec512;
template <>
struct Vec512<float> {
  using R = __m512;
  static constexpr std::size_t kWidth = 16;
  XGRAD_AVX512 static R zero() { return _mm512_setzero_ps(); }
  XGRAD_AVX512 static R load(const float* p) { return _mm512_loadu_ps(p); }
  XGRAD_AVX512 static R broadcast(const float* p) { return _mm512_set1_ps(*p); }
  XGRAD_AVX512 static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  XGRAD_AVX512 static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  XGRAD_AVX512 static R set1(float x) { return _mm512_set1_ps(x); }
  XGRAD_AVX512 static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  // mask(r): the lanes below r (0 <= r <= kWidth), a mask register.
  using M = __mmask16;
  XGRAD_AVX512 static M mask(std::size_t r) { return M(r >= kWidth ? 0xffffu : (1u << r) - 1u); }
  XGRAD_AVX512 static R load(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  XGRAD_AVX512 static void store(float* p, M m, R v) { _mm512_mask_storeu_ps(p, m, v); }
  // The lanes' sum, as ((0+8) + (4+12)) + ((2+10) + (6+14)) + ... in pairs.
  XGRAD_AVX512 static float sum(R v) {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    float pair[8];
    for (int i = 0; i < 8; ++i) pair[i] = t[i] + t[i + 8];
    return ((pair[0] + pair[4]) + (pair[2] + pair[6])) + ((pair[1] + pair[5]) + (pair[3] + pair[7]));
  }
};
template <>
struct Vec512<double> {
  using R = __m512d;
  static constexpr std::size_t kWidth = 8;
  XGRAD_AVX512 static R zero() { return _mm512_setzero_pd(); }
  XGRAD_AVX512 static R load(const double* p) { return _mm512_loadu_pd(p); }
  XGRAD_AVX512 static R broadcast(const double* p) { return _mm512_set1_pd(*p); }
  XGRAD_AVX512 static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  XGRAD_AVX512 static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  XGRAD_AVX512 static R set1(double x) { return _mm512_set1_pd(x); }
  XGRAD_AVX512 static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
};

}  // namespace xgrad::simd
