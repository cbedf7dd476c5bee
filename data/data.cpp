#include "data.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "../autograd/errors.hpp"

namespace xgrad::data {

namespace {

std::string byte_hex(unsigned char b) {
  static const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

// "U+00E9 'é'" (the glyph only for printable symbols).
std::string describe(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", unsigned(c));
  std::string s = buf;
  const bool printable = c >= 0x20 && c != 0x7F && !(c >= 0x80 && c < 0xA0);
  if (printable && c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF)) s += " '" + utf8_encode(c) + "'";
  return s;
}

[[noreturn]] void bad_utf8(std::size_t offset, unsigned char byte, const std::string& why) {
  throw DataError("invalid UTF-8 at byte offset " + std::to_string(offset) + " (byte " + byte_hex(byte) + "): " + why);
}

// Calls f(code point, byte offset) for each code point of text.
template <class F>
void decode_each(const std::string& text, F f) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b0 = s[i];
    std::size_t len;
    char32_t cp, min;
    if (b0 < 0x80) {
      f(char32_t(b0), i);
      ++i;
      continue;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    } else if (b0 >= 0x80 && b0 <= 0xBF) {
      bad_utf8(i, b0, "a continuation byte with no lead byte before it");
    } else {
      bad_utf8(i, b0, "a byte that never occurs in UTF-8");
    }
    if (i + len > n)
      bad_utf8(i, b0, "the text ends inside a " + std::to_string(len) + "-byte sequence");
    for (std::size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80)
        bad_utf8(i + k, s[i + k], "expected a continuation byte of the sequence starting at byte offset " +
                                      std::to_string(i));
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min) bad_utf8(i, b0, "overlong encoding of " + describe(cp));
    if (cp >= 0xD800 && cp <= 0xDFFF) bad_utf8(i, b0, "encodes the surrogate " + describe(cp));
    if (cp > 0x10FFFF) bad_utf8(i, b0, "encodes a value above U+10FFFF");
    f(cp, i);
    i += len;
  }
}

}  // namespace

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open data file '" + path + "': " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError("cannot read data file '" + path + "'");
  if (text.empty()) throw DataError("data file '" + path + "' is empty");
  return text;
}

std::vector<char32_t> utf8_decode(const std::string& text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  decode_each(text, [&](char32_t c, std::size_t) { out.push_back(c); });
  return out;
}

std::string utf8_encode(char32_t c) {
  if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
    throw DataError("utf8_encode: " + std::to_string(unsigned(c)) + " is not a Unicode scalar value");
  std::string s;
  if (c < 0x80) {
    s += char(c);
  } else if (c < 0x800) {
    s += char(0xC0 | (c >> 6));
    s += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += char(0xE0 | (c >> 12));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  } else {
    s += char(0xF0 | (c >> 18));
    s += char(0x80 | ((c >> 12) & 0x3F));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  }
  return s;
}

std::string utf8_encode(const std::vector<char32_t>& code_points) {
  std::string s;
  s.reserve(code_points.size());
  for (char32_t c : code_points) s += utf8_encode(c);
  return s;
}

// ---- Vocab

Vocab::Vocab(std::vector<char32_t> symbols, Unknown policy) : symbols_(std::move(symbols)), policy_(policy) {
  const int first = has_unk() ? 1 : 0;
  for (std::size_t i = 0; i < symbols_.size(); ++i) {
    const char32_t c = symbols_[i];
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
      throw DataError("Vocab: symbol " + std::to_string(i) + " (" + std::to_string(unsigned(c)) +
                      ") is not a Unicode scalar value");
    if (!index_.emplace(c, first + int(i)).second)
      throw DataError("Vocab: symbol " + describe(c) + " appears twice (positions " +
                      std::to_string(index_[c] - first) + " and " + std::to_string(i) + ")");
  }
}

Vocab Vocab::from_text(const std::string& text, Unknown policy) {
  if (text.empty()) throw DataError("Vocab::from_text: the text is empty");
  std::vector<char32_t> cps = utf8_decode(text);
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  return Vocab(std::move(cps), policy);
}

