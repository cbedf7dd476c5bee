// Runs the compare_gradients example briefly: its table, its last line, its exit status.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "testing.hpp"

namespace {

using xgrad::testing::Outcome;

Outcome run(const std::string& args) {
  return xgrad::testing::run_command(std::string(XGRAD_BINARY_DIR) + "/examples/compare_gradients " + args + " 2>&1");
}

// The value after "name: " in the last line.
double value_of(const std::string& line, const std::string& name) {
  const auto at = line.find(name + ": ");
  if (at == std::string::npos) return -1;
  return std::strtod(line.c_str() + at + name.size() + 2, nullptr);
}

TEST(CompareGradients, DefaultRunAgreesAndEndsWithItsFigures) {
  Outcome r = run("");
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* g : {"dWax", "dWaa", "dba", "dWya", "dby", "dWf", "dWi", "dWc", "dWo", "dbo", "dx", "da0"})
    EXPECT_NE(r.out.find(g), std::string::npos) << g;
  const std::string last = r.last_line();
  EXPECT_EQ(last.rfind("max relative error: ", 0), 0u) << last;
  const double worst = value_of(last, "max relative error");
  EXPECT_GE(worst, 0.0);
  EXPECT_LT(worst, 1e-9);
  const double worst_float = value_of(last, "float max relative error");
  EXPECT_GE(worst_float, 0.0);
  EXPECT_LT(worst_float, 1e-4);
  EXPECT_NE(last.find("result: pass"), std::string::npos) << last;
}

TEST(CompareGradients, SizesAndCellAreOptions) {
  Outcome r = run("--cell lstm --n-x 2 --n-a 3 --n-y 4 --m 1 --t 7 --seed 5 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("dWax"), std::string::npos);
  EXPECT_NE(r.out.find("dWf"), std::string::npos);
  EXPECT_NE(r.out.find("(3, 5)"), std::string::npos) << r.out;  // dWf is (n_a, n_a + n_x)
}

TEST(CompareGradients, DifferenceAboveToleranceFails) {
  Outcome r = run("--cell rnn --float-tolerance 1e-30");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("ABOVE TOLERANCE"), std::string::npos);
  EXPECT_NE(r.last_line().find("result: FAIL"), std::string::npos);
}

TEST(CompareGradients, BadOptionsExitWithStatus2) {
  for (const char* args : {"--cell gru", "--bogus", "--m 0", "--t", "--tolerance abc"}) {
    Outcome r = run(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.out;
    EXPECT_FALSE(r.out.empty()) << args;
  }
}

TEST(CompareGradients, HelpListsTheOptions) {
  Outcome r = run("--help");
  EXPECT_EQ(r.status, 0);
  for (const char* o : {"--cell", "--n-x", "--n-a", "--n-y", "--m", "--t", "--seed", "--tolerance", "--out"})
    EXPECT_NE(r.out.find(o), std::string::npos) << o;
}

TEST(CompareGradients, OutWritesTheTableAsCsv) {
  const auto dir = std::filesystem::temp_directory_path() / ("xgrad_compare_" + std::to_string(::getpid()));
  Outcome r = run("--cell rnn --out " + dir.string());
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream csv(dir / "compare_gradients.csv");
  ASSERT_TRUE(csv.good());
  std::string header, row;
  std::getline(csv, header);
  EXPECT_EQ(header, "cell,type,gradient,shape,max_abs_diff,relative_error");
  std::getline(csv, row);
  EXPECT_EQ(row.rfind("rnn,double,dWax,", 0), 0u) << row;
  std::filesystem::remove_all(dir);
}

}  // namespace
