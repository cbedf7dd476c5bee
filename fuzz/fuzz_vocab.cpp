// Fuzzes data::Vocab: from_text, encode, decode, serialize and deserialize. The input is
// <policy byte><text>[\0<other text>]: the vocabulary is built from <text> (policy byte odd:
// Unknown::map_to_unk), then <other text> is encoded with it; the whole input is also handed to
// deserialize(). Only DataError may be thrown, and every round trip that is defined must hold.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
using data::Unknown;
using data::Vocab;

namespace {

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_vocab: " << what << std::endl;
  std::abort();
}

bool same(const Vocab& a, const Vocab& b) {
  return a.symbols() == b.symbols() && a.policy() == b.policy() && a.size() == b.size();
}

void check_vocab(const Vocab& v) {
  const std::size_t first = v.has_unk() ? 1 : 0;
  if (v.size() != v.symbols().size() + first) bug("size() does not count the symbols and <unk>");
  for (std::size_t i = 0; i < v.symbols().size(); ++i) {
    const char32_t c = v.symbols()[i];
    if (v.id(c) != int(i + first) || v.symbol(int(i + first)) != c) bug("id() and symbol() are not inverse");
  }
  const std::string s = v.serialize();
  const Vocab back = Vocab::deserialize(s);
  if (!same(back, v) || back.serialize() != s) bug("deserialize(serialize(v)) != v");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string input(reinterpret_cast<const char*>(data), size);

  // Arbitrary bytes as a serialized vocabulary: accepted only if they round-trip exactly.
  try {
    const Vocab v = Vocab::deserialize(input);
    if (v.serialize() != input) bug("deserialize accepted a string that serialize() does not give back");
    check_vocab(v);
  } catch (const DataError&) {
  }

  const Unknown policy = (data[0] & 1) ? Unknown::map_to_unk : Unknown::error;
  const std::size_t zero = input.find('\0', 1);
  const std::string text = input.substr(1, zero == std::string::npos ? std::string::npos : zero - 1);
  const std::string other = zero == std::string::npos ? std::string() : input.substr(zero + 1);

  Vocab v;
  std::vector<char32_t> cps;
  try {
    v = Vocab::from_text(text, policy);
  } catch (const DataError&) {
    // Only empty text or invalid UTF-8 may be refused.
    bool valid = !text.empty();
    try {
      cps = data::utf8_decode(text);
    } catch (const DataError&) {
      valid = false;
    }
    if (valid) bug("from_text rejected valid, non-empty text");
    return 0;
  }
  cps = data::utf8_decode(text);
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  if (v.symbols() != cps) bug("from_text's symbols are not the text's distinct code points in order");
  check_vocab(v);

  // Every symbol of the text is known, so encode/decode round-trips under either policy.
  const std::vector<int> ids = v.encode(text);
  for (int id : ids)
    if (id < int(v.has_unk() ? 1 : 0) || std::size_t(id) >= v.size()) bug("encode gave an id out of range");
  if (v.decode(ids) != text) bug("decode(encode(text)) != text");

  // Other text: unknown symbols are <unk> (decoded as U+FFFD) or a DataError.
  try {
    const std::vector<int> other_ids = v.encode(other);
    bool any_unk = false;
    for (int id : other_ids) {
      if (id < 0 || std::size_t(id) >= v.size()) bug("encode gave an id out of range");
      any_unk = any_unk || id == v.unk_id();
    }
    if (any_unk && !v.has_unk()) bug("<unk> without map_to_unk");
    const std::string decoded = v.decode(other_ids);
    if (!any_unk && decoded != other) bug("decode(encode(other)) != other without unknown symbols");
    if (data::utf8_decode(decoded).size() != other_ids.size()) bug("decode gave a symbol count other than the ids'");
  } catch (const DataError&) {
  }
  // Decoding arbitrary ids: in range or a DataError.
  std::vector<int> raw;
  for (std::size_t i = 1; i + 1 < size && raw.size() < 64; i += 2) raw.push_back(int(std::int8_t(data[i])) * 3);
  try {
    v.decode(raw);
    for (int id : raw)
      if (id < 0 || std::size_t(id) >= v.size()) bug("decode accepted an id out of range");
  } catch (const DataError&) {
  }
  return 0;
}