int Vocab::id(char32_t c) const {
  auto it = index_.find(c);
  if (it != index_.end()) return it->second;
  if (has_unk()) return 0;
  throw DataError("Vocab: symbol " + describe(c) + " is not in the vocabulary (" + std::to_string(size()) +
                  " symbols)");
}

char32_t Vocab::symbol(int id) const {
  if (id < 0 || std::size_t(id) >= size())
    throw DataError("Vocab: id " + std::to_string(id) + " is out of range [0, " + std::to_string(size()) + ")");
  if (has_unk()) return id == 0 ? char32_t(0xFFFD) : symbols_[std::size_t(id) - 1];
  return symbols_[std::size_t(id)];
}

std::vector<int> Vocab::encode(const std::string& text) const {
  std::vector<int> ids;
  ids.reserve(text.size());
  decode_each(text, [&](char32_t c, std::size_t offset) {
    auto it = index_.find(c);
    if (it != index_.end()) {
      ids.push_back(it->second);
    } else if (has_unk()) {
      ids.push_back(0);
    } else {
      throw DataError("Vocab::encode: symbol " + describe(c) + " at byte offset " + std::to_string(offset) +
                      " is not in the vocabulary (" + std::to_string(size()) + " symbols)");
    }
  });
  return ids;
}

std::string Vocab::decode(const std::vector<int>& ids) const {
  std::string s;
  s.reserve(ids.size());
  for (int id : ids) s += utf8_encode(symbol(id));
  return s;
}

// 'E' or 'U' (the unknown policy) followed by the symbols in UTF-8.
std::string Vocab::serialize() const { return (has_unk() ? "U" : "E") + utf8_encode(symbols_); }

Vocab Vocab::deserialize(const std::string& s) {
  if (s.empty() || (s[0] != 'E' && s[0] != 'U'))
    throw DataError("Vocab::deserialize: not a serialized vocabulary (it must start with 'E' or 'U')");
  return Vocab(utf8_decode(s.substr(1)), s[0] == 'U' ? Unknown::map_to_unk : Unknown::error);
}

// ---- StreamBatcher

std::vector<int> SequenceBatch::inputs_at(std::size_t t) const {
  if (t >= steps) throw DataError("SequenceBatch: step " + std::to_string(t) + " of " + std::to_string(steps));
  return std::vector<int>(inputs.begin() + long(t * batch), inputs.begin() + long((t + 1) * batch));
}

std::vector<int> SequenceBatch::targets_at(std::size_t t) const {
  if (t >= steps) throw DataError("SequenceBatch: step " + std::to_string(t) + " of " + std::to_string(steps));
  return std::vector<int>(targets.begin() + long(t * batch), targets.begin() + long((t + 1) * batch));
}

StreamBatcher::StreamBatcher(std::vector<int> ids, std::size_t batch, std::size_t seq_len, bool drop_last)
    : ids_(std::move(ids)), batch_(batch), seq_len_(seq_len) {
  if (batch == 0) throw DataError("StreamBatcher: batch size must be at least 1, got 0");
  if (seq_len == 0) throw DataError("StreamBatcher: sequence length must be at least 1, got 0");
  if (ids_.size() < 2 * batch)
    throw DataError("StreamBatcher: batch size " + std::to_string(batch) + " is larger than the data allows: " +
                    std::to_string(ids_.size()) + " ids give at most " + std::to_string(ids_.size() / 2) +
                    " streams of 2 or more ids");
  stream_len_ = ids_.size() / batch;
  const std::size_t pairs = stream_len_ - 1;  // (input, target) positions per stream
  num_segments_ = drop_last ? pairs / seq_len : (pairs + seq_len - 1) / seq_len;
  if (num_segments_ == 0)
    throw DataError("StreamBatcher: with drop_last, streams of " + std::to_string(stream_len_) +
                    " ids hold no full segment of " + std::to_string(seq_len) + " steps (batch " +
                    std::to_string(batch) + ", " + std::to_string(ids_.size()) + " ids)");
}

