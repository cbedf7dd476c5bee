// xgrad::Profile: counts, times and bytes per op name, per thread, nested, off when no guard.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;
using xgrad::testing::contains;

namespace {

class ProfileTest : public ::testing::Test {
 protected:
  void TearDown() override { clear_tape(); }
};

// The known graph: x (1, 4) a constant, W1..W3 (4, 4) parameters;
// loss = sum(tanh(tanh(x·W1)·W2)·W3): 3 matmuls, 2 tanh, 1 sum.
struct ThreeLayers {
  Var<double> x = constant(A(xt::ones<double>({1, 4}) * 0.5));
  Var<double> W1 = param(A(xt::eye<double>(4) * 0.3));
  Var<double> W2 = param(A(xt::eye<double>(4) * 0.2));
  Var<double> W3 = param(A(xt::eye<double>(4) * 0.1));
  Var<double> loss() const { return sum(matmul(tanh(matmul(tanh(matmul(x, W1)), W2)), W3)); }
};

// A CSV line split into its fields, quoted fields unquoted.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

}  // namespace

TEST_F(ProfileTest, CountsEveryForwardAndBackwardOfAKnownGraph) {
  ThreeLayers net;
  Profile profile;
  net.loss().backward();
  const OpProfile mm = profile.op("matmul"), th = profile.op("tanh"), s = profile.op("sum");
  EXPECT_EQ(mm.calls, 3u);
  EXPECT_EQ(th.calls, 2u);
  EXPECT_EQ(s.calls, 1u);
  EXPECT_EQ(mm.backward_calls, 3u);
  EXPECT_EQ(th.backward_calls, 2u);
  EXPECT_EQ(s.backward_calls, 1u);
  EXPECT_EQ(profile.ops().size(), 3u);  // nothing else was recorded
  // Values: three (1, 4) matmul outputs, two (1, 4) tanh outputs, one scalar sum, in doubles.
  EXPECT_EQ(mm.value_bytes, 3u * 4 * sizeof(double));
  EXPECT_EQ(th.value_bytes, 2u * 4 * sizeof(double));
  EXPECT_EQ(s.value_bytes, sizeof(double));
  // Gradients written: W1 (x is a constant); then (1, 4) input and W for the other two.
  EXPECT_EQ(mm.grad_bytes, (16u + 2 * (4 + 16)) * sizeof(double));
  EXPECT_EQ(th.grad_bytes, 2u * 4 * sizeof(double));
  EXPECT_GT(mm.forward_seconds, 0.0);
  EXPECT_GT(mm.backward_seconds, 0.0);
  EXPECT_DOUBLE_EQ(mm.total_seconds(), mm.forward_seconds + mm.backward_seconds);
  EXPECT_EQ(profile.op("relu").calls, 0u);  // never ran: zeros
}

TEST_F(ProfileTest, OpsAreSortedByTotalTimeAndThePrintedTableFollows) {
  ThreeLayers net;
  Profile profile;
  for (int i = 0; i < 3; ++i) {
    net.loss().backward();
    clear_tape();
  }
  const std::vector<OpProfile> ops = profile.ops();
  ASSERT_EQ(ops.size(), 3u);
  for (std::size_t i = 1; i < ops.size(); ++i) EXPECT_GE(ops[i - 1].total_seconds(), ops[i].total_seconds());
  const std::string table = profile.report();
  EXPECT_TRUE(contains(table, "forward ms")) << table;
  EXPECT_TRUE(contains(table, "backward ms")) << table;
  // Rows in ops() order after the header, the total last.
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);
  for (const OpProfile& e : ops) {
    std::getline(in, line);
    EXPECT_EQ(line.rfind(e.op + " ", 0), 0u) << table;
  }
  std::getline(in, line);
  EXPECT_EQ(line.rfind("total ", 0), 0u) << table;
  EXPECT_TRUE(contains(line, " 18 ")) << table;  // 3 × (3 + 2 + 1) calls
}

TEST_F(ProfileTest, NoGradOpsCountAsForwardCallsOnly) {
  Profile profile;
  {
    NoGradGuard no_grad;
    auto y = tanh(param(A{0.5, 1.0}));
    EXPECT_EQ(y.tape(), nullptr);
  }
  EXPECT_EQ(profile.op("tanh").calls, 1u);
  EXPECT_EQ(profile.op("tanh").value_bytes, 2 * sizeof(double));
  EXPECT_EQ(profile.op("tanh").backward_calls, 0u);
}

TEST_F(ProfileTest, OffOutsideTheGuardAndStopEndsRecording) {
  ThreeLayers net;
  net.loss().backward();  // before any profile: seen by none
  clear_tape();
  Profile profile;
  EXPECT_TRUE(profile.recording());
  net.loss();
  profile.stop();
  EXPECT_FALSE(profile.recording());
  net.loss().backward();  // after stop: not counted
  EXPECT_EQ(profile.op("matmul").calls, 3u);
  EXPECT_EQ(profile.op("matmul").backward_calls, 0u);
  profile.stop();  // a second stop does nothing
  EXPECT_EQ(profile.op("matmul").calls, 3u);
}

