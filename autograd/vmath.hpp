// Elementwise exp, sigmoid and tanh over float arrays in AVX2 and FMA registers, 8 at a time, or
// AVX-512 registers, 16 at a time, where the CPU has AVX-512F (the same operations per lane, so
// the same bits), for the ops whose forward is mostly these functions (sigmoid, tanh, softmax,
// log_softmax, cross_entropy). They run in registers where the CPU has AVX2 and FMA
// (vmath::available()), else one element at a time with <cmath>; the ops call them only in the
// first case, keeping their own loops elsewhere and always in double, whose results stay as they
// were.
//
// Accuracy of the register kernels, against the correctly rounded value: exp within 2 ulp (a degree-6 polynomial on
// [-ln2/2, ln2/2] after the reduction x = n·ln2 + r), sigmoid and tanh within 3 ulp, tested over
// their ranges in tests/test_vmath.cpp. Special values: NaN gives NaN; exp(x) is 0 below
// -103.98 and +inf above 88.73, as the float result is; sigmoid and tanh reach 0 and ±1.
#pragma once

#include <cstddef>

namespace xgrad::vmath {

// The CPU runs these kernels (AVX2 and FMA).
bool available();

// y[i] = e^(x[i]).
void exp(const float* x, float* y, std::size_t n);
// y[i] = e^(x[i] - shift); returns Σ_i y[i] (summed over the 8 or 16 lanes, then the lanes added).
float exp_sum(const float* x, float shift, float* y, std::size_t n);
// y[i] = 1 / (1 + e^(-x[i])).
void sigmoid(const float* x, float* y, std::size_t n);
// y[i] = tanh(x[i]).
void tanh(const float* x, float* y, std::size_t n);

namespace detail {
// Whether the AVX-512 kernels may run where the CPU has them (the default: on); off, the AVX2
// ones run (for the tests).
void use_avx512(bool on);
}  // namespace detail

}  // namespace xgrad::vmath
