// The examples' shared helpers: options, progress line, plots, corpus, word lists, dates.
#include "common/cli.hpp"
#include "common/corpus.hpp"
#include "common/dates.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/wordlists.hpp"

#include <xgrad/autograd/errors.hpp>
#include <xgrad/data/data.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace xgrad::examples;

namespace {

// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           ("xgrad_test_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
            std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& bytes) const {
    const fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

// EXPECT_THROW plus a check that the message contains every key word.
template <class E, class F>
void expect_throw_with(F&& f, std::initializer_list<std::string> words) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

Cli make_cli() {
  Cli cli("prog", "A test program.");
  cli.add_common();
  cli.add_int("steps", 100, "training steps", 1, 1000000);
  cli.add_double("lr", 2e-3, "learning rate", 0, 10, true);
  cli.add_double("temperature", 1.0, "sampling temperature", 0, 100, true);
  cli.add_string("cell", "lstm", "recurrent cell", {"rnn", "lstm", "gru"});
  cli.add_string("data", "", "text FILE or DIR");
  cli.add_flag("bidirectional", "both directions");
  return cli;
}

}  // namespace

// ---------------------------------------------------------------- cli

TEST(Cli, DefaultsWhenNothingGiven) {
  Cli cli = make_cli();
  std::ostringstream help;
  ASSERT_TRUE(cli.try_parse({}, help));
  EXPECT_EQ(cli.get_int("steps"), 100);
  EXPECT_DOUBLE_EQ(cli.get_double("lr"), 2e-3);
  EXPECT_EQ(cli.get_string("cell"), "lstm");
  EXPECT_FALSE(cli.get_flag("bidirectional"));
  EXPECT_EQ(cli.get_int("seed"), 1);
  EXPECT_EQ(cli.get_int("threads"), 0);
  EXPECT_EQ(cli.get_string("checkpoint"), "");
  EXPECT_EQ(cli.get_string("resume"), "");
  EXPECT_EQ(cli.get_string("out"), "");
  EXPECT_FALSE(cli.given("steps"));
}

TEST(Cli, ParsesBothValueSpellingsFlagsAndNegativeNumbers) {
  Cli cli("prog", "");
  cli.add_common();
  cli.add_int("n", 0, "n");
  cli.add_double("x", 0, "x");
  cli.add_flag("f", "f");
  std::ostringstream help;
  ASSERT_TRUE(cli.try_parse({"--n", "-7", "--x=-0.5", "--f", "--seed", "42", "--threads=2",
                             "--checkpoint", "a.ckpt", "--resume", "b.ckpt", "--out", "dir"},
                            help));
  EXPECT_EQ(cli.get_int("n"), -7);
  EXPECT_DOUBLE_EQ(cli.get_double("x"), -0.5);
  EXPECT_TRUE(cli.get_flag("f"));
  EXPECT_TRUE(cli.given("f"));
  EXPECT_EQ(cli.get_int("seed"), 42);
  EXPECT_EQ(cli.get_int("threads"), 2);
  EXPECT_EQ(cli.get_string("checkpoint"), "a.ckpt");
  EXPECT_EQ(cli.get_string("resume"), "b.ckpt");
  EXPECT_EQ(cli.get_string("out"), "dir");
}

TEST(Cli, HelpListsEveryOptionWithDefaultsAndRanges) {
  Cli cli = make_cli();
  std::ostringstream help;
  EXPECT_FALSE(cli.try_parse({"--steps", "5", "--help"}, help));
  const std::string u = help.str();
  for (const char* w : {"Usage: prog", "A test program.", "--help", "--seed N", "--threads N",
                        "--checkpoint S", "--resume S", "--out S", "--steps N", "default 100",
                        ">= 1", "--lr X", "> 0", "--cell rnn|lstm|gru", "--bidirectional"})
    EXPECT_NE(u.find(w), std::string::npos) << w << " not in:\n" << u;
}

