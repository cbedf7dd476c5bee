// Fuzzes the text decoders: xgrad::data::utf8_decode and utf8_encode (data/data.hpp) and the
// examples' parse_word_list (examples/common/wordlists.hpp) in both encodings. The decoder is
// strict: what it accepts are Unicode scalar values that encode back to the input byte for byte;
// a word list accepts UTF-8 exactly when the decoder does, and Latin-1 always. Anything else than
// a DataError is a bug.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/wordlists.hpp"

using namespace xgrad;
namespace ex = xgrad::examples;

namespace {

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_utf8: " << what << std::endl;
  std::abort();
}

void check_word_list(const std::string& bytes, ex::Encoding encoding, bool decodable) {
  std::vector<std::u32string> words;
  try {
    words = ex::parse_word_list(bytes, encoding, "fuzz");
  } catch (const DataError&) {
    return;  // invalid UTF-8, or no words
  }
  if (!decodable) bug("parse_word_list accepted text its decoder rejects");
  if (words.empty()) bug("parse_word_list returned no words without an error");
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::u32string& w = words[i];
    if (w.empty()) bug("parse_word_list returned an empty word");
    if (i > 0 && !(words[i - 1] < w)) bug("parse_word_list's words are not sorted and unique");
    for (char32_t c : w) {
      if (c == U'\n' || c == U'\'' || c == 0x2019) bug("a word holds a newline or an apostrophe");
      if (ex::to_lower(c) != c) bug("a word is not lower case: to_lower is not idempotent");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  std::vector<char32_t> cps;
  bool ok = true;
  try {
    cps = data::utf8_decode(bytes);
  } catch (const DataError&) {
    ok = false;
  }
  if (ok) {
    if (data::utf8_encode(cps) != bytes) bug("data::utf8_encode(utf8_decode(s)) != s");
    for (char32_t c : cps)
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) bug("decoded a value that is not a Unicode scalar value");
  }

  // ISO-8859-1: byte i is code point i; its UTF-8 encoding decodes back to it.
  std::vector<char32_t> latin(bytes.begin(), bytes.end());
  for (char32_t& c : latin) c &= 0xFF;
  if (data::utf8_decode(data::utf8_encode(latin)) != latin) bug("Latin-1 text does not round-trip through UTF-8");

  check_word_list(bytes, ex::Encoding::Utf8, ok);
  check_word_list(bytes, ex::Encoding::Latin1, true);
  return 0;
}
