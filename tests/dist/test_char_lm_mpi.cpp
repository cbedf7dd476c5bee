// char_lm under `mpirun -np 2`: the B streams split over two ranks must train the model one
// process trains with the same options (in double to 1e-10, in float to float rounding), with
// B not divisible by the ranks, across a resume with another number of ranks, with rank 0 alone
// printing; a bad checkpoint must end both ranks with the message, not hang. The runs' models
// are compared through every tensor their checkpoints hold: the parameters, Adam's moments, the
// carried state of all B streams and the loss curves.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::string kCharLm = XGRAD_CHAR_LM, kMpirun = XGRAD_MPIEXEC;

fs::path scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("xgrad_char_lm_mpi_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}
std::string path(const std::string& name) { return (scratch() / name).string(); }

std::string slurp(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Outcome {
  int status = -1;
  std::string out, err;
};

// char_lm alone (ranks 0) or under mpirun with `ranks` ranks; a hang ends after two minutes.
Outcome run(int ranks, const std::string& args) {
  // Containers often run as root, which mpirun refuses unless told (kept if already set).
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  const std::string launcher =
      ranks == 0 ? kCharLm : kMpirun + " --oversubscribe -np " + std::to_string(ranks) + " " + kCharLm;
  const std::string cmd = "timeout 120 " + launcher + " " + args + " > " + path("out") + " 2> " + path("err");
  const int raw = std::system(cmd.c_str());
  Outcome o;
  o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  o.out = slurp(path("out"));
  o.err = slurp(path("err"));
  return o;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every tensor record of a checkpoint (io/checkpoint.hpp's format, version 1) by name, its
// elements widened to double.
std::map<std::string, std::vector<double>> tensors(const std::string& file) {
  const std::string bytes = slurp(file);
  if (bytes.size() < 40 || bytes.compare(0, 8, "XGRADCKP") != 0) throw std::runtime_error(file + ": not a checkpoint");
  std::size_t at = 32;
  auto take = [&](auto& v) {
    if (at + sizeof v > bytes.size()) throw std::runtime_error(file + ": truncated");
    std::memcpy(&v, bytes.data() + at, sizeof v);
    at += sizeof v;
  };
  std::uint64_t records = 0;
  take(records);
  std::map<std::string, std::vector<double>> out;
  for (std::uint64_t r = 0; r < records; ++r) {
    std::uint32_t name_length = 0;
    take(name_length);
    const std::string name = bytes.substr(at, name_length);
    at += name_length;
    std::uint8_t type = 0;
    take(type);
    if (type == 1 || type == 2) {
      std::uint32_t ndim = 0;
      take(ndim);
      std::uint64_t n = 1;
      for (std::uint32_t d = 0; d < ndim; ++d) {
        std::uint64_t dim = 0;
        take(dim);
        n *= dim;
      }
      std::vector<double>& v = out[name];
      for (std::uint64_t i = 0; i < n; ++i) {
        if (type == 1) {
          float x = 0;
          take(x);
          v.push_back(x);
        } else {
          double x = 0;
          take(x);
          v.push_back(x);
        }
      }
    } else if (type == 3 || type == 4) {
      at += 8;
    } else if (type == 5) {
      std::uint64_t length = 0;
      take(length);
      at += length;
    } else {
      throw std::runtime_error(file + ": record '" + name + "' of unknown type " + std::to_string(type));
    }
  }
  return out;
}

// The largest difference between the two checkpoints' tensors but the loss curves (a resumed
// run's has a point where it resumed): they must have the same names and sizes; `what` names the
// comparison in the messages.
double largest_difference(const std::string& a, const std::string& b, const std::string& what) {
  auto ta = tensors(a), tb = tensors(b);
  for (auto* t : {&ta, &tb})
    for (auto it = t->begin(); it != t->end();) it = it->first.rfind("extra/curve.", 0) == 0 ? t->erase(it) : ++it;
  EXPECT_EQ(ta.size(), tb.size()) << what;
  EXPECT_TRUE(ta.count("extra/state.0.a")) << what << ": no carried state in " << a;
  EXPECT_GT(std::count_if(ta.begin(), ta.end(), [](const auto& t) { return t.first.rfind("param/", 0) == 0; }), 2)
      << what << ": no parameters in " << a;
  double worst = 0;
  for (const auto& [name, va] : ta) {
    auto it = tb.find(name);
    if (it == tb.end()) {
      ADD_FAILURE() << what << ": " << name << " missing from " << b;
      continue;
    }
    EXPECT_EQ(va.size(), it->second.size()) << what << ": " << name;
    for (std::size_t i = 0; i < std::min(va.size(), it->second.size()); ++i)
      worst = std::max(worst, std::abs(va[i] - it->second[i]));
  }
  std::printf("%s: largest difference %.3g over %zu tensors\n", what.c_str(), worst, ta.size());
  return worst;
}

class CharLmMpi : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ofstream out(path("text.txt"));
    const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from", "home"};
    std::uint64_t x = 12345;
    for (int i = 0; i < 6000; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      out << words[(x >> 33) % 13] << ((x >> 20) % 9 == 0 ? ".\n" : " ");
    }
  }
  // B = 5 over 2 ranks: shares of 3 and 2 streams.
  const std::string common = "--data " + path("text.txt") + " --hidden 16 --batch 5 --seq-len 16 --eval-every 4 "
                             "--lr 0.01 --clip 1";
};

TEST_F(CharLmMpi, TwoRanksTrainTheOneProcessModelInDouble) {
  for (const std::string model : {"--cell lstm", "--cell gru --layers 2 --embed 8"}) {
    const std::string args = common + " " + model + " --dtype double --steps 10";
    const Outcome one = run(0, args + " --checkpoint " + path("one.ckpt"));
    ASSERT_EQ(one.status, 0) << one.err;
    const Outcome two = run(2, args + " --checkpoint " + path("two.ckpt"));
    ASSERT_EQ(two.status, 0) << two.err;
    EXPECT_LT(largest_difference(path("one.ckpt"), path("two.ckpt"), "double, " + model + ", 1 vs 2 ranks"), 1e-10);
    // Rank 0 alone prints: one data line, one final line, the same figures as one process.
    EXPECT_EQ(count(two.out, "data: "), 1u) << two.out;
    EXPECT_EQ(count(two.out, "held-out: "), 1u) << two.out;
    EXPECT_EQ(count(two.out, "data-parallel: 2 ranks of 2 or 3 streams"), 1u) << two.out;
    EXPECT_EQ(one.out.substr(one.out.rfind("held-out: ")), two.out.substr(two.out.rfind("held-out: ")));
    EXPECT_EQ(count(two.err, "step 10/10"), count(one.err, "step 10/10")) << two.err;
  }
}

TEST_F(CharLmMpi, TwoRanksTrainTheOneProcessModelToFloatRounding) {
  const std::string args = common + " --steps 10";
  ASSERT_EQ(run(0, args + " --checkpoint " + path("one.ckpt")).status, 0);
  const Outcome two = run(2, args + " --checkpoint " + path("two.ckpt"));
  ASSERT_EQ(two.status, 0) << two.err;
  // Rounding of float sums taken in another order, carried through 10 Adam steps of lr 0.01.
  EXPECT_LT(largest_difference(path("one.ckpt"), path("two.ckpt"), "float, 1 vs 2 ranks"), 1e-5);
}

TEST_F(CharLmMpi, ResumesWithAnotherNumberOfRanks) {
  const std::string args = common + " --dtype double";
  ASSERT_EQ(run(0, args + " --steps 10 --checkpoint " + path("straight.ckpt")).status, 0);

  ASSERT_EQ(run(0, args + " --steps 6 --checkpoint " + path("half1.ckpt")).status, 0);
  const Outcome on_two = run(2, "--data " + path("text.txt") + " --steps 10 --resume " + path("half1.ckpt") +
                                    " --checkpoint " + path("from1.ckpt"));
  ASSERT_EQ(on_two.status, 0) << on_two.err;
  EXPECT_EQ(count(on_two.out, "resumed from"), 1u) << on_two.out;
  EXPECT_LT(largest_difference(path("straight.ckpt"), path("from1.ckpt"), "1 process, then 2 ranks"), 1e-10);

  ASSERT_EQ(run(2, args + " --steps 6 --checkpoint " + path("half2.ckpt")).status, 0);
  const Outcome on_one = run(0, "--data " + path("text.txt") + " --steps 10 --resume " + path("half2.ckpt") +
                                    " --checkpoint " + path("from2.ckpt"));
  ASSERT_EQ(on_one.status, 0) << on_one.err;
  EXPECT_LT(largest_difference(path("straight.ckpt"), path("from2.ckpt"), "2 ranks, then 1 process"), 1e-10);
}

TEST_F(CharLmMpi, ABadCheckpointEndsEveryRankWithTheMessage) {
  {
    std::ofstream bad(path("bad.ckpt"), std::ios::binary);
    bad << "XGRADCKP and then nothing that fits";
  }
  const Outcome r = run(2, common + " --steps 4 --resume " + path("bad.ckpt"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.status, 124) << "the job hung: " << r.err;  // timeout's status
  EXPECT_NE(r.err.find("char_lm: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path("bad.ckpt")), std::string::npos) << r.err;
  EXPECT_EQ(count(r.out, "held-out: "), 0u) << r.out;
}

TEST_F(CharLmMpi, MoreRanksThanStreamsIsAnError) {
  const Outcome r = run(2, "--data " + path("text.txt") + " --hidden 8 --batch 1 --seq-len 8 --steps 2");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.status, 124) << "the job hung: " << r.err;
  EXPECT_NE(r.err.find("--batch 1 gives fewer streams than the 2 ranks"), std::string::npos) << r.err;
}

}  // namespace
