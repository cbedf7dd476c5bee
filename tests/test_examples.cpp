// Runs the minimal, char_lm, classify and seq2seq examples with tiny budgets on tiny data written here, so
// they cannot rot: the last line's `name: value` form, the loss curve files, checkpoint + resume
// (a resumed run ends exactly where an uninterrupted one does), sampling, and every bad-input path
// (message and exit status: 2 for a bad command line, 1 for bad data or a checkpoint that does not fit).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

namespace fs = std::filesystem;

namespace {

using xgrad::testing::Outcome;

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << bytes;
}

// A directory of its own for the test's files, removed afterwards.
class Examples : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("xgrad_examples_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs build/examples/<program> with args (a shell word list), stdout and stderr apart.
  Outcome run(const std::string& program, const std::string& args) const {
    const std::string err_file = path("stderr.txt");
    Outcome r = xgrad::testing::run_command(std::string(XGRAD_BINARY_DIR) + "/examples/" + program + " " + args +
                                            " 2>" + err_file);
    r.err = read_file(err_file);
    return r;
  }

  // A small text: sentences over a fixed word list, ASCII.
  std::string tiny_text() const {
    const char* words[] = {"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "cat", "sings"};
    std::string text;
    unsigned x = 12345;
    for (int line = 0; line < 200; ++line) {
      for (int w = 0; w < 7; ++w) {
        x = x * 1103515245u + 12345u;
        text += std::string(w ? " " : "") + words[(x >> 16) % 12];
      }
      text += ".\n";
    }
    return text;
  }

  // A split file of three "languages" with disjoint alphabets (one of them non-ASCII).
  std::string tiny_split() const {
    const std::vector<std::pair<std::string, std::vector<std::string>>> langs = {
        {"alpha", {"a", "b", "c", "d", "e"}}, {"beta", {"k", "l", "m", "n", "o"}}, {"gamma", {"\xc3\xa4", "\xc3\xb6", "x", "y", "z"}}};
    std::string s;
    unsigned x = 777;
    for (const auto& [split, n] : std::vector<std::pair<std::string, int>>{{"train", 40}, {"validation", 8}, {"test", 10}})
      for (const auto& [lang, letters] : langs)
        for (int i = 0; i < n; ++i) {
          x = x * 1103515245u + 12345u;
          std::string w;
          for (unsigned k = 0; k < 2 + (x >> 16) % 6; ++k) w += letters[(x >> (k + 3)) % 5];
          s += split + "\t" + lang + "\t" + w + "\n";
        }
    return s;
  }

  fs::path dir_;
};

// The value after "name: " in a line.
double value_of(const std::string& line, const std::string& name) {
  const auto at = line.find(name + ": ");
  if (at == std::string::npos) return NAN;
  return std::strtod(line.c_str() + at + name.size() + 2, nullptr);
}

void expect_curve_files(const std::string& dir, const std::string& name) {
  const std::string svg = read_file(fs::path(dir) / (name + ".svg"));
  const std::string csv = read_file(fs::path(dir) / (name + ".csv"));
  EXPECT_NE(svg.find("<svg"), std::string::npos) << dir;
  EXPECT_NE(svg.find("</svg>"), std::string::npos) << dir;
  EXPECT_EQ(csv.rfind("series,", 0), 0u) << csv.substr(0, 80);
  EXPECT_NE(csv.find("\ntrain,"), std::string::npos) << csv.substr(0, 200);
}

// ---- minimal: the README's first program

TEST_F(Examples, MinimalTrainsWithAFallingLoss) {
  const Outcome r = run("minimal", "");
  ASSERT_EQ(r.status, 0) << r.all();
  std::smatch first, last;
  const std::string out = r.out, last_line = r.last_line();
  ASSERT_TRUE(std::regex_search(out, first, std::regex(R"(^step 0 loss (\d+\.\d{4})\n)"))) << out;
  ASSERT_TRUE(std::regex_match(last_line, last, std::regex(R"(step 80 loss (\d+\.\d{4}))"))) << out;
  EXPECT_LT(std::stod(last[1]), 0.5 * std::stod(first[1])) << out;
}

TEST(Readme, FirstProgramIsExamplesMinimalByteForByte) {
  const std::string readme = read_file(fs::path(XGRAD_SOURCE_DIR) / "README.md");
  const std::string heading = "## A first program\n", open = "```cpp\n", close = "\n```\n";
  const auto at = readme.find(heading);
  ASSERT_NE(at, std::string::npos) << "README.md has no section \"A first program\"";
  const auto begin = readme.find(open, at);
  ASSERT_NE(begin, std::string::npos);
  const auto end = readme.find(close, begin + open.size());
  ASSERT_NE(end, std::string::npos);
  const std::string code = readme.substr(begin + open.size(), end + 1 - begin - open.size());
  EXPECT_EQ(code, read_file(fs::path(XGRAD_SOURCE_DIR) / "examples" / "minimal.cpp"))
      << "README.md's first program and examples/minimal.cpp differ: change both";
}

// ---- custom_cell: the tutorial's own cell and op, checked by finite differences, then trained

TEST_F(Examples, CustomCellPassesItsGradientCheckAndItsLossFalls) {
  const std::string tiny = "--hidden 8 --batch 16";
  const Outcome r = run("custom_cell", tiny + " --steps 60 --out " + path("curve"));
  ASSERT_EQ(r.status, 0) << r.all();
  const std::string last = r.last_line();
  EXPECT_TRUE(std::regex_match(last, std::regex(R"(gradcheck: passed, gradcheck error: \d\.\de-\d+, first loss: \d+\.\d{4}, )"
                                                R"(final loss: \d+\.\d{4}, test accuracy: [01]\.\d{4})")))
      << last;
  EXPECT_LT(value_of(last, "gradcheck error"), 1e-6) << last;
  EXPECT_NE(r.out.find("gradcheck of the model (double"), std::string::npos) << r.out;
  EXPECT_LT(value_of(last, "final loss"), 0.8 * value_of(last, "first loss")) << r.all();
  expect_curve_files(path("curve"), "custom_cell");
  // Checkpoint and resume end where the uninterrupted run does; a bad range exits with status 2.
  ASSERT_EQ(run("custom_cell", tiny + " --steps 30 --checkpoint " + path("c.ckpt")).status, 0);
  const Outcome resumed = run("custom_cell", tiny + " --steps 60 --resume " + path("c.ckpt"));
  ASSERT_EQ(resumed.status, 0) << resumed.all();
  EXPECT_EQ(resumed.last_line(), last);
  const Outcome bad = run("custom_cell", "--min-len 9 --max-len 4");
  EXPECT_EQ(bad.status, 2) << bad.all();
  EXPECT_NE(bad.err.find("--min-len 9 is above --max-len 4"), std::string::npos) << bad.err;
  const Outcome help = run("custom_cell", "--help");
  EXPECT_EQ(help.status, 0);
  for (const char* o : {"--help", "--seed", "--threads", "--checkpoint", "--resume", "--out", "--hidden", "--layers",
                        "--steps", "--batch", "--lr"})
    EXPECT_NE(help.out.find(std::string(o) + " "), std::string::npos) << o << "\n" << help.out;
}

// ---- char_lm

constexpr const char* kTinyLm = "--hidden 24 --batch 4 --seq-len 16 --eval-every 5 --save-every 5";

TEST_F(Examples, CharLmTrainsAndEndsWithHeldOutFigures) {
  write_file(path("text.txt"), tiny_text());
  const Outcome r = run("char_lm", "--data " + path("text.txt") + " --steps 12 " + kTinyLm + " --checkpoint " +
                                       path("lm.ckpt") + " --out " + path("curve"));
  ASSERT_EQ(r.status, 0) << r.all();
  const std::string last = r.last_line();
  EXPECT_TRUE(std::regex_match(last, std::regex(R"(held-out: \d+\.\d{4} nats/char, \d+\.\d{4} bits/char)"))) << last;
  const double nats = value_of(last, "held-out");
  EXPECT_GT(nats, 0.5);
  EXPECT_LT(nats, std::log(30.0));  // below a uniform guess over the text's symbols
  const double bits = std::strtod(last.c_str() + last.find(", ") + 2, nullptr);
  EXPECT_NEAR(bits, nats / std::log(2.0), 2e-4);
  EXPECT_NE(r.out.find("sample (temperature"), std::string::npos);
  EXPECT_NE(r.err.find("step 12/12"), std::string::npos) << r.err;  // the progress line
  EXPECT_TRUE(fs::exists(path("lm.ckpt")));
  expect_curve_files(path("curve"), "char_lm");
}

TEST_F(Examples, CharLmResumedRunEndsWhereAnUninterruptedOneDoes) {
  write_file(path("text.txt"), tiny_text());
  const std::string common = "--data " + path("text.txt") + " " + kTinyLm;
  const Outcome straight = run("char_lm", common + " --steps 14 --cell gru");
  ASSERT_EQ(straight.status, 0) << straight.all();
  const Outcome first = run("char_lm", common + " --steps 10 --cell gru --checkpoint " + path("a.ckpt"));
  ASSERT_EQ(first.status, 0) << first.all();
  const Outcome resumed = run("char_lm", common + " --steps 14 --resume " + path("a.ckpt"));
  ASSERT_EQ(resumed.status, 0) << resumed.all();
  EXPECT_NE(resumed.out.find("resumed from"), std::string::npos);
  EXPECT_NE(resumed.out.find("model: gru"), std::string::npos) << "the cell comes from the checkpoint";
  EXPECT_EQ(resumed.last_line(), straight.last_line());
  EXPECT_NE(first.last_line(), straight.last_line());
}

TEST_F(Examples, CharLmSamplesOnlyTheTextFromACheckpoint) {
  write_file(path("text.txt"), tiny_text());
  ASSERT_EQ(run("char_lm", "--data " + path("text.txt") + " --steps 6 " + kTinyLm + " --embed 8 --layers 2 --cell rnn "
                           "--checkpoint " + path("lm.ckpt")).status, 0);
  const Outcome s = run("char_lm", "--resume " + path("lm.ckpt") + " --sample 40 --temperature 0.7 --prime 'the '");
  ASSERT_EQ(s.status, 0) << s.all();
  EXPECT_EQ(s.out.rfind("the ", 0), 0u) << s.out;
  EXPECT_EQ(s.out.size(), 4u + 40u + 1u) << s.out;  // ASCII text: prime, 40 characters, a newline
  EXPECT_EQ(s.err, "");
  EXPECT_EQ(s.out.find("held-out"), std::string::npos);
  // The same seed gives the same text; another seed (almost surely) another.
  EXPECT_EQ(run("char_lm", "--resume " + path("lm.ckpt") + " --sample 40 --temperature 0.7 --prime 'the '").out, s.out);
  EXPECT_NE(run("char_lm", "--resume " + path("lm.ckpt") + " --sample 40 --temperature 0.7 --prime 'the ' --seed 9").out,
            s.out);
  // A prime with a character the model has never seen.
  const Outcome bad = run("char_lm", "--resume " + path("lm.ckpt") + " --sample 5 --prime 'Q'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("not in the model's vocabulary"), std::string::npos) << bad.err;
}

// --export writes the trained model under PyTorch's names: it loads back with
// load_safetensors(Names::pytorch) into the same model as the checkpoint holds, bit for bit, and
// a resumed run with no steps left exports the same file.
TEST_F(Examples, CharLmExportsSafetensorsWithPyTorchNames) {
  using namespace xgrad;
  write_file(path("text.txt"), tiny_text());
  const std::string common = "--data " + path("text.txt") + " " + kTinyLm + " --embed 8 --layers 2 --cell lstm";
  const Outcome r = run("char_lm", common + " --steps 6 --checkpoint " + path("lm.ckpt") + " --export " +
                                       path("lm.safetensors"));
  ASSERT_EQ(r.status, 0) << r.all();
  EXPECT_NE(r.out.find("exported: " + path("lm.safetensors")), std::string::npos) << r.out;
  EXPECT_EQ(r.last_line().rfind("held-out: ", 0), 0u) << r.last_line();

  const std::size_t V = data::Vocab::deserialize(std::get<std::string>(load_extra(path("lm.ckpt")).at("vocab"))).size();
  struct CharLm : nn::Module<float> {  // char_lm's model with its names
    nn::Embedding<float> embed;
    nn::LSTM<float> rnn;
    nn::Linear<float> head;
    explicit CharLm(std::size_t v) : embed(v, 8), rnn(8, 24, nn::LSTMOptions().layers(2)), head(24, v) {
      register_module("embed", embed);
      register_module("rnn", rnn);
      register_module("head", head);
    }
  };
  nn::manual_seed(1);
  CharLm from_ckpt(V);
  load(from_ckpt, path("lm.ckpt"));
  nn::manual_seed(2);
  CharLm from_export(V);
  load_safetensors(from_export, path("lm.safetensors"), Names::pytorch);
  const auto a = from_ckpt.parameters(), b = from_export.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(std::equal(a[i].value().begin(), a[i].value().end(), b[i].value().begin())) << "parameter " << i;
  // Under xgrad's names the file does not load: it holds PyTorch's.
  EXPECT_THROW(load_safetensors(from_export, path("lm.safetensors"), Names::xgrad), CheckpointError);

  const Outcome again = run("char_lm", common + " --steps 6 --resume " + path("lm.ckpt") + " --export " +
                                           path("again.safetensors"));
  ASSERT_EQ(again.status, 0) << again.all();
  EXPECT_EQ(read_file(path("again.safetensors")), read_file(path("lm.safetensors")));
}

// --grad-report FILE.svg: the gradient norm at every step of a held-out batch, for a 2-layer
// LSTM (a and c per layer), drawn to FILE.svg and written to FILE.csv, the last line unchanged.
TEST_F(Examples, CharLmGradReportWritesEveryStepsNorm) {
  write_file(path("text.txt"), tiny_text());
  const Outcome r = run("char_lm", "--data " + path("text.txt") + " --steps 4 --hidden 24 --batch 4 --seq-len 12 "
                                       "--eval-every 0 --layers 2 --cell lstm --grad-report " + path("grads.svg"));
  ASSERT_EQ(r.status, 0) << r.all();
  EXPECT_NE(r.out.find("grad report: " + path("grads.svg") + ", " + path("grads.csv")), std::string::npos) << r.out;
  EXPECT_EQ(r.last_line().rfind("held-out: ", 0), 0u) << r.last_line();
  const std::string svg = read_file(path("grads.svg"));
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("layer 1 memory cell c"), std::string::npos);
  std::istringstream csv(read_file(path("grads.csv")));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "series,t,norm");
  std::map<std::string, std::vector<int>> steps;  // series -> the steps it has, in order
  while (std::getline(csv, line)) {
    const std::size_t a = line.find(','), b = line.rfind(',');
    const double norm = std::strtod(line.c_str() + b + 1, nullptr);
    EXPECT_TRUE(std::isfinite(norm) && norm > 0) << line;
    steps[line.substr(0, a)].push_back(std::stoi(line.substr(a + 1, b - a - 1)));
  }
  ASSERT_EQ(steps.size(), 4u);  // 2 layers · (a, c)
  for (const auto& [series, ts] : steps) {
    ASSERT_EQ(ts.size(), 12u) << series;
    for (int t = 0; t < 12; ++t) EXPECT_EQ(ts[t], t + 1) << series;
  }
}

