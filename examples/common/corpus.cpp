#include "common/corpus.hpp"

#include <xgrad/autograd/errors.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace xgrad::examples {

namespace fs = std::filesystem;

namespace {

bool is_hidden(const fs::path& relative) {
  for (const auto& part : relative) {
    const std::string s = part.string();
    if (!s.empty() && s[0] == '.' && s != "." && s != "..") return true;
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DataError("corpus: cannot open '" + path + "'");
  std::ostringstream os;
  os << f.rdbuf();
  if (f.bad()) throw DataError("corpus: cannot read '" + path + "'");
  return os.str();
}

}  // namespace

std::vector<std::string> corpus_files(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw DataError("corpus: '" + path + "' does not exist");
  if (!fs::is_directory(st)) {
    if (!fs::is_regular_file(st)) throw DataError("corpus: '" + path + "' is not a regular file");
    return {path};
  }
  std::vector<std::pair<std::string, std::string>> found;  // (relative, full)
  fs::recursive_directory_iterator it(path, fs::directory_options::none, ec), end;
  if (ec) throw DataError("corpus: cannot list '" + path + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw DataError("corpus: cannot list '" + path + "': " + ec.message());
    const fs::directory_entry& e = *it;
    const fs::path rel = e.path().lexically_relative(path);
    if (is_hidden(rel)) {
      if (e.is_directory() && !e.is_symlink()) it.disable_recursion_pending();
      continue;
    }
    if (e.is_symlink() || !e.is_regular_file()) continue;  // a symlinked dir is not entered
    if (ends_with(e.path().filename().string(), ".dat")) continue;
    found.emplace_back(rel.generic_string(), e.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> files;
  for (auto& f : found) files.push_back(std::move(f.second));
  if (files.empty()) throw DataError("corpus: no text files in '" + path + "'");
  return files;
}

std::string read_corpus(const std::string& path) {
  std::string text;
  for (const auto& f : corpus_files(path)) text += read_file(f);
  if (text.empty()) throw DataError("corpus: no text in '" + path + "' (empty)");
  return text;
}

}  // namespace xgrad::examples
