// Fuzzes the text decoders: xgrad::data::utf8_decode (data/data.hpp) and the examples'
// decode_utf8, decode_latin1 and parse_word_list (examples/common). Both UTF-8 decoders are
// strict, so they must accept exactly the same inputs, give the same code points, and encoding
// those gives back the input byte for byte. Anything else than a DataError is a bug.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/utf8.hpp"
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

  std::vector<char32_t> a;
  bool a_ok = true;
  try {
    a = data::utf8_decode(bytes);
  } catch (const DataError&) {
    a_ok = false;
  }
  std::u32string b;
  bool b_ok = true;
  try {
    b = ex::decode_utf8(bytes, "fuzz");
  } catch (const DataError&) {
    b_ok = false;
  }
  if (a_ok != b_ok) bug(std::string("the two UTF-8 decoders disagree: data::utf8_decode ") + (a_ok ? "accepts" : "rejects"));
  if (a_ok) {
    if (std::u32string(a.begin(), a.end()) != b) bug("the two UTF-8 decoders give different code points");
    if (data::utf8_encode(a) != bytes) bug("data::utf8_encode(utf8_decode(s)) != s");
    if (ex::encode_utf8(b) != bytes) bug("encode_utf8(decode_utf8(s)) != s");
    for (char32_t c : a)
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) bug("decoded a value that is not a Unicode scalar value");
  }

  // ISO-8859-1: byte i is code point i; its UTF-8 encoding decodes back to it.
  const std::u32string latin = ex::decode_latin1(bytes);
  if (latin.size() != bytes.size()) bug("decode_latin1 changed the length");
  for (std::size_t i = 0; i < size; ++i)
    if (latin[i] != data[i]) bug("decode_latin1 is not the identity on bytes");
  if (ex::decode_utf8(ex::encode_utf8(latin)) != latin) bug("Latin-1 text does not round-trip through UTF-8");

  check_word_list(bytes, ex::Encoding::Utf8, a_ok);
  check_word_list(bytes, ex::Encoding::Latin1, true);
  return 0;
}