TEST_F(Examples, CharLmBadInputGivesAMessageAndNonZeroExit) {
  write_file(path("text.txt"), tiny_text());
  write_file(path("empty.txt"), "");
  write_file(path("bad.txt"), "good text\n\xff bad");
  struct Case {
    std::string args;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"--data " + path("missing.txt"), 1, "does not exist"},
      {"--data " + path("empty.txt"), 1, "empty"},
      {"--data " + path("bad.txt"), 1, "invalid UTF-8 at byte offset 10"},
      {"--hidden -5", 2, "--hidden"},
      {"--batch 0", 2, "--batch"},
      {"--lr 0", 2, "--lr"},
      {"--cell lstn", 2, "not one of"},
      {"--hiden 5", 2, "did you mean --hidden"},
      {"--steps", 2, "needs a value"},
      {"--sample 10", 2, "--resume"},
      {"--resume " + path("missing.ckpt") + " --sample 5 --temperature 0", 2, "--temperature"},
      {"--resume " + path("text.txt") + " --sample 5", 1, "not an xgrad checkpoint"},
      {"--data " + path("text.txt") + " --batch 4 --seq-len 4000", 1, "too short"},
  };
  for (const auto& c : cases) {
    const Outcome r = run("char_lm", c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.all();
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
  }
}

