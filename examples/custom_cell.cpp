// custom_cell: a tutorial that is a program. It writes a recurrent cell of its own and an op of
// its own with a hand-written backward, checks both against finite differences, and trains them
// through the library's sequence machinery (nn::Recurrent: two layers, both directions,
// sequences of different lengths) on a small generated task.
//
// The task: read a string over {a, b, c} of 3 to 12 letters and say how many times "ab" occurs
// in it (0, 1, 2, or 3 and more: four classes).
//
// Legend: T steps, m batch rows, n_x inputs (3 letters, one-hot), n_a hidden units, V = 4 classes.
//
// Run it:   ./build/examples/custom_cell            (a few seconds)
//           ./build/examples/custom_cell --help     (the options)
// Its last line gives its figures:
//   gradcheck: passed, gradcheck error: 2.1e-10, first loss: 1.4396, final loss: 0.0257, test accuracy: 0.9970
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "common/cli.hpp"
#include "common/training.hpp"

namespace {

using namespace xgrad;
using namespace xgrad::examples;

constexpr const char* kProgram = "custom_cell";

// ---------------------------------------------------------------------------------------------
// Step 1. An op of your own: the scaled softsign
//
//   y = k·u / (1 + |k·u|)         elementwise; a cheaper, slower-saturating cousin of tanh
//   dy/du = k / (1 + |k·u|)² = k·(1 − |y|)²
//
// xgrad::custom_op records it on the tape like a built-in op. You give it a name (it appears in
// error messages, in DetectAnomaly's reports and in to_dot's graphs), the inputs, and two
// lambdas:
//   forward(in)                 in[i] is the i-th input's value (const Array<T>&) -> the output
//   backward(grad, in, out)     grad: the loss's gradient with respect to the output, out: the
//                               output -> one gradient per input, each of its input's shape
// The lambdas may capture what they need by value (here the factor k): the tape keeps a copy of
// backward until clear_tape(). The backward below reads only `out`, the saved output, as tanh's
// own backward does.
template <class T>
Var<T> scaled_softsign(const Var<T>& u, T k) {
  return custom_op<T>(
      "scaled_softsign", {u},
      [k](const auto& in) { return Array<T>(k * in[0] / (T(1) + xt::abs(k * in[0]))); },
      [k](const auto& grad, const auto& /*in*/, const auto& out) {
        return std::vector<Array<T>>{grad * k * xt::square(T(1) - xt::abs(out))};
      });
}

// ---------------------------------------------------------------------------------------------
// Step 2. A cell of your own: the minimal gated unit (Zhou et al. 2016), one gate instead of the
// GRU's two, with the scaled softsign as its activation:
//
//   f      = σ(x·Wfᵀ + a·Ufᵀ + bf)                forget gate          (m, n_a)
//   ã      = softsign_k(x·Whᵀ + (f∘a)·Uhᵀ + bh)   candidate state      (m, n_a)
//   a_next = (1 − f)∘a + f∘ã                                           (m, n_a)
//   x (m, n_in), a (m, n_a); Wf, Wh (n_a, n_in); Uf, Uh (n_a, n_a); bf, bh (n_a)
//
// What nn::Recurrent asks of a cell (layers/recurrent.hpp has the full contract):
//   - it is an nn::Module<T> whose parameters are registered (so the sequence layer finds them,
//     names them layers.<k>.Wf, ..., and optimizers, checkpoints and gradcheck see them);
//   - using State = ...: here the hidden state a alone, a Var<T> (an LSTM's is a struct {a, c});
//   - a constructor (n_in, n_a, extra...): Recurrent builds one cell per layer and direction,
//     n_in = n_x for layer 0 and directions·n_a above; `extra` are Recurrent's trailing arguments;
//   - zero_state(m): the state before the first step;
//   - step(x, state): one time step, x (m, n_in) -> the next state.
// Everything else (layers, directions, lengths, dropout, the unrolled graph for backpropagation
// through time) is Recurrent's. A cell may also offer input_projection(x), the x·Wᵀ + b part of
// every step computed for all T·m rows in one product (see LSTMCell); this one keeps it simple.
template <class T>
class MGUCell : public nn::Module<T> {
 public:
  using State = Var<T>;  // a (m, n_a)

