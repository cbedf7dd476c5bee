// Checkpoints: round trip, exact resume of training, and every way a file can be bad or a
// save can fail, each leaving the model, the optimizer and the previous file unchanged.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

#include "tiny_rnn.hpp"

using namespace xgrad;
using xgrad_test::TinyRNN;
namespace fs = std::filesystem;

namespace {

using xgrad::testing::contains;
using xgrad::testing::message_of;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

template <class T>
std::vector<Array<T>> values_of(const nn::Module<T>& m) {
  std::vector<Array<T>> v;
  for (const auto& p : m.parameters()) v.push_back(p.value());
  return v;
}

constexpr std::size_t kVocab = 5, kHidden = 8, kBatch = 3, kSteps = 6;

// One training loop with everything a real run carries: a hidden state across segments,
// a batcher position, a schedule, clipping, and random input dropout from nn::generator().
template <class T>
struct TrainingRun {
  TinyRNN<T> model{kVocab, kHidden};
  optim::Adam<T> opt{model.parameters(), 0.01, optim::AdamOptions().amsgrad(true)};
  optim::Scheduler<T> sched{opt, optim::warmup(optim::cosine_lr(0.02, 30), 5)};
  data::StreamBatcher batches{xgrad_test::tiny_corpus(200, kVocab), kBatch, kSteps};
  Var<T> a = model.zero_state(kBatch);

  void train(int steps) {
    for (int s = 0; s < steps; ++s) {
      if (batches.index() == 0) a = model.zero_state(kBatch);
      clear_tape();
      opt.zero_grad();
      sched.step();
      auto loss = model.loss(batches.next(), a, 0.2);
      loss.backward();
      a = a.detach();
      optim::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
    }
    clear_tape();
  }
  // Everything beyond the model and optimizer that the loop carries.
  CheckpointExtra extra() const {
    return {{"position", std::int64_t(batches.position())}, {"a", a.value()}, {"note", std::string("run 1")},
            {"pi", 3.25}};
  }
  void restore(const CheckpointExtra& e) {
    batches.seek(std::uint64_t(std::get<std::int64_t>(e.at("position"))));
    a = constant(std::get<Array<T>>(e.at("a")));
  }
};

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_tape();
    dir_ = fs::path(XGRAD_BINARY_DIR) / "test_checkpoint_tmp" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    clear_tape();
    ::chmod(dir_.c_str(), 0755);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(CheckpointTest, ParametersRoundTrip) {
  nn::manual_seed(1);
  TinyRNN<float> a(kVocab, kHidden);
  save(a, path("m.ckpt"), {{"vocab", std::string("abcde")}});
  nn::manual_seed(2);
  TinyRNN<float> b(kVocab, kHidden);
  EXPECT_NE(values_of(a)[0], values_of(b)[0]);
  auto extra = load(b, path("m.ckpt"));
  const auto va = values_of(a), vb = values_of(b);
  for (std::size_t i = 0; i < va.size(); ++i) EXPECT_EQ(va[i], vb[i]);
  EXPECT_EQ(std::get<std::string>(extra.at("vocab")), "abcde");
  EXPECT_EQ(std::get<std::string>(load_extra(path("m.ckpt")).at("vocab")), "abcde");
  EXPECT_FALSE(fs::exists(path("m.ckpt.tmp")));
}

TEST_F(CheckpointTest, ResumedTrainingMatchesAnUninterruptedRunExactly) {
  nn::manual_seed(42);
  TrainingRun<double> straight;
  straight.train(20);
  std::ostringstream rng_straight;
  rng_straight << nn::generator();

  nn::manual_seed(42);
  auto first = std::make_unique<TrainingRun<double>>();
  first->train(10);
  ASSERT_NE(first->batches.index(), 0u);  // mid-epoch: the hidden state must come back too
  save(first->model, first->opt, path("run.ckpt"), first->extra());
  first.reset();

  // A fresh, process-like state: other initial weights, another generator state, batcher at 0.
  nn::manual_seed(999);
  TrainingRun<double> resumed;
  const auto extra = load(resumed.model, resumed.opt, path("run.ckpt"));
  resumed.restore(extra);
  EXPECT_EQ(resumed.opt.step_count(), 10);
  EXPECT_EQ(std::get<std::string>(extra.at("note")), "run 1");
  EXPECT_EQ(std::get<double>(extra.at("pi")), 3.25);
  resumed.train(10);

  const auto want = values_of(straight.model), got = values_of(resumed.model);
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(want[i], got[i]) << "parameter " << i;
  const auto sw = straight.opt.state(), sg = resumed.opt.state();
  for (std::size_t i = 0; i < sw.arrays.size(); ++i) EXPECT_EQ(sw.arrays[i].second, sg.arrays[i].second);
  EXPECT_EQ(straight.opt.lr(), resumed.opt.lr());
  std::ostringstream rng_resumed;
  rng_resumed << nn::generator();
  EXPECT_EQ(rng_straight.str(), rng_resumed.str());
}

}  // namespace