TEST_F(Examples, CheckpointOfAnotherCellOrModelIsRefused) {
  write_file(path("text.txt"), tiny_text());
  ASSERT_EQ(run("char_lm", "--data " + path("text.txt") + " --steps 3 " + kTinyLm + " --checkpoint " + path("lm.ckpt"))
                .status,
            0);
  Outcome r = run("char_lm", "--data " + path("text.txt") + " --steps 5 " + kTinyLm + " --cell gru --resume " +
                                 path("lm.ckpt"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--cell gru was given"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cell lstm"), std::string::npos) << r.err;
  r = run("char_lm", "--data " + path("text.txt") + " --steps 5 " + kTinyLm + " --hidden 32 --resume " + path("lm.ckpt"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("hidden"), std::string::npos) << r.err;
  r = run("classify", "--resume " + path("lm.ckpt"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("holds a char_lm model, not a classify model"), std::string::npos) << r.err;
  r = run("seq2seq", "--resume " + path("lm.ckpt"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("holds a char_lm model"), std::string::npos) << r.err;
  // Other text (another alphabet) than the checkpoint's.
  write_file(path("other.txt"), "completely different text with other letters: XYZ 123\n" + tiny_text());
  r = run("char_lm", "--data " + path("other.txt") + " --steps 5 " + kTinyLm + " --resume " + path("lm.ckpt"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("alphabet"), std::string::npos) << r.err;
}

// --checkpoint makes its directory, as --out does; a path no save could write is refused before
// the first step, not at the first save.
TEST_F(Examples, CheckpointPathIsPreparedOrRefusedBeforeTraining) {
  write_file(path("text.txt"), tiny_text());
  const std::string args = "--data " + path("text.txt") + " " + kTinyLm + " --checkpoint ";
  const Outcome made = run("char_lm", "--steps 2 " + args + path("new/deeper") + "/lm.ckpt");
  ASSERT_EQ(made.status, 0) << made.all();
  EXPECT_TRUE(fs::is_regular_file(path("new/deeper") + "/lm.ckpt"));
  write_file(path("plain"), "a file, not a directory");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {path("plain") + "/lm.ckpt", "cannot create directory '" + path("plain") + "'"},
      {path("new"), "it is a directory"},
  };
  for (const auto& [where, message] : cases) {
    const Outcome r = run("char_lm", "--steps 400 " + args + where);
    EXPECT_EQ(r.status, 1) << where << "\n" << r.all();
    EXPECT_NE(r.err.find("--checkpoint '" + where + "' cannot be written: " + message), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("step"), std::string::npos) << "trained before refusing:\n" << r.out;
  }
}

TEST_F(Examples, HelpListsTheContractOptions) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> programs = {
      {"char_lm", {"--data", "--cell", "--hidden", "--layers", "--embed", "--batch", "--seq-len", "--steps", "--lr",
                   "--clip", "--sample", "--temperature", "--prime"}},
      {"classify", {"--cell", "--embed", "--hidden", "--bidirectional", "--batch", "--epochs", "--lr"}},
      {"seq2seq", {"--hidden", "--steps", "--batch", "--lr"}}};
  for (const auto& [program, options] : programs) {
    const Outcome r = run(program, "--help");
    EXPECT_EQ(r.status, 0) << program;
    std::vector<std::string> all = options;
    for (const char* common : {"--help", "--seed", "--threads", "--checkpoint", "--resume", "--out"}) all.push_back(common);
    for (const auto& o : all) EXPECT_NE(r.out.find(o + " "), std::string::npos) << program << " " << o;
  }
}

// ---- classify

constexpr const char* kTinyClassify = "--batch 8 --hidden 16 --embed 8 --lr 0.01";

TEST_F(Examples, ClassifyLearnsTinyLanguagesAndPrintsConfusionMatrix) {
  write_file(path("split.tsv"), tiny_split());
  const Outcome r = run("classify", "--split " + path("split.tsv") + " --epochs 6 " + kTinyClassify + " --out " +
                                        path("curve") + " --checkpoint " + path("c.ckpt"));
  ASSERT_EQ(r.status, 0) << r.all();
  const std::string last = r.last_line();
  EXPECT_TRUE(std::regex_match(last, std::regex(R"(test accuracy: [01]\.\d{4})"))) << last;
  EXPECT_GE(value_of(last, "test accuracy"), 0.9) << r.out;  // disjoint alphabets: easy
  EXPECT_NE(r.out.find("confusion matrix"), std::string::npos);
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\n\s*gamma(\s+\d+){3}\n)"))) << r.out;
  EXPECT_NE(r.out.find("epoch 6: "), std::string::npos);
  EXPECT_NE(r.err.find("step 90/90"), std::string::npos) << r.err;
  expect_curve_files(path("curve"), "classify");
}

TEST_F(Examples, ClassifyResumesExactlyAndWithBidirectionalGru) {
  write_file(path("split.tsv"), tiny_split());
  const std::string common = "--split " + path("split.tsv") + " " + kTinyClassify + " --cell gru --bidirectional";
  const Outcome straight = run("classify", common + " --epochs 3");
  ASSERT_EQ(straight.status, 0) << straight.all();
  ASSERT_EQ(run("classify", common + " --epochs 2 --save-every 7 --checkpoint " + path("c.ckpt")).status, 0);
  const Outcome resumed = run("classify", common + " --epochs 3 --resume " + path("c.ckpt"));
  ASSERT_EQ(resumed.status, 0) << resumed.all();
  EXPECT_EQ(resumed.last_line(), straight.last_line());
  const Outcome other = run("classify", "--split " + path("split.tsv") + " " + kTinyClassify + " --epochs 3 --resume " +
                                            path("c.ckpt"));
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.err.find("--cell lstm was given"), std::string::npos) << other.err;
}