TEST(Cli, ErrorsNameTheOptionAndValue) {
  std::ostringstream help;
  auto fails = [&](std::vector<std::string> args, std::initializer_list<std::string> words) {
    Cli cli = make_cli();
    expect_throw_with<CliError>([&] { cli.try_parse(args, help); }, words);
    EXPECT_EQ(cli.get_int("steps"), 100) << "a failed parse must not change values";
  };
  fails({"--steps", "3", "--stepz", "4"}, {"unknown option", "--stepz", "did you mean --steps"});
  fails({"--wibble"}, {"unknown option", "--wibble"});
  fails({"--steps"}, {"--steps", "needs a value"});
  fails({"--steps", "--lr", "0.1"}, {"--steps", "needs a value"});
  fails({"--steps", "ten"}, {"--steps", "'ten'", "not an integer"});
  fails({"--steps", "12x"}, {"--steps", "'12x'", "not an integer"});
  fails({"--steps", "-5"}, {"--steps", "-5", "out of range", ">= 1"});
  fails({"--steps", "99999999999999999999"}, {"--steps", "out of range"});
  fails({"--threads", "5000"}, {"--threads", "5000", "<= 1024"});
  fails({"--seed", "-1"}, {"--seed", "-1", "out of range"});
  fails({"--temperature", "0"}, {"--temperature", "0", "out of range", "> 0"});
  fails({"--lr", "abc"}, {"--lr", "'abc'", "not a finite number"});
  fails({"--lr", "nan"}, {"--lr", "not a finite number"});
  fails({"--lr", "11"}, {"--lr", "11", "<= 10"});
  fails({"--cell", "transformer"}, {"--cell", "'transformer'", "rnn, lstm, gru"});
  fails({"--bidirectional=yes"}, {"--bidirectional", "takes no value"});
  fails({"data.txt"}, {"unexpected argument", "data.txt"});
}

TEST(Cli, DeclaringTwiceOrReadingTheWrongTypeIsAProgrammingError) {
  Cli cli = make_cli();
  EXPECT_THROW(cli.add_int("steps", 1, "again"), std::logic_error);
  EXPECT_THROW(cli.add_flag("help", "reserved"), std::logic_error);
  EXPECT_THROW(cli.get_double("steps"), std::logic_error);
  EXPECT_THROW(cli.get_int("nope"), std::logic_error);
}

TEST(CliDeathTest, BadOptionExitsWithStatus2AndAMessage) {
  const char* argv[] = {"prog", "--steps", "-3"};
  EXPECT_EXIT(make_cli().parse(3, argv), ::testing::ExitedWithCode(2),
              "prog: option --steps: value -3 out of range");
  const char* argv2[] = {"prog", "--nope"};
  EXPECT_EXIT(make_cli().parse(2, argv2), ::testing::ExitedWithCode(2), "unknown option '--nope'");
}

