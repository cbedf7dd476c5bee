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
// The bytes are meant to be UTF-8; decode with decode_utf8 (common/utf8.hpp), which names the
// byte offset of any invalid sequence.
std::string read_corpus(const std::string& path = kFortunesDir);

// The first held-out position when the last `fraction` of n symbols is held out:
// n - llround(n * fraction), the same count as xgrad::data::split_sizes (data/data.hpp), so
// data::split(ids, 0.1, 0) gives the same parts. Positions [0, start) are training text.
std::size_t held_out_start(std::size_t n, double fraction = 0.1);

}  // namespace xgrad::examples