TEST_F(Examples, ClassifyBadInputGivesAMessageAndNonZeroExit) {
  write_file(path("empty.tsv"), "");
  write_file(path("bad.tsv"), "train\tenglish\tok\ntrain english no tabs\n");
  write_file(path("badutf.tsv"), "train\tenglish\tab\xc3\n");
  struct Case {
    std::string args;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"--dict " + path("nowhere"), 1, "cannot open"},
      {"--split " + path("missing.tsv"), 1, "cannot open"},
      {"--split " + path("empty.tsv"), 1, "empty"},
      {"--split " + path("bad.tsv"), 1, "line 2"},
      {"--split " + path("badutf.tsv"), 1, "invalid UTF-8 at byte offset 2"},
      {"--hidden -1", 2, "--hidden"},
      {"--epochs -2", 2, "--epochs"},
      {"--cell rnn", 2, "not one of"},
      {"--bidirectional=yes", 2, "flag"},
  };
  for (const auto& c : cases) {
    const Outcome r = run("classify", c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.all();
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
  }
}

// ---- --cell lnlstm (nn::Recurrent of nn::LayerNormLSTMCell) and --recurrent-dropout

// Both programs train with them and say so; a resumed char_lm run with recurrent dropout ends
// exactly where an uninterrupted one does (the masks come from the checkpointed generator).
TEST_F(Examples, LayerNormLstmAndRecurrentDropoutTrainAndResume) {
  write_file(path("text.txt"), tiny_text());
  const std::string data = "--data " + path("text.txt") + " " + kTinyLm;
  const std::string lm = data + " --cell lnlstm --layers 2 --recurrent-dropout 0.25";
  const Outcome straight = run("char_lm", lm + " --steps 8");
  ASSERT_EQ(straight.status, 0) << straight.all();
  EXPECT_NE(straight.out.find("model: lnlstm, 2 layer(s) of 24, one-hot input"), std::string::npos) << straight.out;
  EXPECT_NE(straight.out.find("parameters, recurrent dropout 0.25; B=4"), std::string::npos) << straight.out;
  EXPECT_TRUE(std::regex_match(straight.last_line(), std::regex(R"(held-out: \d+\.\d{4} nats/char, \d+\.\d{4} bits/char)")))
      << straight.out;
  ASSERT_EQ(run("char_lm", lm + " --steps 5 --checkpoint " + path("a.ckpt")).status, 0);
  // The cell and the layers are adopted from the checkpoint.
  const Outcome resumed = run("char_lm", data + " --recurrent-dropout 0.25 --steps 8 --resume " + path("a.ckpt"));
  ASSERT_EQ(resumed.status, 0) << resumed.all();
  EXPECT_EQ(resumed.last_line(), straight.last_line());
  const Outcome plain = run("char_lm", data + " --cell lnlstm --layers 2 --steps 8");
  ASSERT_EQ(plain.status, 0) << plain.all();
  EXPECT_EQ(plain.out.find("recurrent dropout"), std::string::npos) << plain.out;
  EXPECT_NE(plain.last_line(), straight.last_line());  // the masks change training
  const Outcome sampled = run("char_lm", "--resume " + path("a.ckpt") + " --sample 20 --prime 'the '");
  ASSERT_EQ(sampled.status, 0) << sampled.all();
  EXPECT_EQ(sampled.out.rfind("the ", 0), 0u) << sampled.out;

  write_file(path("split.tsv"), tiny_split());
  const Outcome c = run("classify", "--split " + path("split.tsv") + " " + kTinyClassify +
                                        " --epochs 2 --cell lnlstm --bidirectional --recurrent-dropout 0.2");
  ASSERT_EQ(c.status, 0) << c.all();
  EXPECT_NE(c.out.find("bidirectional lnlstm 16 (recurrent dropout 0.2)"), std::string::npos) << c.out;
  EXPECT_TRUE(std::regex_match(c.last_line(), std::regex(R"(test accuracy: [01]\.\d{4})"))) << c.out;

  for (const std::string program : {"char_lm", "classify"}) {
    const Outcome help = run(program, "--help");
    EXPECT_NE(help.out.find("--recurrent-dropout "), std::string::npos) << help.out;
    EXPECT_NE(help.out.find("lnlstm"), std::string::npos) << help.out;
    const Outcome bad = run(program, "--recurrent-dropout 1");
    EXPECT_EQ(bad.status, 2) << bad.all();
    EXPECT_NE(bad.err.find("--recurrent-dropout"), std::string::npos) << bad.err;
  }
}