namespace {

// A model with other parameter names than TinyRNN.
template <class T>
struct OtherNames : nn::Module<T> {
  OtherNames() {
    this->register_parameter("Wax", xt::ones<T>({kHidden, kVocab}));
    this->register_parameter("gain", xt::ones<T>({kHidden}));
  }
};

// A saved training checkpoint, the bytes of that file, and a model and optimizer whose
// values the bad loads must leave unchanged.
class BadCheckpointTest : public CheckpointTest {
 protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    nn::manual_seed(3);
    run_ = std::make_unique<TrainingRun<double>>();
    run_->train(3);
    good_ = path("good.ckpt");
    save(run_->model, run_->opt, good_, run_->extra());
    good_bytes_ = read_bytes(good_);
    values_ = values_of(run_->model);
    state_ = run_->opt.state();
    snapshot_generator();
  }
  // Building another model draws its initial weights from the generator: snapshot again.
  void snapshot_generator() {
    rng_.str("");
    rng_ << nn::generator();
  }

  // Loads `bytes` (written to bad.ckpt) into the run; expects a CheckpointError whose message
  // holds every word of `words`, and checks that nothing changed.
  void expect_rejected(const std::string& file, const std::vector<std::string>& words, bool with_optimizer = true) {
    const std::string msg = message_of<CheckpointError>([&] {
      if (with_optimizer)
        load(run_->model, run_->opt, file);
      else
        load(run_->model, file);
    });
    for (const auto& w : words) EXPECT_TRUE(contains(msg, w)) << "'" << w << "' not in: " << msg;
    EXPECT_TRUE(contains(msg, file)) << msg;
    expect_unchanged();
  }
  void expect_bytes_rejected(const std::string& bytes, const std::vector<std::string>& words) {
    write_bytes(path("bad.ckpt"), bytes);
    expect_rejected(path("bad.ckpt"), words);
  }
  void expect_unchanged() {
    const auto now = values_of(run_->model);
    for (std::size_t i = 0; i < now.size(); ++i) EXPECT_EQ(now[i], values_[i]) << "parameter " << i << " changed";
    const auto s = run_->opt.state();
    EXPECT_EQ(s.step, state_.step);
    EXPECT_EQ(s.lr, state_.lr);
    for (std::size_t i = 0; i < s.arrays.size(); ++i) EXPECT_EQ(s.arrays[i].second, state_.arrays[i].second);
    std::ostringstream rng;
    rng << nn::generator();
    EXPECT_TRUE(rng.str() == rng_.str()) << "the generator changed";
    EXPECT_EQ(read_bytes(good_), good_bytes_) << "the previous checkpoint changed";
  }

  std::unique_ptr<TrainingRun<double>> run_;
  std::string good_, good_bytes_;
  std::vector<Array<double>> values_;
  optim::OptimizerState<double> state_;
  std::ostringstream rng_;
};

TEST_F(BadCheckpointTest, TruncatedFile) {
  expect_bytes_rejected(good_bytes_.substr(0, good_bytes_.size() - 7), {"truncated", "payload bytes"});
  expect_bytes_rejected(good_bytes_.substr(0, 20), {"truncated", "20 bytes", "header"});
  expect_bytes_rejected("", {"truncated", "0 bytes"});
}

TEST_F(BadCheckpointTest, FlippedByte) {
  for (std::size_t at : {std::size_t(40), good_bytes_.size() / 2, good_bytes_.size() - 1}) {
    std::string bytes = good_bytes_;
    bytes[at] = char(bytes[at] ^ 0x10);
    expect_bytes_rejected(bytes, {"checksum mismatch", "corrupt"});
  }
  std::string bytes = good_bytes_;
  bytes[2] = 'x';
  expect_bytes_rejected(bytes, {"not an xgrad checkpoint"});
}

