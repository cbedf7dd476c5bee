// char_lm: a character-level language model (RNN, LSTM or GRU) trained on a UTF-8 text, by
// default the fortune-cookie corpus of Debian's `fortunes` package, with the last 10% held out.
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
// `char_lm --resume PATH --sample N [--temperature T] [--prime TEXT]` prints the prime followed
// by N sampled characters, and nothing else.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/cli.hpp"
#include "common/corpus.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/training.hpp"
#include "common/utf8.hpp"

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

  CharModel(std::size_t vocab, std::size_t embed, std::size_t hidden, std::size_t layers)
      : rnn_(embed > 0 ? embed : vocab, hidden, typename OptionsOf<Layer>::type().layers(layers)),
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

 private:
  Layer rnn_;
  nn::Linear<F> head_;
  std::unique_ptr<nn::Embedding<F>> emb_;
};

// ---- data

struct Corpus {
  std::vector<char32_t> symbols;  // the vocabulary: every code point of the text, sorted
  std::vector<int> ids;           // the whole text
  std::size_t split = 0;          // [0, split) train, [split, n) held out
  std::size_t files = 0;
};

Corpus load_corpus(const std::string& path) {
  Corpus c;
  c.files = corpus_files(path).size();
  const std::u32string text = decode_utf8(read_corpus(path), path);
  c.symbols.assign(text.begin(), text.end());
  std::sort(c.symbols.begin(), c.symbols.end());
  c.symbols.erase(std::unique(c.symbols.begin(), c.symbols.end()), c.symbols.end());
  const data::Vocab vocab(c.symbols);
  c.ids.reserve(text.size());
  for (char32_t ch : text) c.ids.push_back(vocab.id(ch));
  c.split = held_out_start(c.ids.size(), 0.1);
  if (c.split == c.ids.size())
    throw DataError("'" + path + "': " + std::to_string(c.ids.size()) +
                    " characters are too few to hold out 10% (at least 5 needed)");
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

// ---- sampling

// A uniform double in [0, 1) from 53 bits of the generator: the same numbers everywhere.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

template <class Model>
std::string sample(const Model& model, const data::Vocab& vocab, const std::string& prime, std::size_t n,
                   double temperature, std::uint64_t seed) {
  NoGradGuard no_grad;
  std::u32string start = decode_utf8(prime, "--prime");
  std::vector<int> prime_ids;
  for (char32_t c : start) {
    if (!vocab.contains(c))
      throw DataError("--prime: character '" + encode_utf8(c) + "' (U+" + [&] {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%04X", static_cast<unsigned>(c));
        return std::string(buf);
      }() + ") is not in the model's vocabulary");
    prime_ids.push_back(vocab.id(c));
  }
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
    double u = uniform01(rng) * z;
    std::size_t pick = 0;
    while (pick + 1 < p.size() && u >= p[pick]) u -= p[pick++];
    last = static_cast<int>(pick);
    out.push_back(last);
    clear_tape();
  }
  return prime + vocab.decode(out);
}

// ---- the program

struct Config {
  std::string cell;
  std::int64_t hidden, layers, embed;
};

