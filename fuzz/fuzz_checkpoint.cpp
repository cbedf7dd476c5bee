// Fuzzes the checkpoint loader: arbitrary bytes loaded into a small model and its Adam
// optimizer. The loader must either throw CheckpointError and leave model, optimizer and
// random-number generator exactly as they were, or succeed, and then only if the file is
// entirely valid by the format of io/checkpoint.hpp, checked here by an independent reader,
// and with every value taken from the file. Any other outcome abort()s.
//
// Random bytes almost never carry a correct checksum, so each input is also tried with its
// header's payload size and checksum repaired: that lets the fuzzer reach the record parser.
//
// XGRAD_FUZZ_WRITE_SEEDS=DIR fuzz_checkpoint  writes the seed checkpoints into DIR and exits.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "fuzz_files.hpp"

using namespace xgrad;

namespace {

struct Model : nn::Module<float> {
  nn::RNNCell<float> cell{3, 2};  // Wax (2, 3), Waa (2, 2), ba (2)
  nn::Linear<float> out{2, 3};    // weight (3, 2), bias (3)
  Model() {
    register_module("cell", cell);
    register_module("out", out);
  }
};

[[noreturn]] void bug(const std::string& what) {
  std::cerr << "fuzz_checkpoint: " << what << std::endl;
  std::abort();
}

// ---- an independent reader of format version 1

std::uint64_t fnv1a64(const unsigned char* p, std::size_t n) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

struct Rec {
  std::string name;
  std::uint8_t type = 0;
  std::vector<std::size_t> shape;
  std::string bytes;  // tensor elements, or the int64/float64 value, or the string
};

// The records of a structurally valid file, or nothing.
std::optional<std::vector<Rec>> parse(const std::string& f) {
  auto get = [&](std::size_t& pos, std::size_t n, std::string& out) {
    if (n > f.size() - pos) return false;
    out = f.substr(pos, n);
    pos += n;
    return true;
  };
  auto u64 = [&](std::size_t& pos, std::uint64_t& v) {
    std::string s;
    if (!get(pos, 8, s)) return false;
    std::memcpy(&v, s.data(), 8);
    return true;
  };
  if (f.size() < 32 || f.compare(0, 8, "XGRADCKP") != 0) return std::nullopt;
  std::uint32_t version, flags;
  std::uint64_t payload, sum;
  std::memcpy(&version, &f[8], 4);
  std::memcpy(&flags, &f[12], 4);
  std::memcpy(&payload, &f[16], 8);
  std::memcpy(&sum, &f[24], 8);
  if (version != 1 || flags != 0 || payload != f.size() - 32) return std::nullopt;
  if (fnv1a64(reinterpret_cast<const unsigned char*>(f.data()) + 32, payload) != sum) return std::nullopt;
  std::size_t pos = 32;
  std::uint64_t count;
  if (!u64(pos, count)) return std::nullopt;
  std::vector<Rec> recs;
  for (std::uint64_t k = 0; k < count; ++k) {
    Rec r;
    std::string s;
    if (!get(pos, 4, s)) return std::nullopt;
    std::uint32_t len;
    std::memcpy(&len, s.data(), 4);
    if (!get(pos, len, r.name) || !get(pos, 1, s)) return std::nullopt;
    r.type = std::uint8_t(s[0]);
    if (r.type == 1 || r.type == 2) {
      if (!get(pos, 4, s)) return std::nullopt;
      std::uint32_t ndim;
      std::memcpy(&ndim, s.data(), 4);
      if (ndim > 32) return std::nullopt;
      // Element count computed in 128 bits: the data must be in the file.
      unsigned __int128 n = 1;
      for (std::uint32_t a = 0; a < ndim; ++a) {
        std::uint64_t d;
        if (!u64(pos, d)) return std::nullopt;
        r.shape.push_back(d);
        n *= d;
        if (n > f.size()) return std::nullopt;
      }
      if (!get(pos, std::size_t(n) * (r.type == 1 ? 4 : 8), r.bytes)) return std::nullopt;
    } else if (r.type == 3 || r.type == 4) {
      if (!get(pos, 8, r.bytes)) return std::nullopt;
    } else if (r.type == 5) {
      std::uint64_t n;
      if (!u64(pos, n) || !get(pos, n, r.bytes)) return std::nullopt;
    } else {
      return std::nullopt;
    }
    for (const Rec& o : recs)
      if (o.name == r.name) return std::nullopt;
    recs.push_back(std::move(r));
  }
  if (pos != f.size()) return std::nullopt;
  return recs;
}

const Rec* find(const std::vector<Rec>& recs, const std::string& name) {
  for (const Rec& r : recs)
    if (r.name == name) return &r;
  return nullptr;
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

template <class S>
bool same_shape(const std::vector<std::size_t>& a, const S& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// The file's param/ records are exactly the model's parameters, float32, same shapes.
bool params_fit(const std::vector<Rec>& recs, const Model& m) {
  const auto named = m.named_parameters();
  std::size_t in_file = 0;
  for (const Rec& r : recs) in_file += starts_with(r.name, "param/");
  if (in_file != named.size()) return false;
  for (const auto& [n, p] : named) {
    const Rec* r = find(recs, "param/" + n);
    if (!r || r->type != 1 || !same_shape(r->shape, p.shape())) return false;
  }
  return true;
}

// Optimizer records fit Adam over m's parameters; the generator state parses.
bool training_state_fits(const std::vector<Rec>& recs, const Model& m, std::mt19937_64& gen) {
  const Rec* kind = find(recs, "optim/kind");
  const Rec* step = find(recs, "optim/step");
  const Rec* lr = find(recs, "optim/lr");
  const Rec* rng = find(recs, "rng/generator");
  if (!kind || kind->type != 5 || kind->bytes != "Adam") return false;
  if (!step || step->type != 3 || !lr || lr->type != 4 || !rng || rng->type != 5) return false;
  std::int64_t s;
  double l;
  std::memcpy(&s, step->bytes.data(), 8);
  std::memcpy(&l, lr->bytes.data(), 8);
  if (s < 0 || !(l >= 0)) return false;
  const auto params = m.parameters();
  std::vector<std::string> expected;
  for (const char* b : {"exp_avg", "exp_avg_sq"})
    for (std::size_t i = 0; i < params.size(); ++i) expected.push_back(std::string(b) + "." + std::to_string(i));
  std::size_t j = 0;
  for (const Rec& r : recs) {
    if (!starts_with(r.name, "optim/") || r.name == "optim/kind" || r.name == "optim/step" || r.name == "optim/lr")
      continue;
    if (j >= expected.size() || r.name != "optim/" + expected[j] || r.type != 1) return false;
    if (!same_shape(r.shape, params[j % params.size()].shape())) return false;
    ++j;
  }
  if (j != expected.size()) return false;
  std::istringstream is(rng->bytes);
  is >> gen;
  return !is.fail();
}

// ---- state snapshots

struct Snapshot {
  std::vector<Array<float>> params;
  optim::OptimizerState<float> opt;
  std::mt19937_64 gen;
};

Snapshot snapshot(const Model& m, const optim::Adam<float>& opt) {
  Snapshot s;
  for (const auto& p : m.parameters()) s.params.push_back(p.value());
  s.opt = opt.state();
  s.gen = nn::generator();
  return s;
}

void restore(Model& m, optim::Adam<float>& opt, const Snapshot& s) {
  const auto params = m.parameters();
  for (std::size_t i = 0; i < params.size(); ++i) params[i].set_value(s.params[i]);
  opt.load_state(s.opt);
  nn::generator() = s.gen;
}

bool same_bytes(const Array<float>& a, const Array<float>& b) {
  return same_shape(std::vector<std::size_t>(a.shape().begin(), a.shape().end()), b.shape()) &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void expect_unchanged(const Model& m, const optim::Adam<float>& opt, const Snapshot& s, const char* after) {
  const auto params = m.parameters();
  for (std::size_t i = 0; i < params.size(); ++i)
    if (!same_bytes(params[i].value(), s.params[i])) bug(std::string(after) + " changed parameter " + std::to_string(i));
  const auto st = opt.state();
  if (st.kind != s.opt.kind || st.step != s.opt.step || std::memcmp(&st.lr, &s.opt.lr, 8) != 0)
    bug(std::string(after) + " changed the optimizer's step or lr");
  for (std::size_t j = 0; j < st.arrays.size(); ++j)
    if (!same_bytes(st.arrays[j].second, s.opt.arrays[j].second)) bug(std::string(after) + " changed an optimizer buffer");
  if (nn::generator() != s.gen) bug(std::string(after) + " changed the generator");
}

bool tensor_is(const Array<float>& a, const Rec& r) {
  return r.type == 1 && same_shape(r.shape, a.shape()) &&
         (a.size() == 0 || std::memcmp(a.data(), r.bytes.data(), r.bytes.size()) == 0);
}

void expect_params_from_file(const Model& m, const std::vector<Rec>& recs) {
  for (const auto& [n, p] : m.named_parameters())
    if (!tensor_is(p.value(), *find(recs, "param/" + n))) bug("parameter '" + n + "' is not the file's");
}

void expect_extra_from_file(const CheckpointExtra& extra, const std::vector<Rec>& recs) {
  std::size_t n = 0;
  for (const Rec& r : recs) {
    if (!starts_with(r.name, "extra/")) continue;
    ++n;
    auto it = extra.find(r.name.substr(6));
    if (it == extra.end()) bug("extra value '" + r.name + "' is missing");
    const CheckpointValue& v = it->second;
    bool ok = false;
    if (r.type == 3) ok = std::holds_alternative<std::int64_t>(v) && std::memcmp(&std::get<std::int64_t>(v), r.bytes.data(), 8) == 0;
    if (r.type == 4) ok = std::holds_alternative<double>(v) && std::memcmp(&std::get<double>(v), r.bytes.data(), 8) == 0;
    if (r.type == 5) ok = std::holds_alternative<std::string>(v) && std::get<std::string>(v) == r.bytes;
    if (r.type == 1) ok = std::holds_alternative<Array<float>>(v) && tensor_is(std::get<Array<float>>(v), r);
    if (r.type == 2) {
      ok = std::holds_alternative<Array<double>>(v);
      if (ok) {
        const auto& a = std::get<Array<double>>(v);
        ok = same_shape(r.shape, a.shape()) && (a.size() == 0 || std::memcmp(a.data(), r.bytes.data(), r.bytes.size()) == 0);
      }
    }
    if (!ok) bug("extra value '" + r.name + "' is not the file's");
  }
  if (extra.size() != n) bug("load returned extra values that are not in the file");
}

std::string temp_path() { return xgrad::fuzz::temp_path("fuzz_checkpoint"); }

void write_file(const std::string& path, const std::string& bytes) {
  if (!xgrad::fuzz::write_file(path, bytes)) bug("cannot write " + path);
}

struct Fixture {
  Model model;
  optim::Adam<float> opt{model.parameters(), 1e-2};
  Snapshot initial;
  std::string path = temp_path();
  Fixture() { initial = snapshot(model, opt); }
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
  Model& m = fx.model;
  restore(m, fx.opt, fx.initial);
  write_file(fx.path, bytes);
  const std::optional<std::vector<Rec>> recs = parse(bytes);

  // load_extra: any structurally valid file.
  try {
    const CheckpointExtra extra = load_extra(fx.path);
    if (!recs) bug("load_extra accepted a malformed file");
    expect_extra_from_file(extra, *recs);
  } catch (const CheckpointError&) {
    if (recs) bug("load_extra rejected a valid file");
  }

  // Parameters only.
  const bool params_ok = recs && params_fit(*recs, m);
  try {
    const CheckpointExtra extra = load(m, fx.path);
    if (!params_ok) bug("load(model) accepted a file that does not fit");
    expect_params_from_file(m, *recs);
    expect_extra_from_file(extra, *recs);
    Snapshot s = snapshot(m, fx.opt);
    s.opt = fx.initial.opt;
    s.gen = fx.initial.gen;
    expect_unchanged(m, fx.opt, s, "load(model)");  // optimizer and generator untouched
  } catch (const CheckpointError&) {
    if (params_ok) bug("load(model) rejected a valid file");
    expect_unchanged(m, fx.opt, fx.initial, "a failed load(model)");
  }

  // Parameters, optimizer and generator.
  restore(m, fx.opt, fx.initial);
  std::mt19937_64 gen;
  const bool all_ok = params_ok && training_state_fits(*recs, m, gen);
  try {
    const CheckpointExtra extra = load(m, fx.opt, fx.path);
    if (!all_ok) bug("load(model, opt) accepted a file that does not fit");
    expect_params_from_file(m, *recs);
    expect_extra_from_file(extra, *recs);
    const auto st = fx.opt.state();
    if (std::memcmp(&st.step, find(*recs, "optim/step")->bytes.data(), 8) != 0 ||
        std::memcmp(&st.lr, find(*recs, "optim/lr")->bytes.data(), 8) != 0)
      bug("optimizer step or lr is not the file's");
    for (const auto& [n, a] : st.arrays)
      if (!tensor_is(a, *find(*recs, "optim/" + n))) bug("optimizer buffer '" + n + "' is not the file's");
    if (nn::generator() != gen) bug("generator state is not the file's");
  } catch (const CheckpointError&) {
    if (all_ok) bug("load(model, opt) rejected a valid file");
    expect_unchanged(m, fx.opt, fx.initial, "a failed load(model, opt)");
  }
}

void write_seeds(const std::string& dir) {
  Fixture& fx = fixture();
  Model& m = fx.model;
  save(m, dir + "/params_only.ckpt");
  save(m, fx.opt, dir + "/initial_training_state.ckpt");
  // Two Adam steps so the buffers are not zeros, and one of each kind of extra value.
  for (int i = 0; i < 2; ++i) {
    fx.opt.zero_grad();
    auto a = m.cell(constant<float>(Array<float>{{1.f, -1.f, 0.5f}}), constant<float>(xt::zeros<float>({1, 2})));
    sum(square(m.out(a))).backward();
    fx.opt.step();
    clear_tape();
  }
  CheckpointExtra extra;
  extra["position"] = std::int64_t(1234);
  extra["temperature"] = 0.75;
  extra["vocab"] = std::string("E\n !abc\xc3\xa9");
  extra["state"] = Array<float>{{0.5f, -0.25f}};
  extra["matrix"] = Array<double>{{1.0, 2.0}, {3.0, 4.0}};
  save(m, fx.opt, dir + "/trained_with_extra.ckpt", extra);
  save(m, dir + "/params_with_extra.ckpt", {{"position", std::int64_t(7)}});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("XGRAD_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  check(bytes);
  if (size >= 32 && bytes.compare(0, 8, "XGRADCKP") == 0) {
    std::string fixed = bytes;
    const std::uint64_t payload = size - 32;
    const std::uint64_t sum = fnv1a64(data + 32, payload);
    std::memcpy(&fixed[16], &payload, 8);
    std::memcpy(&fixed[24], &sum, 8);
    if (fixed != bytes) check(fixed);
  }
  return 0;
}
