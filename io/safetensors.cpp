#include "safetensors.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "../layers/sequence.hpp"
#include "checkpoint.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "xgrad reads and writes safetensors on little-endian hosts only"
#endif

#ifndef XGRAD_VERSION
#define XGRAD_VERSION "unknown"
#endif

namespace xgrad {
namespace {

using Json = nlohmann::ordered_json;

// The largest header read: real headers are a few hundred bytes per tensor.
constexpr std::uint64_t kMaxHeader = 100'000'000;
constexpr std::size_t kMaxRank = 64;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw CheckpointError("safetensors '" + path + "': " + what);
}

// ---- the names

// A parameter and the file tensor(s) it is stored as.
template <class T>
struct Binding {
  std::string param;   // its xgrad name
  Var<T> var;
  std::string tensor;  // its name in the file
  std::string zero;    // "" or a second tensor, written 0 and added to `tensor` on load
};

// The file names of one cell's parameters in PyTorch's scheme; b_hh null: one bias, summed.
struct CellNames {
  const char* w_ih;
  const char* w_hh;
  const char* b_ih;
  const char* b_hh;
};

using Renames = std::map<std::string, std::pair<std::string, std::string>>;  // xgrad -> (tensor, zero)

// If m is a Recurrent of Cell registered at `prefix`, records its PyTorch names.
template <class Cell, class T>
bool rename_recurrent(const nn::Module<T>& m, const std::string& prefix, const CellNames& n, Renames& out) {
  const auto* r = dynamic_cast<const nn::Recurrent<Cell>*>(&m);
  if (!r) return false;
  for (std::size_t k = 0; k < r->num_layers(); ++k)
    for (std::size_t d = 0; d < r->directions(); ++d) {
      const std::string cell = prefix + "layers." + std::to_string(k) + (d ? ".reverse." : ".");
      const std::string suffix = "_l" + std::to_string(k) + (d ? "_reverse" : "");
      out[cell + n.w_ih] = {prefix + "weight_ih" + suffix, ""};
      out[cell + n.w_hh] = {prefix + "weight_hh" + suffix, ""};
      if (n.b_hh) {
        out[cell + n.b_ih] = {prefix + "bias_ih" + suffix, ""};
        out[cell + n.b_hh] = {prefix + "bias_hh" + suffix, ""};
      } else {
        out[cell + n.b_ih] = {prefix + "bias_ih" + suffix, prefix + "bias_hh" + suffix};
      }
    }
  return true;
}

template <class T>
void rename_pytorch(const nn::Module<T>& m, const std::string& prefix, Renames& out) {
  if (rename_recurrent<nn::RNNCell<T>>(m, prefix, {"Wax", "Waa", "ba", nullptr}, out) ||
      rename_recurrent<nn::LSTMCell<T>>(m, prefix, {"Wx", "Wa", "b", nullptr}, out) ||
      rename_recurrent<nn::GRUCell<T>>(m, prefix, {"Wx", "Wa", "bx", "ba"}, out))
    return;
  for (const auto& [name, child] : m.named_children()) rename_pytorch(*child, prefix + name + ".", out);
}

template <class T>
std::vector<Binding<T>> bindings(const nn::Module<T>& module, Names names, const std::string& path) {
  Renames renames;
  if (names == Names::pytorch) rename_pytorch(module, "", renames);
  std::vector<Binding<T>> out;
  std::map<std::string, std::string> owner;  // file name -> parameter
  auto claim = [&](const std::string& tensor, const std::string& param) {
    if (tensor == "__metadata__" || !owner.emplace(tensor, param).second)
      fail(path, "parameters '" + (tensor == "__metadata__" ? std::string("(the format's own entry)") : owner[tensor]) +
                     "' and '" + param + "' would both be stored as tensor '" + tensor + "'");
  };
  for (const auto& [name, var] : module.named_parameters()) {
    Binding<T> b{name, var, name, ""};
    if (auto it = renames.find(name); it != renames.end()) std::tie(b.tensor, b.zero) = it->second;
    claim(b.tensor, name);
    if (!b.zero.empty()) claim(b.zero, name);
    out.push_back(std::move(b));
  }
  return out;
}

// "'lstm.weight_ih_l0' (lstm.layers.0.Wx)" when the names differ.
template <class T>
std::string describe(const Binding<T>& b, const std::string& tensor) {
  return "'" + tensor + "'" + (tensor == b.param ? std::string() : " (the model's '" + b.param + "')");
}

// ---- dtypes

struct Dtype {
  const char* name;
  std::size_t size;
};
constexpr Dtype kDtypes[] = {{"F64", 8},     {"F32", 4},     {"F16", 2},     {"BF16", 2}, {"I64", 8},
                             {"I32", 4},     {"I16", 2},     {"I8", 1},      {"U64", 8},  {"U32", 4},
                             {"U16", 2},     {"U8", 1},      {"BOOL", 1},    {"F8_E5M2", 1}, {"F8_E4M3", 1}};

const Dtype* find_dtype(const std::string& name) {
  for (const Dtype& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

template <class T>
constexpr const char* dtype_of() {
  return std::is_same_v<T, float> ? "F32" : "F64";
}

// Whether a tensor of dtype `d` converts to T exactly.
template <class T>
bool converts_exactly(const std::string& d) {
  return d == "F32" || d == "F16" || d == "BF16" || (d == "F64" && std::is_same_v<T, double>);
}

// IEEE binary16 -> binary32, exact (subnormals, infinities and NaN payloads included).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else {
    const float v = std::ldexp(float(mant), -24);  // zero or subnormal: mant · 2^-24
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat16_to_float(std::uint16_t h) {
  const std::uint32_t bits = std::uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ---- reading

struct Entry {
  std::string name;
  std::string dtype;
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // into the data section
};

struct File {
  std::string path;
  std::vector<char> bytes;
  std::size_t data = 0;  // where the data section starts
  std::vector<Entry> entries;

  const Entry* find(const std::string& name) const {
    for (const Entry& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  }
};

// A JSON value for a message, cut short.
std::string brief(const Json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::uint64_t unsigned_of(const File& f, const std::string& name, const Json& v, const char* what) {
  if (!v.is_number_unsigned()) fail(f.path, "tensor '" + name + "': " + what + " " + brief(v) + " is not an unsigned integer");
  return v.get<std::uint64_t>();
}

Entry read_entry(const File& f, const std::string& name, const Json& v, std::uint64_t data_size) {
  if (!v.is_object()) fail(f.path, "tensor '" + name + "': its entry is " + brief(v) + ", not an object");
  for (const auto& [key, value] : v.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail(f.path, "tensor '" + name + "': unknown field '" + key + "'");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) fail(f.path, "tensor '" + name + "': no '" + key + "'");
  Entry e;
  e.name = name;
  const Json& dtype = v["dtype"];
  if (!dtype.is_string()) fail(f.path, "tensor '" + name + "': dtype " + brief(dtype) + " is not a string");
  e.dtype = dtype.get<std::string>();
  const Dtype* dt = find_dtype(e.dtype);
  if (!dt) fail(f.path, "tensor '" + name + "': unknown dtype '" + e.dtype + "'");

  const Json& shape = v["shape"];
  if (!shape.is_array() || shape.size() > kMaxRank)
    fail(f.path, "tensor '" + name + "': shape " + brief(shape) + " is not a list of at most " +
                     std::to_string(kMaxRank) + " dimensions");
  // The byte count, computed only while it fits the data section, so that it cannot overflow.
  std::uint64_t count = 1;
  bool empty = false, too_large = false;
  for (const Json& d : shape) {
    const std::uint64_t n = unsigned_of(f, name, d, "dimension");
    e.shape.push_back(std::size_t(n));
    if (n == 0) empty = true;
    else if (count > data_size / n) too_large = true;
    else count *= n;
  }
  if (empty) count = 0;
  const Json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail(f.path, "tensor '" + name + "': data_offsets " + brief(offsets) + " is not a pair [begin, end]");
  e.begin = unsigned_of(f, name, offsets[0], "offset");
  e.end = unsigned_of(f, name, offsets[1], "offset");
  if (e.begin > e.end || e.end > data_size)
    fail(f.path, "tensor '" + name + "': data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] lie outside the data section of " + std::to_string(data_size) + " bytes");
  if ((too_large && !empty) || count * dt->size != e.end - e.begin)
    fail(f.path, "tensor '" + name + "': shape " + shape_str(e.shape) + " of " + e.dtype + " needs " +
                     (too_large && !empty ? std::string("more bytes than the file holds")
                                          : std::to_string(count * dt->size) + " bytes") +
                     ", but data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
                     std::to_string(e.end - e.begin));
  return e;
}

// The byte ranges must cover the data section exactly once.
void check_layout(const File& f, std::uint64_t data_size) {
  std::vector<const Entry*> order;
  for (const Entry& e : f.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return std::tie(a->begin, a->end) < std::tie(b->begin, b->end); });
  std::uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : order) {
    if (e->begin < pos)
      fail(f.path, "tensor '" + e->name + "' [" + std::to_string(e->begin) + ", " + std::to_string(e->end) +
                       ") overlaps tensor '" + prev->name + "' [" + std::to_string(prev->begin) + ", " +
                       std::to_string(prev->end) + ")");
    if (e->begin > pos)
      fail(f.path, "bytes [" + std::to_string(pos) + ", " + std::to_string(e->begin) +
                       ") of the data section belong to no tensor (a gap before tensor '" + e->name + "')");
    pos = e->end;
    prev = e;
  }
  if (pos != data_size)
    fail(f.path, "bytes [" + std::to_string(pos) + ", " + std::to_string(data_size) +
                     ") at the end of the data section belong to no tensor");
}

File read_file(const std::string& path) {
  File f;
  f.path = path;
  f.bytes = detail::read_bytes(path, "safetensors");

  const std::size_t size = f.bytes.size();
  if (size < 8)
    fail(path, "truncated: the file has " + std::to_string(size) + " bytes, less than the 8-byte header length");
  std::uint64_t n;
  std::memcpy(&n, f.bytes.data(), 8);
  if (n > size - 8)
    fail(path, "truncated: the header length " + std::to_string(n) + " runs past the end of the file (" +
                   std::to_string(size - 8) + " bytes follow it)");
  if (n > kMaxHeader)
    fail(path, "the header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeader) +
                   " bytes");
  const char* header = f.bytes.data() + 8;
  if (n == 0 || header[0] != '{') fail(path, "the header is not a JSON object (it does not start with '{')");
  f.data = 8 + std::size_t(n);
  const std::uint64_t data_size = size - f.data;

  // Duplicate names are refused while parsing (a JSON object would keep only the last), and the
  // nesting is bounded: an entry is {"shape": [..]} inside the header's object.
  std::set<std::string> seen;
  const Json::parser_callback_t cb = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > 3) fail(path, "the header nests deeper than a safetensors header does");
    if (event == Json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
      fail(path, "tensor '" + parsed.get<std::string>() + "' appears twice in the header");
    return true;
  };
  Json j;
  try {
    j = Json::parse(header, header + n, cb);
  } catch (const Json::exception& e) {
    fail(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(path, "the header is not a JSON object");
  for (const auto& [name, v] : j.items()) {
    if (name == "__metadata__") continue;  // free-form, ignored
    f.entries.push_back(read_entry(f, name, v, data_size));
  }
  check_layout(f, data_size);
  return f;
}

// The entry's values as T (converts_exactly<T> checked before).
template <class T>
Array<T> values_of(const File& f, const Entry& e) {
  Array<T> a = Array<T>::from_shape(e.shape);
  const char* p = f.bytes.data() + f.data + e.begin;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (e.dtype == "F64") {
      double v;
      std::memcpy(&v, p + 8 * i, 8);
      a.data()[i] = static_cast<T>(v);
    } else if (e.dtype == "F32") {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      a.data()[i] = v;
    } else {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      a.data()[i] = e.dtype == "F16" ? half_to_float(h) : bfloat16_to_float(h);
    }
  }
  return a;
}

template <class T>
Array<T> checked_values(const File& f, const Binding<T>& b, const std::string& tensor) {
  const Entry& e = *f.find(tensor);
  if (!converts_exactly<T>(e.dtype))
    fail(f.path, "tensor " + describe(b, tensor) + " has dtype " + e.dtype + ", which does not convert exactly to the model's " +
                     dtype_of<T>() + " (F32, F16, BF16" + (std::is_same_v<T, double> ? ", F64" : "") + " do)");
  if (!std::equal(e.shape.begin(), e.shape.end(), b.var.shape().begin(), b.var.shape().end()))
    fail(f.path, "tensor " + describe(b, tensor) + " has shape " + shape_str(e.shape) + " in the file, but " +
                     shape_str(b.var.shape()) + " in the model");
  return values_of<T>(f, e);
}

std::string list(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

// The file's tensors are exactly the bindings' names.
template <class T>
void check_names(const File& f, const std::vector<Binding<T>>& bs) {
  std::vector<std::string> missing, unexpected;
  std::set<std::string> expected;
  for (const Binding<T>& b : bs)
    for (const std::string* t : {&b.tensor, &b.zero}) {
      if (t->empty()) continue;
      expected.insert(*t);
      if (!f.find(*t)) missing.push_back(describe(b, *t));
    }
  for (const Entry& e : f.entries)
    if (!expected.count(e.name)) unexpected.push_back("'" + e.name + "'");
  if (missing.empty() && unexpected.empty()) return;
  std::string msg = "does not fit the model (the file has " + std::to_string(f.entries.size()) +
                    " tensors, the model needs " + std::to_string(expected.size()) + ")";
  if (!missing.empty()) msg += "; missing from the file: " + list(missing);
  if (!unexpected.empty()) msg += "; not in the model: " + list(unexpected);
  fail(f.path, msg);
}

void append_bytes(std::string& data, Json& header, const std::string& name, const char* dtype, const void* p,
                  std::size_t bytes, const Shape& shape) {
  header[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + bytes}}};
  data.append(static_cast<const char*>(p), bytes);
}

}  // namespace

template <class T>
void save_safetensors(const nn::Module<T>& module, const std::string& path, Names names) {
  const std::vector<Binding<T>> bs = bindings(module, names, path);
  Json header;
  header["__metadata__"] = {{"format", "pt"}, {"library", std::string("xgrad ") + XGRAD_VERSION}};
  std::string data;
  for (const Binding<T>& b : bs) {
    const Array<T>& v = b.var.value();
    const Shape shape(v.shape().begin(), v.shape().end());
    append_bytes(data, header, b.tensor, dtype_of<T>(), v.data(), v.size() * sizeof(T), shape);
    if (!b.zero.empty()) {
      const std::vector<T> zeros(v.size(), T(0));
      append_bytes(data, header, b.zero, dtype_of<T>(), zeros.data(), zeros.size() * sizeof(T), shape);
    }
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section 8-byte aligned
  const std::uint64_t n = text.size();
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  bytes += text;
  bytes += data;
  detail::write_atomically(path, bytes);
}

template <class T>
void load_safetensors(nn::Module<T>& module, const std::string& path, Names names) {
  const File f = read_file(path);
  const std::vector<Binding<T>> bs = bindings(module, names, path);
  check_names(f, bs);
  std::vector<Array<T>> values;
  for (const Binding<T>& b : bs) {
    Array<T> v = checked_values(f, b, b.tensor);
    if (!b.zero.empty()) {
      const Array<T> hh = checked_values(f, b, b.zero);
      // x + 0 is x except for x = -0: a bias saved with its zero partner comes back bit for bit.
      for (std::size_t i = 0; i < v.size(); ++i)
        if (hh.data()[i] != T(0)) v.data()[i] += hh.data()[i];
    }
    values.push_back(std::move(v));
  }
  for (std::size_t i = 0; i < bs.size(); ++i) bs[i].var.set_value(values[i]);
}

template void save_safetensors(const nn::Module<float>&, const std::string&, Names);
template void save_safetensors(const nn::Module<double>&, const std::string&, Names);
template void load_safetensors(nn::Module<float>&, const std::string&, Names);
template void load_safetensors(nn::Module<double>&, const std::string&, Names);

}  // namespace xgrad