template <class Layer>
int run(const Cli& cli, const Config& cfg, const CheckpointExtra* resumed) {
  const std::string resume = cli.get_string("resume"), ckpt = cli.get_string("checkpoint"), out = cli.get_string("out");
  const auto seed = static_cast<std::uint64_t>(cli.get_int("seed"));
  nn::manual_seed(seed);

  if (cli.get_int("sample") > 0) {  // sampling from a checkpoint: print the text only
    const data::Vocab vocab = data::Vocab::deserialize(extra_string(*resumed, "vocab", resume));
    CharModel<Layer> model(vocab.size(), std::size_t(cfg.embed), std::size_t(cfg.hidden), std::size_t(cfg.layers));
    load(model, resume);
    model.eval();
    std::cout << sample(model, vocab, cli.get_string("prime"), std::size_t(cli.get_int("sample")),
                        cli.get_double("temperature"), seed)
              << std::endl;
    return 0;
  }

  const std::string data_path = cli.get_string("data");
  const Corpus corpus = load_corpus(data_path);
  const data::Vocab vocab(corpus.symbols);
  const std::size_t n = corpus.ids.size(), V = vocab.size();
  const auto B = std::size_t(cli.get_int("batch")), T = std::size_t(cli.get_int("seq-len"));
  const auto steps = cli.get_int("steps");
  std::printf("data: %zu characters (%zu train, %zu held out), %zu symbols, %zu file(s) from %s\n", n, corpus.split,
              n - corpus.split, V, corpus.files, data_path.c_str());
  const std::vector<int> train(corpus.ids.begin(), corpus.ids.begin() + long(corpus.split));
  if (train.size() / B < T + 1)
    throw DataError("training text of " + std::to_string(train.size()) + " characters is too short for " +
                    std::to_string(B) + " streams of " + std::to_string(T) + "-character segments (--batch, --seq-len)");
  data::StreamBatcher batches(train, B, T, /*drop_last=*/true);

  CharModel<Layer> model(V, std::size_t(cfg.embed), std::size_t(cfg.hidden), std::size_t(cfg.layers));
  optim::Adam<F> opt(model.parameters(), cli.get_double("lr"));
  const double clip = cli.get_double("clip");
  std::size_t n_params = 0;
  for (const auto& p : model.parameters()) n_params += p.size();
  std::printf("model: %s, %lld layer(s) of %lld, %s input, %zu parameters; B=%zu T=%zu, Adam lr %g, clip %g\n",
              cfg.cell.c_str(), (long long)cfg.layers, (long long)cfg.hidden,
              cfg.embed > 0 ? ("embedding " + std::to_string(cfg.embed)).c_str() : "one-hot", n_params, B, T,
              opt.lr(), clip);

  auto state = model.zero_state(B);
  std::int64_t step = 0;
  Series train_curve{"train", {}, {}}, held_curve{"held-out (first 10k chars)", {}, {}};
  if (resumed != nullptr) {
    if (extra_string(*resumed, "vocab", resume) != vocab.serialize())
      throw CheckpointError("checkpoint '" + resume + "' was trained on text with another alphabet than '" +
                            data_path + "' (different --data?)");
    if (extra_int(*resumed, "batch", resume) != std::int64_t(B) || extra_int(*resumed, "seq-len", resume) != std::int64_t(T))
      throw CheckpointError("checkpoint '" + resume + "' was trained with --batch " +
                            std::to_string(extra_int(*resumed, "batch", resume)) + " --seq-len " +
                            std::to_string(extra_int(*resumed, "seq-len", resume)) + "; resume with the same");
    load(model, opt, resume);
    step = extra_int(*resumed, "step", resume);
    batches.seek(static_cast<std::uint64_t>(extra_int(*resumed, "position", resume)));
    for (std::size_t k = 0; k < state.size(); ++k) get_state(*resumed, k, state[k], resume);
    train_curve = get_series(*resumed, "curve.train", train_curve.name);
    held_curve = get_series(*resumed, "curve.held", held_curve.name);
    std::printf("resumed from %s at step %lld\n", resume.c_str(), (long long)step);
  }

  auto save_checkpoint = [&] {
    if (ckpt.empty()) return;
    CheckpointExtra e{{"model", std::string(kProgram)}, {"cell", cfg.cell},       {"hidden", cfg.hidden},
                      {"layers", cfg.layers},           {"embed", cfg.embed},     {"vocab", vocab.serialize()},
                      {"step", step},                   {"batch", std::int64_t(B)}, {"seq-len", std::int64_t(T)},
                      {"position", std::int64_t(batches.position())}};
    for (std::size_t k = 0; k < state.size(); ++k) put_state(e, k, state[k]);
    put_series(e, "curve.train", train_curve);
    put_series(e, "curve.held", held_curve);
    save(model, opt, ckpt, e);
  };

  const auto params = model.parameters();
  const std::int64_t save_every = cli.get_int("save-every"), eval_every = cli.get_int("eval-every");
  const std::size_t quick_end = std::min(n, corpus.split + 10000);
  Progress::Options po;
  po.unit = "tok";
  po.items_per_step = double(B * T);
  po.start = step;
  Progress progress(steps, po);
  double window = 0;
  int in_window = 0;
  std::string extra;
  while (step < steps) {
    if (batches.index() == 0) state = model.zero_state(B);  // the streams start over
    const data::SequenceBatch seg = batches.next();
    opt.zero_grad();
    const Var<F> loss = cross_entropy(model.forward(seg.inputs, T, B, state), seg.targets);
    loss.backward();
    if (clip > 0) optim::clip_grad_norm(params, clip);
    opt.step();
    for (auto& s : state) s = detached(s);
    const double l = loss.value().flat(0);
    clear_tape();
    ++step;
    if (!std::isfinite(l)) throw ValueError("training diverged: loss " + std::to_string(l) + " at step " +
                                            std::to_string(step) + " (try a smaller --lr or a --clip)");
    window += l, ++in_window;
    if (in_window == 10 || step == steps) {
      train_curve.x.push_back(double(step)), train_curve.y.push_back(window / in_window);
      window = 0, in_window = 0;
    }
    if (eval_every > 0 && (step % eval_every == 0 || step == steps)) {
      const double h = evaluate(model, corpus.ids, corpus.split, quick_end);
      held_curve.x.push_back(double(step)), held_curve.y.push_back(h);
      char buf[48];
      std::snprintf(buf, sizeof buf, "held-out %.4f", h);
      extra = buf;
    }
    progress.update(step, train_curve.y.empty() ? l : train_curve.y.back(), extra);
    if (save_every > 0 && step % save_every == 0) save_checkpoint();
  }
  progress.finish();
  save_checkpoint();

  model.eval();
  std::printf("sample (temperature 0.8):\n%s\n", sample(model, vocab, "", 400, 0.8, seed).c_str());
  if (!out.empty()) {
    PlotOptions po_plot;
    po_plot.title = "char_lm: " + cfg.cell + " " + std::to_string(cfg.hidden) + ", loss in nats/char";
    std::printf("loss curve: %s\n", write_loss_curve(out, "char_lm", {train_curve, held_curve}, po_plot).c_str());
  }
  const double nats = evaluate(model, corpus.ids, corpus.split, n);
  std::printf("held-out: %.4f nats/char, %.4f bits/char\n", nats, nats / std::log(2.0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli(kProgram,
          "Train a character-level language model (truncated BPTT, Adam, gradient clipping) on a UTF-8\n"
          "text file or directory, the last 10% held out; report held-out nats and bits per character.\n"
          "With --resume PATH --sample N: print N characters sampled from the checkpoint, nothing else.");
  cli.add_common(/*seed=*/1, /*threads=*/1);
  cli.add_string("data", kFortunesDir, "text FILE or DIR (a DIR's files are read in sorted order)");
  cli.add_string("cell", "lstm", "recurrent cell", {"rnn", "lstm", "gru"});
  cli.add_int("hidden", 256, "hidden units per layer", 1, 65536);
  cli.add_int("layers", 1, "recurrent layers", 1, 64);
  cli.add_int("embed", 0, "character embedding size; 0: one-hot input", 0, 65536);
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
  cli.parse(argc, argv);

  const std::string resume = cli.get_string("resume");
  if (cli.given("sample") && resume.empty()) {
    std::cerr << kProgram << ": option --sample needs --resume PATH (the checkpoint to sample from)\n"
              << "Try '" << kProgram << " --help' for the options.\n";
    return 2;
  }
  const auto threads = cli.get_int("threads");  // 0: all cores
  blas::set_num_threads(threads > 0 ? int(threads) : int(std::max(1u, std::thread::hardware_concurrency())));

  return guarded_main(kProgram, [&] {
    Config cfg{cli.get_string("cell"), cli.get_int("hidden"), cli.get_int("layers"), cli.get_int("embed")};
    CheckpointExtra extra;
    if (!resume.empty()) {
      extra = load_extra_of(kProgram, resume);
      const Config saved{extra_string(extra, "cell", resume), extra_int(extra, "hidden", resume),
                         extra_int(extra, "layers", resume), extra_int(extra, "embed", resume)};
      check_same("cell", cfg.cell, saved.cell, cli.given("cell"), resume);
      check_same("hidden", std::to_string(cfg.hidden), std::to_string(saved.hidden), cli.given("hidden"), resume);
      check_same("layers", std::to_string(cfg.layers), std::to_string(saved.layers), cli.given("layers"), resume);
      check_same("embed", std::to_string(cfg.embed), std::to_string(saved.embed), cli.given("embed"), resume);
      cfg = saved;
    }
    const CheckpointExtra* resumed = resume.empty() ? nullptr : &extra;
    if (cfg.cell == "rnn") return run<nn::RNN<F>>(cli, cfg, resumed);
    if (cfg.cell == "gru") return run<nn::GRU<F>>(cli, cfg, resumed);
    if (cfg.cell == "lstm") return run<nn::LSTM<F>>(cli, cfg, resumed);
    throw CheckpointError("checkpoint '" + resume + "' holds an unknown cell type '" + cfg.cell + "'");
  });
}