// ---- seq2seq

constexpr const char* kTinySeq = "--batch 8 --hidden 16 --embed 8 --eval-every 2 --save-every 2";

TEST_F(Examples, Seq2SeqTrainsResumesAndEndsWithExactMatch) {
  const Outcome straight = run("seq2seq", std::string(kTinySeq) + " --steps 5 --out " + path("curve"));
  ASSERT_EQ(straight.status, 0) << straight.all();
  const std::string last = straight.last_line();
  EXPECT_TRUE(std::regex_match(last, std::regex(R"(test exact match: [01]\.\d{4})"))) << last;
  EXPECT_NE(straight.out.find(" -> "), std::string::npos);  // example translations
  expect_curve_files(path("curve"), "seq2seq");
  ASSERT_EQ(run("seq2seq", std::string(kTinySeq) + " --steps 3 --checkpoint " + path("s.ckpt")).status, 0);
  const Outcome resumed =
      run("seq2seq", std::string(kTinySeq) + " --steps 5 --out " + path("curve") + " --resume " + path("s.ckpt"));
  ASSERT_EQ(resumed.status, 0) << resumed.all();
  EXPECT_EQ(resumed.out.substr(resumed.out.find("examples (")), straight.out.substr(straight.out.find("examples (")));
  const Outcome other = run("seq2seq", "--batch 8 --hidden 32 --embed 8 --steps 5 --resume " + path("s.ckpt"));
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.err.find("hidden"), std::string::npos) << other.err;
}