  // scale: the softsign's factor k.
  MGUCell(std::size_t n_in, std::size_t n_a, double scale) : n_a_(n_a), scale_(static_cast<T>(scale)) {
    // Uniform in ±1/√n_a, as PyTorch initialises its recurrent cells.
    const double bound = 1.0 / std::sqrt(static_cast<double>(n_a));
    Wf = this->register_parameter("Wf", nn::uniform<T>({n_a, n_in}, bound));
    Uf = this->register_parameter("Uf", nn::uniform<T>({n_a, n_a}, bound));
    bf = this->register_parameter("bf", nn::uniform<T>({n_a}, bound));
    Wh = this->register_parameter("Wh", nn::uniform<T>({n_a, n_in}, bound));
    Uh = this->register_parameter("Uh", nn::uniform<T>({n_a, n_a}, bound));
    bh = this->register_parameter("bh", nn::uniform<T>({n_a}, bound));
  }

  State zero_state(std::size_t m) const { return constant<T>(xt::zeros<T>({m, n_a_})); }

  // The equations above, one line each: linear(x, W, b) is x·Wᵀ + b, matmul_nt(a, U) is a·Uᵀ.
  State step(const Var<T>& x, const State& a) const {
    const Var<T> f = sigmoid(linear(x, Wf, bf) + matmul_nt(a, Uf));
    const Var<T> candidate = scaled_softsign(linear(x, Wh, bh) + matmul_nt(f * a, Uh), scale_);
    return (T(1) - f) * a + f * candidate;
  }

  Var<T> Wf, Uf, bf, Wh, Uh, bh;

 private:
  std::size_t n_a_;
  T scale_;
};

// ---------------------------------------------------------------------------------------------
// Step 3. The model: the cell inside nn::Recurrent, two layers, both directions, then a linear
// layer on the top layer's two final states (the forward direction's after each sequence's last
// letter, the reverse direction's after its first): together they have read the whole string.
constexpr double kSoftsignScale = 2.0;
constexpr std::size_t kLetters = 3, kClasses = 4;

template <class T>
class PatternCounter : public nn::Module<T> {
 public:
  PatternCounter(std::size_t n_a, std::size_t layers)
      : rnn_(kLetters, n_a, nn::RecurrentOptions().layers(layers).bidirectional(), kSoftsignScale),
        head_(2 * n_a, kClasses) {
    this->register_module("rnn", rnn_);    // parameters rnn.layers.<k>.Wf, rnn.layers.<k>.reverse.Wf, ...
    this->register_module("head", head_);  // head.weight, head.bias
  }

  // A padded batch (ids (T·m) time-major, each example's length) -> logits (m, V).
  Var<T> logits(const data::PaddedBatch& b) const {
    // forward_onehot reads the letters as one-hot rows (T, m, n_x) without our building them;
    // `lengths` stops each example's state at its own last letter.
    const auto result = rnn_.forward_onehot(b.ids, b.steps, {}, b.lengths);
    // result.state has one entry per layer and direction, index layer·directions + direction.
    const std::size_t top = (rnn_.num_layers() - 1) * rnn_.directions();
    return head_(concat({result.state[top], result.state[top + 1]}, 1));  // (m, 2·n_a) -> (m, V)
  }

  Var<T> loss(const data::PaddedBatch& b, const std::vector<int>& labels) const {
    return cross_entropy(logits(b), labels);
  }

