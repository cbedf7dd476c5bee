// io/safetensors.hpp: PyTorch's files (made once by tests/data/safetensors/make_files.py) load
// under PyTorch's names and give PyTorch's outputs stored beside them; round trips are exact in
// both name schemes; every malformed or unfitting file is refused with the model unchanged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

const fs::path kData = fs::path(XGRAD_SOURCE_DIR) / "tests" / "data" / "safetensors";

// The models of make_files.py, with the same attribute names.
template <class T>
struct LSTMModel : nn::Module<T> {
  nn::LSTM<T> lstm{3, 4, nn::LSTMOptions().layers(2).bidirectional()};
  nn::Linear<T> fc{8, 2};
  LSTMModel() {
    this->register_module("lstm", lstm);
    this->register_module("fc", fc);
  }
};

template <class T>
struct RNNModel : nn::Module<T> {
  nn::RNN<T> rnn{3, 4, nn::RNNOptions().bidirectional()};
  RNNModel() { this->register_module("rnn", rnn); }
};

template <class T>
struct GRUModel : nn::GRU<T> {
  GRUModel() : nn::GRU<T>(3, 4, nn::GRUOptions().layers(2)) {}
};

template <class T>
struct LinearModel : nn::Linear<T> {
  LinearModel() : nn::Linear<T>(4, 3) {}
};

template <class T>
struct EmbeddingModel : nn::Embedding<T> {
  EmbeddingModel() : nn::Embedding<T>(10, 3) {}
};

// A tree PyTorch has no names for in part: a cell, a LayerNormLSTMCell sequence, a custom
// parameter, beside an LSTM inside a Sequential-like nesting.
template <class T>
struct MixedModel : nn::Module<T> {
  struct Inner : nn::Module<T> {
    nn::GRU<T> gru{2, 3, nn::GRUOptions().bidirectional()};
    nn::RNNCell<T> cell{3, 2};
    Inner() {
      this->register_module("gru", gru);
      this->register_module("cell", cell);
    }
  };
  Inner inner;
  nn::Recurrent<nn::LayerNormLSTMCell<T>> ln{2, 3};
  nn::LSTM<T> lstm{2, 3};
  Var<T> scale;
  MixedModel() {
    this->register_module("inner", inner);
    this->register_module("ln", ln);
    this->register_module("lstm", lstm);
    scale = this->register_parameter("scale", nn::uniform<T>({3}, 1.0));
  }
};

Json read_json(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in) << p;
  return Json::parse(in);
}

template <class T>
Array<T> array_of(const Json& j) {
  Shape shape = j["shape"].get<Shape>();
  Array<T> a = Array<T>::from_shape(shape);
  const auto& data = j["data"];
  EXPECT_EQ(data.size(), a.size());
  for (std::size_t i = 0; i < a.size() && i < data.size(); ++i) a.data()[i] = static_cast<T>(data[i].get<double>());
  return a;
}

template <class T>
Json json_of(const Array<T>& a) {
  std::vector<double> data(a.begin(), a.end());
  return {{"shape", Shape(a.shape().begin(), a.shape().end())}, {"data", data}};
}

// Stacks states (m, n_a) into PyTorch's h_n (layers·directions, m, n_a).
template <class T>
Array<T> stack(const std::vector<Array<T>>& states) {
  const Shape s(states[0].shape().begin(), states[0].shape().end());
  Array<T> out = Array<T>::from_shape({states.size(), s[0], s[1]});
  for (std::size_t i = 0; i < states.size(); ++i) std::copy(states[i].begin(), states[i].end(), out.begin() + i * s[0] * s[1]);
  return out;
}

template <class T>
Array<T> sequence_fc(const nn::Linear<T>& fc, const Var<T>& out) {
  const auto s = out.shape();
  return reshape(fc(reshape(out, {s[0] * s[1], s[2]})), {s[0], s[1], fc.out_features()}).value();
}

// The outputs make_files.py stores, computed by xgrad from the model's current weights.
template <class T>
std::map<std::string, Array<T>> outputs(const LSTMModel<T>& m, const Json& input) {
  const auto res = m.lstm(constant(array_of<T>(input)));
  std::vector<Array<T>> h, c;
  for (const auto& s : res.state) {
    h.push_back(s.a.value());
    c.push_back(s.c.value());
  }
  return {{"y", sequence_fc(m.fc, res.output)}, {"h_n", stack(h)}, {"c_n", stack(c)}};
}

