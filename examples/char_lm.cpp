// char_lm: a character-level language model (RNN, LSTM, GRU or layer-normalised LSTM) trained on
// a UTF-8 text, by default the fortune-cookie corpus of Debian's `fortunes` package, with the
// last 10% held out.
//
//   x_t = id of character t;  a_t = cell(x_t, a_{t-1});  ŷ_t = softmax(a_t·Wyᵀ + by)   (B, V)
//   loss = mean over the B·T positions of −log ŷ_t[x_{t+1}]
//
// Training is truncated BPTT over B parallel streams of the training text (data::StreamBatcher):
// each step runs T characters of every stream, and the state is carried (detached) into the next
// segment, so the model sees its stream's text in order. Gradients are clipped to a global norm,
// Adam updates. Held-out: the held-out text as one stream from a zero state, every character
// predicted from those before it (the first from the last training character), mean nats/char;
// bench/char_lm_torch.py does the same in PyTorch.
//
// With --embed 0 the input is one-hot: x_t·Wxᵀ is column x_t of Wx, so the first layer gathers
// its input projection by id (forward_onehot) instead of multiplying one-hot rows.
//
// --recurrent-dropout P: in training, one mask per stream, layer and segment drops hidden units
// fed back into the step (the same units at every step of the segment); held-out evaluation and
// sampling run without it. --cell lnlstm: nn::LayerNormLSTMCell through nn::Recurrent.
//
// `char_lm --resume PATH --sample N [--temperature T] [--prime TEXT]` prints the prime followed
// by N sampled characters, and nothing else.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/cli.hpp"
#include "common/corpus.hpp"
#include "common/plot.hpp"
#include "common/training.hpp"

namespace {

using namespace xgrad;
using namespace xgrad::examples;
using F = float;

constexpr const char* kProgram = "char_lm";
constexpr std::size_t kEvalChunk = 1024;  // held-out characters per no-grad forward

// ---- the parts of the three cells that differ

template <class Layer> struct OptionsOf;
template <> struct OptionsOf<nn::RNN<F>> { using type = nn::RNNOptions; };
template <> struct OptionsOf<nn::LSTM<F>> { using type = nn::LSTMOptions; };
template <> struct OptionsOf<nn::GRU<F>> { using type = nn::GRUOptions; };
template <> struct OptionsOf<nn::Recurrent<nn::LayerNormLSTMCell<F>>> { using type = nn::RecurrentOptions; };

Var<F> detached(const Var<F>& s) { return s.detach(); }
nn::LSTMState<F> detached(const nn::LSTMState<F>& s) { return {s.a.detach(), s.c.detach()}; }

// The carried state in a checkpoint: "state.<k>.a" (and ".c" for an LSTM).
void put_state(CheckpointExtra& e, std::size_t k, const Var<F>& s) { e["state." + std::to_string(k) + ".a"] = s.value(); }
void put_state(CheckpointExtra& e, std::size_t k, const nn::LSTMState<F>& s) {
  e["state." + std::to_string(k) + ".a"] = s.a.value();
  e["state." + std::to_string(k) + ".c"] = s.c.value();
}
void get_state(const CheckpointExtra& e, std::size_t k, Var<F>& s, const std::string& path) {
  s = constant(extra_floats(e, "state." + std::to_string(k) + ".a", path));
}
void get_state(const CheckpointExtra& e, std::size_t k, nn::LSTMState<F>& s, const std::string& path) {
  s = {constant(extra_floats(e, "state." + std::to_string(k) + ".a", path)),
       constant(extra_floats(e, "state." + std::to_string(k) + ".c", path))};
}

// ---- the model: [embedding] -> recurrent layers -> linear head

template <class Layer>
class CharModel : public nn::Module<F> {
 public:
  using Cell = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<const Layer&>().cell(0))>>;
  using State = decltype(std::declval<const Cell&>().zero_state(1));

  CharModel(std::size_t vocab, std::size_t embed, std::size_t hidden, std::size_t layers, double recurrent_dropout = 0)
      : rnn_(embed > 0 ? embed : vocab, hidden,
             typename OptionsOf<Layer>::type().layers(layers).recurrent_dropout(recurrent_dropout)),
        head_(hidden, vocab) {
    if (embed > 0) {
      emb_ = std::make_unique<nn::Embedding<F>>(vocab, embed);
      register_module("embed", *emb_);
    }
    register_module("rnn", rnn_);
    register_module("head", head_);
  }

  std::vector<State> zero_state(std::size_t batch) const {
    std::vector<State> s;
    for (std::size_t k = 0; k < rnn_.num_layers(); ++k) s.push_back(rnn_.cell(k).zero_state(batch));
    return s;
  }

