// UTF-8 and ISO-8859-1 decoding to Unicode code points, UTF-8 encoding, and the lower-casing
// the examples' data need (Latin letters, accented ones included).
#pragma once

#include <string>

namespace xgrad::examples {

// Strict UTF-8 (xgrad::data::utf8_decode): overlong forms, surrogates, code points above
// U+10FFFF and truncated sequences are errors. Throws xgrad::DataError "<what>: invalid UTF-8
// at byte offset N (byte 0x..): <why>", N the offset of the offending byte.
std::u32string decode_utf8(const std::string& bytes, const std::string& what = "text");
// ISO-8859-1 maps each byte to the code point of the same value; it cannot fail.
std::u32string decode_latin1(const std::string& bytes);
// Throws xgrad::DataError for a surrogate or a value above U+10FFFF.
std::string encode_utf8(const std::u32string& text);
std::string encode_utf8(char32_t c);

// Lower case for Basic Latin, Latin-1 Supplement, Latin Extended-A and capital sharp s
// (U+1E9E -> ß); every other code point is returned unchanged. One code point in, one out
// (so İ U+0130 becomes plain i), which keeps word lengths and is easy to replicate elsewhere
// (bench/classify_torch.py does).
char32_t to_lower(char32_t c);
std::u32string to_lower(std::u32string text);

}  // namespace xgrad::examples