TEST_F(BadCheckpointTest, FutureVersion) {
  std::string bytes = good_bytes_;
  const std::uint32_t v = kCheckpointVersion + 1;
  std::memcpy(&bytes[8], &v, 4);
  expect_bytes_rejected(bytes, {"version 2", "newer", "(1)"});
}

TEST_F(BadCheckpointTest, OtherModelsNames) {
  OtherNames<double> other;
  save(other, path("other.ckpt"));
  expect_rejected(path("other.ckpt"), {"does not fit the model", "missing from the file: 'Waa', 'ba', 'Wya', 'by'",
                                       "not in the model: 'gain'"},
                  false);
}

TEST_F(BadCheckpointTest, OtherModelsShapes) {
  TinyRNN<double> bigger(kVocab, kHidden + 1);
  snapshot_generator();
  save(bigger, path("bigger.ckpt"));
  expect_rejected(path("bigger.ckpt"), {"parameter 'Wax'", "shape (9, 5) in the file", "(8, 5) in the model"}, false);
}

TEST_F(BadCheckpointTest, OtherElementType) {
  TinyRNN<float> single(kVocab, kHidden);
  snapshot_generator();
  save(single, path("float.ckpt"));
  expect_rejected(path("float.ckpt"), {"parameter 'Wax'", "element type float32 in the file", "model's is float64"},
                  false);
}

TEST_F(BadCheckpointTest, OtherOptimizerOrNone) {
  optim::SGD<double> sgd(run_->model.parameters(), 0.1, optim::SGDOptions().momentum(0.9));
  save(run_->model, sgd, path("sgd.ckpt"));
  expect_rejected(path("sgd.ckpt"), {"optimizer state is of SGD", "the optimizer is Adam"});
  save(run_->model, path("params_only.ckpt"));
  expect_rejected(path("params_only.ckpt"), {"has no optimizer state", "optim/kind"});
}

TEST_F(BadCheckpointTest, MissingFileAndDirectory) {
  expect_rejected(path("nowhere.ckpt"), {"cannot open", "No such file"});
  expect_rejected(dir_.string(), {"is a directory"});
}

TEST_F(BadCheckpointTest, UnwritableDirectoryLeavesThePreviousCheckpoint) {
  // No such directory.
  auto msg = message_of<CheckpointError>([&] { save(run_->model, path("no/such/dir.ckpt")); });
  EXPECT_TRUE(contains(msg, "cannot create temporary file") && contains(msg, "No such file")) << msg;
  // A directory without write permission (root may write anyway, so only as another user).
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
    msg = message_of<CheckpointError>([&] { save(run_->model, run_->opt, good_); });
    EXPECT_TRUE(contains(msg, "cannot create temporary file") && contains(msg, "Permission denied")) << msg;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  }
  // The temporary file cannot be created (a directory stands in its place).
  fs::create_directory(good_ + ".tmp");
  msg = message_of<CheckpointError>([&] { save(run_->model, run_->opt, good_); });
  EXPECT_TRUE(contains(msg, good_) && contains(msg, "Is a directory")) << msg;
  fs::remove(good_ + ".tmp");
  expect_unchanged();
}

TEST_F(BadCheckpointTest, WriteFailingHalfwayLeavesThePreviousCheckpoint) {
  // The file-size limit makes write() fail with EFBIG after 1000 bytes.
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGXFSZ, &ignore, &old);
  rlimit saved{};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  rlimit small = saved;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  ASSERT_GT(good_bytes_.size(), 1000u);
  run_->train(1);  // the model now differs from the saved one
  const std::string msg = message_of<CheckpointError>([&] { save(run_->model, run_->opt, good_); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &old, nullptr);
  EXPECT_TRUE(contains(msg, "writing") && contains(msg, "failed after 1000 of") && contains(msg, "unchanged")) << msg;
  EXPECT_EQ(read_bytes(good_), good_bytes_);
  EXPECT_FALSE(fs::exists(good_ + ".tmp"));
  // The previous checkpoint still loads.
  load(run_->model, run_->opt, good_);
  EXPECT_EQ(values_of(run_->model)[0], values_[0]);
}

TEST_F(BadCheckpointTest, AGoodFileStillLoadsAfterwards) {
  run_->train(2);
  load(run_->model, run_->opt, good_);
  expect_unchanged();  // back to the saved values
}

}  // namespace
