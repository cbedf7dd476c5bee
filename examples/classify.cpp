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
//
// --recurrent-dropout P: in training, one mask per word drops hidden units fed back into the
// step, the same units at every character; evaluation runs without it. --cell lnlstm:
// nn::LayerNormLSTMCell through nn::Recurrent.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/cli.hpp"
#include "common/training.hpp"
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
template <> struct OptionsOf<nn::Recurrent<nn::LayerNormLSTMCell<F>>> { using type = nn::RecurrentOptions; };

const Var<F>& hidden(const Var<F>& s) { return s; }
const Var<F>& hidden(const nn::LSTMState<F>& s) { return s.a; }

// Words as id sequences with their labels; id 0 (<unk>, which no word has) is the padding.
struct Encoded {
  std::vector<std::vector<int>> ids;
  std::vector<int> labels;
};

Encoded encode(const std::vector<LabeledWord>& words, const data::Vocab& vocab) {
  Encoded e;
  for (const auto& w : words) {
    std::vector<int> ids;
    for (char32_t c : w.word) ids.push_back(vocab.id(c));
    if (ids.empty()) throw DataError("empty word in the data");
    e.ids.push_back(std::move(ids));
    e.labels.push_back(w.label);
  }
  return e;
}

template <class Layer>
class Classifier : public nn::Module<F> {
 public:
  Classifier(std::size_t symbols, std::size_t embed, std::size_t hidden, bool bidirectional, std::size_t classes,
             double recurrent_dropout)
      : emb_(symbols, embed),
        rnn_(embed, hidden,
             typename OptionsOf<Layer>::type().bidirectional(bidirectional).recurrent_dropout(recurrent_dropout)),
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
int run(const Cli& cli, Training& training) {
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
  const data::Vocab vocab(std::vector<char32_t>(alphabet.begin(), alphabet.end()), data::Unknown::map_to_unk);
  const Encoded train = encode(split.train, vocab), valid = encode(split.validation, vocab),
                test = encode(split.test, vocab);
  const std::size_t classes = split.languages.size();
  std::printf("data: %zu train, %zu validation, %zu test words, %zu languages, %zu characters\n", train.ids.size(),
              valid.ids.size(), test.ids.size(), classes, alphabet.size());
  std::string languages;
  for (const auto& l : split.languages) languages += l + ",";
  training.same_data("vocab", vocab.serialize(), "other data (alphabet or languages differ)");
  training.same_data("languages", languages, "other data (alphabet or languages differ)");

  const std::string cell = cli.get_string("cell");
  const auto embed = std::size_t(cli.get_int("embed")), hidden_size = std::size_t(cli.get_int("hidden"));
  const bool bidirectional = cli.get_flag("bidirectional");
  const double recurrent_dropout = cli.get_double("recurrent-dropout");
  Classifier<Layer> model(vocab.size(), embed, hidden_size, bidirectional, classes, recurrent_dropout);
  optim::Adam<F> opt(model.parameters(), cli.get_double("lr"));
  const auto B = std::size_t(cli.get_int("batch"));
  const std::int64_t epochs = cli.get_int("epochs"), per_epoch = std::int64_t((train.ids.size() + B - 1) / B);
  char dropout_note[48] = "";
  if (recurrent_dropout > 0)
    std::snprintf(dropout_note, sizeof dropout_note, " (recurrent dropout %g)", recurrent_dropout);
  std::printf("model: embedding %zu, %s%s %zu%s, linear over the final state; batch %zu, Adam lr %g, %lld epoch(s) "
              "of %lld steps\n",
              embed, bidirectional ? "bidirectional " : "", cell.c_str(), hidden_size, dropout_note, B, opt.lr(),
              (long long)epochs, (long long)per_epoch);

  Training::Loop loop = training.loop();
  loop.steps = epochs * per_epoch;
  loop.window = 50;
  loop.eval_every = per_epoch;
  loop.epochs = true;
  std::int64_t epoch = -1;
  std::vector<std::vector<std::size_t>> order;
  loop.evaluate = [&](double train_loss) {
    model.eval();  // no recurrent dropout
    const Evaluation ev = evaluate(model, valid, classes);
    model.train();
    std::printf("epoch %lld: train loss %.4f, validation loss %.4f, validation accuracy %.4f\n",
                (long long)(epoch + 1), train_loss, ev.loss, ev.accuracy);
    std::fflush(stdout);
    char note[64];
    std::snprintf(note, sizeof note, "val acc %.4f", ev.accuracy);
    return Training::Point{ev.loss, note};
  };
  training.run(model, opt, loop, [&](std::int64_t step) {
    if (step / per_epoch != epoch) {
      // The epoch's order depends on the seed and the epoch only, so a resumed run continues it.
      epoch = step / per_epoch;
      order = data::minibatches(train.ids.size(), B, training.seed() * 1000003 + std::uint64_t(epoch));
    }
    const auto& idx = order[std::size_t(step % per_epoch)];
    std::vector<int> labels;
    for (auto i : idx) labels.push_back(train.labels[i]);
    return cross_entropy(model.forward(data::pad_batch(train.ids, idx)), labels);
  });

  model.eval();
  const Evaluation ev = evaluate(model, test, classes);
  print_confusion(ev, split.languages);
  char last[48];
  std::snprintf(last, sizeof last, "test accuracy: %.4f", ev.accuracy);
  return training.finish("classify: " + std::string(bidirectional ? "bidirectional " : "") + cell + " " +
                             std::to_string(hidden_size) + ", cross-entropy",
                         last);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli(kProgram,
          "Which language is a word from? A character-level LSTM or GRU over the word, a linear layer\n"
          "over its final state; trained on Debian's word lists (English, German, French, Spanish,\n"
          "Italian, Portuguese, Dutch, Swedish), 10,000 words per language, 1,000 validation, 2,000 test.");
  cli.add_common(/*seed=*/1, /*threads=*/1);
  cli.add_string("cell", "lstm", "recurrent cell (lnlstm: layer-normalised LSTM)", {"lstm", "gru", "lnlstm"});
  cli.add_int("embed", 32, "character embedding size", 1, 65536);
  cli.add_int("hidden", 128, "hidden units", 1, 65536);
  cli.add_flag("bidirectional", "also read each word backwards; classify from both final states");
  cli.add_double("recurrent-dropout", 0.0, "probability of dropping a hidden unit fed back into the step, one mask "
                 "per word", 0.0, 0.99);
  cli.add_int("batch", 64, "words per batch", 1, 1 << 20);
  cli.add_int("epochs", 5, "passes over the training words", 0, 100000);
  cli.add_double("lr", 2e-3, "Adam learning rate", 0.0, 10.0, true);
  cli.add_int("save-every", 500, "with --checkpoint, save every N steps (and after every epoch)", 1);
  cli.add_string("dict", kDictDir, "directory holding the eight word lists");
  cli.add_string("split", "", "read the split from FILE (lines split<TAB>language<TAB>word) instead");
  cli.add_string("write-split", "", "write the split to FILE (for bench/classify_torch.py --split)");
  cli.parse(argc, argv);

  return guarded_main(kProgram, [&] {
    Training training(cli, kProgram, {{}, {"cell", "embed", "hidden", "bidirectional", "batch"}});
    if (cli.get_string("cell") == "gru") return run<nn::GRU<F>>(cli, training);
    if (cli.get_string("cell") == "lnlstm") return run<nn::Recurrent<nn::LayerNormLSTMCell<F>>>(cli, training);
    return run<nn::LSTM<F>>(cli, training);
  });
}
