// Sequence data utilities: vocabulary and UTF-8, BPTT streams, padding, shuffling, splits,
// and every error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::data;

namespace {

using xgrad::testing::contains;
template <class F>
std::string data_error(F f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "no DataError";
}

// ---------------------------------------------------------------- UTF-8 and vocabulary

TEST(Vocab, FromTextIsTheSortedDistinctSymbols) {
  Vocab v = Vocab::from_text("hello");
  EXPECT_EQ(v.size(), 4u);
  EXPECT_EQ(v.symbols(), (std::vector<char32_t>{U'e', U'h', U'l', U'o'}));
  EXPECT_EQ(v.encode("hello"), (std::vector<int>{1, 0, 2, 2, 3}));
  EXPECT_EQ(v.decode({3, 2, 0}), "ole");
  EXPECT_EQ(v.unk_id(), -1);
}

TEST(Vocab, CodePointsNotBytes) {
  const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9D\x84\x9E";  // "héllo € 𝄞"
  Vocab v = Vocab::from_text(text);
  EXPECT_EQ(v.size(), 7u);  // ' ' h l o é € 𝄞
  EXPECT_TRUE(v.contains(U'\u00E9'));
  EXPECT_TRUE(v.contains(U'\U0001D11E'));
  EXPECT_EQ(v.symbols().back(), U'\U0001D11E');
  const auto ids = v.encode(text);
  EXPECT_EQ(ids.size(), 9u);  // 9 code points in 15 bytes
  EXPECT_EQ(v.decode(ids), text);
  EXPECT_EQ(utf8_decode(text).size(), 9u);
  EXPECT_EQ(utf8_encode(utf8_decode(text)), text);
}

TEST(Vocab, InvalidUtf8GivesTheByteOffset) {
  auto msg = data_error([] { utf8_decode("ab\xFF" "cd"); });
  EXPECT_TRUE(contains(msg, "byte offset 2") && contains(msg, "0xff")) << msg;
  msg = data_error([] { utf8_decode("abc\xC3"); });
  EXPECT_TRUE(contains(msg, "byte offset 3") && contains(msg, "ends inside a 2-byte sequence")) << msg;
  msg = data_error([] { utf8_decode("a\xC3("); });
  EXPECT_TRUE(contains(msg, "byte offset 2") && contains(msg, "0x28") && contains(msg, "continuation")) << msg;
  msg = data_error([] { utf8_decode("xy\x80"); });
  EXPECT_TRUE(contains(msg, "byte offset 2") && contains(msg, "no lead byte")) << msg;
  msg = data_error([] { utf8_decode("\xE0\x80\xAF"); });  // '/' in three bytes
  EXPECT_TRUE(contains(msg, "byte offset 0") && contains(msg, "overlong")) << msg;
  msg = data_error([] { utf8_decode("ok\xED\xA0\x80"); });
  EXPECT_TRUE(contains(msg, "byte offset 2") && contains(msg, "surrogate")) << msg;
  msg = data_error([] { utf8_decode("\xF4\x90\x80\x80"); });
  EXPECT_TRUE(contains(msg, "above U+10FFFF")) << msg;
  msg = data_error([] { Vocab::from_text("fine\xC0\xAF"); });
  EXPECT_TRUE(contains(msg, "byte offset 4")) << msg;
}

TEST(Vocab, UnknownSymbolIsAnErrorOrUnk) {
  Vocab strict = Vocab::from_text("abc");
  auto msg = data_error([&] { strict.encode("ab\xC3\xA9x"); });
  EXPECT_TRUE(contains(msg, "U+00E9") && contains(msg, "byte offset 2") && contains(msg, "3 symbols")) << msg;
  EXPECT_THROW(strict.id(U'z'), DataError);

  Vocab lenient = Vocab::from_text("abc", Unknown::map_to_unk);
  EXPECT_EQ(lenient.size(), 4u);
  EXPECT_EQ(lenient.unk_id(), 0);
  EXPECT_EQ(lenient.encode("azc"), (std::vector<int>{1, 0, 3}));
  EXPECT_EQ(lenient.decode({1, 0, 3}), "a\xEF\xBF\xBD" "c");  // U+FFFD for <unk>
}

TEST(Vocab, SerializeRoundTrips) {
  for (Unknown policy : {Unknown::error, Unknown::map_to_unk}) {
    Vocab v = Vocab::from_text("z\xC3\xA9" "a\n", policy);
    Vocab w = Vocab::deserialize(v.serialize());
    EXPECT_EQ(w.symbols(), v.symbols());
    EXPECT_EQ(w.policy(), v.policy());
    EXPECT_EQ(w.encode("a\n\xC3\xA9"), v.encode("a\n\xC3\xA9"));
  }
  EXPECT_THROW(Vocab::deserialize("Xabc"), DataError);
}

TEST(Vocab, Errors) {
  auto msg = data_error([] { Vocab::from_text(""); });
  EXPECT_TRUE(contains(msg, "empty")) << msg;
  msg = data_error([] { Vocab({U'a', U'b', U'a'}); });
  EXPECT_TRUE(contains(msg, "U+0061 'a'") && contains(msg, "twice") && contains(msg, "0 and 2")) << msg;
  Vocab v = Vocab::from_text("ab");
  msg = data_error([&] { v.decode({0, 2}); });
  EXPECT_TRUE(contains(msg, "id 2") && contains(msg, "[0, 2)")) << msg;
  EXPECT_THROW(v.symbol(-1), DataError);
}

TEST(TextFile, MissingOrEmptyFile) {
  const auto dir = std::filesystem::path(XGRAD_BINARY_DIR) / "test_data_tmp";
  std::filesystem::create_directories(dir);
  const auto empty = (dir / "empty.txt").string();
  std::ofstream(empty).close();
  auto msg = data_error([&] { read_text_file(empty); });
  EXPECT_TRUE(contains(msg, "empty") && contains(msg, empty)) << msg;
  msg = data_error([&] { read_text_file((dir / "missing.txt").string()); });
  EXPECT_TRUE(contains(msg, "cannot open") && contains(msg, "missing.txt") && contains(msg, "No such file")) << msg;
  const auto full = (dir / "full.txt").string();
  std::ofstream(full) << "some text";
  EXPECT_EQ(read_text_file(full), "some text");
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------- streams

std::vector<int> iota(int n) {
  std::vector<int> v(std::size_t(n), 0);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(StreamBatcher, CutsBStreamsIntoTStepSegments) {
  // 21 ids, B = 2: streams 0..9 and 10..19 (id 20 dropped); 9 input/target pairs per stream,
  // so segments of 4, 4 and 1 steps.
  StreamBatcher s(iota(21), 2, 4);
  EXPECT_EQ(s.stream_length(), 10u);
  ASSERT_EQ(s.size(), 3u);
  SequenceBatch b0 = s.get(0);
  EXPECT_EQ(b0.steps, 4u);
  EXPECT_EQ(b0.batch, 2u);
  EXPECT_EQ(b0.inputs, (std::vector<int>{0, 10, 1, 11, 2, 12, 3, 13}));  // (T, B)
  EXPECT_EQ(b0.targets, (std::vector<int>{1, 11, 2, 12, 3, 13, 4, 14}));
  EXPECT_EQ(b0.inputs_at(2), (std::vector<int>{2, 12}));
  EXPECT_EQ(b0.targets_at(3), (std::vector<int>{4, 14}));
  SequenceBatch b1 = s.get(1);
  EXPECT_EQ(b1.inputs_at(0), b0.targets_at(3));  // each stream continues where it stopped
  SequenceBatch b2 = s.get(2);
  EXPECT_EQ(b2.steps, 1u);
  EXPECT_EQ(b2.inputs, (std::vector<int>{8, 18}));
  EXPECT_EQ(b2.targets, (std::vector<int>{9, 19}));
  EXPECT_THROW(b2.inputs_at(1), DataError);

  StreamBatcher full(iota(21), 2, 4, true);
  EXPECT_EQ(full.size(), 2u);
}

TEST(StreamBatcher, NextWrapsIntoEpochsAndSeekResumes) {
  StreamBatcher s(iota(21), 2, 4);
  std::vector<SequenceBatch> seen;
  for (int i = 0; i < 7; ++i) seen.push_back(s.next());
  EXPECT_EQ(s.position(), 7u);
  EXPECT_EQ(s.epoch(), 2u);
  EXPECT_EQ(s.index(), 1u);
  EXPECT_EQ(seen[3].inputs, seen[0].inputs);
  EXPECT_EQ(seen[5].inputs, s.get(2).inputs);

  StreamBatcher resumed(iota(21), 2, 4);
  resumed.seek(4);
  EXPECT_EQ(resumed.next().inputs, seen[4].inputs);
  EXPECT_EQ(resumed.next().inputs, seen[5].inputs);
}

TEST(StreamBatcher, Errors) {
  auto msg = data_error([] { StreamBatcher(iota(5), 3, 4); });
  EXPECT_TRUE(contains(msg, "batch size 3") && contains(msg, "5 ids") && contains(msg, "at most 2")) << msg;
  msg = data_error([] { StreamBatcher({}, 1, 4); });
  EXPECT_TRUE(contains(msg, "0 ids")) << msg;
  EXPECT_THROW(StreamBatcher(iota(10), 0, 4), DataError);
  msg = data_error([] { StreamBatcher(iota(10), 2, 0); });
  EXPECT_TRUE(contains(msg, "sequence length") && contains(msg, "got 0")) << msg;
  msg = data_error([] { StreamBatcher(iota(10), 2, 8, true); });
  EXPECT_TRUE(contains(msg, "no full segment of 8")) << msg;
  StreamBatcher s(iota(21), 2, 4);
  msg = data_error([&] { s.get(3); });
  EXPECT_TRUE(contains(msg, "segment 3") && contains(msg, "[0, 3)")) << msg;
}

// ---------------------------------------------------------------- padding

TEST(PadBatch, TimeMajorWithLengthsAndMask) {
  std::vector<std::vector<int>> seqs = {{1, 2, 3}, {4}, {5, 6}};
  PaddedBatch b = pad_batch(seqs, -1);
  EXPECT_EQ(b.steps, 3u);
  EXPECT_EQ(b.batch, 3u);
  EXPECT_EQ(b.ids, (std::vector<int>{1, 4, 5, 2, -1, 6, 3, -1, -1}));
  EXPECT_EQ(b.lengths, (std::vector<int>{3, 1, 2}));
  EXPECT_EQ(b.at(1), (std::vector<int>{2, -1, 6}));
  EXPECT_EQ(b.mask<float>(), (Array<float>{{1, 1, 1}, {1, 0, 1}, {1, 0, 0}}));

  PaddedBatch picked = pad_batch(seqs, {2, 1});
  EXPECT_EQ(picked.steps, 2u);
  EXPECT_EQ(picked.ids, (std::vector<int>{5, 4, 6, 0}));
  EXPECT_EQ(picked.lengths, (std::vector<int>{2, 1}));
}

TEST(PadBatch, Errors) {
  auto msg = data_error([] { pad_batch({}); });
  EXPECT_TRUE(contains(msg, "no sequences")) << msg;
  msg = data_error([] { pad_batch({{1}, {}}); });
  EXPECT_TRUE(contains(msg, "sequence 1 is empty")) << msg;
  msg = data_error([] { pad_batch({{1}, {2}}, {0, 5}); });
  EXPECT_TRUE(contains(msg, "index 5") && contains(msg, "2 sequences")) << msg;
}

TEST(OneHot, RowsAndErrors) {
  EXPECT_EQ(one_hot<double>({2, 0}, 3), (Array<double>{{0, 0, 1}, {1, 0, 0}}));
  auto msg = data_error([] { one_hot<float>({1, 3}, 3); });
  EXPECT_TRUE(contains(msg, "id 3") && contains(msg, "position 1") && contains(msg, "[0, 3)")) << msg;
}

// ---------------------------------------------------------------- shuffling and splits

TEST(Shuffle, SameSeedSameOrder) {
  const auto a = permutation(50, 42), b = permutation(50, 42), c = permutation(50, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<std::size_t>(a.begin(), a.end()).size(), 50u);
  EXPECT_EQ(*std::max_element(a.begin(), a.end()), 49u);
  std::vector<std::string> v = {"a", "b", "c", "d", "e"};
  shuffle(v, 7);
  const auto order = permutation(5, 7);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(v[i], std::string(1, char('a' + order[i])));
}

TEST(Shuffle, UniformIndexIsUniform) {
  std::mt19937_64 gen(1);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 60000; ++i) ++counts[uniform_index(gen, 6)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);  // 4 standard deviations
  EXPECT_THROW(uniform_index(gen, 0), DataError);
}

TEST(Shuffle, MinibatchesCoverEveryIndexOnce) {
  const auto batches = minibatches(10, 4, 3);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].size(), 2u);
  std::vector<std::size_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  EXPECT_EQ(all, permutation(10, 3));
  EXPECT_EQ(minibatches(10, 4, 3, true).size(), 2u);
  auto msg = data_error([] { minibatches(3, 4, 1, true); });
  EXPECT_TRUE(contains(msg, "batch size 4") && contains(msg, "3 examples")) << msg;
  EXPECT_THROW(minibatches(0, 4, 1), DataError);
  EXPECT_THROW(minibatches(5, 0, 1), DataError);
}

