// Helpers shared by the tests: exception messages and their key words.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace xgrad::testing {

inline bool contains(const std::string& s, const std::string& word) { return s.find(word) != std::string::npos; }

// The message of the exception `fn` throws, or "" if none (tests check key words in it).
template <class E, class F>
std::string message_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// What a program run by run_command did: its exit status (-1 if it did not exit), its stdout,
// and its stderr where the caller collected it.
struct Outcome {
  int status = -1;
  std::string out, err;
  // The last non-empty line of stdout: the examples print their figures there.
  std::string last_line() const {
    std::string line, last;
    std::istringstream in(out);
    while (std::getline(in, line))
      if (!line.empty()) last = line;
    return last;
  }
  std::string all() const { return out + "\n[stderr]\n" + err; }
};

// Runs a shell command line and captures its stdout.
inline Outcome run_command(const std::string& command) {
  Outcome r;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// n values drawn uniformly from [-1, 1).
template <class T>
std::vector<T> random_vector(std::size_t n, std::mt19937& gen) {
  std::uniform_real_distribution<T> u(-1, 1);
  std::vector<T> v(n);
  for (T& x : v) x = u(gen);
  return v;
}

}  // namespace xgrad::testing

// EXPECT_THROW plus a check that the message contains each key word.
#define XGRAD_EXPECT_THROW_MSG(statement, exception, ...)                                       \
  do {                                                                                          \
    EXPECT_THROW(statement, exception);                                                         \
    const std::string xgrad_msg_ = ::xgrad::testing::message_of<exception>([&] { statement; }); \
    for (const char* xgrad_word_ : {__VA_ARGS__})                                               \
      EXPECT_NE(xgrad_msg_.find(xgrad_word_), std::string::npos)                                \
          << "message: \"" << xgrad_msg_ << "\" lacks \"" << xgrad_word_ << "\"";               \
  } while (0)