  // ids (T·B), time-major: ids[t·B + b]; state: one entry per layer, carried in and out.
  // Returns the logits (T, B, V). One-hot input is the layer's gather of its input weight by id.
  Var<F> forward(const std::vector<int>& ids, std::size_t steps, std::size_t batch, std::vector<State>& state) const {
    auto result = emb_ ? rnn_.forward(reshape((*emb_)(ids), {steps, batch, emb_->embedding_dim()}), state)
                       : rnn_.forward_onehot(ids, steps, state);
    state = std::move(result.state);
    return head_(result.output);  // (T, B, V): every position a row of the loss
  }
  const Layer& rnn() const { return rnn_; }

 private:
  Layer rnn_;
  nn::Linear<F> head_;
  std::unique_ptr<nn::Embedding<F>> emb_;
};

// ---- data

struct Corpus {
  data::Vocab vocab;      // every code point of the text, sorted
  std::vector<int> ids;   // the whole text
  std::size_t split = 0;  // [0, split) train, [split, n) held out
  std::size_t files = 0;
};

Corpus load_corpus(const std::string& path) {
  Corpus c;
  c.files = corpus_files(path).size();
  const std::string text = read_corpus(path);
  try {
    c.vocab = data::Vocab::from_text(text);
    c.ids = c.vocab.encode(text);
    c.split = data::split_sizes(c.ids.size(), 0.1, 0).train;  // the last 10% held out
  } catch (const DataError& e) {
    throw DataError(path + ": " + e.what());
  }
  return c;
}

// Mean nats/char of ids[begin, end), each predicted from the one before, as one stream from a
// zero state, in chunks of kEvalChunk without recording.
template <class Model>
double evaluate(const Model& model, const std::vector<int>& ids, std::size_t begin, std::size_t end) {
  NoGradGuard no_grad;
  auto state = model.zero_state(1);
  double total = 0;
  for (std::size_t s = begin; s < end; s += kEvalChunk) {
    const std::size_t e = std::min(s + kEvalChunk, end);
    const std::vector<int> inputs(ids.begin() + long(s - 1), ids.begin() + long(e - 1));
    const std::vector<int> targets(ids.begin() + long(s), ids.begin() + long(e));
    const Var<F> logits = model.forward(inputs, e - s, 1, state);
    total += static_cast<double>(cross_entropy(logits, targets).value().flat(0)) * static_cast<double>(e - s);
    clear_tape();
  }
  return total / static_cast<double>(end - begin);
}

// --grad-report: B held-out streams of T characters from a zero state and the loss of the last
// step's prediction alone, so the norm of ∂L/∂a_t says how much of one loss reaches t steps back.
template <class Model>
void grad_report(const Model& model, const Corpus& c, std::size_t B, std::size_t T, const std::string& svg,
                 const std::string& title) {
  B = std::min(B, (c.ids.size() - c.split - 1) / T);
  if (B == 0) throw DataError("--grad-report: the held-out text is shorter than one segment of " + std::to_string(T) +
                              " characters (--seq-len)");
  std::vector<int> inputs(T * B), targets(B);
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t t = 0; t < T; ++t) inputs[t * B + b] = c.ids[c.split + b * T + t];
    targets[b] = c.ids[c.split + b * T + T];
  }
  GradReport report(model.rnn());
  auto state = model.zero_state(B);
  cross_entropy(select(model.forward(inputs, T, B, state), static_cast<long>(T - 1)), targets).backward();
  const std::string csv = write_grad_report(report, svg, title);
  const std::vector<double>& a = report.norms()[0].norms;
  std::printf("grad report: %s, %s (layer 0 |dL/da_t| %.3g at t = 1, %.3g at t = %zu; %zu held-out streams)\n",
              svg.c_str(), csv.c_str(), a.front(), a.back(), T, B);
  clear_tape();
}

// ---- sampling

template <class Model>
std::string sample(const Model& model, const data::Vocab& vocab, const std::string& prime, std::size_t n,
                   double temperature, std::uint64_t seed) {
  NoGradGuard no_grad;
  for (char32_t c : data::utf8_decode(prime))
    if (!vocab.contains(c))
      throw DataError("--prime: character '" + data::utf8_encode(c) + "' is not in the model's vocabulary");
  std::vector<int> prime_ids = vocab.encode(prime);
  if (prime_ids.empty()) {  // no prime: start as after a line break (or the first symbol)
    prime_ids.push_back(vocab.contains(U'\n') ? vocab.id(U'\n') : 0);
  }
  auto state = model.zero_state(1);
  std::vector<int> context(prime_ids.begin(), prime_ids.end() - 1);
  if (!context.empty()) model.forward(context, context.size(), 1, state);
  int last = prime_ids.back();
  std::mt19937_64 rng(seed);
  std::vector<int> out;
  std::vector<double> p(vocab.size());
  for (std::size_t i = 0; i < n; ++i) {
    const Var<F> logits = model.forward({last}, 1, 1, state);  // (1, 1, V)
    double mx = -INFINITY, z = 0;
    for (std::size_t v = 0; v < p.size(); ++v) mx = std::max(mx, double(logits.value().flat(v)) / temperature);
    for (std::size_t v = 0; v < p.size(); ++v) z += p[v] = std::exp(double(logits.value().flat(v)) / temperature - mx);
    double u = double(data::uniform_index(rng, 1ull << 53)) * 0x1.0p-53 * z;  // u uniform in [0, z)
    std::size_t pick = 0;
    while (pick + 1 < p.size() && u >= p[pick]) u -= p[pick++];
    last = static_cast<int>(pick);
    out.push_back(last);
    clear_tape();
  }
  return prime + vocab.decode(out);
}

