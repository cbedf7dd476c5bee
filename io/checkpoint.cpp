#include "checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "xgrad checkpoints are read and written on little-endian hosts only"
#endif

namespace xgrad {
namespace {

constexpr char kMagic[8] = {'X', 'G', 'R', 'A', 'D', 'C', 'K', 'P'};
constexpr std::size_t kHeaderSize = 32;
constexpr std::uint32_t kMaxDims = 32;
enum Type : std::uint8_t { kFloat32 = 1, kFloat64 = 2, kInt64 = 3, kDouble = 4, kString = 5 };

const char* type_name(std::uint8_t t) {
  switch (t) {
    case kFloat32: return "a float32 tensor";
    case kFloat64: return "a float64 tensor";
    case kInt64: return "an int64";
    case kDouble: return "a float64 number";
    case kString: return "a string";
    default: return "of unknown type";
  }
}

template <class T>
constexpr std::uint8_t tensor_type() {
  return std::is_same_v<T, float> ? kFloat32 : kFloat64;
}
constexpr const char* elem_name(std::uint8_t t) { return t == kFloat32 ? "float32" : "float64"; }

std::uint64_t fnv1a64(const char* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError("checkpoint '" + path + "': " + what);
}

// ---- writing

class Writer {
 public:
  Writer() { buf_.assign(kHeaderSize + 8, '\0'); }
  template <class V>
  void pod(V v) {
    buf_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void name(const std::string& n, std::uint8_t type) {
    pod(std::uint32_t(n.size()));
    buf_ += n;
    pod(type);
    ++count_;
  }
  template <class T>
  void tensor(const std::string& n, const Array<T>& a) {
    name(n, tensor_type<T>());
    pod(std::uint32_t(a.dimension()));
    for (auto d : a.shape()) pod(std::uint64_t(d));
    buf_.append(reinterpret_cast<const char*>(a.data()), a.size() * sizeof(T));
  }
  void value(const std::string& n, const CheckpointValue& v) {
    if (auto i = std::get_if<std::int64_t>(&v)) {
      name(n, kInt64);
      pod(*i);
    } else if (auto d = std::get_if<double>(&v)) {
      name(n, kDouble);
      pod(*d);
    } else if (auto s = std::get_if<std::string>(&v)) {
      name(n, kString);
      pod(std::uint64_t(s->size()));
      buf_ += *s;
    } else if (auto f = std::get_if<Array<float>>(&v)) {
      tensor(n, *f);
    } else {
      tensor(n, std::get<Array<double>>(v));
    }
  }
  // Header + payload.
  const std::string& finish() {
    std::memcpy(&buf_[kHeaderSize], &count_, 8);
    const std::uint64_t size = buf_.size() - kHeaderSize;
    const std::uint64_t sum = fnv1a64(buf_.data() + kHeaderSize, size);
    const std::uint32_t version = kCheckpointVersion, flags = 0;
    std::memcpy(&buf_[0], kMagic, 8);
    std::memcpy(&buf_[8], &version, 4);
    std::memcpy(&buf_[12], &flags, 4);
    std::memcpy(&buf_[16], &size, 8);
    std::memcpy(&buf_[24], &sum, 8);
    return buf_;
  }

 private:
  std::string buf_;
  std::uint64_t count_ = 0;
};

}  // namespace

std::vector<char> detail::read_bytes(const std::string& path, const char* kind) {
  auto fail_read = [&](const std::string& what) {
    throw CheckpointError(std::string(kind) + " '" + path + "': " + what);
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail_read(std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail_read("is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_read(std::string("cannot open: ") + std::strerror(errno));
  std::vector<char> bytes(std::istreambuf_iterator<char>(in), {});
  if (in.bad()) fail_read("read error");
  return bytes;
}

// Writes `bytes` to "<path>.tmp", fsyncs, renames it over `path`, fsyncs the directory.
void detail::write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create temporary file '" + tmp + "': " + std::strerror(errno));
  auto abandon = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, what + ": " + std::strerror(err) + " (the previous checkpoint, if any, is unchanged)");
  };
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      abandon("writing '" + tmp + "' failed after " + std::to_string(done) + " of " + std::to_string(bytes.size()) +
              " bytes");
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) abandon("fsync of '" + tmp + "' failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "closing '" + tmp + "' failed: " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, "renaming '" + tmp + "' over it failed: " + std::strerror(err));
  }
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {  // makes the rename durable; the data is already safe if this fails
    ::fsync(dfd);
    ::close(dfd);
  }
}

namespace {

template <class T>
void write_params(Writer& w, const nn::Module<T>& module) {
  for (const auto& [n, p] : module.named_parameters()) w.tensor("param/" + n, p.value());
}

void write_extra(Writer& w, const CheckpointExtra& extra) {
  for (const auto& [k, v] : extra) w.value("extra/" + k, v);
}

// ---- reading

struct Record {
  std::uint8_t type = 0;
  Shape shape;
  const char* data = nullptr;  // tensor elements, into File::bytes
  std::size_t count = 0;
  std::int64_t i = 0;
  double d = 0;
  std::string s;
};

struct File {
  std::string path;
  std::vector<char> bytes;
  std::vector<std::pair<std::string, Record>> records;  // file order

