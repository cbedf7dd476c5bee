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
//
// --dtype double trains in float64 throughout (the model, Adam, the carried state, the checkpoint).
//
// Data-parallel under `mpirun -np N` (built with xgrad::dist): rank r takes the streams
// data::shard(B, r, N) of every segment and carries their state. Every rank builds the same model
// from --seed (and takes rank 0's parameters anyway); after backward the gradients are summed
// with weights B_r/B, each rank's share of the segment's tokens, so the step is the one of the
// whole batch's mean loss, and clipping and Adam then run identically everywhere. Rank 0 alone
// prints, evaluates (the held-out text is one stream, so the figure is the one process's) and
// writes the checkpoint, which holds all B streams' state: a run resumes with any N. Every rank
// reads the checkpoint it resumes from (the same file: on a cluster, a shared path).
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
#include "common/ranks.hpp"
#include "common/plot.hpp"
#include "common/training.hpp"

namespace {

using namespace xgrad;
using namespace xgrad::examples;

constexpr const char* kProgram = "char_lm";
constexpr std::size_t kEvalChunk = 1024;  // held-out characters per no-grad forward

// ---- the parts of the three cells that differ

template <class Layer> struct OptionsOf;
template <class F> struct OptionsOf<nn::RNN<F>> { using type = nn::RNNOptions; };
template <class F> struct OptionsOf<nn::LSTM<F>> { using type = nn::LSTMOptions; };
template <class F> struct OptionsOf<nn::GRU<F>> { using type = nn::GRUOptions; };
template <class F> struct OptionsOf<nn::Recurrent<nn::LayerNormLSTMCell<F>>> { using type = nn::RecurrentOptions; };

// The parts of a layer's carried state, each (B_r, n_a), named in the checkpoint
// "state.<k>.a" (and "state.<k>.c" for an LSTM).
template <class F> std::vector<Var<F>*> parts(Var<F>& s) { return {&s}; }
template <class F> std::vector<Var<F>*> parts(nn::LSTMState<F>& s) { return {&s.a, &s.c}; }
template <class V> struct ScalarOf;
template <class F> struct ScalarOf<Var<F>*> { using type = F; };
template <class State> using state_scalar = typename ScalarOf<typename decltype(parts(std::declval<State&>()))::value_type>::type;
std::string state_key(std::size_t k, std::size_t part) { return "state." + std::to_string(k) + (part == 0 ? ".a" : ".c"); }

// Carried into the next segment without its history.
template <class State> void detach_state(State& s) {
  for (auto* v : parts(s)) *v = v->detach();
}

// The checkpoint keeps all B streams' state, whichever rank carries them: each rank's rows are
// gathered from it (with one process they are all of them).
template <class State>
void put_state(CheckpointExtra& e, std::size_t k, State& s, std::size_t batch) {
  using F = state_scalar<State>;
  std::vector<Array<F>> mine;
  for (auto* v : parts(s)) mine.push_back(v->value());
  std::vector<Array<F>> whole = ranks::gather_rows(mine, batch);
  for (std::size_t i = 0; i < whole.size(); ++i) e[state_key(k, i)] = std::move(whole[i]);
}
// This rank's rows of the checkpoint's state.
template <class State>
void get_state(const CheckpointExtra& e, std::size_t k, State& s, const data::Shard& mine, const std::string& path) {
  std::size_t i = 0;
  for (auto* v : parts(s))
    *v = constant(ranks::rows(extra_array<state_scalar<State>>(e, state_key(k, i++), path), mine.begin, mine.end));
}

// ---- the model: [embedding] -> recurrent layers -> linear head

template <class Layer, class F = typename Layer::value_type>
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
      this->register_module("embed", *emb_);
    }
    this->register_module("rnn", rnn_);
    this->register_module("head", head_);
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
    const auto logits = model.forward(inputs, e - s, 1, state);
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
    const auto logits = model.forward({last}, 1, 1, state);  // (1, 1, V)
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
  using F = typename Layer::value_type;
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
    if (training.lead())
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
  const bool lead = training.lead();
  if (lead)
    std::printf("data: %zu characters (%zu train, %zu held out), %zu symbols, %zu file(s) from %s\n", n, corpus.split,
                n - corpus.split, V, corpus.files, data_path.c_str());
  training.same_data("vocab", vocab.serialize(), "text with another alphabet than '" + data_path + "' (different --data?)");
  const std::vector<int> train(corpus.ids.begin(), corpus.ids.begin() + long(corpus.split));
  if (train.size() / B < T + 1)
    throw DataError("training text of " + std::to_string(train.size()) + " characters is too short for " +
                    std::to_string(B) + " streams of " + std::to_string(T) + "-character segments (--batch, --seq-len)");
  data::StreamBatcher batches(train, B, T, /*drop_last=*/true);
  const int rank = ranks::rank(), world = ranks::world_size();
  if (B < std::size_t(world))
    throw DataError("--batch " + std::to_string(B) + " gives fewer streams than the " + std::to_string(world) +
                    " ranks (each rank needs at least one)");
  const data::Shard mine = data::shard(B, rank, world);  // this rank's streams
  const std::size_t Bm = mine.size();

  const double recurrent_dropout = cli.get_double("recurrent-dropout");
  CharModel<Layer> model(V, embed, hidden, layers, recurrent_dropout);
  const auto params = model.parameters();
  ranks::broadcast_parameters(params);  // equal already (the same seed): made sure of
  // Recurrent dropout draws each rank's masks: from the same generator they would repeat rank 0's.
  if (rank > 0) nn::manual_seed(seed + 0x9E3779B97F4A7C15ull * std::uint64_t(rank));
  optim::Adam<F> opt(params, cli.get_double("lr"));
  std::size_t n_params = 0;
  for (const auto& p : model.parameters()) n_params += p.size();
  char dropout_note[48] = "";
  if (recurrent_dropout > 0)
    std::snprintf(dropout_note, sizeof dropout_note, ", recurrent dropout %g", recurrent_dropout);
  if (lead)
    std::printf("model: %s, %zu layer(s) of %zu, %s input, %zu parameters%s; B=%zu T=%zu, Adam lr %g, clip %g%s\n",
                cell.c_str(), layers, hidden, embed > 0 ? ("embedding " + std::to_string(embed)).c_str() : "one-hot",
                n_params, dropout_note, B, T, opt.lr(), cli.get_double("clip"),
                std::is_same_v<F, double> ? "; float64" : "");
  if (lead && world > 1)
    std::printf("data-parallel: %d ranks of %zu%s streams\n", world, B / std::size_t(world),
                B % std::size_t(world) ? (" or " + std::to_string(B / std::size_t(world) + 1)).c_str() : "");

  auto state = model.zero_state(Bm);
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
  loop.save = [&](CheckpointExtra& e) {  // on every rank: the state is gathered
    e["position"] = std::int64_t(batches.position());
    e["dtype"] = std::string(std::is_same_v<F, double> ? "double" : "float");
    for (std::size_t k = 0; k < state.size(); ++k) put_state(e, k, state[k], B);
  };
  loop.resume = [&](const CheckpointExtra& e, const std::string& path) {
    ranks::broadcast_parameters(params);  // every rank read the same file: made sure of
    batches.seek(static_cast<std::uint64_t>(extra_int(e, "position", path)));
    for (std::size_t k = 0; k < state.size(); ++k) get_state(e, k, state[k], mine, path);
  };
  if (world > 1) {
    // This rank's share of every segment's B·T tokens: the weighted sum of the ranks' mean
    // losses (and gradients) is the whole segment's mean.
    const double weight = double(Bm * T) / ranks::all_reduce_sum(double(Bm * T));
    loop.all_reduce = [&params, weight](double loss) {
      ranks::all_reduce_gradients(params, weight);
      return ranks::all_reduce_sum(weight * loss);
    };
  }
  training.run(model, opt, loop, [&](std::int64_t) {
    if (batches.index() == 0) state = model.zero_state(Bm);  // the streams start over
    const data::SequenceBatch seg = data::shard_of(batches.next(), rank, world);
    const Var<F> loss = cross_entropy(model.forward(seg.inputs, T, Bm, state), seg.targets);
    for (auto& s : state) detach_state(s);  // carried into the next segment
    return loss;
  });
  if (!lead) return 0;  // rank 0 samples, evaluates, exports and reports

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