TEST(CliDeathTest, HelpExitsWithStatus0) {
  const char* argv[] = {"prog", "--help"};
  EXPECT_EXIT(
      {
        make_cli().parse(2, argv);
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}

// ---------------------------------------------------------------- progress

TEST(Progress, LineHasStepLossRateElapsedAndTimeLeft) {
  Progress::Options o;
  o.unit = "tok";
  o.items_per_step = 32 * 64;
  std::ostringstream sink;
  o.out = &sink;
  Progress p(2000, o);
  const std::string l = p.line(100, 2.34567, "val 2.1", 10.0);
  EXPECT_EQ(l, "step 100/2000  loss 2.3457  20.5k tok/s  elapsed 0:10  left 3:10  val 2.1");
  EXPECT_EQ(Progress::format_duration(7), "0:07");
  EXPECT_EQ(Progress::format_duration(754), "12:34");
  EXPECT_EQ(Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(Progress::format_rate(950), "950");
  EXPECT_EQ(Progress::format_rate(4.56e6), "4.56M");
  EXPECT_EQ(Progress::format_rate(3.5), "3.50");
}

TEST(Progress, InPlaceRedrawsAreThrottledAndEndWithANewline) {
  std::ostringstream sink;
  Progress::Options o;
  o.out = &sink;
  o.in_place = 1;
  o.min_interval = 3600;  // only the first update draws
  {
    Progress p(10, o);
    for (int s = 1; s <= 10; ++s) p.update(s, 1.0 / s);
    p.finish();
  }
  const std::string s = sink.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\r'), 2);  // first update, then finish
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);
  EXPECT_EQ(s.back(), '\n');
  EXPECT_NE(s.find("step 10/10  loss 0.1000"), std::string::npos);
}

TEST(Progress, LogModeWritesWholeLinesAndFinishesInDestructor) {
  std::ostringstream sink;
  Progress::Options o;
  o.out = &sink;
  o.in_place = 0;
  {
    Progress p(5, o);
    p.update(1, 3.0);
    p.update(2, 2.0);  // throttled (log_interval 10 s)
  }
  const std::string s = sink.str();
  EXPECT_EQ(s.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2);
  EXPECT_NE(s.find("step 2/5  loss 2.0000"), std::string::npos);
}

TEST(Progress, LogModeDoesNotRepeatALastLineAlreadyWritten) {
  std::ostringstream sink;
  Progress::Options o;
  o.out = &sink;
  o.in_place = 0;
  o.log_interval = 0;  // every update writes its line
  {
    Progress p(3, o);
    for (int s = 1; s <= 3; ++s) p.update(s, 1.0 / s);
    p.finish();
  }
  const std::string s = sink.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 3) << s;
  EXPECT_EQ(s.find("step 3/3"), s.rfind("step 3/3")) << s;
}

// ---------------------------------------------------------------- plot

namespace {

// A minimal well-formedness check: tags balance, attributes are quoted, no stray '<' or '&'.
void expect_well_formed_xml(const std::string& s) {
  std::vector<std::string> stack;
  std::size_t i = 0;
  while ((i = s.find('<', i)) != std::string::npos) {
    const std::size_t j = s.find('>', i);
    ASSERT_NE(j, std::string::npos) << "unterminated tag at " << i;
    const std::string tag = s.substr(i + 1, j - i - 1);
    ASSERT_EQ(tag.find('<'), std::string::npos) << tag;
    ASSERT_EQ(std::count(tag.begin(), tag.end(), '"') % 2, 0) << tag;
    if (tag[0] == '?' || tag[0] == '!') {
    } else if (tag[0] == '/') {
      ASSERT_FALSE(stack.empty()) << "closing " << tag << " with nothing open";
      EXPECT_EQ("/" + stack.back(), tag.substr(0, tag.find_first_of(" \t") )) << "mismatched";
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
    i = j + 1;
  }
  EXPECT_TRUE(stack.empty()) << "unclosed <" << (stack.empty() ? "" : stack.back()) << ">";
  // Text content: every '&' starts an entity.
  for (std::size_t k = s.find('&'); k != std::string::npos; k = s.find('&', k + 1)) {
    const std::size_t semi = s.find(';', k);
    ASSERT_NE(semi, std::string::npos);
    EXPECT_LT(semi - k, 7u);
  }
}

}  // namespace

TEST(Plot, SvgIsWellFormedWithTitleAxesTicksSeriesAndLegend) {
  TempDir dir;
  std::vector<Series> series(2);
  series[0].name = "train";
  for (int i = 1; i <= 50; ++i) series[0].x.push_back(i * 10), series[0].y.push_back(4.0 / i + 1);
  series[1].name = "validation <held-out, & such>";
  for (int i = 1; i <= 5; ++i) series[1].x.push_back(i * 100), series[1].y.push_back(1.2 + 0.5 / i);
  series[1].y[2] = std::nan("");  // dropped from the drawing, breaks the line
  PlotOptions o;
  o.title = "char_lm loss";
  const std::string svg_path = write_loss_curve((dir.path / "out" / "sub").string(), "loss", series, o);
  const std::string svg = slurp(svg_path);
  ASSERT_FALSE(svg.empty());
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  expect_well_formed_xml(svg);
  EXPECT_NE(svg.find(">char_lm loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">train</text>"), std::string::npos);
  EXPECT_NE(svg.find("validation &lt;held-out, &amp; such&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">500</text>"), std::string::npos);  // an x tick label
  // train: one polyline; validation: split in two by the NaN.
  std::size_t polylines = 0;
  for (std::size_t k = svg.find("<polyline"); k != std::string::npos; k = svg.find("<polyline", k + 1))
    ++polylines;
  EXPECT_EQ(polylines, 3u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);

  const std::string csv = slurp((dir.path / "out" / "sub" / "loss.csv").string());
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "series,step,loss");
  std::size_t rows = 0, train_rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    if (line.rfind("train,", 0) == 0) {
      ++train_rows;
      std::istringstream fields(line.substr(6));
      double x, y;
      char comma;
      ASSERT_TRUE(fields >> x >> comma >> y) << line;
      EXPECT_EQ(comma, ',');
      EXPECT_DOUBLE_EQ(y, 4.0 / (x / 10) + 1);
    } else {
      EXPECT_EQ(line.rfind("\"validation <held-out, & such>\",", 0), 0u) << line;
    }
  }
  EXPECT_EQ(rows, 55u);
  EXPECT_EQ(train_rows, 50u);
}

TEST(Plot, EmptyAndFlatSeriesStillGiveAValidFile) {
  TempDir dir;
  const std::string p = (dir.path / "empty.svg").string();
  write_svg(p, {}, {});
  expect_well_formed_xml(slurp(p));
  write_svg(p, {{"flat", {1, 2, 3}, {2, 2, 2}}}, {});
  expect_well_formed_xml(slurp(p));
  write_svg(p, {{"one", {5}, {1.5}}}, {});
  EXPECT_NE(slurp(p).find("<circle"), std::string::npos);
}

TEST(Plot, ErrorsNameTheProblem) {
  TempDir dir;
  expect_throw_with<std::invalid_argument>(
      [&] { write_csv((dir.path / "x.csv").string(), {{"bad", {1, 2}, {1}}}); }, {"bad", "2 x values", "1 y values"});
  expect_throw_with<std::runtime_error>(
      [&] { write_svg((dir.path / "no" / "such" / "dir" / "x.svg").string(), {}); }, {"cannot write", "x.svg"});
}

TEST(Plot, NiceTicksCoverTheRangeWithRoundSteps) {
  EXPECT_EQ(nice_ticks(0, 2000), (std::vector<double>{0, 500, 1000, 1500, 2000}));
  const auto t = nice_ticks(1.23, 4.56);
  ASSERT_GE(t.size(), 3u);
  EXPECT_GE(t.front(), 1.23);
  EXPECT_LE(t.back(), 4.56);
  EXPECT_FALSE(nice_ticks(3, 3).empty());
}

// ---------------------------------------------------------------- lower case

TEST(WordLists, LowerCasesLatinLettersIncludingAccentedOnes) {
  EXPECT_EQ(to_lower(U"ÄÖÜÅÉÈÇÑABCxyz"), U"äöüåéèçñabcxyz");
  EXPECT_EQ(to_lower(U'ß'), U'ß');
  EXPECT_EQ(to_lower(char32_t{0x1E9E}), U'ß');
  EXPECT_EQ(to_lower(U'×'), U'×');
  EXPECT_EQ(to_lower(U'Ÿ'), U'ÿ');
  EXPECT_EQ(to_lower(U'Ł'), U'ł');  // U+0141, odd capital
  EXPECT_EQ(to_lower(U'Ő'), U'ő');  // U+0150, even capital
  EXPECT_EQ(to_lower(U'İ'), U'i');
  EXPECT_EQ(to_lower(U'ı'), U'ı');
  EXPECT_EQ(to_lower(U'Ω'), U'Ω');  // outside the Latin ranges: unchanged
}

// ---------------------------------------------------------------- corpus

TEST(Corpus, ReadsPlainFilesInSortedOrderSkippingIndexesLinksAndHidden) {
  TempDir dir;
  dir.file("b", "B text\n");
  dir.file("a", "A text\n");
  dir.file("a.dat", std::string("\0\0\0\2binary", 10));
  dir.file("sub/c", "C text\n");
  dir.file(".hidden", "hidden\n");
  dir.file(".git/x", "hidden too\n");
  fs::create_symlink("a", dir.path / "a.u8");
  fs::create_directory_symlink(dir.path / "sub", dir.path / "linkdir");
  const auto files = corpus_files(dir.path.string());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(fs::path(files[0]).filename(), "a");
  EXPECT_EQ(fs::path(files[1]).filename(), "b");
  EXPECT_EQ(fs::path(files[2]).lexically_relative(dir.path).generic_string(), "sub/c");
  EXPECT_EQ(read_corpus(dir.path.string()), "A text\nB text\nC text\n");
  // A file is read whatever its name.
  EXPECT_EQ(read_corpus((dir.path / "a.u8").string()), "A text\n");
}

TEST(Corpus, MissingOrEmptyIsADataErrorNamingThePath) {
  TempDir dir;
  const std::string missing = (dir.path / "no_such_file.txt").string();
  expect_throw_with<xgrad::DataError>([&] { read_corpus(missing); }, {missing, "does not exist"});
  const std::string empty_file = dir.file("empty.txt", "");
  expect_throw_with<xgrad::DataError>([&] { read_corpus(empty_file); }, {empty_file, "empty"});
  fs::create_directories(dir.path / "nothing");
  const std::string empty_dir = (dir.path / "nothing").string();
  expect_throw_with<xgrad::DataError>([&] { read_corpus(empty_dir); }, {empty_dir, "no text files"});
  dir.file("only_index/x.dat", "idx");
  const std::string idx_dir = (dir.path / "only_index").string();
  expect_throw_with<xgrad::DataError>([&] { read_corpus(idx_dir); }, {idx_dir});
  dir.file("blank/x", "");
  const std::string blank_dir = (dir.path / "blank").string();
  expect_throw_with<xgrad::DataError>([&] { read_corpus(blank_dir); }, {blank_dir, "empty"});
}

TEST(Corpus, FortunesPackageIsReadOnceAndIsValidUtf8) {
  if (!fs::exists(kFortunesDir)) GTEST_SKIP() << "fortunes package not installed";
  const auto files = corpus_files();
  ASSERT_GT(files.size(), 10u);
  for (const auto& f : files) {
    EXPECT_FALSE(fs::is_symlink(f)) << f;
    EXPECT_NE(f.substr(f.size() - 4), ".dat") << f;
  }
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end()));
  const std::string text = read_corpus();
  EXPECT_GT(text.size(), 1000000u);
  EXPECT_NO_THROW(xgrad::data::utf8_decode(text));
}

// ---------------------------------------------------------------- word lists

TEST(WordLists, DecodesLatin1AndUtf8LowerCasesAndDropsApostrophes) {
  TempDir dir;
  // ISO-8859-1: Äpple, åsna, Öga, "ÄPPLE" again, an apostrophe word, CRLF line endings.
  const std::string sv = dir.file("sv", "\xC4pple\r\n\xE5sna\r\n\xD6ga\r\n\xC4PPLE\r\nd'or\r\n\r\n");
  EXPECT_EQ(read_word_list(sv, Encoding::Latin1),
            (std::vector<std::u32string>{U"äpple", U"åsna", U"öga"}));  // code point order
  const std::string de = dir.file("de", "Stra\xC3\x9F" "e\n\xC3\x84rger\nMai\xE2\x80\x99s\nGRO\xE1\xBA\x9E\n");
  EXPECT_EQ(read_word_list(de, Encoding::Utf8),
            (std::vector<std::u32string>{U"groß", U"straße", U"ärger"}));
}

TEST(WordLists, BadFilesAreDataErrors) {
  TempDir dir;
  const std::string bad = dir.file("bad", "good\nb\xC3\n");
  expect_throw_with<xgrad::DataError>([&] { read_word_list(bad, Encoding::Utf8); },
                                      {bad, "invalid UTF-8", "byte offset 6"});
  const std::string empty = dir.file("empty", "");
  expect_throw_with<xgrad::DataError>([&] { read_word_list(empty, Encoding::Utf8); }, {empty, "empty"});
  const std::string blank = dir.file("blank", "\n\n'\n");
  expect_throw_with<xgrad::DataError>([&] { read_word_list(blank, Encoding::Utf8); }, {blank, "no words"});
  const std::string missing = (dir.path / "missing").string();
  expect_throw_with<xgrad::DataError>([&] { read_word_list(missing, Encoding::Utf8); }, {missing});
}

TEST(WordLists, SplitDropsSharedWordsAndIsDeterministic) {
  std::vector<std::vector<std::u32string>> lists(3);
  for (int l = 0; l < 3; ++l) {
    for (int i = 0; i < 40; ++i) lists[l].push_back(std::u32string(1, U'a' + l) + std::u32string(i + 1, U'x'));
    lists[l].push_back(U"shared");
    std::sort(lists[l].begin(), lists[l].end());
  }
  WordSplitOptions o;
  o.train = 20, o.validation = 5, o.test = 10;
  const WordSplit s = make_word_split(lists, {"a", "b", "c"}, o);
  EXPECT_EQ(s.train.size(), 60u);
  EXPECT_EQ(s.validation.size(), 15u);
  EXPECT_EQ(s.test.size(), 30u);
  std::set<std::u32string> seen;
  for (const auto* part : {&s.train, &s.validation, &s.test})
    for (const auto& w : *part) {
      EXPECT_NE(w.word, U"shared");
      EXPECT_EQ(w.word[0], U'a' + w.label);
      EXPECT_TRUE(seen.insert(w.word).second) << "drawn twice";
    }
  const WordSplit again = make_word_split(lists, {"a", "b", "c"}, o);
  for (std::size_t i = 0; i < s.train.size(); ++i) EXPECT_EQ(s.train[i].word, again.train[i].word);
  o.seed += 1;
  const WordSplit other = make_word_split(lists, {"a", "b", "c"}, o);
  bool differs = false;
  for (std::size_t i = 0; i < s.train.size(); ++i) differs = differs || s.train[i].word != other.train[i].word;
  EXPECT_TRUE(differs);
  o.train = 40;
  expect_throw_with<xgrad::DataError>([&] { make_word_split(lists, {"a", "b", "c"}, o); },
                                      {"a has 40 words", "55 needed"});
}

TEST(WordLists, SplitFileRoundTrips) {
  TempDir dir;
  WordSplit s;
  s.languages = {"german", "swedish"};
  s.train = {{U"straße", 0}, {U"åsna", 1}};
  s.validation = {{U"öga", 1}};
  s.test = {{U"ärger", 0}};
  const std::string p = (dir.path / "split.tsv").string();
  write_split_tsv(s, p);
  EXPECT_EQ(slurp(p), "train\tgerman\tstra\xC3\x9F" "e\ntrain\tswedish\t\xC3\xA5sna\n"
                      "validation\tswedish\t\xC3\xB6ga\ntest\tgerman\t\xC3\xA4rger\n");
  const WordSplit r = read_split_tsv(p);
  EXPECT_EQ(r.languages, s.languages);
  ASSERT_EQ(r.train.size(), 2u);
  EXPECT_EQ(r.train[1].word, U"åsna");
  EXPECT_EQ(r.train[1].label, 1);
  EXPECT_EQ(r.test[0].word, U"ärger");
  EXPECT_EQ(split_alphabet(s), U"aegnrstßäåö");
  EXPECT_EQ(split_alphabet(r), split_alphabet(s));
  const std::string bad = dir.file("bad.tsv", "train\tgerman\tok\nnonsense\n");
  expect_throw_with<xgrad::DataError>([&] { read_split_tsv(bad); }, {bad, "line 2"});
}

TEST(WordLists, DebianListsGiveTheFullSplit) {
  for (const auto& wl : kWordLists)
    if (!fs::exists(std::string(kDictDir) + "/" + wl.file)) GTEST_SKIP() << wl.file << " not installed";
  const WordSplit s = load_word_split();
  ASSERT_EQ(s.languages.size(), 8u);
  EXPECT_EQ(s.train.size(), 80000u);
  EXPECT_EQ(s.validation.size(), 8000u);
  EXPECT_EQ(s.test.size(), 16000u);
  std::set<std::u32string> seen;
  for (const auto* part : {&s.train, &s.validation, &s.test})
    for (const auto& w : *part) {
      EXPECT_TRUE(seen.insert(w.word).second);
      EXPECT_EQ(w.word.find(U'\''), std::u32string::npos);
      EXPECT_EQ(to_lower(w.word), w.word);
    }
  // Swedish decoded from ISO-8859-1: å/ä/ö appear as themselves.
  std::size_t swedish_umlauts = 0;
  for (const auto& w : s.train)
    if (w.label == 7 && w.word.find_first_of(U"åäö") != std::u32string::npos) ++swedish_umlauts;
  EXPECT_GT(swedish_umlauts, 1000u);
  const std::u32string alphabet = split_alphabet(s);
  EXPECT_NE(alphabet.find(U'ß'), std::u32string::npos);
  EXPECT_EQ(alphabet.find(U'A'), std::u32string::npos);
}

// ---------------------------------------------------------------- dates

namespace {

// The weekday from the C library, independently of dates.cpp: 0 = Monday.
int libc_weekday(const Date& d) {
  std::tm tm{};
  tm.tm_year = d.year - 1900, tm.tm_mon = d.month - 1, tm.tm_mday = d.day, tm.tm_hour = 12;
  const std::time_t t = ::timegm(&tm);
  std::tm out{};
  ::gmtime_r(&t, &out);
  return (out.tm_wday + 6) % 7;
}

// Reads a human-written date back, knowing only the conventions documented in dates.hpp.
// Returns the date and the weekday named in the text (-1 if none).
std::pair<Date, int> parse_human(const std::string& s) {
  std::vector<std::string> words, numbers;
  std::vector<bool> two_digit_year;
  for (std::size_t i = 0; i < s.size();) {
    if (std::isalpha(static_cast<unsigned char>(s[i]))) {
      std::size_t j = i;
      while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
      std::string w = s.substr(i, j - i);
      for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!numbers.empty() && (w == "st" || w == "nd" || w == "rd" || w == "th")) {
      } else {
        words.push_back(w);
      }
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      std::size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      numbers.push_back(s.substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
  int month = 0, wday = -1;
  for (const auto& w : words) {
    for (int m = 1; m <= 12; ++m) {
      std::string name = month_name(m);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (w == name || w == name.substr(0, 3)) month = m;
    }
    for (int k = 0; k < 7; ++k) {
      std::string name = weekday_name(k);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (w == name || w == name.substr(0, 3)) wday = k;
    }
  }
  auto year_of = [](const std::string& y) {
    const int v = std::stoi(y);
    return y.size() == 2 ? (v >= 50 ? 1900 + v : 2000 + v) : v;
  };
  Date d{0, 0, 0};
  if (month) {
    EXPECT_EQ(numbers.size(), 2u) << s;
    d = {year_of(numbers.at(1)), month, std::stoi(numbers.at(0))};
  } else {
    EXPECT_EQ(numbers.size(), 3u) << s;
    if (s.find('.') != std::string::npos || wday >= 0)
      d = {year_of(numbers[2]), std::stoi(numbers[1]), std::stoi(numbers[0])};
    else if (numbers[0].size() == 4)
      d = {year_of(numbers[0]), std::stoi(numbers[1]), std::stoi(numbers[2])};
    else
      d = {year_of(numbers[2]), std::stoi(numbers[0]), std::stoi(numbers[1])};
  }
  return {d, wday};
}

}  // namespace

TEST(Dates, FormatsOfAnExampleDate) {
  const Date d{2026, 11, 24};
  EXPECT_EQ(weekday(d), 1);  // Tuesday
  EXPECT_EQ(iso_date(d), "2026-11-24");
  const std::vector<std::string> expected = {
      "24 November 2026", "Tue 24/11/26", "november 24, 2026", "24.11.2026",
      "Nov 24 2026", "2026/11/24", "Tuesday, November 24, 2026", "24-Nov-26",
      "11/24/2026", "24 nov 2026", "Tuesday 24 November 2026", "NOV 24, 2026",
      "November 24th, 2026", "24 nov. '26"};
  ASSERT_EQ(static_cast<int>(expected.size()), kDateFormatCount);
  for (int f = 0; f < kDateFormatCount; ++f) EXPECT_EQ(format_date(d, f), expected[f]) << f;
  EXPECT_EQ(format_date({2001, 3, 1}, 12), "March 1st, 2001");
  EXPECT_EQ(format_date({2001, 3, 2}, 12), "March 2nd, 2001");
  EXPECT_EQ(format_date({2001, 3, 13}, 12), "March 13th, 2001");
  EXPECT_EQ(format_date({1999, 3, 23}, 12), "March 23rd, 1999");
  EXPECT_EQ(format_date({1950, 1, 5}, 1), "Thu 05/01/50");
}

TEST(Dates, CalendarArithmeticMatchesTheCLibrary) {
  const std::int64_t first = days_from_civil({1950, 1, 1}), last = days_from_civil({2049, 12, 31});
  EXPECT_EQ(last - first + 1, 36525);  // 100 years, 25 of them leap
  for (std::int64_t z = first; z <= last; ++z) {
    const Date d = civil_from_days(z);
    ASSERT_TRUE(is_valid(d));
    ASSERT_EQ(days_from_civil(d), z);
    ASSERT_EQ(weekday(d), libc_weekday(d)) << iso_date(d);
  }
  EXPECT_TRUE(is_valid({2000, 2, 29}));
  EXPECT_FALSE(is_valid({1900, 2, 29}));
  EXPECT_FALSE(is_valid({2026, 4, 31}));
}

TEST(Dates, PairsRoundTripWithCorrectWeekdaysAndAreDeterministic) {
  const auto pairs = make_date_pairs(5000, 7);
  std::set<int> formats;
  const std::string in_alpha = date_input_alphabet(), out_alpha = date_output_alphabet();
  for (const auto& p : pairs) {
    formats.insert(p.format);
    EXPECT_GE(p.date.year, 1950);
    EXPECT_LE(p.date.year, 2049);
    EXPECT_EQ(p.iso, iso_date(p.date));
    EXPECT_EQ(p.human, format_date(p.date, p.format));
    const auto [parsed, wday] = parse_human(p.human);
    EXPECT_EQ(iso_date(parsed), p.iso) << p.human;
    if (wday >= 0) {
      EXPECT_EQ(wday, libc_weekday(p.date)) << p.human;
    }
    for (char c : p.human) EXPECT_NE(in_alpha.find(c), std::string::npos) << c;
    for (char c : p.iso) EXPECT_NE(out_alpha.find(c), std::string::npos) << c;
  }
  EXPECT_EQ(static_cast<int>(formats.size()), kDateFormatCount);
  const auto again = make_date_pairs(5000, 7);
  for (std::size_t i = 0; i < pairs.size(); ++i) ASSERT_EQ(pairs[i].human, again[i].human);
  const auto other = make_date_pairs(50, 8);
  std::size_t same = 0;
  for (std::size_t i = 0; i < other.size(); ++i) same += other[i].human == pairs[i].human;
  EXPECT_LT(same, 5u);
}

TEST(Dates, BadArgumentsAreRejected) {
  expect_throw_with<std::invalid_argument>([] { format_date({2026, 2, 30}, 0); }, {"invalid date", "2026-2-30"});
  expect_throw_with<std::invalid_argument>([] { format_date({2026, 1, 1}, kDateFormatCount); }, {"format 14"});
  expect_throw_with<std::invalid_argument>([] { format_date({2050, 1, 1}, 1); }, {"two-digit year", "2050"});
  EXPECT_EQ(format_date({2050, 1, 1}, 0), "1 January 2050");
  expect_throw_with<std::invalid_argument>([] { make_date_pairs(1, 0, 1900, 2000); }, {"1900"});
}
