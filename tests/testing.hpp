// Helpers shared by the tests: exception messages and their key words.
#pragma once

#include <string>

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
