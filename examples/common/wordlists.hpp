// The word lists of Debian's w* packages, for classify: which language does a word come from.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace xgrad::examples {

enum class Encoding { Utf8, Latin1 };

struct WordList {
  const char* language;  // the label's name
  const char* file;      // under the dictionary directory
  Encoding encoding;
};

// Label i is kWordLists[i]. The Swedish list (wswedish) is ISO-8859-1, the others UTF-8, as
// `file /usr/share/dict/*` shows.
inline constexpr std::array<WordList, 8> kWordLists = {{
    {"english", "american-english", Encoding::Utf8},
    {"german", "ngerman", Encoding::Utf8},
    {"french", "french", Encoding::Utf8},
    {"spanish", "spanish", Encoding::Utf8},
    {"italian", "italian", Encoding::Utf8},
    {"portuguese", "portuguese", Encoding::Utf8},
    {"dutch", "dutch", Encoding::Utf8},
    {"swedish", "swedish", Encoding::Latin1},
}};
inline const char* const kDictDir = "/usr/share/dict";

struct LabeledWord {
  std::u32string word;  // code points, lower-cased
  int label;            // index into kWordLists
};

struct WordSplit {
  std::vector<std::string> languages;  // label -> name
  std::vector<LabeledWord> train, validation, test;  // grouped by label, in draw order
};

struct WordSplitOptions {
  std::string dir = kDictDir;
  std::uint64_t seed = 20240607;  // fixed: the split is data, not a training choice
  std::size_t train = 10000, validation = 1000, test = 2000;  // per language
};

// Lower case for Basic Latin, Latin-1 Supplement, Latin Extended-A and capital sharp s
// (U+1E9E -> ß); every other code point is returned unchanged. One code point in, one out
// (so İ U+0130 becomes plain i), which keeps word lengths and is easy to replicate elsewhere
// (bench/classify_torch.py does).
char32_t to_lower(char32_t c);
std::u32string to_lower(std::u32string text);

// One list: decoded to code points (invalid UTF-8: xgrad::DataError naming the file and the
// byte offset), split into lines (a trailing '\r' dropped, empty lines skipped), lower-cased
// with to_lower, words with an apostrophe (' or U+2019) dropped, duplicates
// removed, sorted by code points. Missing or empty file: xgrad::DataError naming the path.
std::vector<std::u32string> read_word_list(const std::string& path, Encoding encoding);
// The same on bytes already in memory; `what` names them in errors.
std::vector<std::u32string> parse_word_list(const std::string& bytes, Encoding encoding,
                                            const std::string& what);

// The split from per-language word lists (each sorted and unique, as read_word_list gives):
// words found in more than one language are dropped from all; then for each language in label
// order, with its own std::mt19937_64 seeded with seed + label, a partial Fisher-Yates shuffle
// (for i < need, swap words i and i + data::uniform_index(rng, n - i), which for these n is
// i + rng() % (n - i) but for a chance below 2^-40) draws train + validation + test words: the
// first `train` go to train, the next `validation` to validation, the next `test` to test. Too
// few words: DataError.
WordSplit make_word_split(const std::vector<std::vector<std::u32string>>& per_language,
                          const std::vector<std::string>& languages,
                          const WordSplitOptions& options = {});
// All eight Debian lists from options.dir.
WordSplit load_word_split(const WordSplitOptions& options = {});

// The split as UTF-8 text, one word a line: "<split>\t<language>\t<word>", split being train,
// validation or test (bench/classify_torch.py --split FILE reads it). read_split_tsv reads it
// back (labels in order of first appearance); malformed lines: DataError with the line number.
void write_split_tsv(const WordSplit& split, const std::string& path);
WordSplit read_split_tsv(const std::string& path);

// Every code point used by the split's words, sorted: the classifier's character vocabulary.
std::u32string split_alphabet(const WordSplit& split);

}  // namespace xgrad::examples