SequenceBatch StreamBatcher::get(std::size_t k) const {
  if (k >= num_segments_)
    throw DataError("StreamBatcher: segment " + std::to_string(k) + " is out of range [0, " +
                    std::to_string(num_segments_) + ")");
  const std::size_t start = k * seq_len_;
  SequenceBatch out;
  out.steps = std::min(seq_len_, stream_len_ - 1 - start);
  out.batch = batch_;
  out.inputs.resize(out.steps * batch_);
  out.targets.resize(out.steps * batch_);
  for (std::size_t t = 0; t < out.steps; ++t)
    for (std::size_t b = 0; b < batch_; ++b) {
      const std::size_t at = b * stream_len_ + start + t;
      out.inputs[t * batch_ + b] = ids_[at];
      out.targets[t * batch_ + b] = ids_[at + 1];
    }
  return out;
}

SequenceBatch StreamBatcher::next() {
  SequenceBatch b = get(index());
  ++position_;
  return b;
}

// ---- padded batches

std::vector<int> PaddedBatch::at(std::size_t t) const {
  if (t >= steps) throw DataError("PaddedBatch: step " + std::to_string(t) + " of " + std::to_string(steps));
  return std::vector<int>(ids.begin() + long(t * batch), ids.begin() + long((t + 1) * batch));
}

template <class T>
Array<T> PaddedBatch::mask() const {
  Array<T> m = xt::zeros<T>({steps, batch});
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t t = 0; t < std::size_t(lengths[b]); ++t) m(t, b) = T(1);
  return m;
}

PaddedBatch pad_batch(const std::vector<std::vector<int>>& sequences, const std::vector<std::size_t>& indices,
                      int pad_id) {
  if (indices.empty()) throw DataError("pad_batch: no sequences to batch");
  PaddedBatch out;
  out.batch = indices.size();
  for (std::size_t b = 0; b < indices.size(); ++b) {
    const std::size_t i = indices[b];
    if (i >= sequences.size())
      throw DataError("pad_batch: index " + std::to_string(i) + " (entry " + std::to_string(b) +
                      ") is out of range for " + std::to_string(sequences.size()) + " sequences");
    if (sequences[i].empty()) throw DataError("pad_batch: sequence " + std::to_string(i) + " is empty");
    out.steps = std::max(out.steps, sequences[i].size());
    out.lengths.push_back(int(sequences[i].size()));
  }
  out.ids.assign(out.steps * out.batch, pad_id);
  for (std::size_t b = 0; b < indices.size(); ++b) {
    const auto& s = sequences[indices[b]];
    for (std::size_t t = 0; t < s.size(); ++t) out.ids[t * out.batch + b] = s[t];
  }
  return out;
}

PaddedBatch pad_batch(const std::vector<std::vector<int>>& sequences, int pad_id) {
  std::vector<std::size_t> all(sequences.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return pad_batch(sequences, all, pad_id);
}

template <class T>
Array<T> one_hot(const std::vector<int>& ids, std::size_t num_classes) {
  Array<T> out = xt::zeros<T>({ids.size(), num_classes});
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || std::size_t(ids[i]) >= num_classes)
      throw DataError("one_hot: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                      " is out of range [0, " + std::to_string(num_classes) + ")");
    out(i, std::size_t(ids[i])) = T(1);
  }
  return out;
}

// ---- shuffling and splits

std::uint64_t uniform_index(std::mt19937_64& gen, std::uint64_t n) {
  if (n == 0) throw DataError("uniform_index: the range [0, 0) is empty");
  // Accept x below the largest multiple of n, so x mod n is uniform.
  const std::uint64_t limit = std::uint64_t(-1) - (std::uint64_t(-1) % n + 1) % n;
  std::uint64_t x;
  do x = gen();
  while (x > limit);
  return x % n;
}

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 gen(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[uniform_index(gen, i)]);
  return p;
}

std::vector<std::vector<std::size_t>> minibatches(std::size_t n, std::size_t batch, std::uint64_t seed,
                                                  bool drop_last) {
  if (batch == 0) throw DataError("minibatches: batch size must be at least 1, got 0");
  if (n == 0) throw DataError("minibatches: there are no examples");
  if (drop_last && batch > n)
    throw DataError("minibatches: batch size " + std::to_string(batch) + " is larger than the data (" +
                    std::to_string(n) + " examples) and drop_last leaves no batch");
  const auto order = permutation(n, seed);
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t i = 0; i < n; i += batch) {
    if (drop_last && i + batch > n) break;
    out.emplace_back(order.begin() + long(i), order.begin() + long(std::min(n, i + batch)));
  }
  return out;
}

