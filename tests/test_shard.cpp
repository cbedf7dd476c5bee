// Shares of the data for data-parallel training (data::shard, data::shard_of): contiguous,
// tiling, balanced to one item, and every error.
#include <gtest/gtest.h>

#include <numeric>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::data;
using xgrad::testing::contains;
using xgrad::testing::message_of;

TEST(Shard, SharesTileTheItemsInRankOrderAndDifferByAtMostOne) {
  for (std::size_t n : {1, 2, 7, 32, 33, 100})
    for (int world = 1; world <= 9 && std::size_t(world) <= n; ++world) {
      std::size_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < world; ++r) {
        const Shard s = shard(n, r, world);
        EXPECT_EQ(s.begin, next) << n << " items, rank " << r << " of " << world;
        EXPECT_EQ(s.size(), s.end - s.begin);
        // The first n mod world ranks hold the extra items.
        EXPECT_EQ(s.size(), n / std::size_t(world) + (std::size_t(r) < n % std::size_t(world) ? 1 : 0));
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
        next = s.end;
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1u);
      EXPECT_GE(smallest, 1u);
    }
}

TEST(Shard, ThirtyTwoStreamsOverThreeRanks) {
  EXPECT_EQ(shard(32, 0, 3).begin, 0u);
  EXPECT_EQ(shard(32, 0, 3).end, 11u);
  EXPECT_EQ(shard(32, 1, 3).begin, 11u);
  EXPECT_EQ(shard(32, 1, 3).end, 22u);
  EXPECT_EQ(shard(32, 2, 3).begin, 22u);
  EXPECT_EQ(shard(32, 2, 3).end, 32u);
}

TEST(Shard, BadRanksAndTooFewItemsAreDataErrors) {
  auto msg = [](std::size_t n, int rank, int world) { return message_of<DataError>([&] { shard(n, rank, world); }); };
  EXPECT_TRUE(contains(msg(10, 0, 0), "at least 1, not 0")) << msg(10, 0, 0);
  EXPECT_TRUE(contains(msg(10, 0, -2), "not -2")) << msg(10, 0, -2);
  EXPECT_TRUE(contains(msg(10, 3, 3), "rank 3 is outside [0, 3)")) << msg(10, 3, 3);
  EXPECT_TRUE(contains(msg(10, -1, 3), "rank -1 is outside [0, 3)")) << msg(10, -1, 3);
  EXPECT_TRUE(contains(msg(2, 0, 3), "2 items cannot be shared by 3 ranks")) << msg(2, 0, 3);
  EXPECT_TRUE(contains(msg(0, 0, 1), "0 items cannot be shared by 1 ranks")) << msg(0, 0, 1);
}

TEST(ShardOf, ListShareIsTheItemsOfTheShard) {
  std::vector<int> items(10);
  std::iota(items.begin(), items.end(), 100);
  EXPECT_EQ(shard_of(items, 0, 3), (std::vector<int>{100, 101, 102, 103}));
  EXPECT_EQ(shard_of(items, 1, 3), (std::vector<int>{104, 105, 106}));
  EXPECT_EQ(shard_of(items, 2, 3), (std::vector<int>{107, 108, 109}));
  EXPECT_EQ(shard_of(items, 0, 1), items);
  EXPECT_THROW(shard_of(items, 0, 11), DataError);
}

TEST(ShardOf, SequenceBatchShareHoldsItsStreamsAtEveryStep) {
  std::vector<int> ids(200);
  std::iota(ids.begin(), ids.end(), 0);
  StreamBatcher batcher(ids, /*batch=*/5, /*seq_len=*/4);
  const SequenceBatch whole = batcher.get(1);
  std::size_t covered = 0;
  for (int r = 0; r < 2; ++r) {
    const SequenceBatch part = shard_of(whole, r, 2);
    const Shard s = shard(5, r, 2);
    ASSERT_EQ(part.steps, whole.steps);
    ASSERT_EQ(part.batch, s.size());
    for (std::size_t t = 0; t < whole.steps; ++t)
      for (std::size_t b = 0; b < part.batch; ++b) {
        EXPECT_EQ(part.inputs_at(t)[b], whole.inputs_at(t)[s.begin + b]);
        EXPECT_EQ(part.targets_at(t)[b], whole.targets_at(t)[s.begin + b]);
      }
    covered += part.batch;
  }
  EXPECT_EQ(covered, whole.batch);
  EXPECT_THROW(shard_of(whole, 0, 6), DataError);
}

TEST(ShardOf, PaddedBatchShareKeepsItsLengthsAndTheBatchSteps) {
  const PaddedBatch whole = pad_batch({{1, 2, 3}, {4}, {5, 6}, {7, 8, 9, 10}}, /*pad_id=*/0);
  const PaddedBatch part = shard_of(whole, 1, 2);  // examples 2 and 3
  EXPECT_EQ(part.steps, 4u);
  EXPECT_EQ(part.batch, 2u);
  EXPECT_EQ(part.lengths, (std::vector<int>{2, 4}));
  EXPECT_EQ(part.at(0), (std::vector<int>{5, 7}));
  EXPECT_EQ(part.at(2), (std::vector<int>{0, 9}));
  EXPECT_EQ(part.at(3), (std::vector<int>{0, 10}));
  EXPECT_THROW(shard_of(whole, 2, 2), DataError);
}