template <class T, class Seq>
std::map<std::string, Array<T>> sequence_outputs(const Seq& seq, const Json& input) {
  const auto res = seq(constant(array_of<T>(input)));
  std::vector<Array<T>> h;
  for (const auto& s : res.state) h.push_back(s.value());
  return {{"y", res.output.value()}, {"h_n", stack(h)}};
}
template <class T>
std::map<std::string, Array<T>> outputs(const RNNModel<T>& m, const Json& input) {
  return sequence_outputs<T>(m.rnn, input);
}
template <class T>
std::map<std::string, Array<T>> outputs(const GRUModel<T>& m, const Json& input) {
  return sequence_outputs<T>(m, input);
}
template <class T>
std::map<std::string, Array<T>> outputs(const LinearModel<T>& m, const Json& input) {
  return {{"y", m(constant(array_of<T>(input))).value()}};
}
template <class T>
std::map<std::string, Array<T>> outputs(const EmbeddingModel<T>& m, const Json& input) {
  return {{"y", m(input["data"].get<std::vector<int>>()).value()}};
}

// Loads PyTorch's <name>.safetensors and compares the outputs with <name>.json.
template <class Model, class T>
void expect_pytorch_outputs(const std::string& name, double tol) {
  SCOPED_TRACE(name);
  clear_tape();
  nn::manual_seed(99);
  Model m;
  load_safetensors(m, (kData / (name + ".safetensors")).string(), Names::pytorch);
  const Json ref = read_json(kData / (name + ".json"));
  const auto got = outputs(m, ref["input"]);
  std::size_t compared = 0;
  for (const auto& [key, value] : ref.items()) {
    if (key == "input") continue;
    ASSERT_TRUE(got.count(key)) << key;
    const Array<T>& g = got.at(key);
    const Array<double> want = array_of<double>(value);
    ASSERT_EQ(Shape(g.shape().begin(), g.shape().end()), Shape(want.shape().begin(), want.shape().end())) << key;
    double worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(double(g.data()[i]) - want.data()[i]));
    EXPECT_LE(worst, tol) << key;
    ++compared;
  }
  EXPECT_EQ(compared, got.size());
  clear_tape();
}

}  // namespace

TEST(SafetensorsPyTorch, DoubleFilesGivePyTorchOutputs) {
  expect_pytorch_outputs<LinearModel<double>, double>("linear_f64", 1e-12);
  expect_pytorch_outputs<LSTMModel<double>, double>("lstm_f64", 1e-12);
  expect_pytorch_outputs<GRUModel<double>, double>("gru_f64", 1e-12);
  expect_pytorch_outputs<RNNModel<double>, double>("rnn_f64", 1e-12);
  expect_pytorch_outputs<EmbeddingModel<double>, double>("embedding_f64", 0.0);
}

TEST(SafetensorsPyTorch, FloatFilesGivePyTorchOutputs) {
  expect_pytorch_outputs<LinearModel<float>, float>("linear_f32", 1e-5);
  expect_pytorch_outputs<LSTMModel<float>, float>("lstm_f32", 1e-5);
}

TEST(SafetensorsPyTorch, HalfAndBfloat16FilesConvertExactly) {
  // The outputs were computed in double from the rounded weights: exact conversion is needed
  // for double's tolerance.
  expect_pytorch_outputs<LSTMModel<double>, double>("lstm_f16", 1e-12);
  expect_pytorch_outputs<GRUModel<double>, double>("gru_bf16", 1e-12);
  // Into float too (every F16 and BF16 value is a float).
  expect_pytorch_outputs<LSTMModel<float>, float>("lstm_f16", 1e-5);
}

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_tape();
    dir_ = fs::path(XGRAD_BINARY_DIR) / "test_safetensors_tmp" /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    clear_tape();
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

template <class T>
std::vector<Array<T>> values_of(const nn::Module<T>& m) {
  std::vector<Array<T>> out;
  for (const auto& p : m.parameters()) out.push_back(p.value());
  return out;
}

template <class T>
bool same_bits(const std::vector<Array<T>>& a, const std::vector<Array<T>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() || std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(T)) != 0)
      return false;
  return true;
}

