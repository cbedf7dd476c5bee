#include <xgrad/xgrad.hpp>

#include <cstdio>

using namespace xgrad;

int main() {
  // Learn to continue "hello world " one character at a time: one-hot input, LSTM, linear head.
  const std::string text = "hello world hello world hello world ";
  std::vector<int> ids;
  for (char c : text) ids.push_back(static_cast<unsigned char>(c) - ' ');  // 0..94
  const std::size_t T = text.size() - 1, V = 95;
  std::vector<int> inputs(ids.begin(), ids.end() - 1), targets(ids.begin() + 1, ids.end());

  nn::manual_seed(1);
  nn::LSTM<float> lstm(V, 64);  // n_x, n_a
  nn::Linear<float> head(64, V);
  auto params = lstm.parameters();
  for (auto& p : head.parameters()) params.push_back(p);
  optim::Adam<float> opt(params, 1e-2);

  for (int step = 0; step < 100; ++step) {
    auto out = lstm.forward_onehot(inputs, T).output;          // (T, 1, 64)
    auto loss = cross_entropy(head(reshape(out, {T, 64})), targets);
    loss.backward();
    optim::clip_grad_norm(params, 5.0);
    opt.step();
    opt.zero_grad();
    if (step % 20 == 0) std::printf("step %d loss %.4f\n", step, loss.value().flat(0));
    clear_tape();
  }
}
