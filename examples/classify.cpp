// classify: many-to-one sequence classification: which of eight languages a word comes from,
// from the word lists of Debian's w* packages (common/wordlists.hpp has the data rules).
//
//   e_t = E[c_t]  (m, embed);   a_t = cell(e_t, a_{t-1});   ŷ = softmax(a_len·Wᵀ + b)   (m, 8)
//
// where a_len is each word's state after its own last character (the sequence layer's lengths);
// with --bidirectional the reverse direction's final state is concatenated. Variable-length
// batches are padded with id 0. Softmax cross-entropy, Adam; every epoch visits the training
// words in a fresh order fixed by --seed. Reports validation accuracy per epoch, then the test
// accuracy and a confusion matrix. bench/classify_torch.py is the PyTorch counterpart.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/training.hpp"
#include "common/utf8.hpp"
#include "common/wordlists.hpp"

namespace {

using namespace xgrad;
using namespace xgrad::examples;
using F = float;

constexpr const char* kProgram = "classify";
constexpr std::size_t kEvalBatch = 1024;

template <class Layer> struct OptionsOf;
template <> struct OptionsOf<nn::LSTM<F>> { using type = nn::LSTMOptions; };
template <> struct OptionsOf<nn::GRU<F>> { using type = nn::GRUOptions; };

const Var<F>& hidden(const Var<F>& s) { return s; }
const Var<F>& hidden(const nn::LSTMState<F>& s) { return s.a; }

// Words as id sequences (0 is padding, so characters are 1..alphabet size) with their labels.
struct Encoded {
  std::vector<std::vector<int>> ids;
  std::vector<int> labels;
};

Encoded encode(const std::vector<LabeledWord>& words, const std::map<char32_t, int>& index) {
  Encoded e;
  for (const auto& w : words) {
    std::vector<int> ids;
    for (char32_t c : w.word) ids.push_back(index.at(c));
    if (ids.empty()) throw DataError("empty word in the data");
    e.ids.push_back(std::move(ids));
    e.labels.push_back(w.label);
  }
  return e;
}

template <class Layer>
class Classifier : public nn::Module<F> {
 public:
  Classifier(std::size_t alphabet, std::size_t embed, std::size_t hidden, bool bidirectional, std::size_t classes)
      : emb_(alphabet + 1, embed),
        rnn_(embed, hidden, typename OptionsOf<Layer>::type().bidirectional(bidirectional)),
        head_((bidirectional ? 2 : 1) * hidden, classes) {
    register_module("embed", emb_);
    register_module("rnn", rnn_);
    register_module("head", head_);
  }

  // logits (m, classes) of a padded batch.
  Var<F> forward(const data::PaddedBatch& b) const {
    const Var<F> x = reshape(emb_(b.ids), {b.steps, b.batch, emb_.embedding_dim()});  // (T, m, embed)
    const auto res = rnn_(x, {}, b.lengths);
    if (res.state.size() == 1) return head_(hidden(res.state[0]));
    return head_(concat({hidden(res.state[0]), hidden(res.state[1])}, 1));  // (m, 2·hidden)
  }

 private:
  nn::Embedding<F> emb_;
  Layer rnn_;
  nn::Linear<F> head_;
};

struct Evaluation {
  double accuracy = 0, loss = 0;
  std::vector<std::vector<int>> confusion;  // [true][predicted]
};

template <class Model>
Evaluation evaluate(const Model& model, const Encoded& data, std::size_t classes) {
  NoGradGuard no_grad;
  Evaluation ev;
  ev.confusion.assign(classes, std::vector<int>(classes, 0));
  std::size_t correct = 0;
  for (std::size_t s = 0; s < data.ids.size(); s += kEvalBatch) {
    std::vector<std::size_t> idx;
    for (std::size_t i = s; i < std::min(s + kEvalBatch, data.ids.size()); ++i) idx.push_back(i);
    const std::vector<int> labels(data.labels.begin() + long(s), data.labels.begin() + long(s + idx.size()));
    const Var<F> logits = model.forward(data::pad_batch(data.ids, idx));
    ev.loss += double(cross_entropy(logits, labels).value().flat(0)) * double(idx.size());
    const auto& v = logits.value();  // (m, classes)
    for (std::size_t i = 0; i < idx.size(); ++i) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < classes; ++c)
        if (v(i, c) > v(i, best)) best = c;
      correct += best == std::size_t(labels[i]);
      ++ev.confusion[std::size_t(labels[i])][best];
    }
    clear_tape();
  }
  ev.accuracy = double(correct) / double(data.ids.size());
  ev.loss /= double(data.ids.size());
  return ev;
}

