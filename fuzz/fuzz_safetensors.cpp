// Fuzzes the safetensors loader: arbitrary bytes loaded into a small model (a bidirectional
// LSTM and a Linear) under both name schemes. The loader must either throw CheckpointError and
// leave every parameter bit for bit as it was, or succeed, and then only if the header is a JSON
// object naming exactly the tensors the scheme expects, with the parameters' shapes, and every
// parameter then holds the file's values (checked here by an independent reading of the header
// and data). Any other outcome abort()s.
//
// Each input is also tried with its first 8 bytes replaced by the length of the rest, so that
// the fuzzer reaches the JSON and the layout checks from any header text.
//
// XGRAD_FUZZ_WRITE_SEEDS=DIR fuzz_safetensors  writes the seed files into DIR and exits.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "fuzz_files.hpp"

using namespace xgrad;

namespace {

struct Model : nn::Module<float> {
  nn::LSTM<float> lstm{2, 2, nn::LSTMOptions().bidirectional()};  // Wx (8, 2), Wa (8, 2), b (8) ×2
  nn::Linear<float> fc{4, 2};                                       // weight (2, 4), bias (2)
  Model() {
    register_module("lstm", lstm);
    register_module("fc", fc);
  }
};

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_safetensors: " << what << std::endl;
  std::abort();
}

std::vector<Array<float>> values_of(const Model& m) {
  std::vector<Array<float>> out;
  for (const auto& p : m.parameters()) out.push_back(p.value());
  return out;
}

bool same_bits(const Array<float>& a, const Array<float>& b) {
  return a.shape() == b.shape() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// After a successful load: every tensor the scheme names is in the header with the parameter's
// shape, and the parameter holds its value (the LSTM biases: bias_ih + bias_hh).
void expect_from_file(const Model& m, const std::string& bytes, Names names) {
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  const nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n), nullptr, false);
  if (!h.is_object()) bug("a file whose header is not a JSON object loaded");
  std::size_t tensors = 0;
  for (const auto& [k, v] : h.items()) tensors += k != "__metadata__";
  auto value = [&](const std::string& name, std::size_t i) -> double {
    if (!h.contains(name)) bug("a file without tensor '" + name + "' loaded");
    const auto& e = h[name];
    const std::string dtype = e["dtype"];
    const std::size_t at = 8 + n + e["data_offsets"][0].get<std::size_t>();
    if (dtype == "F32") {
      float f;
      std::memcpy(&f, &bytes[at + 4 * i], 4);
      return f;
    }
    if (dtype == "BF16") {
      std::uint32_t u = 0;
      std::memcpy(reinterpret_cast<char*>(&u) + 2, &bytes[at + 2 * i], 2);
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    if (dtype == "F16") {
      std::uint16_t u;
      std::memcpy(&u, &bytes[at + 2 * i], 2);
      const int e16 = (u >> 10) & 31, mant = u & 1023;
      const double mag = e16 == 31 ? (mant ? NAN : INFINITY)
                                    : e16 == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, e16 - 25);
      return (u & 0x8000) ? -mag : mag;
    }
    bug("a file with dtype " + dtype + " loaded into a float model");
  };
  std::size_t expected = 0;
  for (const auto& [pn, p] : m.named_parameters()) {
    std::string tn = pn, zero;
    if (names == Names::pytorch && pn.rfind("lstm.layers.0.", 0) == 0) {
      const bool rev = pn.find(".reverse.") != std::string::npos;
      const std::string field = pn.substr(pn.find_last_of('.') + 1), suffix = rev ? "_l0_reverse" : "_l0";
      tn = "lstm." + std::string(field == "Wx" ? "weight_ih" : field == "Wa" ? "weight_hh" : "bias_ih") + suffix;
      if (field == "b") zero = "lstm.bias_hh" + suffix;
    }
    for (const std::string& t : {tn, zero}) {
      if (t.empty()) continue;
      ++expected;
      if (!h.contains(t) || h[t]["shape"].get<std::vector<std::size_t>>() !=
                                std::vector<std::size_t>(p.shape().begin(), p.shape().end()))
        bug("tensor '" + t + "' is missing or of another shape, yet the file loaded");
    }
    const Array<float>& v = p.value();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const float want = zero.empty() ? float(value(tn, i)) : [&] {
        const float a = float(value(tn, i)), b = float(value(zero, i));
        return b == 0 ? a : a + b;
      }();
      if (std::memcmp(&want, &v.data()[i], 4) != 0 && !(std::isnan(want) && std::isnan(v.data()[i])))
        bug("parameter '" + pn + "' is not the file's value");
    }
  }
  if (tensors != expected) bug("a file with tensors the model does not have loaded");
}

std::string temp_path() { return xgrad::fuzz::temp_path("fuzz_safetensors"); }

void write_file(const std::string& path, const std::string& bytes) {
  if (!xgrad::fuzz::write_file(path, bytes)) bug("cannot write " + path);
}

struct Fixture {
  Model model;
  std::vector<Array<float>> initial = values_of(model);
  std::string path = temp_path();
};

Fixture& fixture() {
  static Fixture* f = [] {
    nn::manual_seed(7);
    return new Fixture;
  }();
  return *f;
}

void check(const std::string& bytes) {
  Fixture& fx = fixture();
  write_file(fx.path, bytes);
  for (Names names : {Names::xgrad, Names::pytorch}) {
    const auto params = fx.model.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) params[i].set_value(fx.initial[i]);
    try {
      load_safetensors(fx.model, fx.path, names);
      expect_from_file(fx.model, bytes, names);
    } catch (const CheckpointError&) {
      const auto now = values_of(fx.model);
      for (std::size_t i = 0; i < now.size(); ++i)
        if (!same_bits(now[i], fx.initial[i])) bug("a refused file changed parameter " + std::to_string(i));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("XGRAD_FUZZ_WRITE_SEEDS")) {
    Fixture& fx = fixture();
    save_safetensors(fx.model, std::string(dir) + "/xgrad_names.safetensors", Names::xgrad);
    save_safetensors(fx.model, std::string(dir) + "/pytorch_names.safetensors", Names::pytorch);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  check(bytes);
  if (size >= 8) {
    std::string fixed = bytes;
    // The header length as the whole rest, or as far as the last '}' (header and data).
    const std::size_t close = bytes.find_last_of('}');
    const std::uint64_t n = close != std::string::npos && close >= 8 ? close - 7 : size - 8;
    std::memcpy(&fixed[0], &n, 8);
    if (fixed != bytes) check(fixed);
  }
  return 0;
}
