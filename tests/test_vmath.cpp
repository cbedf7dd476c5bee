// vmath's float kernels (AVX-512 or AVX2 where the CPU has them, else <cmath>) against the double
// functions rounded to float, in ulp, over their ranges and at the special values; every length of
// a partial last register; exp_sum's total. Every test runs with the AVX-512 kernels allowed and
// with the AVX2 ones (vmath::detail::use_avx512), and the two give the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <xgrad/autograd/vmath.hpp>

namespace {

namespace vmath = xgrad::vmath;

// The distance in representable floats between a and b (finite).
std::int64_t ulps(float a, float b) {
  auto key = [](float v) {
    std::int32_t i;
    std::memcpy(&i, &v, sizeof i);
    return i < 0 ? -std::int64_t(i & 0x7fffffff) : std::int64_t(i);
  };
  return std::llabs(key(a) - key(b));
}

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// x from lo to hi in `count` even steps, then random points in the same range.
std::vector<float> sweep(float lo, float hi, std::size_t count) {
  std::vector<float> x(count);
  for (std::size_t i = 0; i < count; ++i) x[i] = lo + (hi - lo) * float(double(i) / double(count - 1));
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(lo, hi);
  for (std::size_t i = 0; i < count; ++i) x.push_back(u(gen));
  return x;
}

template <class F, class Ref>
std::int64_t worst_ulps(F f, Ref ref, const std::vector<float>& x, float* at) {
  std::vector<float> y(x.size());
  f(x.data(), y.data(), x.size());
  std::int64_t worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::int64_t d = ulps(y[i], float(ref(double(x[i]))));
    if (d > worst) {
      worst = d;
      *at = x[i];
    }
  }
  return worst;
}

// The parameter: whether the AVX-512 kernels may run (they do where the CPU has AVX-512F).
class Vmath : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { vmath::detail::use_avx512(GetParam()); }
  void TearDown() override { vmath::detail::use_avx512(true); }
};
INSTANTIATE_TEST_SUITE_P(Kernels, Vmath, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "Avx512Allowed" : "Avx2"; });

TEST_P(Vmath, ExpIsWithinTwoUlpOverTheNormalRange) {
  float at = 0;
  const auto worst = worst_ulps(vmath::exp, [](double x) { return std::exp(x); }, sweep(-87.3f, 88.72f, 400000), &at);
  EXPECT_LE(worst, 2) << "at x = " << at;
  // subnormal results, each factor of 2^n still a normal float
  EXPECT_LE(worst_ulps(vmath::exp, [](double x) { return std::exp(x); }, sweep(-103.9f, -87.4f, 100000), &at), 2)
      << "at x = " << at;
  const auto near_zero = worst_ulps(vmath::exp, [](double x) { return std::exp(x); }, sweep(-1e-3f, 1e-3f, 10000), &at);
  EXPECT_LE(near_zero, 1) << "at x = " << at;
}

TEST_P(Vmath, SigmoidIsWithinThreeUlp) {
  float at = 0;
  EXPECT_LE(worst_ulps(vmath::sigmoid, sigmoid_ref, sweep(-87.f, 88.f, 400000), &at), 3) << "at x = " << at;
  EXPECT_LE(worst_ulps(vmath::sigmoid, sigmoid_ref, sweep(-4.f, 4.f, 100000), &at), 3) << "at x = " << at;
}

TEST_P(Vmath, TanhIsWithinThreeUlpIncludingNearZero) {
  float at = 0;
  auto ref = [](double x) { return std::tanh(x); };
  EXPECT_LE(worst_ulps(vmath::tanh, ref, sweep(-20.f, 20.f, 400000), &at), 3) << "at x = " << at;
  EXPECT_LE(worst_ulps(vmath::tanh, ref, sweep(-0.7f, 0.7f, 100000), &at), 3) << "at x = " << at;
  EXPECT_LE(worst_ulps(vmath::tanh, ref, sweep(-1e-5f, 1e-5f, 10000), &at), 1) << "at x = " << at;
}

