#include "common/utf8.hpp"

#include <vector>

#include <xgrad/autograd/errors.hpp>
#include <xgrad/data/data.hpp>

namespace xgrad::examples {

// The decoding and encoding are xgrad::data's (data/data.hpp); these give them the
// u32string and the file name the examples work with.
std::u32string decode_utf8(const std::string& bytes, const std::string& what) {
  try {
    const std::vector<char32_t> cps = data::utf8_decode(bytes);
    return std::u32string(cps.begin(), cps.end());
  } catch (const DataError& e) {
    throw DataError(what + ": " + e.what());
  }
}

std::u32string decode_latin1(const std::string& bytes) {
  std::u32string out(bytes.size(), U'\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) out[i] = static_cast<unsigned char>(bytes[i]);
  return out;
}

std::string encode_utf8(char32_t c) { return data::utf8_encode(c); }

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) out += encode_utf8(c);
  return out;
}

char32_t to_lower(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c + 0x20;
  if (c < 0xC0) return c;
  if (c <= 0xDE) return c == 0xD7 ? c : c + 0x20;  // À..Þ except ×
  if (c < 0x100) return c;
  if (c <= 0x17F) {
    // Latin Extended-A: capital/small pairs, capital first, except the odd ones out below.
    if (c == 0x130) return U'i';                          // İ
    if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;  // ı ĸ ŉ ſ
    if (c == 0x178) return 0xFF;                          // Ÿ -> ÿ
    const bool odd_capitals = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_capitals) return (c % 2 == 1) ? c + 1 : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c == 0x1E9E) return 0xDF;  // ẞ -> ß
  return c;
}

std::u32string to_lower(std::u32string text) {
  for (char32_t& c : text) c = to_lower(c);
  return text;
}

}  // namespace xgrad::examples