TEST(Split, ContiguousTrainValidTest) {
  const auto items = iota(100);
  const auto s = split(items, 0.1, 0.05);
  EXPECT_EQ(s.train.size(), 85u);
  EXPECT_EQ(s.valid.size(), 10u);
  EXPECT_EQ(s.test.size(), 5u);
  EXPECT_EQ(s.train.front(), 0);
  EXPECT_EQ(s.valid.front(), 85);
  EXPECT_EQ(s.test.front(), 95);
  EXPECT_EQ(s.test.back(), 99);
  const auto none = split(items, 0.0, 0.0);
  EXPECT_EQ(none.train.size(), 100u);
  EXPECT_TRUE(none.valid.empty() && none.test.empty());
}

TEST(Split, Errors) {
  auto msg = data_error([] { split_sizes(10, 1.0, 0.0); });
  EXPECT_TRUE(contains(msg, "validation fraction") && contains(msg, "[0, 1)") && contains(msg, "got 1")) << msg;
  msg = data_error([] { split_sizes(10, 0.1, -0.2); });
  EXPECT_TRUE(contains(msg, "test fraction") && contains(msg, "-0.2")) << msg;
  msg = data_error([] { split_sizes(10, 0.01, 0.0); });
  EXPECT_TRUE(contains(msg, "0.01 of 10 items") && contains(msg, "empty validation set")) << msg;
  msg = data_error([] { split_sizes(4, 0.5, 0.5); });
  EXPECT_TRUE(contains(msg, "4 items leave none for training")) << msg;
}

}  // namespace
