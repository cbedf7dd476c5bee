// What the fuzz targets that load files share: a per-process scratch path (in memory when
// /dev/shm is writable) and writing the fuzzer's bytes there.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace xgrad::fuzz {

// /dev/shm/xgrad_<target>.<pid>, or under /tmp.
inline std::string temp_path(const std::string& target) {
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  return std::string(dir) + "/xgrad_" + target + "." + std::to_string(getpid());
}

// Writes bytes to path; false if any step failed.
inline bool write_file(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && written;
}

}  // namespace xgrad::fuzz
