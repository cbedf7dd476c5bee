// Four RNN architectures, each training a tiny model with a hand-written SGD
// loop until its loss is well below where it started: many-to-many, many-to-one, one-to-many
// (generation, each sample fed back as the next input) and encoder-decoder (T_x ≠ T_y).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <xgrad/xgrad.hpp>

namespace xgrad {
namespace {

using F = float;

// p -= lr·∇p for every parameter, after scaling the gradient to a global norm of at most 5.
void sgd_step(const std::vector<Var<F>>& params, double lr) {
  double sq = 0;
  for (const auto& p : params)
    for (F g : p.grad()) sq += double(g) * g;
  const double scale = lr * std::min(1.0, 5.0 / (std::sqrt(sq) + 1e-12));
  for (const auto& p : params) {
    p.mutable_value() -= static_cast<F>(scale) * p.mutable_grad();
    p.zero_grad();
  }
}

template <class... M>
std::vector<Var<F>> params_of(const M&... modules) {
  std::vector<Var<F>> out;
  for (const auto* m : {static_cast<const nn::Module<F>*>(&modules)...}) {
    auto p = m->parameters();
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

// ids (T, m) as one-hot rows: (T, m, V).
Array<F> one_hot(const std::vector<std::vector<int>>& ids, std::size_t V) {
  Array<F> x = xt::zeros<F>({ids.size(), ids[0].size(), V});
  for (std::size_t t = 0; t < ids.size(); ++t)
    for (std::size_t i = 0; i < ids[t].size(); ++i) x(t, i, static_cast<std::size_t>(ids[t][i])) = 1;
  return x;
}

int argmax_row(const Array<F>& logits, std::size_t row) {
  int best = 0;
  for (std::size_t k = 1; k < logits.shape()[1]; ++k)
    if (logits(row, k) > logits(row, static_cast<std::size_t>(best))) best = static_cast<int>(k);
  return best;
}

// Many-to-many: a label at every step; here y<t> = x<t−1>, the previous token (y<0> = x<0>).
TEST(Architectures, ManyToManyLearnsPerStepLabels) {
  nn::manual_seed(1);
  const std::size_t V = 4, T = 6, m = 8, n_a = 16;
  std::mt19937 gen(2);
  std::vector<std::vector<int>> x_ids(T, std::vector<int>(m));
  std::vector<int> y_ids;  // t-major, matching reshape (T, m, ·) -> (T·m, ·)
  for (auto& row : x_ids)
    for (int& v : row) v = static_cast<int>(gen() % V);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < m; ++i) y_ids.push_back(x_ids[t == 0 ? 0 : t - 1][i]);
  nn::RNN<F> rnn(V, n_a);
  nn::Linear<F> head(n_a, V);
  const auto params = params_of(rnn, head);
  Var<F> x = constant(one_hot(x_ids, V));
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Var<F> h = reshape(rnn(x).output, {T * m, n_a});
    Var<F> loss = cross_entropy(head(h), y_ids);
    if (step == 0) first = loss.value().flat(0);
    last = loss.value().flat(0);
    loss.backward();
    sgd_step(params, 0.5);
    clear_tape();
  }
  EXPECT_LT(last, 0.2 * first) << "first " << first << ", last " << last;
}

// Many-to-one: one label per sequence (its first token), read from the final state of
// variable-length sequences, so the answer must be carried to each example's own last step.
TEST(Architectures, ManyToOneClassifiesVariableLengthSequences) {
  nn::manual_seed(3);
  const std::size_t V = 3, T = 6, m = 12, n_a = 16;
  std::mt19937 gen(4);
  std::vector<std::vector<int>> x_ids(T, std::vector<int>(m));
  std::vector<int> lengths(m), labels(m);
  for (auto& row : x_ids)
    for (int& v : row) v = static_cast<int>(gen() % V);
  for (std::size_t i = 0; i < m; ++i) {
    lengths[i] = 2 + static_cast<int>(gen() % (T - 1));
    labels[i] = x_ids[0][i];
  }
  nn::GRU<F> gru(V, n_a);
  nn::Linear<F> head(n_a, V);
  const auto params = params_of(gru, head);
  Var<F> x = constant(one_hot(x_ids, V));
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Var<F> loss = cross_entropy(head(gru(x, {}, lengths).state[0]), labels);
    if (step == 0) first = loss.value().flat(0);
    last = loss.value().flat(0);
    loss.backward();
    sgd_step(params, 0.5);
    clear_tape();
  }
  EXPECT_LT(last, 0.2 * first) << "first " << first << ", last " << last;
}

// One-to-many: from one input (a class c) generate T tokens c+1, c+2, ... (mod V); each step's
// input is the token sampled from the previous step's output, fed back without a gradient.
TEST(Architectures, OneToManyGeneratesByFeedingSamplesBack) {
  nn::manual_seed(5);
  const std::size_t V = 4, T = 5, m = V, n_a = 16;
  nn::LSTMCell<F> cell(V, n_a);
  nn::Linear<F> head(n_a, V);
  const auto params = params_of(cell, head);
  std::mt19937 gen(6);
  auto step_input = [&](const std::vector<int>& ids) {
    Array<F> x = xt::zeros<F>({m, V});
    for (std::size_t i = 0; i < m; ++i) x(i, static_cast<std::size_t>(ids[i])) = 1;
    return constant(std::move(x));
  };
  auto generate = [&](bool sample, double* loss_value, bool train) {
    std::vector<int> input(m);
    for (std::size_t c = 0; c < m; ++c) input[c] = static_cast<int>(c);
    auto state = cell.zero_state(m);
    Var<F> loss;
    std::size_t correct = 0;
    for (std::size_t t = 0; t < T; ++t) {
      state = cell(step_input(input), state);
      Var<F> logits = head(state.a);
      std::vector<int> target(m);
      for (std::size_t c = 0; c < m; ++c) target[c] = static_cast<int>((c + t + 1) % V);
      Var<F> l = cross_entropy(logits, target);
      loss = t == 0 ? l : loss + l;
      // The next input: a sample from softmax(logits) (or the most likely token).
      Array<F> probs = softmax(logits, 1).value();
      for (std::size_t i = 0; i < m; ++i) {
        if (sample) {
          std::discrete_distribution<int> d(probs.begin() + i * V, probs.begin() + (i + 1) * V);
          input[i] = d(gen);
        } else {
          input[i] = argmax_row(logits.value(), i);
        }
        correct += input[i] == target[i] ? 1 : 0;
      }
    }
    *loss_value = loss.value().flat(0);
    if (train) loss.backward();
    return correct;
  };
  double first = 0, last = 0, value = 0;
  for (int step = 0; step < 300; ++step) {
    generate(true, &value, true);
    if (step == 0) first = value;
    last = value;
    sgd_step(params, 0.5);
    clear_tape();
  }
  EXPECT_LT(last, 0.2 * first) << "first " << first << ", last " << last;
  // Greedy generation now reproduces every sequence.
  EXPECT_EQ(generate(false, &value, false), m * T);
  clear_tape();
}

// Encoder-decoder: read T_x = 5 tokens, then write T_y = 3 tokens (the first three, reversed).
// The encoder's final state starts the decoder, which reads the previous target token
// (teacher forcing) after a start token.
TEST(Architectures, EncoderDecoderMapsBetweenDifferentLengths) {
  nn::manual_seed(7);
  const std::size_t V = 4, T_x = 5, T_y = 3, m = 16, n_a = 24, start = V;
  std::mt19937 gen(8);
  std::vector<std::vector<int>> x_ids(T_x, std::vector<int>(m));
  for (auto& row : x_ids)
    for (int& v : row) v = static_cast<int>(gen() % V);
  std::vector<std::vector<int>> y_ids(T_y, std::vector<int>(m));
  for (std::size_t k = 0; k < T_y; ++k)
    for (std::size_t i = 0; i < m; ++i) y_ids[k][i] = x_ids[T_y - 1 - k][i];
  nn::LSTM<F> encoder(V, n_a);
  nn::LSTMCell<F> decoder(V + 1, n_a);  // V tokens and the start token
  nn::Linear<F> head(n_a, V);
  const auto params = params_of(encoder, decoder, head);
  Var<F> x = constant(one_hot(x_ids, V));
  std::vector<std::vector<int>> dec_in(T_y, std::vector<int>(m, static_cast<int>(start)));
  for (std::size_t k = 1; k < T_y; ++k) dec_in[k] = y_ids[k - 1];
  Array<F> dec_x = one_hot(dec_in, V + 1);  // (T_y, m, V + 1)
  Var<F> dec_seq = constant(dec_x);
  double first = 0, last = 0;
  for (int step = 0; step < 400; ++step) {
    auto state = encoder(x).state[0];
    Var<F> loss;
    for (std::size_t k = 0; k < T_y; ++k) {
      state = decoder(select(dec_seq, static_cast<long>(k)), state);
      Var<F> l = cross_entropy(head(state.a), y_ids[k]);
      loss = k == 0 ? l : loss + l;
    }
    if (step == 0) first = loss.value().flat(0);
    last = loss.value().flat(0);
    loss.backward();
    sgd_step(params, 0.5);
    clear_tape();
  }
  EXPECT_LT(last, 0.2 * first) << "first " << first << ", last " << last;
}

}  // namespace
}  // namespace xgrad
