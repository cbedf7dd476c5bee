// Sequence data: a character vocabulary over Unicode code points, streams of T-step segments
// for truncated BPTT, padded batches with lengths, deterministic shuffling, splits, and each
// rank's share of the data for data-parallel training.
// Every error is a DataError whose message carries the offending values.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "../autograd/tape.hpp"

namespace xgrad::data {

// ---- text

// The whole file; DataError if it cannot be read or is empty.
std::string read_text_file(const std::string& path);
// Code points of UTF-8 text. Invalid UTF-8 (a stray continuation byte, a truncated or overlong
// sequence, a surrogate, a value above U+10FFFF) is a DataError giving the byte offset.
std::vector<char32_t> utf8_decode(const std::string& text);
std::string utf8_encode(char32_t c);
std::string utf8_encode(const std::vector<char32_t>& code_points);

// What encode() does with a symbol that is not in the vocabulary.
enum class Unknown {
  error,      // DataError naming the symbol and its byte offset
  map_to_unk  // the reserved id 0, "<unk>"; decoded as U+FFFD
};

class Vocab {
 public:
  Vocab() = default;
  // The given symbols, in this order (ids 0, 1, ...; from 1 with Unknown::map_to_unk).
  explicit Vocab(std::vector<char32_t> symbols, Unknown policy = Unknown::error);
  // The distinct code points of `text` in increasing order. Empty text is a DataError.
  static Vocab from_text(const std::string& text, Unknown policy = Unknown::error);

  // Number of ids, <unk> included.
  std::size_t size() const { return symbols_.size() + (has_unk() ? 1 : 0); }
  bool has_unk() const { return policy_ == Unknown::map_to_unk; }
  int unk_id() const { return has_unk() ? 0 : -1; }
  Unknown policy() const { return policy_; }
  bool contains(char32_t c) const { return index_.count(c) != 0; }
  // The id of c: <unk> or DataError when c is not in the vocabulary.
  int id(char32_t c) const;
  // The symbol of an id (U+FFFD for <unk>); DataError when id is out of range.
  char32_t symbol(int id) const;
  // Symbols without <unk>, in id order.
  const std::vector<char32_t>& symbols() const { return symbols_; }

  std::vector<int> encode(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;

  // A string that deserialize() turns back into the same vocabulary (for CheckpointExtra).
  std::string serialize() const;
  static Vocab deserialize(const std::string& s);

 private:
  std::vector<char32_t> symbols_;
  std::unordered_map<char32_t, int> index_;
  Unknown policy_ = Unknown::error;
};

// ---- truncated BPTT over one long sequence

// T consecutive steps of B streams, time-major.
struct SequenceBatch {
  std::size_t steps = 0, batch = 0;  // T, B
  std::vector<int> inputs;           // (T, B): inputs[t·B + b]
  std::vector<int> targets;          // (T, B): the id that follows inputs[t·B + b] in its stream
  // The B ids of step t.
  std::vector<int> inputs_at(std::size_t t) const;
  std::vector<int> targets_at(std::size_t t) const;
};

// Cuts ids (N) into B streams of S = ⌊N/B⌋ consecutive ids (the last N mod B are dropped):
// stream b is ids[b·S, (b+1)·S). Segment k holds stream positions [k·T, k·T + T_k) as inputs and
// the positions one later as targets, T_k = min(T, S − 1 − k·T), so consecutive segments
// continue each stream where the last stopped and a hidden state carried across them (with
// detach()) sees its stream's text in order. drop_last drops a final segment shorter than T.
class StreamBatcher {
 public:
  StreamBatcher(std::vector<int> ids, std::size_t batch, std::size_t seq_len, bool drop_last = false);

  // Segments per epoch.
  std::size_t size() const { return num_segments_; }
  std::size_t batch() const { return batch_; }
  std::size_t seq_len() const { return seq_len_; }
  std::size_t stream_length() const { return stream_len_; }
  // Segment k of an epoch, k < size().
  SequenceBatch get(std::size_t k) const;

  // The segment at position(), then advances; after the last segment the next epoch starts.
  SequenceBatch next();
  // Segments handed out by next() so far, over all epochs: save it to resume with seek().
  std::uint64_t position() const { return position_; }
  void seek(std::uint64_t position) { position_ = position; }
  std::uint64_t epoch() const { return position_ / num_segments_; }
  // Index in the epoch of the next segment; 0 means the streams start over (reset the state).
  std::size_t index() const { return std::size_t(position_ % num_segments_); }