SplitSizes split_sizes(std::size_t n, double valid_fraction, double test_fraction) {
  auto check = [](double f, const char* name) {
    if (!(f >= 0 && f < 1)) {
      std::ostringstream os;
      os << "split: " << name << " fraction must be in [0, 1), got " << f;
      throw DataError(os.str());
    }
  };
  check(valid_fraction, "validation");
  check(test_fraction, "test");
  SplitSizes s;
  s.valid = std::size_t(std::llround(double(n) * valid_fraction));
  s.test = std::size_t(std::llround(double(n) * test_fraction));
  auto empty = [n](double f, const char* name) {
    std::ostringstream os;
    os << "split: a " << name << " fraction of " << f << " of " << n << " items gives an empty " << name << " set";
    throw DataError(os.str());
  };
  if (valid_fraction > 0 && s.valid == 0) empty(valid_fraction, "validation");
  if (test_fraction > 0 && s.test == 0) empty(test_fraction, "test");
  if (s.valid + s.test >= n) {
    std::ostringstream os;
    os << "split: " << n << " items leave none for training after " << s.valid << " for validation and " << s.test
       << " for test";
    throw DataError(os.str());
  }
  s.train = n - s.valid - s.test;
  return s;
}

Shard shard(std::size_t n, int rank, int world) {
  if (world < 1) throw DataError("shard: the number of ranks must be at least 1, not " + std::to_string(world));
  if (rank < 0 || rank >= world)
    throw DataError("shard: rank " + std::to_string(rank) + " is outside [0, " + std::to_string(world) + ")");
  if (n < std::size_t(world))
    throw DataError("shard: " + std::to_string(n) + " items cannot be shared by " + std::to_string(world) +
                    " ranks (each needs at least one)");
  const std::size_t w = std::size_t(world), r = std::size_t(rank), base = n / w, extra = n % w;
  Shard s;
  s.begin = r * base + std::min(r, extra);
  s.end = s.begin + base + (r < extra ? 1 : 0);
  return s;
}

namespace {
// Columns [s.begin, s.end) of each of the `steps` rows of a time-major (T, B) array.
std::vector<int> columns(const std::vector<int>& a, std::size_t steps, std::size_t batch, Shard s) {
  std::vector<int> out;
  out.reserve(steps * s.size());
  for (std::size_t t = 0; t < steps; ++t)
    out.insert(out.end(), a.begin() + long(t * batch + s.begin), a.begin() + long(t * batch + s.end));
  return out;
}

// A (T, B) batch with the same T and the B of the shard, its arrays still to fill.
template <class Batch>
Batch empty_share(const Batch& batch, Shard s) {
  Batch out;
  out.steps = batch.steps;
  out.batch = s.size();
  return out;
}
}  // namespace

SequenceBatch shard_of(const SequenceBatch& batch, int rank, int world) {
  const Shard s = shard(batch.batch, rank, world);
  SequenceBatch out = empty_share(batch, s);
  out.inputs = columns(batch.inputs, batch.steps, batch.batch, s);
  out.targets = columns(batch.targets, batch.steps, batch.batch, s);
  return out;
}

PaddedBatch shard_of(const PaddedBatch& batch, int rank, int world) {
  const Shard s = shard(batch.batch, rank, world);
  PaddedBatch out = empty_share(batch, s);
  out.ids = columns(batch.ids, batch.steps, batch.batch, s);
  out.lengths.assign(batch.lengths.begin() + long(s.begin), batch.lengths.begin() + long(s.end));
  return out;
}

template Array<float> PaddedBatch::mask<float>() const;
template Array<double> PaddedBatch::mask<double>() const;
template Array<float> one_hot(const std::vector<int>&, std::size_t);
template Array<double> one_hot(const std::vector<int>&, std::size_t);

}  // namespace xgrad::data