TEST_F(ProfileTest, NestedProfilesEachCountWhatRanWhileTheyLived) {
  ThreeLayers net;
  Profile outer;
  net.loss();
  {
    Profile inner;
    XGRAD_EXPECT_THROW_MSG(outer.stop(), Error, "innermost");
    net.loss().backward();
    EXPECT_EQ(inner.op("matmul").calls, 3u);
    EXPECT_EQ(inner.op("matmul").backward_calls, 3u);
  }
  auto y = tanh(net.x);
  EXPECT_EQ(outer.op("matmul").calls, 6u);
  EXPECT_EQ(outer.op("matmul").backward_calls, 3u);
  EXPECT_EQ(outer.op("tanh").calls, 5u);
}

TEST_F(ProfileTest, EachThreadKeepsItsOwn) {
  ThreeLayers net;
  Profile mine;
  std::size_t theirs_calls = 0, theirs_tanh = 0;
  std::thread other([&] {
    Profile theirs;
    auto a = param(A{0.1, 0.2});
    sum(tanh(a) * a).backward();
    theirs_calls = theirs.op("mul").calls;
    theirs_tanh = theirs.op("tanh").calls;
    EXPECT_EQ(theirs.op("matmul").calls, 0u);  // the main thread's ops are not seen here
    clear_tape();
  });
  net.loss().backward();
  other.join();
  EXPECT_EQ(theirs_calls, 1u);
  EXPECT_EQ(theirs_tanh, 1u);
  EXPECT_EQ(mine.op("mul").calls, 0u);  // nor the other thread's here
  EXPECT_EQ(mine.op("tanh").calls, 2u);
  EXPECT_EQ(mine.op("matmul").calls, 3u);
}

TEST_F(ProfileTest, CustomOpsCountUnderTheirOwnNames) {
  auto x = param(A{1.0, 2.0});
  Profile profile;
  auto y = custom_op<double>(
      "scaled, \"tripled\"", {x}, [](const auto& in) { return Array<double>(in[0] * 3.0); },
      [](const auto& grad, const auto&, const auto&) { return std::vector<Array<double>>{grad * 3.0}; });
  sum(y).backward();
  EXPECT_EQ(profile.op("scaled, \"tripled\"").calls, 1u);
  EXPECT_EQ(profile.op("scaled, \"tripled\"").backward_calls, 1u);
  EXPECT_EQ(profile.op("scaled, \"tripled\"").grad_bytes, 2 * sizeof(double));

  // CSV: the header, one row per op in ops() order, the awkward name quoted and read back.
  const std::string path = ::testing::TempDir() + "xgrad_profile.csv";
  profile.write_csv(path);
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "op,calls,forward_seconds,backward_calls,backward_seconds,total_seconds,value_bytes,grad_bytes");
  std::vector<std::vector<std::string>> rows;
  while (std::getline(f, line)) rows.push_back(csv_fields(line));
  const std::vector<OpProfile> ops = profile.ops();
  ASSERT_EQ(rows.size(), ops.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 8u) << line;
    EXPECT_EQ(rows[i][0], ops[i].op);
    EXPECT_EQ(std::stoul(rows[i][1]), ops[i].calls);
    EXPECT_NEAR(std::stod(rows[i][2]), ops[i].forward_seconds, 1e-8);
    EXPECT_EQ(std::stoul(rows[i][3]), ops[i].backward_calls);
    EXPECT_NEAR(std::stod(rows[i][5]), ops[i].total_seconds(), 1e-8);
    EXPECT_EQ(std::stoul(rows[i][6]), ops[i].value_bytes);
    EXPECT_EQ(std::stoul(rows[i][7]), ops[i].grad_bytes);
  }
  std::remove(path.c_str());
}

TEST_F(ProfileTest, WriteCsvToAnUnwritablePathThrows) {
  Profile profile;
  XGRAD_EXPECT_THROW_MSG(profile.write_csv("/nonexistent-dir/p.csv"), Error, "write_csv", "/nonexistent-dir/p.csv");
}

// An op reads one block of thread state (detail::ThreadState): all zero with no guard alive, and
// each guard writes its own field while it lives and restores it after, on its thread only.
TEST_F(ProfileTest, GuardsShareOneThreadStateBlockThatIsZeroWhenOff) {
  const auto is_off = [] {
    const detail::ThreadState& s = detail::thread_state();
    return !s.no_grad && !s.anomaly && s.scope == 0 && s.profile == nullptr;
  };
  EXPECT_TRUE(is_off());
  {
    NoGradGuard no_grad;
    EXPECT_TRUE(detail::thread_state().no_grad);
    EXPECT_FALSE(grad_enabled());
    DetectAnomaly anomaly;
    EXPECT_TRUE(anomaly_enabled());
    Profile profile;
    EXPECT_NE(detail::thread_state().profile, nullptr);
    NameScope scope("outer");
    EXPECT_EQ(detail::scope_info(detail::thread_state().scope).name, "outer");
    bool other_off = false;
    std::thread([&] { other_off = is_off(); }).join();
    EXPECT_TRUE(other_off) << "another thread sees its own state";
  }
  EXPECT_TRUE(is_off());
  EXPECT_TRUE(grad_enabled());
}