  const Record* find(const std::string& name) const {
    for (const auto& [n, r] : records)
      if (n == name) return &r;
    return nullptr;
  }
};

class Reader {
 public:
  Reader(const File& f, std::size_t begin) : f_(f), pos_(begin) {}
  template <class V>
  V pod(const char* what) {
    need(sizeof(V), what);
    V v;
    std::memcpy(&v, f_.bytes.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string str(std::uint64_t n, const char* what) {
    need(n, what);
    std::string s(f_.bytes.data() + pos_, n);
    pos_ += n;
    return s;
  }
  const char* take(std::uint64_t n, const char* what) {
    need(n, what);
    const char* p = f_.bytes.data() + pos_;
    pos_ += n;
    return p;
  }
  std::size_t remaining() const { return f_.bytes.size() - pos_; }

 private:
  void need(std::uint64_t n, const char* what) {
    if (n > remaining())
      fail(f_.path, std::string("malformed: ") + what + " at byte " + std::to_string(pos_) + " needs " +
                        std::to_string(n) + " bytes, " + std::to_string(remaining()) + " remain");
  }
  const File& f_;
  std::size_t pos_;
};

// Reads the file and checks its header, size, checksum and record structure.
File read_file(const std::string& path) {
  File f;
  f.path = path;
  f.bytes = detail::read_bytes(path, "checkpoint");

  const std::size_t size = f.bytes.size();
  if (size < kHeaderSize)
    fail(path, "truncated: the file has " + std::to_string(size) + " bytes, less than the " +
                   std::to_string(kHeaderSize) + "-byte header");
  if (std::memcmp(f.bytes.data(), kMagic, 8) != 0) fail(path, "not an xgrad checkpoint (wrong magic number)");
  Reader h(f, 8);
  const auto version = h.pod<std::uint32_t>("version");
  const auto flags = h.pod<std::uint32_t>("flags");
  const auto payload = h.pod<std::uint64_t>("payload size");
  const auto stored = h.pod<std::uint64_t>("checksum");
  if (version > kCheckpointVersion)
    fail(path, "format version " + std::to_string(version) + " is newer than this build of xgrad reads (" +
                   std::to_string(kCheckpointVersion) + ")");
  if (version == 0) fail(path, "invalid format version 0");
  if (flags != 0) fail(path, "corrupt header: unknown flags " + hex(flags));
  if (payload != size - kHeaderSize)
    fail(path, (payload > size - kHeaderSize ? "truncated: " : "corrupt: ") + std::string("the header announces ") +
                   std::to_string(payload) + " payload bytes, the file holds " + std::to_string(size - kHeaderSize));
  const std::uint64_t sum = fnv1a64(f.bytes.data() + kHeaderSize, payload);
  if (sum != stored)
    fail(path, "checksum mismatch (stored " + hex(stored) + ", computed " + hex(sum) + "): the file is corrupt");

  Reader r(f, kHeaderSize);
  const auto count = r.pod<std::uint64_t>("record count");
  for (std::uint64_t k = 0; k < count; ++k) {
    const auto name_len = r.pod<std::uint32_t>("name length");
    std::string name = r.str(name_len, "record name");
    Record rec;
    rec.type = r.pod<std::uint8_t>("record type");
    switch (rec.type) {
      case kFloat32:
      case kFloat64: {
        const auto ndim = r.pod<std::uint32_t>("tensor rank");
        if (ndim > kMaxDims) fail(path, "malformed: tensor '" + name + "' has rank " + std::to_string(ndim));
        std::uint64_t n = 1;
        for (std::uint32_t a = 0; a < ndim; ++a) {
          const auto d = r.pod<std::uint64_t>("tensor dimension");
          if (d != 0 && n > r.remaining() / d) fail(path, "malformed: tensor '" + name + "' is larger than the file");
          n *= d;
          rec.shape.push_back(std::size_t(d));
        }
        const std::size_t elem = rec.type == kFloat32 ? 4 : 8;
        if (n > r.remaining() / elem) fail(path, "malformed: tensor '" + name + "' is larger than the file");
        rec.count = std::size_t(n);
        rec.data = r.take(n * elem, "tensor data");
        break;
      }
      case kInt64: rec.i = r.pod<std::int64_t>("int64 value"); break;
      case kDouble: rec.d = r.pod<double>("float64 value"); break;
      case kString: {
        const auto n = r.pod<std::uint64_t>("string length");
        rec.s = r.str(n, "string value");
        break;
      }
      default: fail(path, "malformed: record '" + name + "' has unknown type " + std::to_string(rec.type));
    }
    if (f.find(name)) fail(path, "malformed: record '" + name + "' appears twice");
    f.records.emplace_back(std::move(name), std::move(rec));
  }
  if (r.remaining() != 0) fail(path, "malformed: " + std::to_string(r.remaining()) + " bytes after the last record");
  return f;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

template <class S>
bool same_shape(const Shape& a, const S& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

template <class T>
Array<T> to_array(const Record& r) {
  Array<T> a = Array<T>::from_shape(r.shape);
  if (r.count) std::memcpy(a.data(), r.data, r.count * sizeof(T));
  return a;
}

// Checks that the file's "param/" records are exactly the module's parameters, with T's
// element type and the same shapes.
template <class T>
void check_params(const File& f, const nn::Module<T>& module) {
  const auto named = module.named_parameters();
  std::vector<std::string> missing, unexpected;
  for (const auto& [n, p] : named)
    if (!f.find("param/" + n)) missing.push_back(n);
  std::size_t in_file = 0;
  for (const auto& [n, r] : f.records) {
    if (!starts_with(n, "param/")) continue;
    ++in_file;
    const std::string pn = n.substr(6);
    bool found = false;
    for (const auto& [mn, p] : named) found = found || mn == pn;
    if (!found) unexpected.push_back(pn);
  }
  if (!missing.empty() || !unexpected.empty()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", '" : "'") + v[i] + "'";
      if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
      return s;
    };
    std::string msg = "does not fit the model (the file has " + std::to_string(in_file) + " parameters, the model " +
                      std::to_string(named.size()) + ")";
    if (!missing.empty()) msg += "; missing from the file: " + list(missing);
    if (!unexpected.empty()) msg += "; not in the model: " + list(unexpected);
    fail(f.path, msg);
  }
  for (const auto& [n, p] : named) {
    const Record& r = *f.find("param/" + n);
    if (r.type != kFloat32 && r.type != kFloat64)
      fail(f.path, "parameter '" + n + "' is " + type_name(r.type) + " in the file, not a tensor");
    if (r.type != tensor_type<T>())
      fail(f.path, "parameter '" + n + "' has element type " + elem_name(r.type) + " in the file, but the model's is " +
                       elem_name(tensor_type<T>()));
    if (!same_shape(r.shape, p.shape()))
      fail(f.path, "parameter '" + n + "' has shape " + shape_str(r.shape) + " in the file, but " +
                       shape_str(p.shape()) + " in the model");
  }
}

template <class T>
void apply_params(const File& f, nn::Module<T>& module) {
  for (const auto& [n, p] : module.named_parameters()) {
    const Record& r = *f.find("param/" + n);
    if (r.count) std::memcpy(p.mutable_value().data(), r.data, r.count * sizeof(T));
  }
}

CheckpointExtra read_extra(const File& f) {
  CheckpointExtra extra;
  for (const auto& [n, r] : f.records) {
    if (!starts_with(n, "extra/")) continue;
    const std::string key = n.substr(6);
    switch (r.type) {
      case kInt64: extra[key] = r.i; break;
      case kDouble: extra[key] = r.d; break;
      case kString: extra[key] = r.s; break;
      case kFloat32: extra[key] = to_array<float>(r); break;
      case kFloat64: extra[key] = to_array<double>(r); break;
      default: fail(f.path, "extra value '" + key + "' is " + type_name(r.type));
    }
  }
  return extra;
}

template <class T>
const Record& require(const File& f, const std::string& name, std::uint8_t type, const char* what) {
  const Record* r = f.find(name);
  if (!r) fail(f.path, std::string("has no ") + what + " (record '" + name + "'): it was saved without it");
  if (r->type != type)
    fail(f.path, "record '" + name + "' is " + type_name(r->type) + ", expected " + type_name(type));
  return *r;
}

}  // namespace

template <class T>
void save(const nn::Module<T>& module, const std::string& path, const CheckpointExtra& extra) {
  Writer w;
  write_params(w, module);
  write_extra(w, extra);
  detail::write_atomically(path, w.finish());
}

template <class T>
CheckpointExtra load(nn::Module<T>& module, const std::string& path) {
  const File f = read_file(path);
  check_params(f, module);
  CheckpointExtra extra = read_extra(f);
  apply_params(f, module);
  return extra;
}

template <class T>
void save(const nn::Module<T>& module, const optim::Optimizer<T>& opt, const std::string& path,
          const CheckpointExtra& extra) {
  Writer w;
  write_params(w, module);
  const optim::OptimizerState<T> s = opt.state();
  w.value("optim/kind", s.kind);
  w.value("optim/step", std::int64_t(s.step));
  w.value("optim/lr", s.lr);
  for (const auto& [n, a] : s.arrays) w.tensor("optim/" + n, a);
  std::ostringstream rng;
  rng << nn::generator();
  w.value("rng/generator", rng.str());
  write_extra(w, extra);
  detail::write_atomically(path, w.finish());
}

template <class T>
CheckpointExtra load(nn::Module<T>& module, optim::Optimizer<T>& opt, const std::string& path) {
  const File f = read_file(path);
  check_params(f, module);

  optim::OptimizerState<T> s;
  s.kind = require<T>(f, "optim/kind", kString, "optimizer state").s;
  s.step = require<T>(f, "optim/step", kInt64, "optimizer step count").i;
  s.lr = require<T>(f, "optim/lr", kDouble, "optimizer learning rate").d;
  for (const auto& [n, r] : f.records) {
    if (!starts_with(n, "optim/") || n == "optim/kind" || n == "optim/step" || n == "optim/lr") continue;
    if (r.type != tensor_type<T>())
      fail(path, "optimizer buffer '" + n.substr(6) + "' is " + type_name(r.type) + " in the file, expected " +
                     type_name(tensor_type<T>()));
    s.arrays.emplace_back(n.substr(6), to_array<T>(r));
  }
  const std::string err = opt.check_state(s);
  if (!err.empty()) fail(path, err);

  std::mt19937_64 gen;
  std::istringstream rng(require<T>(f, "rng/generator", kString, "random-number state").s);
  rng >> gen;
  if (rng.fail()) fail(path, "the random-number state 'rng/generator' cannot be parsed");

  CheckpointExtra extra = read_extra(f);
  apply_params(f, module);
  opt.load_state(s);
  nn::generator() = gen;
  return extra;
}

CheckpointExtra load_extra(const std::string& path) { return read_extra(read_file(path)); }

template void save(const nn::Module<float>&, const std::string&, const CheckpointExtra&);
template void save(const nn::Module<double>&, const std::string&, const CheckpointExtra&);
template CheckpointExtra load(nn::Module<float>&, const std::string&);
template CheckpointExtra load(nn::Module<double>&, const std::string&);
template void save(const nn::Module<float>&, const optim::Optimizer<float>&, const std::string&, const CheckpointExtra&);
template void save(const nn::Module<double>&, const optim::Optimizer<double>&, const std::string&,
                   const CheckpointExtra&);
template CheckpointExtra load(nn::Module<float>&, optim::Optimizer<float>&, const std::string&);
template CheckpointExtra load(nn::Module<double>&, optim::Optimizer<double>&, const std::string&);

}  // namespace xgrad
