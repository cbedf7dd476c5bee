// The finite-difference table every op test file fills: an op's forward value against the same
// computation written with xtensor, and its gradient against central finite differences in
// double. A file lists its cases in a function returning std::vector<OpCase> and writes
//   XGRAD_OP_TABLE_TESTS(SuiteName, my_cases())
// once, at namespace scope (tests/test_ops.cpp, tests/test_tensor_ops.cpp, tests/test_nn_ops.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xio.hpp>
#include <xtensor/xmath.hpp>

#include <xgrad/xgrad.hpp>

namespace xgrad::testing {

using A = Array<double>;
using Vars = std::vector<Var<double>>;

enum class Domain { any, positive, away_from_zero };

inline A random_array(const Shape& shape, Domain d, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(-2, 2), pos(0.5, 2.0);
  A a = A::from_shape(shape);
  for (double& v : a) {
    switch (d) {
      case Domain::any: v = u(gen); break;
      case Domain::positive: v = pos(gen); break;
      case Domain::away_from_zero: v = (gen() % 2 ? 1 : -1) * pos(gen); break;
    }
  }
  return a;
}

// Elementwise |a - b| <= tol·(1 + |b|).
inline bool close(const A& a, const A& b, double tol) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a.flat(i) - b.flat(i)) <= tol * (1 + std::abs(b.flat(i))))) return false;
  return true;
}

struct OpCase {
  std::string name;
  std::vector<Shape> shapes;
  Domain domain;
  std::function<Var<double>(const Vars&)> op;
  std::function<A(const std::vector<A>&)> expected;  // the same computation written with xtensor
};

inline void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

// One parameterised suite per test program (each test_*.cpp is its own program, so these
// bodies are defined once in each).
class OpTest : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpTest, ForwardMatchesXtensor) {
  const OpCase& c = GetParam();
  std::mt19937_64 gen(7);
  std::vector<A> xs;
  Vars vars;
  for (const Shape& s : c.shapes) {
    xs.push_back(random_array(s, c.domain, gen));
    vars.push_back(constant(xs.back()));
  }
  const A got = c.op(vars).value();
  const A want = c.expected(xs);
  ASSERT_EQ(Shape(got.shape().begin(), got.shape().end()), Shape(want.shape().begin(), want.shape().end()))
      << c.name;
  EXPECT_TRUE(close(got, want, 1e-12)) << c.name << ": max difference " << xt::amax(xt::abs(got - want))() << "\n got " << got << "\n expected " << want;
  clear_tape();
}

TEST_P(OpTest, GradientMatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  std::mt19937_64 gen(11);
  std::vector<A> xs;
  for (const Shape& s : c.shapes) xs.push_back(random_array(s, c.domain, gen));
  // A random weighting of the output makes every output element's gradient matter.
  Shape out_shape;
  {
    Vars probe;
    for (const A& x : xs) probe.push_back(constant(x));
    const auto& s = c.op(probe).shape();
    out_shape.assign(s.begin(), s.end());
  }
  const A weights = random_array(out_shape, Domain::any, gen);
  auto f = [&](const Vars& v) { return sum(c.op(v) * constant(weights)); };
  const GradcheckResult r = gradcheck(f, xs);
  EXPECT_TRUE(r.ok) << c.name << ": " << r.report();
  EXPECT_LT(r.error, 1e-7) << c.name;
  clear_tape();
}

}  // namespace xgrad::testing

// The suite's class by its bare name: gtest pastes it into identifiers.
using OpTest = ::xgrad::testing::OpTest;

// Every case of `table` (a std::vector<OpCase>) as two tests, forward and gradient.
#define XGRAD_OP_TABLE_TESTS(suite, table)                                                        \
  INSTANTIATE_TEST_SUITE_P(suite, OpTest, ::testing::ValuesIn(table),                             \
                           [](const ::testing::TestParamInfo<::xgrad::testing::OpCase>& info) {   \
                             std::string n;                                                      \
                             for (char ch : info.param.name)                                     \
                               n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';     \
                             return n;                                                           \
                           });
