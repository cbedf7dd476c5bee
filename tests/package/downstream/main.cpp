// Trains a one-parameter model through the installed headers and library; prints its loss.
#include <xgrad/xgrad.hpp>

#include <cstdio>

int main() {
  auto w = xgrad::param<double>(xgrad::Array<double>{0.0});
  double first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    auto loss = xgrad::mse_loss(w * 2.0, xgrad::constant<double>(xgrad::Array<double>{3.0}));
    loss.backward();
    if (step == 0) first = loss.value().flat(0);
    last = loss.value().flat(0);
    w.mutable_value() -= 0.05 * w.grad();
    w.zero_grad();
    xgrad::clear_tape();
  }
  std::printf("downstream: first loss %.4f, last loss %.6f\n", first, last);
  return last < first * 1e-3 ? 0 : 1;
}