// The header of a file as JSON.
Json header_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string text(n, '\0');
  in.read(&text[0], std::streamsize(n));
  return Json::parse(text);
}

template <class Model>
void expect_round_trip(const std::string& file, Names names) {
  nn::manual_seed(1);
  Model a;
  save_safetensors(a, file, names);
  nn::manual_seed(2);
  Model b;
  ASSERT_FALSE(same_bits(values_of(a), values_of(b)));
  load_safetensors(b, file, names);
  EXPECT_TRUE(same_bits(values_of(a), values_of(b))) << file;
}

}  // namespace

TEST_F(SafetensorsTest, RoundTripsAreExactInBothSchemes) {
  for (Names names : {Names::xgrad, Names::pytorch}) {
    const std::string s = names == Names::xgrad ? "x" : "pt";
    expect_round_trip<LSTMModel<double>>(path("lstm64_" + s), names);
    expect_round_trip<LSTMModel<float>>(path("lstm32_" + s), names);
    expect_round_trip<GRUModel<float>>(path("gru_" + s), names);
    expect_round_trip<RNNModel<double>>(path("rnn_" + s), names);
    expect_round_trip<LinearModel<float>>(path("linear_" + s), names);
    expect_round_trip<EmbeddingModel<double>>(path("emb_" + s), names);
    expect_round_trip<MixedModel<double>>(path("mixed_" + s), names);
  }
}

TEST_F(SafetensorsTest, NegativeZeroBiasesRoundTripBitForBit) {
  nn::manual_seed(1);
  LSTMModel<float> a;
  a.lstm.cell(0).b.mutable_value()(0) = -0.0f;
  save_safetensors(a, path("m"), Names::pytorch);
  LSTMModel<float> b;
  load_safetensors(b, path("m"), Names::pytorch);
  EXPECT_TRUE(std::signbit(b.lstm.cell(0).b.value()(0)));
  EXPECT_TRUE(same_bits(values_of(a), values_of(b)));
}