// --attention general|additive: trains, says which, and a resumed run adopts the checkpoint's.
TEST_F(Examples, Seq2SeqAttentionKindsTrainAndResume) {
  const Outcome general = run("seq2seq", std::string(kTinySeq) + " --steps 2 --attention general");
  ASSERT_EQ(general.status, 0) << general.all();
  EXPECT_NE(general.out.find("with general attention"), std::string::npos) << general.out;
  EXPECT_TRUE(std::regex_match(general.last_line(), std::regex(R"(test exact match: [01]\.\d{4})"))) << general.out;
  const std::string additive = std::string(kTinySeq) + " --attention additive";
  const Outcome straight = run("seq2seq", additive + " --steps 4 --checkpoint " + path("a.ckpt"));
  ASSERT_EQ(straight.status, 0) << straight.all();
  EXPECT_NE(straight.out.find("with additive attention"), std::string::npos) << straight.out;
  // Without --attention: the checkpoint's additive model is built, loaded and evaluated as it was.
  const Outcome resumed = run("seq2seq", std::string(kTinySeq) + " --steps 4 --resume " + path("a.ckpt"));
  ASSERT_EQ(resumed.status, 0) << resumed.all();
  EXPECT_NE(resumed.out.find("with additive attention"), std::string::npos) << resumed.out;
  EXPECT_EQ(resumed.out.substr(resumed.out.find("examples (")), straight.out.substr(straight.out.find("examples (")));
  const Outcome other =
      run("seq2seq", std::string(kTinySeq) + " --steps 4 --attention dot --resume " + path("a.ckpt"));
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.err.find("attention additive"), std::string::npos) << other.err;
  const Outcome bad = run("seq2seq", "--attention cosine");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("dot, general, additive"), std::string::npos) << bad.err;
}

TEST_F(Examples, Seq2SeqBadOptionsExitWithStatus2) {
  for (const std::string args : {"--hidden 0", "--batch -1", "--lr -0.1", "--steps x", "--frobnicate"}) {
    const Outcome r = run("seq2seq", args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.all();
    EXPECT_NE(r.err.find("seq2seq: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--help"), std::string::npos) << r.err;
  }
}

}  // namespace