 private:
  nn::Recurrent<MGUCell<T>> rnn_;
  nn::Linear<T> head_;
};

// ---------------------------------------------------------------------------------------------
// Step 4. The data, generated: strings over {a, b, c} of random lengths, labelled with the number
// of "ab" in them (3 and more is class 3). A seed fixes a set, so the test set is the same on
// every run, and a training batch depends only on the seed and the step (a resumed run draws the
// same batches).
const data::Vocab kAlphabet(data::utf8_decode("abc"));

struct Examples {
  std::vector<std::vector<int>> strings;  // letter ids
  std::vector<int> labels;                // in [0, V)
};

Examples make_examples(std::size_t count, std::size_t min_len, std::size_t max_len, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  Examples ex;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t len = min_len + data::uniform_index(gen, max_len - min_len + 1);
    std::string s;
    for (std::size_t t = 0; t < len; ++t) s += "abc"[data::uniform_index(gen, kLetters)];
    int count_ab = 0;
    for (std::size_t t = 0; t + 1 < len; ++t) count_ab += s[t] == 'a' && s[t + 1] == 'b';
    ex.strings.push_back(kAlphabet.encode(s));
    ex.labels.push_back(std::min(count_ab, int(kClasses) - 1));
  }
  return ex;
}

// The fraction of `ex` the model classifies right (argmax of the logits).
double accuracy(const PatternCounter<float>& model, const Examples& ex) {
  NoGradGuard no_grad;  // evaluation records nothing on the tape
  const Var<float> out = model.logits(data::pad_batch(ex.strings));
  const Array<float>& logits = out.value();  // (m, V)
  std::size_t right = 0;
  for (std::size_t i = 0; i < ex.labels.size(); ++i) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < kClasses; ++c)
      if (logits(i, c) > logits(i, best)) best = c;
    right += int(best) == ex.labels[i];
  }
  return double(right) / double(ex.labels.size());
}