TEST_P(Vmath, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {0.f, -0.f, inf, -inf, nan, 100.f, -100.f, 88.8f, -88.f, -1e-40f, -110.f};
  std::vector<float> e(x.size()), s(x.size()), t(x.size());
  vmath::exp(x.data(), e.data(), x.size());
  vmath::sigmoid(x.data(), s.data(), x.size());
  vmath::tanh(x.data(), t.data(), x.size());
  EXPECT_EQ(e[0], 1.f);
  EXPECT_EQ(e[1], 1.f);
  EXPECT_EQ(e[2], inf);
  EXPECT_EQ(e[3], 0.f);
  EXPECT_TRUE(std::isnan(e[4]));
  EXPECT_EQ(e[5], inf);
  EXPECT_LE(ulps(e[6], float(std::exp(-100.0))), 1);  // subnormal
  EXPECT_EQ(e[7], inf);  // e^88.8 > FLT_MAX
  EXPECT_LE(ulps(e[8], float(std::exp(-88.0))), 1);  // subnormal
  EXPECT_EQ(e[9], 1.f);
  EXPECT_EQ(e[10], 0.f);  // below the smallest subnormal
  EXPECT_EQ(s[0], 0.5f);
  EXPECT_EQ(s[2], 1.f);
  EXPECT_EQ(s[3], 0.f);
  EXPECT_TRUE(std::isnan(s[4]));
  EXPECT_EQ(s[5], 1.f);
  EXPECT_LE(ulps(s[6], float(sigmoid_ref(-100.0))), 1);  // subnormal
  EXPECT_EQ(t[0], 0.f);
  EXPECT_TRUE(std::signbit(t[1]));  // tanh(-0) = -0
  EXPECT_EQ(t[2], 1.f);
  EXPECT_EQ(t[3], -1.f);
  EXPECT_TRUE(std::isnan(t[4]));
  EXPECT_EQ(t[5], 1.f);
  EXPECT_EQ(t[6], -1.f);
  EXPECT_EQ(t[9], -1e-40f);
}

// Every length from 0 to 3 registers: the last partial register computes its lanes and writes
// nothing past them; exp_sum's total is the sum of what it wrote.
TEST_P(Vmath, EveryLengthWritesItsElementsOnly) {
  std::mt19937 gen(5);
  std::normal_distribution<float> d(0.f, 3.f);
  for (std::size_t n = 0; n <= 24; ++n) {
    std::vector<float> x(n);
    for (float& v : x) v = d(gen);
    std::vector<float> y(n + 8, -7.f), one(1);
    vmath::tanh(x.data(), y.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      vmath::tanh(&x[i], one.data(), 1);
      ASSERT_EQ(y[i], one[0]) << "n=" << n << " i=" << i;
    }
    for (std::size_t i = n; i < n + 8; ++i) ASSERT_EQ(y[i], -7.f) << "n=" << n << " wrote past the end at " << i;
    std::fill(y.begin(), y.end(), -7.f);
    const float shift = 2.5f;
    const float total = vmath::exp_sum(x.data(), shift, y.data(), n);
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_LE(ulps(y[i], float(std::exp(double(x[i] - shift)))), 2) << "n=" << n << " i=" << i;
      sum += y[i];
    }
    EXPECT_NEAR(total, sum, 1e-6 * (sum + 1)) << "n=" << n;
    for (std::size_t i = n; i < n + 8; ++i) ASSERT_EQ(y[i], -7.f) << "n=" << n << " wrote past the end at " << i;
  }
}

// The AVX-512 kernels are the AVX2 ones in wider registers: the same bits for every function.
TEST(VmathKernels, Avx512AndAvx2GiveTheSameBits) {
  std::vector<float> x = sweep(-110.f, 95.f, 200000);
  for (float v : {0.f, -0.f, 0.625f, -0.625f, 88.72283935546875f, -103.972084045410f, 1e-30f, -1e-30f,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    x.push_back(v);
  x.resize(x.size() + 5, 0.5f);  // a partial last register in either width
  using Fn = void (*)(const float*, float*, std::size_t);
  for (Fn f : {Fn(vmath::exp), Fn(vmath::sigmoid), Fn(vmath::tanh)}) {
    std::vector<float> wide(x.size()), narrow(x.size());
    vmath::detail::use_avx512(true);
    f(x.data(), wide.data(), x.size());
    vmath::detail::use_avx512(false);
    f(x.data(), narrow.data(), x.size());
    vmath::detail::use_avx512(true);
    ASSERT_EQ(std::memcmp(wide.data(), narrow.data(), x.size() * sizeof(float)), 0);
  }
  std::vector<float> y(x.size());
  vmath::detail::use_avx512(false);
  const float narrow_sum = vmath::exp_sum(x.data(), 90.f, y.data(), 1000);
  vmath::detail::use_avx512(true);
  const float wide_sum = vmath::exp_sum(x.data(), 90.f, y.data(), 1000);
  EXPECT_NEAR(wide_sum, narrow_sum, 1e-5f * narrow_sum);  // the lanes are summed in another order
}

}  // namespace
