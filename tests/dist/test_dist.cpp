// xgrad::dist under mpirun (and alone): the collectives are exact, training over N ranks is
// whole-batch training, the parameters stay identical on every rank, and bad input is an error
// on every rank. Run by ctest as `mpirun -np 2 test_dist --gtest_filter=Ranks*:...` and alone
// (suite OneProcess); every test calls the same collectives in the same order on every rank,
// so a failed expectation never leaves a rank waiting.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include <xgrad/dist.hpp>
#include <xgrad/xgrad.hpp>

#include "../testing.hpp"

using namespace xgrad;
using xgrad::testing::contains;
using xgrad::testing::message_of;

namespace {

// Largest difference from whole-batch training seen by the equivalence tests (printed at the end).
double g_largest_difference = 0;

double max_over_ranks(double x) {
  MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return x;
}

template <class T>
std::vector<T> flatten(const std::vector<Var<T>>& params) {
  std::vector<T> out;
  for (const auto& p : params) out.insert(out.end(), p.value().begin(), p.value().end());
  return out;
}

// True on every rank when every rank's parameters are bit for bit rank 0's.
template <class T>
bool identical_on_every_rank(const std::vector<Var<T>>& params) {
  std::vector<T> mine = flatten(params), root = mine;
  MPI_Bcast(root.data(), int(root.size() * sizeof(T)), MPI_BYTE, 0, MPI_COMM_WORLD);
  int differs = std::memcmp(mine.data(), root.data(), mine.size() * sizeof(T)) != 0;
  MPI_Allreduce(MPI_IN_PLACE, &differs, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return differs == 0;
}

template <class T>
double max_abs_difference(const std::vector<Var<T>>& a, const std::vector<Var<T>>& b) {
  const std::vector<T> x = flatten(a), y = flatten(b);
  double d = 0;
  for (std::size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(double(x[i]) - double(y[i])));
  return d;
}

// The number of elements past which a fused exchange takes more than one message (4 MiB).
template <class T>
constexpr std::size_t kOneMessage = (std::size_t(4) << 20) / sizeof(T);

// ---------------------------------------------------------------- collectives

TEST(RanksCollectives, AllReduceSumIsExact) {
  const int r = dist::rank(), n = dist::world_size();
  ASSERT_GE(n, 2) << "run under mpirun -np 2 or more";
  EXPECT_EQ(dist::all_reduce_sum(r + 1.0), n * (n + 1) / 2.0);
  // Powers of two of different sizes: exact in double whatever the order of the sum.
  const double tiny = std::ldexp(1.0, -40 + r), expected = std::ldexp(1.0, -40) * (std::ldexp(1.0, n) - 1);
  EXPECT_EQ(dist::all_reduce_sum(tiny), expected);
  EXPECT_EQ(dist::all_reduce_sum(0.0), 0.0);
}

template <class T>
class RanksGradients : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(RanksGradients, Scalars);

// Rank r's gradient element j is (r + 1)·(j mod 97) and its weight (r + 1)/2: every product and
// sum is a small multiple of 1/2, exact in float and double, so the result must be exact.
TYPED_TEST(RanksGradients, WeightedSumOverRanksIsExactAcrossSeveralMessages) {
  using T = TypeParam;
  const int r = dist::rank(), n = dist::world_size();
  ASSERT_GE(n, 2);
  // The first fills more than one message, so the exchange is split and a parameter straddles two.
  const std::size_t big = kOneMessage<T> + 1234;
  std::vector<Var<T>> params{param<T>(xt::zeros<T>({big})), param<T>(xt::zeros<T>({3, 4})),
                             param<T>(xt::zeros<T>({5}))};
  for (auto& p : params) {
    T* g = p.mutable_grad().data();
    for (std::size_t j = 0; j < p.size(); ++j) g[j] = T(r + 1) * T(j % 97);
  }
  // On the last rank parameter 2 has no gradient buffer: it counts as zeros.
  if (r == n - 1) params[2].mutable_grad() = Array<T>();
  dist::all_reduce_gradients(params, (r + 1) / 2.0);
  double sum_sq = 0;  // Σ_r (r + 1)²/2 over the ranks taking part
  for (int k = 0; k < n; ++k) sum_sq += (k + 1) * (k + 1) / 2.0;
  const double without_last = sum_sq - n * n / 2.0;
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const T* g = params[i].mutable_grad().data();
    ASSERT_EQ(params[i].mutable_grad().size(), params[i].size());
    for (std::size_t j = 0; j < params[i].size(); ++j) {
      const double expected = (i == 2 ? without_last : sum_sq) * double(j % 97);
      if (double(g[j]) != expected && wrong++ < 5)
        ADD_FAILURE() << "parameter " << i << " element " << j << ": " << g[j] << ", expected " << expected;
    }
  }
  EXPECT_EQ(wrong, 0u);
}

TYPED_TEST(RanksGradients, BroadcastGivesEveryRankRootsValuesExactly) {
  using T = TypeParam;
  const int r = dist::rank(), n = dist::world_size();
  ASSERT_GE(n, 2);
  const int root = n - 1;
  std::vector<Var<T>> params{param<T>(xt::zeros<T>({2, 3})), param<T>(xt::zeros<T>({kOneMessage<T> + 7}))};
  for (auto& p : params) {
    T* v = p.mutable_value().data();
    for (std::size_t j = 0; j < p.size(); ++j) v[j] = T(r) + T(j % 1000) / T(1024);
  }
  dist::broadcast_parameters(params, root);
  for (const auto& p : params) {
    const T* v = p.value().data();
    std::size_t wrong = 0;
    for (std::size_t j = 0; j < p.size(); ++j) wrong += v[j] != T(root) + T(j % 1000) / T(1024);
    EXPECT_EQ(wrong, 0u) << "rank " << r;
  }
  EXPECT_TRUE(identical_on_every_rank(params));
}

// ---------------------------------------------------------------- errors on every rank

TEST(RanksErrors, BroadcastShapeMismatchIsAShapeErrorOnEveryRankAndChangesNothing) {
  const int r = dist::rank();
  ASSERT_GE(dist::world_size(), 2);
  // Rank 1's second parameter is (3, 5) where rank 0's is (3, 4).
  const std::size_t columns = r == 1 ? 5 : 4;
  std::vector<Var<double>> params{param<double>(xt::ones<double>({2})), param<double>(xt::zeros<double>(std::vector<std::size_t>{3, columns}))};
  params[0].mutable_value() *= double(r + 1);
  const std::string msg = message_of<ShapeError>([&] { dist::broadcast_parameters(params); });
  EXPECT_TRUE(contains(msg, "broadcast_parameters: parameter 1 has shape (3, 4) on rank 0 but (3, 5) on rank 1"))
      << "rank " << r << ": " << msg;
  EXPECT_EQ(params[0].value()(0), double(r + 1)) << "a value changed before the error";
}

TEST(RanksErrors, GradientListsOfDifferentLengthsAreAShapeErrorOnEveryRank) {
  const int r = dist::rank();
  ASSERT_GE(dist::world_size(), 2);
  std::vector<Var<double>> params{param<double>(xt::ones<double>({4}))};
  if (r == 1) params.push_back(param<double>(xt::ones<double>({2, 2})));
  params[0].mutable_grad().fill(double(r + 1));
  const std::string msg = message_of<ShapeError>([&] { dist::all_reduce_gradients(params, 1.0); });
  EXPECT_TRUE(contains(msg, "all_reduce_gradients: rank 1 has 2 parameters but rank 0 has 1"))
      << "rank " << r << ": " << msg;
  EXPECT_EQ(params[0].grad()(0), double(r + 1)) << "a gradient changed before the error";
}

TEST(RanksErrors, BroadcastFromARankOutsideTheJobIsAValueError) {
  std::vector<Var<double>> params{param<double>(xt::ones<double>({2}))};
  const std::string msg =
      message_of<ValueError>([&] { dist::broadcast_parameters(params, dist::world_size()); });
  EXPECT_TRUE(contains(msg, "root " + std::to_string(dist::world_size()) + " is not a rank of this job of " +
                                std::to_string(dist::world_size())))
      << msg;
}

TEST(RanksErrors, ASecondSessionIsAnError) {
  const std::string msg = message_of<Error>([] { dist::Session again; });
  EXPECT_TRUE(contains(msg, "a session is already alive")) << msg;
  // The first session still works.
  EXPECT_EQ(dist::all_reduce_sum(1.0), double(dist::world_size()));
}

TEST(RanksErrors, ANonFiniteWeightOrANonParameterIsAnErrorBeforeAnyExchange) {
  std::vector<Var<double>> params{param<double>(xt::ones<double>({2}))};
  EXPECT_TRUE(contains(message_of<ValueError>([&] { dist::all_reduce_gradients(params, std::nan("")); }),
                       "weight must be finite, not nan"));
  std::vector<Var<double>> mixed{param<double>(xt::ones<double>({2})), constant<double>(xt::ones<double>({2}))};
  EXPECT_TRUE(contains(message_of<ValueError>([&] { dist::all_reduce_gradients(mixed, 1.0); }),
                       "all_reduce_gradients: element 1 of the list is not a parameter"));
  EXPECT_TRUE(contains(message_of<ValueError>([&] { dist::broadcast_parameters(mixed); }),
                       "broadcast_parameters: element 1 of the list is not a parameter"));
  // Every rank threw before exchanging anything: the collectives are still in step.
  EXPECT_EQ(dist::all_reduce_sum(2.0), 2.0 * dist::world_size());
}

// ---------------------------------------------------------------- training

constexpr std::size_t kVocab = 11;

// A recurrent layer over one-hot characters and a linear head to the next character.
template <class Layer>
struct Model {
  Layer rnn;
  nn::Linear<double> head;
  template <class Options>
  Model(std::size_t hidden, const Options& options)
      : rnn(kVocab, hidden, options), head(hidden * (options.bidirectional() ? 2 : 1), kVocab) {}
  std::vector<Var<double>> parameters() const {
    auto p = rnn.parameters();
    for (const auto& h : head.parameters()) p.push_back(h);
    return p;
  }
  // Mean cross-entropy over the batch's real positions (targets at padding are −1, ignored).
  Var<double> loss(const data::PaddedBatch& inputs, const data::PaddedBatch& targets) const {
    Var<double> out = rnn.forward_onehot(inputs.ids, inputs.steps, {}, inputs.lengths).output;  // (T, m, H)
    return cross_entropy(head(out), targets.ids, CrossEntropyOptions().ignore_index(-1));
  }
};

struct Batch {
  data::PaddedBatch inputs, targets;
  double tokens() const {
    double n = 0;
    for (int len : inputs.lengths) n += len;
    return n;
  }
};

// B sequences of random lengths in [2, T], the same on every rank (fixed seed).
std::vector<Batch> make_batches(std::size_t count, std::size_t B, std::size_t T, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> id(0, int(kVocab) - 1), len(2, int(T));
  std::vector<Batch> out;
  for (std::size_t k = 0; k < count; ++k) {
    std::vector<std::vector<int>> in(B), tg(B);
    for (std::size_t b = 0; b < B; ++b) {
      const int n = len(gen);
      for (int t = 0; t <= n; ++t) in[b].push_back(id(gen));
      tg[b].assign(in[b].begin() + 1, in[b].end());
      in[b].pop_back();
    }
    out.push_back({data::pad_batch(in), data::pad_batch(tg, -1)});
  }
  return out;
}

constexpr double kClip = 0.15;  // clipping acts on about half of the steps

// One step of the data-parallel recipe on this rank's share; returns the clipped norm.
template <class M>
double distributed_step(const M& model, optim::Adam<double>& opt, const Batch& whole) {
  const Batch mine{data::shard_of(whole.inputs, dist::rank(), dist::world_size()),
                   data::shard_of(whole.targets, dist::rank(), dist::world_size())};
  opt.zero_grad();
  model.loss(mine.inputs, mine.targets).backward();  // mean over this rank's n_r tokens
  const double n_r = mine.tokens();
  dist::all_reduce_gradients(model.parameters(), n_r / dist::all_reduce_sum(n_r));
  const double norm = optim::clip_grad_norm(model.parameters(), kClip);
  opt.step();
  clear_tape();
  return norm;
}

// The same step by one process on the whole batch, without dist.
template <class M>
double whole_batch_step(const M& model, optim::Adam<double>& opt, const Batch& whole) {
  opt.zero_grad();
  model.loss(whole.inputs, whole.targets).backward();
  const double norm = optim::clip_grad_norm(model.parameters(), kClip);
  opt.step();
  clear_tape();
  return norm;
}

// N ranks on shares of B = 7 sequences of unequal lengths (so unequal token counts) against one
// process on the whole batch: the same parameters to 1e-10 after every step, and bit for bit
// the same on every rank.
template <class Layer, class Options>
void expect_distributed_equals_whole_batch(const Options& options) {
  ASSERT_GE(dist::world_size(), 2);
  const auto batches = make_batches(8, /*B=*/7, /*T=*/9, /*seed=*/41);
  nn::manual_seed(3);
  Model<Layer> reference(6, options);
  // A different seed on each rank: broadcast_parameters must make them rank 0's.
  nn::manual_seed(dist::rank() == 0 ? 3 : 100 + dist::rank());
  Model<Layer> model(6, options);
  dist::broadcast_parameters(model.parameters());
  ASSERT_EQ(max_abs_difference(model.parameters(), reference.parameters()), 0.0);
  optim::Adam<double> opt(model.parameters(), 2e-2), ref_opt(reference.parameters(), 2e-2);

  int clipped = 0;
  for (std::size_t k = 0; k < batches.size(); ++k) {
    const double norm = distributed_step(model, opt, batches[k]);
    const double ref_norm = whole_batch_step(reference, ref_opt, batches[k]);
    clipped += ref_norm > kClip;
    EXPECT_NEAR(norm, ref_norm, 1e-10 * std::max(1.0, ref_norm)) << "step " << k;
    const double d = max_over_ranks(max_abs_difference(model.parameters(), reference.parameters()));
    g_largest_difference = std::max(g_largest_difference, d);
    EXPECT_LE(d, 1e-10) << "step " << k;
    EXPECT_TRUE(identical_on_every_rank(model.parameters())) << "step " << k;
  }
  EXPECT_GT(clipped, 0) << "no step was clipped: the test does not exercise clipping";
}

TEST(RanksTraining, TokenCountsDifferBetweenRanks) {
  ASSERT_GE(dist::world_size(), 2);
  const auto batches = make_batches(8, 7, 9, 41);
  bool some_differ = false;
  for (const auto& b : batches) {
    const double mine = Batch{data::shard_of(b.inputs, dist::rank(), dist::world_size()), {}}.tokens();
    const double lo = -max_over_ranks(-mine), hi = max_over_ranks(mine);
    some_differ = some_differ || lo != hi;
    EXPECT_EQ(dist::all_reduce_sum(mine), b.tokens());
  }
  EXPECT_TRUE(some_differ) << "every rank got the same number of tokens: the weights are not exercised";
}

TEST(RanksTraining, TwoLayerLSTMEqualsWholeBatchTraining) {
  expect_distributed_equals_whole_batch<nn::LSTM<double>>(nn::LSTMOptions().layers(2));
}

TEST(RanksTraining, BidirectionalGRUEqualsWholeBatchTraining) {
  expect_distributed_equals_whole_batch<nn::GRU<double>>(nn::GRUOptions().bidirectional(true));
}

// ---------------------------------------------------------------- one process, no mpirun

TEST(OneProcess, ItIsRankZeroOfOne) {
  EXPECT_EQ(dist::rank(), 0);
  EXPECT_EQ(dist::world_size(), 1);
  EXPECT_EQ(dist::all_reduce_sum(2.5), 2.5);
  dist::barrier();
}

// The data-parallel recipe in one process is bit for bit training without dist.
TEST(OneProcess, TrainsExactlyAsWithoutDist) {
  ASSERT_EQ(dist::world_size(), 1);
  const auto batches = make_batches(5, 7, 9, 43);
  nn::manual_seed(5);
  Model<nn::LSTM<double>> model(6, nn::LSTMOptions());
  nn::manual_seed(5);
  Model<nn::LSTM<double>> plain(6, nn::LSTMOptions());
  dist::broadcast_parameters(model.parameters());
  optim::Adam<double> opt(model.parameters(), 2e-2), plain_opt(plain.parameters(), 2e-2);
  for (const auto& b : batches) {
    EXPECT_EQ(distributed_step(model, opt, b), whole_batch_step(plain, plain_opt, b));
    EXPECT_EQ(max_abs_difference(model.parameters(), plain.parameters()), 0.0);
  }
  // A weight other than 1 scales the gradient, as the sum over one rank does.
  std::vector<Var<float>> p{param<float>(xt::zeros<float>({3}))};
  p[0].mutable_grad() = Array<float>{1.0f, -2.0f, 4.0f};
  dist::all_reduce_gradients(p, 0.25);
  EXPECT_EQ(p[0].grad(), (Array<float>{0.25f, -0.5f, 1.0f}));
}

// Prints failures only, prefixed with the rank, so that the ranks other than 0 stay quiet.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "rank %d: %s:%d: %s\n", dist::rank(), r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }
};

}  // namespace

int main(int argc, char** argv) {
  dist::Session session(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (dist::rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter);
  }
  const int failed = RUN_ALL_TESTS() != 0;
  const double failures = dist::all_reduce_sum(failed);
  if (dist::rank() == 0) {
    if (g_largest_difference > 0 || dist::world_size() > 1)
      std::printf("largest difference from whole-batch training over %d ranks: %.3g\n", dist::world_size(),
                  g_largest_difference);
    if (failures > 0) std::printf("%g of %d ranks failed\n", failures, dist::world_size());
  }
  return failures > 0 ? 1 : 0;
}