// ---------------------------------------------------------------------------------------------
// Step 5. Check the gradients before training, in double. gradcheck compares backward()'s
// gradient with central finite differences, (L(θ + ε) − L(θ − ε)) / 2ε, element by element;
// a hand-written backward that is wrong anywhere shows up here, named.
double check_gradients(std::size_t layers) {
  // 5a. The op alone: gradcheck(f, inputs) perturbs the inputs it is given.
  const GradcheckResult op = gradcheck(
      [](const std::vector<Var<double>>& v) { return sum(square(scaled_softsign(v[0], 2.0))); },
      {Array<double>{{-1.5, -0.3, 0.2}, {0.7, 1.1, -2.4}}});
  std::printf("gradcheck of the op scaled_softsign: %s\n", op.report().c_str());
  if (!op.ok) throw Error("the custom op's backward disagrees with finite differences: " + op.report());

  // 5b. The whole model: gradcheck(module, loss_fn) perturbs every parameter of the module and
  // calls loss_fn, which builds the graph from the current parameter values, for each. A small
  // model of the same shape (2 directions, the same layers) on a few examples is enough; the
  // module is left exactly as it was.
  PatternCounter<double> model(/*n_a=*/3, layers);
  const Examples ex = make_examples(4, 3, 6, /*seed=*/7);
  const data::PaddedBatch batch = data::pad_batch(ex.strings);
  const GradcheckResult r = gradcheck(model, [&] { return model.loss(batch, ex.labels); });
  std::printf("gradcheck of the model (double, %zu parameters): %s\n", model.parameters().size(), r.report().c_str());
  clear_tape();  // the check recorded one forward and backward on this thread's tape
  if (!r.ok) throw Error("the model's gradients disagree with finite differences: " + r.report());
  return std::max(op.error, r.error);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli(kProgram,
          "A tutorial: a recurrent cell of your own (the minimal gated unit) and an op of your own (a scaled\n"
          "softsign with its own backward), checked by finite differences, then trained through nn::Recurrent\n"
          "(two layers, both directions, variable lengths) to count \"ab\" in strings over {a, b, c}.");
  cli.add_common(/*seed=*/1, /*threads=*/1);
  cli.add_int("hidden", 16, "hidden units n_a of each cell", 1, 4096);
  cli.add_int("layers", 2, "stacked layers", 1, 16);
  cli.add_int("steps", 400, "training steps (in total, counting those of a resumed run)", 0);
  cli.add_int("batch", 32, "strings per step", 1, 1 << 16);
  cli.add_int("min-len", 3, "shortest string", 2, 1000);
  cli.add_int("max-len", 12, "longest string", 2, 1000);
  cli.add_double("lr", 1e-2, "Adam learning rate", 0.0, 10.0, true);
  cli.add_double("clip", 5.0, "clip gradients to this global norm; 0: no clipping", 0.0);
  cli.add_int("eval-every", 100, "report the accuracy on 500 validation strings every N steps (0: never)", 0);
  cli.add_int("save-every", 100, "with --checkpoint, save every N steps (and at the end)", 1);
  cli.parse(argc, argv);

  return guarded_main(kProgram, [&] {
    const auto min_len = std::size_t(cli.get_int("min-len")), max_len = std::size_t(cli.get_int("max-len"));
    if (min_len > max_len) {
      std::fprintf(stderr, "%s: --min-len %zu is above --max-len %zu\n", kProgram, min_len, max_len);
      return 2;
    }
    // The training helper owns --seed, --checkpoint, --resume, --out, the progress line and each
    // step's backward, clipping and optimizer step (examples/common/training.hpp).
    Training training(cli, kProgram, {{}, {"hidden", "layers"}});
    const auto layers = std::size_t(cli.get_int("layers")), batch = std::size_t(cli.get_int("batch"));

    const double check_error = check_gradients(layers);

    // Step 6. Train in float. The model is built after the check, from the seed the training
    // helper set, so a run is reproducible from --seed.
    PatternCounter<float> model(std::size_t(cli.get_int("hidden")), layers);
    optim::Adam<float> opt(model.parameters(), cli.get_double("lr"));
    const Examples test = make_examples(1000, min_len, max_len, 20261202),
                   valid = make_examples(500, min_len, max_len, 20261203);
    std::vector<std::size_t> per_class(kClasses, 0);
    for (int y : test.labels) ++per_class[std::size_t(y)];
    std::printf("data: strings of %zu-%zu letters; test classes 0/1/2/3+ \"ab\": %zu/%zu/%zu/%zu (always guessing the "
                "commonest: %.4f)\n",
                min_len, max_len, per_class[0], per_class[1], per_class[2], per_class[3],
                double(*std::max_element(per_class.begin(), per_class.end())) / double(test.labels.size()));

    Training::Loop loop = training.loop();
    loop.eval_name = "validation error (1 - accuracy)";
    loop.evaluate = [&](double) {
      const double acc = accuracy(model, valid);
      char note[40];
      std::snprintf(note, sizeof note, "val accuracy %.4f", acc);
      return Training::Point{1 - acc, note};
    };
    // Every step's loss, for the first and the last ones in the last line; a checkpoint keeps
    // them, so a resumed run reports what an uninterrupted one does.
    std::vector<float> losses;
    loop.save = [&](CheckpointExtra& e) {
      Array<float> kept = Array<float>::from_shape({losses.size()});
      std::copy(losses.begin(), losses.end(), kept.begin());
      e["losses"] = std::move(kept);
    };
    loop.resume = [&](const CheckpointExtra& e, const std::string& path) {
      const Array<float> kept = extra_floats(e, "losses", path);
      losses.assign(kept.begin(), kept.end());
    };
    training.run(model, opt, loop, [&](std::int64_t step) {
      const Examples ex = make_examples(batch, min_len, max_len, training.seed() * 1000003 + std::uint64_t(step) + 1);
      Var<float> loss = model.loss(data::pad_batch(ex.strings), ex.labels);
      losses.push_back(loss.value().flat(0));
      return loss;  // the helper calls backward(), clips, steps Adam and clears the tape
    });

    // Step 7. The figures: the check, the first step's loss and the mean over the last tenth of
    // the steps, and the accuracy on the held-out test strings.
    const std::size_t tail = std::max<std::size_t>(1, losses.size() / 10);
    double first = NAN, last = NAN;
    if (!losses.empty()) {
      first = losses.front();
      last = 0;
      for (std::size_t i = losses.size() - tail; i < losses.size(); ++i) last += losses[i] / double(tail);
    }
    char line[160];
    std::snprintf(line, sizeof line,
                  "gradcheck: passed, gradcheck error: %.1e, first loss: %.4f, final loss: %.4f, test accuracy: %.4f",
                  check_error, first, last, accuracy(model, test));
    return training.finish("custom_cell: counting \"ab\", cross-entropy", line);
  });
}