TEST_F(SafetensorsTest, PyTorchNamesHeaderAndBiasConvention) {
  nn::manual_seed(3);
  MixedModel<float> m;
  save_safetensors(m, path("m"), Names::pytorch);
  const Json h = header_of(path("m"));
  std::vector<std::string> names;
  for (const auto& [k, v] : h.items()) names.push_back(k);
  const std::vector<std::string> expected = {
      "__metadata__", "scale",
      "inner.gru.weight_ih_l0", "inner.gru.weight_hh_l0", "inner.gru.bias_ih_l0", "inner.gru.bias_hh_l0",
      "inner.gru.weight_ih_l0_reverse", "inner.gru.weight_hh_l0_reverse", "inner.gru.bias_ih_l0_reverse",
      "inner.gru.bias_hh_l0_reverse",
      "inner.cell.Wax", "inner.cell.Waa", "inner.cell.ba",
      "ln.layers.0.Wx", "ln.layers.0.Wa", "ln.layers.0.b", "ln.layers.0.ln_x.weight"};
  ASSERT_GE(names.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(names[i], expected[i]);
  // The LayerNormLSTM sequence keeps its xgrad names, whatever its sub-modules are called.
  for (const auto& [n, p] : m.ln.named_parameters()) EXPECT_TRUE(h.contains("ln." + n)) << n;
  for (const char* k : {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "scale"})
    EXPECT_TRUE(h.contains(k)) << k;
  EXPECT_EQ(names.size(), 1 + m.named_parameters().size() + 1);  // + the LSTM's one bias_hh
  EXPECT_EQ(h["__metadata__"]["format"], "pt");
  EXPECT_EQ(h["__metadata__"]["library"].get<std::string>().rfind("xgrad ", 0), 0u);
  EXPECT_EQ(h["lstm.bias_ih_l0"]["dtype"], "F32");
  EXPECT_EQ(h["lstm.bias_hh_l0"]["shape"], Json::array({12}));

  // bias_hh is written 0; a file with bias_hh ≠ 0 loads as the sum.
  LSTMModel<double> a;
  save_safetensors(a, path("lstm"), Names::pytorch);
  std::ifstream in(path("lstm"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const Json ha = header_of(path("lstm"));
  std::uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  const std::size_t data = 8 + header_len;
  const auto hh = ha["lstm.bias_hh_l1_reverse"]["data_offsets"];
  for (std::size_t i = hh[0].get<std::size_t>(); i < hh[1].get<std::size_t>(); ++i) EXPECT_EQ(bytes[data + i], 0);
  const double add[] = {0.25, -1.5};
  std::memcpy(&bytes[data + hh[0].get<std::size_t>()], add, sizeof add);
  std::ofstream(path("lstm2"), std::ios::binary) << bytes;
  LSTMModel<double> b;
  load_safetensors(b, path("lstm2"), Names::pytorch);
  const Array<double>& ba = a.lstm.cell(1, true).b.value();
  const Array<double>& bb = b.lstm.cell(1, true).b.value();
  EXPECT_EQ(bb(0), ba(0) + 0.25);
  EXPECT_EQ(bb(1), ba(1) - 1.5);
  for (std::size_t i = 2; i < ba.size(); ++i) EXPECT_EQ(bb(i), ba(i));
}

TEST_F(SafetensorsTest, SchemesAreNotMixedUp) {
  LSTMModel<float> a;
  save_safetensors(a, path("x"), Names::xgrad);
  LSTMModel<float> b;
  const auto before = values_of(b);
  XGRAD_EXPECT_THROW_MSG(load_safetensors(b, path("x"), Names::pytorch), CheckpointError, "missing from the file",
                         "'lstm.weight_ih_l0' (the model's 'lstm.layers.0.Wx')", "not in the model",
                         "'lstm.layers.0.Wx'");
  EXPECT_TRUE(same_bits(before, values_of(b)));
}

TEST_F(SafetensorsTest, FailedSaveLeavesThePreviousFile) {
  LinearModel<float> a;
  save_safetensors(a, path("m"));
  std::ifstream in(path("m"), std::ios::binary);
  const std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::create_directory(path("m") + ".tmp");  // the temporary file cannot be created
  nn::manual_seed(5);
  LinearModel<float> b;
  XGRAD_EXPECT_THROW_MSG(save_safetensors(b, path("m")), CheckpointError, "cannot create temporary file");
  std::ifstream again(path("m"), std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>()), old);
  XGRAD_EXPECT_THROW_MSG(save_safetensors(b, path("no/such/dir/m")), CheckpointError, "no/such/dir/m");
  XGRAD_EXPECT_THROW_MSG(load_safetensors(b, path("absent")), CheckpointError, "absent", "cannot open");
}

namespace {

// A Linear(2, 2) in float: weight (2, 2) = 16 bytes at [0, 16), bias (2) = 8 bytes at [16, 24).
std::string file_of(const std::string& header, const std::string& data) {
  const std::uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

const std::string kData24(24, '\x01');

std::string good_header(const std::string& weight = R"("dtype":"F32","shape":[2,2],"data_offsets":[0,16])",
                        const std::string& bias = R"("dtype":"F32","shape":[2],"data_offsets":[16,24])") {
  return R"({"weight":{)" + weight + R"(},"bias":{)" + bias + "}}";
}

struct Case {
  const char* what;
  std::string bytes;
  std::vector<const char*> words;
};

}  // namespace

TEST_F(SafetensorsTest, MalformedFilesAreRefusedWithTheModelUnchanged) {
  std::string big_len(8, '\0');
  const std::uint64_t past = 1000;
  std::memcpy(&big_len[0], &past, 8);
  const std::vector<Case> cases = {
      {"empty file", "", {"truncated", "0 bytes", "8-byte header length"}},
      {"truncated header length", std::string("\x10\0\0", 3), {"truncated", "3 bytes"}},
      {"header length past the end", big_len + "{}", {"header length 1000 runs past the end", "2 bytes follow"}},
      {"header not JSON", file_of(R"({"weight": )", kData24), {"not valid JSON"}},
      {"header not an object", file_of("[1, 2]", kData24), {"not a JSON object"}},
      {"invalid UTF-8", file_of("{\"w\xff\":{}}", kData24), {"not valid JSON"}},
      {"trailing garbage after the JSON", file_of(good_header() + "x", kData24), {"not valid JSON"}},
      {"entry not an object", file_of(R"({"weight":[1]})", kData24), {"tensor 'weight'", "not an object"}},
      {"unknown field", file_of(good_header(R"("dtype":"F32","shape":[2,2],"data_offsets":[0,16],"x":1)"), kData24),
       {"tensor 'weight'", "unknown field 'x'"}},
      {"no dtype", file_of(good_header(R"("shape":[2,2],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight'", "no 'dtype'"}},
      {"unknown dtype", file_of(good_header(R"("dtype":"F31","shape":[2,2],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight'", "unknown dtype 'F31'"}},
      {"shape and size differ", file_of(good_header(R"("dtype":"F32","shape":[2,3],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight'", "shape (2, 3) of F32 needs 24 bytes", "[0, 16] hold 16"}},
      {"huge shape", file_of(good_header(R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight'", "more bytes than the file holds"}},
      {"negative dimension", file_of(good_header(R"("dtype":"F32","shape":[-2,2],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight'", "dimension -2 is not an unsigned integer"}},
      {"offsets outside", file_of(good_header(R"("dtype":"F32","shape":[2,2],"data_offsets":[16,32])"), kData24),
       {"tensor 'weight'", "[16, 32] lie outside the data section of 24 bytes"}},
      {"offsets reversed", file_of(good_header(R"("dtype":"F32","shape":[2,2],"data_offsets":[16,0])"), kData24),
       {"tensor 'weight'", "[16, 0]"}},
      {"offsets not a pair", file_of(good_header(R"("dtype":"F32","shape":[2,2],"data_offsets":[0])"), kData24),
       {"tensor 'weight'", "not a pair"}},
      {"overlap", file_of(good_header(R"("dtype":"F32","shape":[2,2],"data_offsets":[0,16])",
                                      R"("dtype":"F32","shape":[2],"data_offsets":[8,16])"), kData24),
       {"overlaps", "'bias'", "'weight'"}},
      {"gap", file_of(good_header(R"("dtype":"F32","shape":[2,2],"data_offsets":[0,16])",
                                  R"("dtype":"F32","shape":[2],"data_offsets":[24,32])"), std::string(32, '\1')),
       {"bytes [16, 24)", "belong to no tensor", "'bias'"}},
      {"bytes after the last tensor", file_of(good_header(), std::string(28, '\1')),
       {"bytes [24, 28)", "belong to no tensor"}},
      {"duplicate names", file_of(R"({"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                                  R"("weight":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})", kData24),
       {"tensor 'weight' appears twice"}},
      {"too deep", file_of(R"({"weight":{"dtype":"F32","shape":[[[2]]],"data_offsets":[0,16]}})", kData24),
       {"nests deeper"}},
      {"missing tensor", file_of(R"({"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", kData24.substr(0, 16)),
       {"does not fit the model", "missing from the file: 'bias'"}},
      {"extra tensor", file_of(good_header().substr(0, good_header().size() - 1) +
                                   R"(,"extra":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})", std::string(28, '\1')),
       {"does not fit the model", "not in the model: 'extra'"}},
      {"wrong shape", file_of(good_header(R"("dtype":"F32","shape":[4],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight' has shape (4,) in the file, but (2, 2) in the model"}},
      {"F64 into float", file_of(good_header(R"("dtype":"F64","shape":[2],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight' has dtype F64", "does not convert exactly to the model's F32"}},
      {"integer dtype", file_of(good_header(R"("dtype":"I32","shape":[2,2],"data_offsets":[0,16])"), kData24),
       {"tensor 'weight' has dtype I32"}},
  };
  nn::manual_seed(11);
  nn::Linear<float> m(2, 2);
  const auto before = values_of(m);
  // The good file loads (the table's cases differ from it in one point each).
  std::ofstream(path("good"), std::ios::binary) << file_of(good_header(), kData24);
  nn::Linear<float> probe(2, 2);
  EXPECT_NO_THROW(load_safetensors(probe, path("good")));
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string p = path("bad");
    std::ofstream(p, std::ios::binary | std::ios::trunc) << c.bytes;
    const std::string msg = xgrad::testing::message_of<CheckpointError>([&] { load_safetensors(m, p); });
    EXPECT_TRUE(xgrad::testing::contains(msg, "safetensors '" + p + "'")) << msg;
    for (const char* w : c.words) EXPECT_TRUE(xgrad::testing::contains(msg, w)) << "message \"" << msg << "\" lacks \"" << w << "\"";
    EXPECT_TRUE(same_bits(before, values_of(m)));
  }
}

TEST_F(SafetensorsTest, ZeroSizedTensorsAndPaddingAreValid) {
  // A tensor with a 0 dimension holds no bytes; header padding with spaces is allowed.
  nn::Linear<float> m(2, 2);
  const std::string g = good_header();
  const std::string header =
      g.substr(0, g.size() - 1) + R"(,"e":{"dtype":"F32","shape":[0,3],"data_offsets":[24,24]}})" + "     ";
  const std::string bytes = file_of(header, kData24);
  std::ofstream(path("f"), std::ios::binary) << bytes;
  // Valid, but 'e' is not in the model.
  XGRAD_EXPECT_THROW_MSG(load_safetensors(m, path("f")), CheckpointError, "not in the model: 'e'");
}

TEST_F(SafetensorsTest, UnfittingPyTorchFilesNameTheTensor) {
  LSTMModel<double> m;
  const auto before = values_of(m);
  // A GRU's file into an LSTM model: names differ.
  XGRAD_EXPECT_THROW_MSG(load_safetensors(m, (kData / "gru_f64.safetensors").string(), Names::pytorch), CheckpointError,
                         "missing from the file: 'lstm.weight_ih_l0' (the model's 'lstm.layers.0.Wx')",
                         "not in the model: 'weight_ih_l0'");
  // An LSTM of another size: the first shape that differs.
  struct Small : nn::Module<double> {
    nn::LSTM<double> lstm{3, 5, nn::LSTMOptions().layers(2).bidirectional()};
    nn::Linear<double> fc{10, 2};
    Small() {
      register_module("lstm", lstm);
      register_module("fc", fc);
    }
  } small;
  const auto small_before = values_of(small);
  XGRAD_EXPECT_THROW_MSG(load_safetensors(small, (kData / "lstm_f64.safetensors").string(), Names::pytorch),
                         CheckpointError, "tensor 'lstm.weight_ih_l0' (the model's 'lstm.layers.0.Wx')",
                         "shape (16, 3) in the file, but (20, 3) in the model");
  EXPECT_TRUE(same_bits(small_before, values_of(small)));
  EXPECT_TRUE(same_bits(before, values_of(m)));
}

// Writes xgrad-initialised models under PyTorch names and their outputs on make_files.py's
// inputs, into XGRAD_SAFETENSORS_EXPORT=DIR for tests/data/safetensors/check_export.py (which
// loads them into PyTorch strictly), else into a scratch directory; either way each written
// file must load back into a fresh model of the same kind and give the same outputs.
TEST(SafetensorsExport, WritesModelsForPyTorch) {
  const char* env = std::getenv("XGRAD_SAFETENSORS_EXPORT");
  const std::filesystem::path dir =
      env ? std::filesystem::path(env) : std::filesystem::temp_directory_path() / "xgrad_safetensors_export";
  std::filesystem::create_directories(dir);
  auto write = [&](const auto& model, const std::string& name, const std::string& inputs_of) {
    clear_tape();
    const std::string file = (dir / (name + ".safetensors")).string();
    save_safetensors(model, file, Names::pytorch);
    const Json ref = read_json(kData / (inputs_of + ".json"));
    Json out;
    out["input"] = ref["input"];
    const auto written = outputs(model, ref["input"]);
    for (const auto& [k, v] : written) out[k] = json_of(v);
    std::ofstream(dir / (name + ".json")) << out.dump();
    using Model = std::decay_t<decltype(model)>;
    Model fresh;
    load_safetensors(fresh, file, Names::pytorch);
    const auto reread = outputs(fresh, ref["input"]);
    ASSERT_EQ(reread.size(), written.size()) << name;
    for (const auto& [k, v] : written) EXPECT_EQ(json_of(reread.at(k)), json_of(v)) << name << " " << k;
  };
  nn::manual_seed(21);
  write(LSTMModel<double>(), "lstm_f64", "lstm_f64");
  write(LSTMModel<float>(), "lstm_f32", "lstm_f32");
  write(GRUModel<double>(), "gru_f64", "gru_f64");
  write(RNNModel<double>(), "rnn_f64", "rnn_f64");
  write(LinearModel<double>(), "linear_f64", "linear_f64");
  write(EmbeddingModel<double>(), "embedding_f64", "embedding_f64");
}