void print_confusion(const Evaluation& ev, const std::vector<std::string>& languages) {
  std::size_t width = 0;
  for (const auto& l : languages) width = std::max(width, l.size());
  std::printf("confusion matrix (rows: true language, columns: predicted):\n%*s", int(width + 1), "");
  for (const auto& l : languages) std::printf(" %5s", l.substr(0, 5).c_str());
  std::printf("\n");
  for (std::size_t r = 0; r < languages.size(); ++r) {
    std::printf("%*s ", int(width), languages[r].c_str());
    for (int c : ev.confusion[r]) std::printf(" %5d", c);
    std::printf("\n");
  }
}

template <class Layer>
int run(const Cli& cli, const CheckpointExtra* resumed) {
  const std::string resume = cli.get_string("resume"), ckpt = cli.get_string("checkpoint"), out = cli.get_string("out");
  const auto seed = static_cast<std::uint64_t>(cli.get_int("seed"));
  nn::manual_seed(seed);

  WordSplit split;
  if (!cli.get_string("split").empty()) {
    split = read_split_tsv(cli.get_string("split"));
  } else {
    WordSplitOptions wo;
    wo.dir = cli.get_string("dict");
    split = load_word_split(wo);
  }
  if (split.train.empty() || split.validation.empty() || split.test.empty())
    throw DataError("the word split needs train, validation and test words, got " + std::to_string(split.train.size()) +
                    ", " + std::to_string(split.validation.size()) + ", " + std::to_string(split.test.size()));
  if (!cli.get_string("write-split").empty()) write_split_tsv(split, cli.get_string("write-split"));
  const std::u32string alphabet = split_alphabet(split);
  std::map<char32_t, int> index;
  for (std::size_t i = 0; i < alphabet.size(); ++i) index[alphabet[i]] = int(i) + 1;
  const Encoded train = encode(split.train, index), valid = encode(split.validation, index),
                test = encode(split.test, index);
  const std::size_t classes = split.languages.size();
  std::printf("data: %zu train, %zu validation, %zu test words, %zu languages, %zu characters\n", train.ids.size(),
              valid.ids.size(), test.ids.size(), classes, alphabet.size());

  const std::string cell = cli.get_string("cell");
  const auto embed = std::size_t(cli.get_int("embed")), hidden_size = std::size_t(cli.get_int("hidden"));
  const bool bidirectional = cli.get_flag("bidirectional");
  Classifier<Layer> model(alphabet.size(), embed, hidden_size, bidirectional, classes);
  optim::Adam<F> opt(model.parameters(), cli.get_double("lr"));
  const auto B = std::size_t(cli.get_int("batch"));
  const std::int64_t epochs = cli.get_int("epochs");
  const auto per_epoch = std::int64_t((train.ids.size() + B - 1) / B);
  const std::int64_t total = epochs * per_epoch;
  std::printf("model: embedding %zu, %s%s %zu, linear over the final state; batch %zu, Adam lr %g, %lld epoch(s) "
              "of %lld steps\n",
              embed, bidirectional ? "bidirectional " : "", cell.c_str(), hidden_size, B, opt.lr(),
              (long long)epochs, (long long)per_epoch);

  std::int64_t step = 0;
  Series train_curve{"train", {}, {}}, valid_curve{"validation", {}, {}};
  std::string alphabet_utf8 = encode_utf8(alphabet), languages;
  for (const auto& l : split.languages) languages += l + ",";
  if (resumed != nullptr) {
    if (extra_string(*resumed, "alphabet", resume) != alphabet_utf8 ||
        extra_string(*resumed, "languages", resume) != languages)
      throw CheckpointError("checkpoint '" + resume + "' was trained on other data (alphabet or languages differ)");
    if (extra_int(*resumed, "batch", resume) != std::int64_t(B))
      throw CheckpointError("checkpoint '" + resume + "' was trained with --batch " +
                            std::to_string(extra_int(*resumed, "batch", resume)) + "; resume with the same");
    load(model, opt, resume);
    step = extra_int(*resumed, "step", resume);
    train_curve = get_series(*resumed, "curve.train", train_curve.name);
    valid_curve = get_series(*resumed, "curve.valid", valid_curve.name);
    std::printf("resumed from %s at step %lld\n", resume.c_str(), (long long)step);
  }
  auto save_checkpoint = [&] {
    if (ckpt.empty()) return;
    CheckpointExtra e{{"model", std::string(kProgram)},
                      {"cell", cell},
                      {"embed", std::int64_t(embed)},
                      {"hidden", std::int64_t(hidden_size)},
                      {"bidirectional", std::int64_t(bidirectional)},
                      {"batch", std::int64_t(B)},
                      {"alphabet", alphabet_utf8},
                      {"languages", languages},
                      {"step", step}};
    put_series(e, "curve.train", train_curve);
    put_series(e, "curve.valid", valid_curve);
    save(model, opt, ckpt, e);
  };

  const std::int64_t save_every = cli.get_int("save-every");
  Progress::Options po;
  po.start = step;
  Progress progress(total, po);
  double window = 0, epoch_loss = 0;
  int in_window = 0, in_epoch = 0;
  std::string extra;
  while (step < total) {
    const std::int64_t epoch = step / per_epoch;
    // The epoch's order depends on the seed and the epoch only, so a resumed run continues it.
    const auto order = data::minibatches(train.ids.size(), B, seed * 1000003 + std::uint64_t(epoch));
    for (std::size_t k = std::size_t(step % per_epoch); k < order.size(); ++k) {
      std::vector<int> labels;
      for (auto i : order[k]) labels.push_back(train.labels[i]);
      opt.zero_grad();
      const Var<F> loss = cross_entropy(model.forward(data::pad_batch(train.ids, order[k])), labels);
      loss.backward();
      opt.step();
      const double l = loss.value().flat(0);
      clear_tape();
      ++step;
      window += l, ++in_window, epoch_loss += l, ++in_epoch;
      if (in_window == 50 || k + 1 == order.size()) {
        train_curve.x.push_back(double(step)), train_curve.y.push_back(window / in_window);
        window = 0, in_window = 0;
      }
      progress.update(step, train_curve.y.empty() ? l : train_curve.y.back(), extra);
      if (step % save_every == 0) save_checkpoint();
    }
    progress.finish();
    const Evaluation ev = evaluate(model, valid, classes);
    valid_curve.x.push_back(double(step)), valid_curve.y.push_back(ev.loss);
    char buf[64];
    std::snprintf(buf, sizeof buf, "val acc %.4f", ev.accuracy);
    extra = buf;
    std::printf("epoch %lld: train loss %.4f, validation loss %.4f, validation accuracy %.4f\n",
                (long long)(epoch + 1), in_epoch ? epoch_loss / in_epoch : NAN, ev.loss, ev.accuracy);
    std::fflush(stdout);
    epoch_loss = 0, in_epoch = 0;
    save_checkpoint();
  }

  const Evaluation ev = evaluate(model, test, classes);
  print_confusion(ev, split.languages);
  if (!out.empty()) {
    PlotOptions pl;
    pl.title = "classify: " + std::string(bidirectional ? "bidirectional " : "") + cell + " " +
               std::to_string(hidden_size) + ", cross-entropy";
    std::printf("loss curve: %s\n", write_loss_curve(out, "classify", {train_curve, valid_curve}, pl).c_str());
  }
  std::printf("test accuracy: %.4f\n", ev.accuracy);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli(kProgram,
          "Which language is a word from? A character-level LSTM or GRU over the word, a linear layer\n"
          "over its final state; trained on Debian's word lists (English, German, French, Spanish,\n"
          "Italian, Portuguese, Dutch, Swedish), 10,000 words per language, 1,000 validation, 2,000 test.");
  cli.add_common(/*seed=*/1, /*threads=*/1);
  cli.add_string("cell", "lstm", "recurrent cell", {"lstm", "gru"});
  cli.add_int("embed", 32, "character embedding size", 1, 65536);
  cli.add_int("hidden", 128, "hidden units", 1, 65536);
  cli.add_flag("bidirectional", "also read each word backwards; classify from both final states");
  cli.add_int("batch", 64, "words per batch", 1, 1 << 20);
  cli.add_int("epochs", 5, "passes over the training words", 0, 100000);
  cli.add_double("lr", 2e-3, "Adam learning rate", 0.0, 10.0, true);
  cli.add_int("save-every", 500, "with --checkpoint, save every N steps (and after every epoch)", 1);
  cli.add_string("dict", kDictDir, "directory holding the eight word lists");
  cli.add_string("split", "", "read the split from FILE (lines split<TAB>language<TAB>word) instead");
  cli.add_string("write-split", "", "write the split to FILE (for bench/classify_torch.py --split)");
  cli.parse(argc, argv);
  const auto threads = cli.get_int("threads");  // 0: all cores
  blas::set_num_threads(threads > 0 ? int(threads) : int(std::max(1u, std::thread::hardware_concurrency())));

  return guarded_main(kProgram, [&] {
    const std::string resume = cli.get_string("resume");
    CheckpointExtra extra;
    if (!resume.empty()) {
      extra = load_extra_of(kProgram, resume);
      check_same("cell", cli.get_string("cell"), extra_string(extra, "cell", resume), true, resume);
      check_same("embed", std::to_string(cli.get_int("embed")), std::to_string(extra_int(extra, "embed", resume)), true,
                 resume);
      check_same("hidden", std::to_string(cli.get_int("hidden")), std::to_string(extra_int(extra, "hidden", resume)),
                 true, resume);
      check_same("bidirectional", cli.get_flag("bidirectional") ? "on" : "off",
                 extra_int(extra, "bidirectional", resume) ? "on" : "off", true, resume);
    }
    const CheckpointExtra* resumed = resume.empty() ? nullptr : &extra;
    if (cli.get_string("cell") == "gru") return run<nn::GRU<F>>(cli, resumed);
    return run<nn::LSTM<F>>(cli, resumed);
  });
}
