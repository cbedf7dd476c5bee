// The text corpus of char_lm: by default the fortune-cookie files of Debian's `fortunes`
// package, or a user-given FILE or DIR read by the same rule.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace xgrad::examples {

inline const char* const kFortunesDir = "/usr/share/games/fortunes";

// The files read for `path`, in reading order. A file is itself (whatever its name). A
// directory is walked recursively, keeping regular files that are
//   - not symbolic links: Debian ships `X.u8 -> X` for every fortune file X, the same text
//     again (strfile's UTF-8 alias), so following links would read everything twice;
//   - not named *.dat: those are strfile's binary indexes of the fortunes, not text;
//   - not hidden (no path component starting with '.'), and not in a symlinked directory;
// sorted by their path relative to `path` ('/'-separated, compared bytewise, which for UTF-8
// names is code point order, as Python's sorted()). bench/char_lm_torch.py uses the same rule.
// Throws xgrad::DataError naming the path if it does not exist or holds no such file.
std::vector<std::string> corpus_files(const std::string& path = kFortunesDir);

// The bytes of corpus_files(path) concatenated, unchanged (fortunes keep their "%" separator
// lines). Throws xgrad::DataError naming the path if it is missing, unreadable or has no text.
// The bytes are meant to be UTF-8 (data::Vocab::from_text names the byte offset of any invalid
// sequence).
std::string read_corpus(const std::string& path = kFortunesDir);

}  // namespace xgrad::examples