 private:
  std::vector<int> ids_;
  std::size_t batch_, seq_len_, stream_len_, num_segments_;
  std::uint64_t position_ = 0;
};

// ---- variable-length examples

// B sequences padded to the longest, T, time-major as the sequence layers take them.
struct PaddedBatch {
  std::size_t steps = 0, batch = 0;  // T, B
  std::vector<int> ids;              // (T, B): ids[t·B + b], pad_id where t ≥ lengths[b]
  std::vector<int> lengths;          // B, each in [1, T]
  // The B ids of step t.
  std::vector<int> at(std::size_t t) const;
  // (T, B): 1 where t < lengths[b], else 0.
  template <class T>
  Array<T> mask() const;
};

// Every sequence must be non-empty.
PaddedBatch pad_batch(const std::vector<std::vector<int>>& sequences, int pad_id = 0);
// The sequences picked by `indices` (e.g. one minibatch of a shuffled order), in that order.
PaddedBatch pad_batch(const std::vector<std::vector<int>>& sequences, const std::vector<std::size_t>& indices,
                      int pad_id = 0);

// (N, C) one-hot rows of ids in [0, C).
template <class T>
Array<T> one_hot(const std::vector<int>& ids, std::size_t num_classes);

// ---- shuffling and splits

// A uniform integer in [0, n) drawn from gen by rejection; unlike std::uniform_int_distribution
// it gives the same numbers with every standard library, so a seed means the same order everywhere.
std::uint64_t uniform_index(std::mt19937_64& gen, std::uint64_t n);
// A permutation of 0..n-1 fixed by seed (Fisher–Yates with uniform_index).
std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed);
// v in the order permutation(v.size(), seed).
template <class V>
void shuffle(std::vector<V>& v, std::uint64_t seed) {
  const auto order = permutation(v.size(), seed);
  std::vector<V> out;
  out.reserve(v.size());
  for (auto i : order) out.push_back(std::move(v[i]));
  v = std::move(out);
}
// permutation(n, seed) cut into runs of `batch` indices (the last shorter unless drop_last).
std::vector<std::vector<std::size_t>> minibatches(std::size_t n, std::size_t batch, std::uint64_t seed,
                                                  bool drop_last = false);

struct SplitSizes {
  std::size_t train = 0, valid = 0, test = 0;
};
// round(n·valid_fraction) and round(n·test_fraction) items, the rest for training. A positive
// fraction that rounds to no item, fractions outside [0, 1), or no item left to train on are
// DataErrors.
SplitSizes split_sizes(std::size_t n, double valid_fraction, double test_fraction);

template <class V>
struct Splits {
  std::vector<V> train, valid, test;
};
// Contiguous parts in order train, valid, test (shuffle first for examples; keep the order for
// one long text, so held-out text is unseen text).
template <class V>
Splits<V> split(const std::vector<V>& items, double valid_fraction, double test_fraction) {
  const SplitSizes s = split_sizes(items.size(), valid_fraction, test_fraction);
  auto b = items.begin();
  Splits<V> out;
  out.train.assign(b, b + s.train);
  out.valid.assign(b + s.train, b + s.train + s.valid);
  out.test.assign(b + s.train + s.valid, items.end());
  return out;
}

// ---- shares for data-parallel training (xgrad::dist; these need no MPI)

// Items [begin, end) of a list.
struct Shard {
  std::size_t begin = 0, end = 0;
  std::size_t size() const { return end - begin; }
};
// Rank r's contiguous share of n items among `world` ranks: ⌊n/world⌋ items each and one more
// for each of the first n mod world ranks, in rank order, so the shares tile [0, n) and differ
// in size by at most one. world < 1, rank outside [0, world) and n < world (a rank with nothing
// to compute a loss on) are DataErrors.
Shard shard(std::size_t n, int rank, int world);

// Rank r's share of a list (e.g. of minibatches or examples), as shard() cuts it.
template <class V>
std::vector<V> shard_of(const std::vector<V>& items, int rank, int world) {
  const Shard s = shard(items.size(), rank, world);
  return std::vector<V>(items.begin() + long(s.begin), items.begin() + long(s.end));
}
// Rank r's share of a batch's B streams (or examples): the columns [begin, end) of every step,
// with their targets (or lengths); the steps T stay those of the whole batch.
SequenceBatch shard_of(const SequenceBatch& batch, int rank, int world);
PaddedBatch shard_of(const PaddedBatch& batch, int rank, int world);

}  // namespace xgrad::data
