#include "common/wordlists.hpp"


#include <xgrad/autograd/errors.hpp>
#include <xgrad/data/data.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <unordered_map>
#include <random>
#include <set>
#include <sstream>

namespace xgrad::examples {

namespace {

// Strict UTF-8 (data::utf8_decode); an error names `what` and the byte offset.
std::u32string decode_utf8(const std::string& bytes, const std::string& what) {
  try {
    const std::vector<char32_t> cps = data::utf8_decode(bytes);
    return std::u32string(cps.begin(), cps.end());
  } catch (const DataError& e) {
    throw DataError(what + ": " + e.what());
  }
}

// ISO-8859-1 maps each byte to the code point of the same value.
std::u32string decode_latin1(const std::string& bytes) {
  std::u32string out;
  for (unsigned char c : bytes) out += char32_t(c);
  return out;
}

}  // namespace

char32_t to_lower(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c + 0x20;
  if (c < 0xC0) return c;
  if (c <= 0xDE) return c == 0xD7 ? c : c + 0x20;  // À..Þ except ×
  if (c < 0x100) return c;
  if (c <= 0x17F) {
    // Latin Extended-A: capital/small pairs, capital first, except the odd ones out below.
    if (c == 0x130) return U'i';                          // İ
    if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c;  // ı ĸ ŉ ſ
    if (c == 0x178) return 0xFF;                          // Ÿ -> ÿ
    const bool odd_capitals = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_capitals) return (c % 2 == 1) ? c + 1 : c;
    return (c % 2 == 0) ? c + 1 : c;
  }
  if (c == 0x1E9E) return 0xDF;  // ẞ -> ß
  return c;
}

std::u32string to_lower(std::u32string text) {
  for (char32_t& c : text) c = to_lower(c);
  return text;
}

std::vector<std::u32string> parse_word_list(const std::string& bytes, Encoding encoding,
                                            const std::string& what) {
  const std::u32string text =
      encoding == Encoding::Utf8 ? decode_utf8(bytes, what) : decode_latin1(bytes);
  std::vector<std::u32string> words;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find(U'\n', begin);
    if (end == std::u32string::npos) end = text.size();
    std::u32string w = text.substr(begin, end - begin);
    begin = end + 1;
    if (!w.empty() && w.back() == U'\r') w.pop_back();
    if (w.empty() || w.find_first_of(U"'\u2019") != std::u32string::npos) continue;
    words.push_back(to_lower(std::move(w)));
  }
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  if (words.empty()) throw DataError(what + ": no words (empty word list)");
  return words;
}

std::vector<std::u32string> read_word_list(const std::string& path, Encoding encoding) {
  const std::string bytes = data::read_text_file(path);
  if (bytes.empty()) throw DataError("word list: '" + path + "' is empty");
  return parse_word_list(bytes, encoding, "word list '" + path + "'");
}

WordSplit make_word_split(const std::vector<std::vector<std::u32string>>& per_language,
                          const std::vector<std::string>& languages,
                          const WordSplitOptions& o) {
  if (per_language.size() != languages.size())
    throw DataError("word split: " + std::to_string(per_language.size()) + " word lists but " +
                    std::to_string(languages.size()) + " language names");
  // How many lists each word is in (each list is unique already).
  std::unordered_map<std::u32string, int> count;
  for (const auto& list : per_language)
    for (const auto& w : list) ++count[w];

  WordSplit split;
  split.languages = languages;
  const std::size_t need = o.train + o.validation + o.test;
  for (std::size_t label = 0; label < per_language.size(); ++label) {
    std::vector<std::u32string> own;
    for (const auto& w : per_language[label])
      if (count[w] == 1) own.push_back(w);
    std::sort(own.begin(), own.end());
    if (own.size() < need)
      throw DataError("word split: " + languages[label] + " has " + std::to_string(own.size()) +
                      " words of its own, " + std::to_string(need) + " needed");
    std::mt19937_64 rng(o.seed + label);
    for (std::size_t i = 0; i < need; ++i)  // partial Fisher-Yates: the first `need` of a shuffle
      std::swap(own[i], own[i + data::uniform_index(rng, own.size() - i)]);
    const int l = static_cast<int>(label);
    for (std::size_t i = 0; i < need; ++i) {
      auto& dest = i < o.train ? split.train
                   : i < o.train + o.validation ? split.validation
                                                : split.test;
      dest.push_back({std::move(own[i]), l});
    }
  }
  return split;
}

WordSplit load_word_split(const WordSplitOptions& o) {
  std::vector<std::vector<std::u32string>> lists;
  std::vector<std::string> names;
  for (const auto& wl : kWordLists) {
    lists.push_back(read_word_list(o.dir + "/" + wl.file, wl.encoding));
    names.emplace_back(wl.language);
  }
  return make_word_split(lists, names, o);
}

void write_split_tsv(const WordSplit& split, const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw DataError("word split: cannot write '" + path + "'");
  auto put = [&](const char* name, const std::vector<LabeledWord>& words) {
    for (const auto& w : words)
      f << name << '\t' << split.languages.at(static_cast<std::size_t>(w.label)) << '\t'
        << data::utf8_encode(std::vector<char32_t>(w.word.begin(), w.word.end())) << '\n';
  };
  put("train", split.train);
  put("validation", split.validation);
  put("test", split.test);
  if (!f.flush()) throw DataError("word split: cannot write '" + path + "'");
}

WordSplit read_split_tsv(const std::string& path) {
  const std::string bytes = data::read_text_file(path);
  WordSplit split;
  std::map<std::string, int> labels;
  std::istringstream in(bytes);
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const std::size_t a = line.find('\t'), b = a == std::string::npos ? a : line.find('\t', a + 1);
    if (b == std::string::npos)
      throw DataError("word split: '" + path + "' line " + std::to_string(line_no) +
                      ": expected split<TAB>language<TAB>word");
    const std::string which = line.substr(0, a), lang = line.substr(a + 1, b - a - 1);
    auto it = labels.find(lang);
    if (it == labels.end()) {
      it = labels.emplace(lang, static_cast<int>(split.languages.size())).first;
      split.languages.push_back(lang);
    }
    LabeledWord w{decode_utf8(line.substr(b + 1), "word split '" + path + "' line " +
                                                      std::to_string(line_no)),
                  it->second};
    if (which == "train") split.train.push_back(std::move(w));
    else if (which == "validation") split.validation.push_back(std::move(w));
    else if (which == "test") split.test.push_back(std::move(w));
    else
      throw DataError("word split: '" + path + "' line " + std::to_string(line_no) +
                      ": unknown split '" + which + "'");
  }
  return split;
}

std::u32string split_alphabet(const WordSplit& split) {
  std::set<char32_t> chars;
  for (const auto* part : {&split.train, &split.validation, &split.test})
    for (const auto& w : *part) chars.insert(w.word.begin(), w.word.end());
  return std::u32string(chars.begin(), chars.end());
}

}  // namespace xgrad::examples