template <class F>
int run_cell(const Cli& cli, Training& training) {
  const std::string cell = cli.get_string("cell");
  if (cell == "rnn") return run<nn::RNN<F>>(cli, training);
  if (cell == "gru") return run<nn::GRU<F>>(cli, training);
  if (cell == "lstm") return run<nn::LSTM<F>>(cli, training);
  if (cell == "lnlstm") return run<nn::Recurrent<nn::LayerNormLSTMCell<F>>>(cli, training);
  throw CheckpointError("checkpoint '" + training.resume_path() + "' holds an unknown cell type '" + cell + "'");
}

// A resumed run trains in the checkpoint's scalar type (float if it names none: it was written
// before --dtype existed); given on the command line, --dtype must agree with it.
void adopt_dtype(Cli& cli, const Training& training) {
  const CheckpointExtra* e = training.resumed();
  if (e == nullptr) return;
  const std::string& path = training.resume_path();
  const std::string saved = e->count("dtype") ? extra_string(*e, "dtype", path) : "float";
  if (cli.given("dtype") && cli.get_string("dtype") != saved)
    throw CheckpointError("--dtype " + cli.get_string("dtype") + " was given, but checkpoint '" + path +
                          "' holds a model with dtype " + saved);
  cli.set("dtype", saved);
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
  cli.add_string("dtype", "float", "scalar type of the model and the training (double: float64, e.g. to compare "
                 "runs to 1e-10)", {"float", "double"});
  cli.parse(argc, argv);
  if (cli.given("sample") && cli.get_string("resume").empty()) {
    std::cerr << kProgram << ": option --sample needs --resume PATH (the checkpoint to sample from)\n"
              << "Try '" << kProgram << " --help' for the options.\n";
    return 2;
  }

  return guarded_main(kProgram, [&] {
    // Under mpirun, one rank of several; an error on a rank leaves through the session, which
    // then lets the job end when this process exits instead of waiting for the other ranks.
    ranks::Session session(argc, argv);
    // A resumed run takes the model's shape and the batch layout from the checkpoint.
    Training training(cli, kProgram, {{"cell", "hidden", "layers", "embed", "batch", "seq-len"}, {}});
    training.set_lead(ranks::rank() == 0);
    adopt_dtype(cli, training);
    return cli.get_string("dtype") == "double" ? run_cell<double>(cli, training) : run_cell<float>(cli, training);
  });
}