// ---- the program

template <class Layer>
int run(const Cli& cli, Training& training) {
  const auto seed = training.seed();
  const std::string cell = cli.get_string("cell");
  const auto hidden = std::size_t(cli.get_int("hidden")), layers = std::size_t(cli.get_int("layers")),
             embed = std::size_t(cli.get_int("embed"));

  if (cli.get_int("sample") > 0) {  // sampling from a checkpoint: print the text only
    const std::string& resume = training.resume_path();
    const data::Vocab vocab = data::Vocab::deserialize(extra_string(*training.resumed(), "vocab", resume));
    CharModel<Layer> model(vocab.size(), embed, hidden, layers);
    load(model, resume);
    model.eval();
    std::cout << sample(model, vocab, cli.get_string("prime"), std::size_t(cli.get_int("sample")),
                        cli.get_double("temperature"), seed)
              << std::endl;
    return 0;
  }

  const std::string data_path = cli.get_string("data");
  const Corpus corpus = load_corpus(data_path);
  const data::Vocab& vocab = corpus.vocab;
  const std::size_t n = corpus.ids.size(), V = vocab.size();
  const auto B = std::size_t(cli.get_int("batch")), T = std::size_t(cli.get_int("seq-len"));
  std::printf("data: %zu characters (%zu train, %zu held out), %zu symbols, %zu file(s) from %s\n", n, corpus.split,
              n - corpus.split, V, corpus.files, data_path.c_str());
  training.same_data("vocab", vocab.serialize(), "text with another alphabet than '" + data_path + "' (different --data?)");
  const std::vector<int> train(corpus.ids.begin(), corpus.ids.begin() + long(corpus.split));
  if (train.size() / B < T + 1)
    throw DataError("training text of " + std::to_string(train.size()) + " characters is too short for " +
                    std::to_string(B) + " streams of " + std::to_string(T) + "-character segments (--batch, --seq-len)");
  data::StreamBatcher batches(train, B, T, /*drop_last=*/true);

  const double recurrent_dropout = cli.get_double("recurrent-dropout");
  CharModel<Layer> model(V, embed, hidden, layers, recurrent_dropout);
  optim::Adam<F> opt(model.parameters(), cli.get_double("lr"));
  std::size_t n_params = 0;
  for (const auto& p : model.parameters()) n_params += p.size();
  char dropout_note[48] = "";
  if (recurrent_dropout > 0)
    std::snprintf(dropout_note, sizeof dropout_note, ", recurrent dropout %g", recurrent_dropout);
  std::printf("model: %s, %zu layer(s) of %zu, %s input, %zu parameters%s; B=%zu T=%zu, Adam lr %g, clip %g\n",
              cell.c_str(), layers, hidden, embed > 0 ? ("embedding " + std::to_string(embed)).c_str() : "one-hot",
              n_params, dropout_note, B, T, opt.lr(), cli.get_double("clip"));

  auto state = model.zero_state(B);
  Training::Loop loop = training.loop();
  loop.eval_name = "held-out (first 10k chars)";
  loop.progress.unit = "tok";
  loop.progress.items_per_step = double(B * T);
  loop.evaluate = [&](double) {
    model.eval();  // no recurrent dropout
    const double h = evaluate(model, corpus.ids, corpus.split, std::min(n, corpus.split + 10000));
    model.train();
    char note[48];
    std::snprintf(note, sizeof note, "held-out %.4f", h);
    return Training::Point{h, note};
  };
  loop.save = [&](CheckpointExtra& e) {
    e["position"] = std::int64_t(batches.position());
    for (std::size_t k = 0; k < state.size(); ++k) put_state(e, k, state[k]);
  };
  loop.resume = [&](const CheckpointExtra& e, const std::string& path) {
    batches.seek(static_cast<std::uint64_t>(extra_int(e, "position", path)));
    for (std::size_t k = 0; k < state.size(); ++k) get_state(e, k, state[k], path);
  };
  training.run(model, opt, loop, [&](std::int64_t) {
    if (batches.index() == 0) state = model.zero_state(B);  // the streams start over
    const data::SequenceBatch seg = batches.next();
    const Var<F> loss = cross_entropy(model.forward(seg.inputs, T, B, state), seg.targets);
    for (auto& s : state) s = detached(s);  // carried into the next segment
    return loss;
  });

  model.eval();
  std::printf("sample (temperature 0.8):\n%s\n", sample(model, vocab, "", 400, 0.8, seed).c_str());
  const double nats = evaluate(model, corpus.ids, corpus.split, n);
  if (const std::string& out = cli.get_string("export"); !out.empty()) {
    save_safetensors(model, out, Names::pytorch);
    std::printf("exported: %s (safetensors, PyTorch names)\n", out.c_str());
  }
  if (const std::string& svg = cli.get_string("grad-report"); !svg.empty())
    grad_report(model, corpus, B, T, svg, "char_lm " + cell + " " + std::to_string(hidden) + ": gradient norm over time");
  char last[80];
  std::snprintf(last, sizeof last, "held-out: %.4f nats/char, %.4f bits/char", nats, nats / std::log(2.0));
  return training.finish("char_lm: " + cell + " " + std::to_string(hidden) + ", loss in nats/char", last);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli(kProgram,
          "Train a character-level language model (truncated BPTT, Adam, gradient clipping) on a UTF-8\n"
          "text file or directory, the last 10% held out; report held-out nats and bits per character.\n"
          "With --resume PATH --sample N: print N characters sampled from the checkpoint, nothing else.");
  cli.add_common(/*seed=*/1, /*threads=*/1);
  cli.add_string("data", kFortunesDir, "text FILE or DIR (a DIR's files are read in sorted order)");
  cli.add_string("cell", "lstm", "recurrent cell (lnlstm: layer-normalised LSTM)", {"rnn", "lstm", "gru", "lnlstm"});
  cli.add_int("hidden", 256, "hidden units per layer", 1, 65536);
  cli.add_int("layers", 1, "recurrent layers", 1, 64);
  cli.add_int("embed", 0, "character embedding size; 0: one-hot input", 0, 65536);
  cli.add_double("recurrent-dropout", 0.0, "probability of dropping a hidden unit fed back into the step, one mask "
                 "per stream and segment", 0.0, 0.99);
  cli.add_int("batch", 32, "parallel streams B", 1, 65536);
  cli.add_int("seq-len", 64, "BPTT segment length T", 1, 65536);
  cli.add_int("steps", 2000, "training steps (in total, counting those of a resumed run)", 0);
  cli.add_double("lr", 2e-3, "Adam learning rate", 0.0, 10.0, true);
  cli.add_double("clip", 5.0, "clip gradients to this global norm; 0: no clipping", 0.0);
  cli.add_int("save-every", 250, "with --checkpoint, save every N steps (and at the end)", 1);
  cli.add_int("eval-every", 250, "every N steps, evaluate the first 10k held-out characters (0: never)", 0);
  cli.add_int("sample", 0, "with --resume: print the prime and N sampled characters, then exit", 0);
  cli.add_double("temperature", 1.0, "sampling temperature", 0.0, 100.0, true);
  cli.add_string("prime", "", "text the sample starts with (UTF-8)");
  cli.add_string("grad-report", "", "after training, the gradient norm at every step of a held-out batch (loss at "
                 "its last step) drawn to FILE.svg, the numbers to FILE.csv");
  cli.add_string("export", "", "after training, write the model to FILE.safetensors under PyTorch's names "
                 "(embed, rnn, head: see README)");
  cli.parse(argc, argv);
  if (cli.given("sample") && cli.get_string("resume").empty()) {
    std::cerr << kProgram << ": option --sample needs --resume PATH (the checkpoint to sample from)\n"
              << "Try '" << kProgram << " --help' for the options.\n";
    return 2;
  }

  return guarded_main(kProgram, [&] {
    // A resumed run takes the model's shape and the batch layout from the checkpoint.
    Training training(cli, kProgram, {{"cell", "hidden", "layers", "embed", "batch", "seq-len"}, {}});
    const std::string cell = cli.get_string("cell");
    if (cell == "rnn") return run<nn::RNN<F>>(cli, training);
    if (cell == "gru") return run<nn::GRU<F>>(cli, training);
    if (cell == "lstm") return run<nn::LSTM<F>>(cli, training);
    if (cell == "lnlstm") return run<nn::Recurrent<nn::LayerNormLSTMCell<F>>>(cli, training);
    throw CheckpointError("checkpoint '" + training.resume_path() + "' holds an unknown cell type '" + cell + "'");
  });
}
