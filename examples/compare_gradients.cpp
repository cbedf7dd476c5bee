// compare_gradients: the same RNN and LSTM built twice from one seed, once from the hand-written
// step-by-step equations (layers/reference, docs/design.md) and once from autograd ops (nn::RNN, nn::LSTM
// with an nn::Linear head), and their gradients compared, in double and in float.
//
// Loss (both ways): mean over the m·T positions of −log ŷ[label], ŷ<t> = softmax(Wya·a<t> + by).
// Manual side: dz<t> = (ŷ<t> − onehot(label<t>)) / (m·T) gives dWya = Σ_t dz<t>·a<t>ᵀ,
// dby = Σ dz<t> and da<t> = Wyaᵀ·dz<t>, which rnn_backward / lstm_backward take back through time.
// Per gradient it prints max |manual − autodiff| and the relative error
// max |manual − autodiff| / max(max |manual|, max |autodiff|).
// Exit status: 0 if every relative error is within its tolerance, 1 if not, 2 for a bad command line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <xgrad/xgrad.hpp>

#include "common/cli.hpp"

namespace {

using namespace xgrad;
namespace ref = xgrad::reference;

struct Sizes {
  std::size_t n_x, n_a, n_y, m, T;
};

struct Row {
  std::string cell, type, name, shape;
  double max_abs, rel;
};

template <class A, class B>
void add_row(std::vector<Row>& rows, const std::string& cell, const std::string& type, const std::string& name,
             const A& manual, const B& autodiff) {
  double diff = 0, mag = 0;
  for (std::size_t i = 0; i < manual.size(); ++i) {
    const double x = manual.flat(i), y = autodiff.flat(i);
    diff = std::max(diff, std::abs(x - y));
    mag = std::max({mag, std::abs(x), std::abs(y)});
  }
  if (manual.size() != autodiff.size()) diff = INFINITY;
  rows.push_back({cell, type, name, shape_str(manual.shape()), diff, mag == 0 ? diff : diff / mag});
}

template <class T>
Array<T> normal(const Shape& shape, std::mt19937_64& gen) {
  Array<T> a = Array<T>::from_shape(shape);
  std::normal_distribution<double> d(0.0, 1.0);
  for (T& v : a) v = static_cast<T>(d(gen));
  return a;
}

// The data both ways share: x (n_x, m, T), a0 (n_a, m), labels (m, T) in [0, n_y).
template <class T>
struct Data {
  Array<T> x, a0;
  std::vector<std::vector<int>> labels;  // [t][i]
  std::vector<int> flat;                 // t-major, as the rows of reshape(output, (T·m, n_a))
};

template <class T>
Data<T> make_data(const Sizes& s, std::uint64_t seed) {
  std::mt19937_64 gen(seed * 7919 + 17);
  Data<T> d{normal<T>({s.n_x, s.m, s.T}, gen), normal<T>({s.n_a, s.m}, gen), {}, {}};
  d.labels.assign(s.T, std::vector<int>(s.m));
  for (std::size_t t = 0; t < s.T; ++t)
    for (std::size_t i = 0; i < s.m; ++i) {
      d.labels[t][i] = static_cast<int>(gen() % s.n_y);
      d.flat.push_back(d.labels[t][i]);
    }
  return d;
}

// The output head by hand: dz, dWya, dby, and da (n_a, m, T) for the recurrence.
template <class T>
struct HeadGrads {
  Array<T> dW, db, da;
};

template <class T>
HeadGrads<T> head_backward(const Array<T>& y_pred, const Array<T>& a, const Array<T>& W,
                           const std::vector<std::vector<int>>& labels) {
  const std::size_t n_y = y_pred.shape()[0], m = y_pred.shape()[1], steps = y_pred.shape()[2];
  const std::size_t n_a = a.shape()[0];
  HeadGrads<T> g{xt::zeros<T>({n_y, n_a}), xt::zeros<T>({n_y, std::size_t(1)}), xt::zeros<T>({n_a, m, steps})};
  const T scale = T(1) / static_cast<T>(m * steps);
  for (std::size_t t = 0; t < steps; ++t)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t k = 0; k < n_y; ++k) {
        const T dz = (y_pred(k, i, t) - (static_cast<int>(k) == labels[t][i] ? T(1) : T(0))) * scale;
        g.db(k, 0) += dz;
        for (std::size_t j = 0; j < n_a; ++j) {
          g.dW(k, j) += dz * a(j, i, t);
          g.da(j, i, t) += W(k, j) * dz;
        }
      }
  return g;
}

template <class T>
void compare_rnn(const Sizes& s, std::uint64_t seed, const std::string& type, std::vector<Row>& rows) {
  nn::manual_seed(seed);
  nn::RNN<T> rnn(s.n_x, s.n_a);
  nn::Linear<T> head(s.n_a, s.n_y);
  const Data<T> d = make_data<T>(s, seed);

  // By hand.
  const auto p = ref::to_reference(rnn.cell(0), head);
  auto [a, y_pred, caches] = ref::rnn_forward(d.x, d.a0, p);
  const HeadGrads<T> hg = head_backward(y_pred, a, p.Wya, d.labels);
  auto [dx, da0, dWax, dWaa, dba] = ref::rnn_backward(hg.da, caches);

  // By autodiff.
  Var<T> X = param(ref::to_layers_layout(d.x)), A0 = param(ref::to_layers_layout(d.a0));
  auto res = rnn(X, {A0});
  Var<T> loss = cross_entropy(head(reshape(res.output, {s.T * s.m, s.n_a})), d.flat);
  loss.backward();
  const auto& c = rnn.cell(0);
  const auto g = ref::rnn_params_from_layers(c.Wax.grad(), c.Waa.grad(), c.ba.grad(), head.weight.grad(),
                                             head.bias.grad());
  add_row(rows, "rnn", type, "dWax", dWax, g.Wax);
  add_row(rows, "rnn", type, "dWaa", dWaa, g.Waa);
  add_row(rows, "rnn", type, "dba", dba, g.ba);
  add_row(rows, "rnn", type, "dWya", hg.dW, g.Wya);
  add_row(rows, "rnn", type, "dby", hg.db, g.by);
  add_row(rows, "rnn", type, "dx", dx, ref::to_seed_layout(X.grad()));
  add_row(rows, "rnn", type, "da0", da0, ref::to_seed_layout(A0.grad()));
  clear_tape();
}

template <class T>
void compare_lstm(const Sizes& s, std::uint64_t seed, const std::string& type, std::vector<Row>& rows) {
  nn::manual_seed(seed);
  nn::LSTM<T> lstm(s.n_x, s.n_a);
  nn::Linear<T> head(s.n_a, s.n_y);
  const Data<T> d = make_data<T>(s, seed);

  const auto p = ref::to_reference(lstm.cell(0), head);
  auto [a, y, c, caches] = ref::lstm_forward(d.x, d.a0, p);
  const HeadGrads<T> hg = head_backward(y, a, p.Wy, d.labels);
  auto [dx, da0, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo] = ref::lstm_backward(hg.da, caches);

  Var<T> X = param(ref::to_layers_layout(d.x)), A0 = param(ref::to_layers_layout(d.a0));
  Var<T> C0 = constant<T>(xt::zeros<T>({s.m, s.n_a}));  // reference::lstm_forward starts c at zero
  auto res = lstm(X, {{A0, C0}});
  Var<T> loss = cross_entropy(head(reshape(res.output, {s.T * s.m, s.n_a})), d.flat);
  loss.backward();
  const auto& cell = lstm.cell(0);
  const auto g = ref::lstm_params_from_layers(cell.Wx.grad(), cell.Wa.grad(), cell.b.grad(), head.weight.grad(),
                                              head.bias.grad());
  add_row(rows, "lstm", type, "dWf", dWf, g.Wf);
  add_row(rows, "lstm", type, "dWi", dWi, g.Wi);
  add_row(rows, "lstm", type, "dWc", dWc, g.Wc);
  add_row(rows, "lstm", type, "dWo", dWo, g.Wo);
  add_row(rows, "lstm", type, "dbf", dbf, g.bf);
  add_row(rows, "lstm", type, "dbi", dbi, g.bi);
  add_row(rows, "lstm", type, "dbc", dbc, g.bc);
  add_row(rows, "lstm", type, "dbo", dbo, g.bo);
  add_row(rows, "lstm", type, "dWy", hg.dW, g.Wy);
  add_row(rows, "lstm", type, "dby", hg.db, g.by);
  add_row(rows, "lstm", type, "dx", dx, ref::to_seed_layout(X.grad()));
  add_row(rows, "lstm", type, "da0", da0, ref::to_seed_layout(A0.grad()));
  clear_tape();
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  xgrad::examples::Cli cli("compare_gradients",
                           "Manual (hand-written, layers/reference) vs automatic (autograd) gradients of the\n"
                           "same RNN and LSTM with a softmax output layer, in double and in float.\n"
                           "Exit status 1 if a relative error is above its tolerance.");
  cli.add_string("cell", "both", "which model", {"rnn", "lstm", "both"});
  cli.add_int("n-x", 3, "input size n_x", 1, 4096);
  cli.add_int("n-a", 5, "hidden size n_a", 1, 4096);
  cli.add_int("n-y", 2, "output classes n_y", 1, 4096);
  cli.add_int("m", 10, "batch size m", 1, 65536);
  cli.add_int("t", 4, "sequence length T_x", 1, 100000);
  cli.add_double("tolerance", 1e-9, "largest relative error allowed in double", 0.0);
  cli.add_double("float-tolerance", 1e-4, "largest relative error allowed in float", 0.0);
  cli.add_int("seed", 1, "random seed (weights and data)", 0);
  cli.add_threads(0);
  cli.add_string("out", "", "write the table to DIR/compare_gradients.csv");
  cli.add_string("checkpoint", "", "accepted for uniformity; unused (nothing is trained)");
  cli.add_string("resume", "", "accepted for uniformity; unused (nothing is trained)");
  cli.parse(argc, argv);

  const Sizes s{static_cast<std::size_t>(cli.get_int("n-x")), static_cast<std::size_t>(cli.get_int("n-a")),
                static_cast<std::size_t>(cli.get_int("n-y")), static_cast<std::size_t>(cli.get_int("m")),
                static_cast<std::size_t>(cli.get_int("t"))};
  const auto seed = static_cast<std::uint64_t>(cli.get_int("seed"));
  const std::string which = cli.get_string("cell");
  const double tol_double = cli.get_double("tolerance"), tol_float = cli.get_double("float-tolerance");

  std::vector<Row> rows;
  try {
    if (which != "lstm") {
      compare_rnn<double>(s, seed, "double", rows);
      compare_rnn<float>(s, seed, "float", rows);
    }
    if (which != "rnn") {
      compare_lstm<double>(s, seed, "double", rows);
      compare_lstm<float>(s, seed, "float", rows);
    }
  } catch (const std::exception& e) {
    std::cerr << "compare_gradients: " << e.what() << "\n";
    return 1;
  }

  std::printf("manual vs autodiff gradients: n_x=%zu n_a=%zu n_y=%zu m=%zu T=%zu seed=%llu\n", s.n_x, s.n_a, s.n_y,
              s.m, s.T, static_cast<unsigned long long>(seed));
  std::printf("%-5s %-7s %-5s %-11s %12s %12s\n", "cell", "type", "grad", "shape", "max |diff|", "rel error");
  double worst_double = 0, worst_float = 0;
  bool ok = true;
  for (const Row& r : rows) {
    const bool is_double = r.type == "double";
    const bool row_ok = r.rel <= (is_double ? tol_double : tol_float);
    ok = ok && row_ok;
    (is_double ? worst_double : worst_float) = std::max(is_double ? worst_double : worst_float, r.rel);
    std::printf("%-5s %-7s %-5s %-11s %12s %12s%s\n", r.cell.c_str(), r.type.c_str(), r.name.c_str(), r.shape.c_str(),
                sci(r.max_abs).c_str(), sci(r.rel).c_str(), row_ok ? "" : "  ABOVE TOLERANCE");
  }

  if (!cli.get_string("out").empty()) {
    const std::filesystem::path dir = cli.get_string("out");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::ofstream csv(dir / "compare_gradients.csv");
    if (!csv) {
      std::cerr << "compare_gradients: cannot write " << (dir / "compare_gradients.csv").string() << "\n";
      return 1;
    }
    csv << "cell,type,gradient,shape,max_abs_diff,relative_error\n";
    for (const Row& r : rows)
      csv << r.cell << ',' << r.type << ',' << r.name << ",\"" << r.shape << "\"," << r.max_abs << ',' << r.rel << '\n';
  }

  std::printf("max relative error: %s, float max relative error: %s, tolerance: %s, float tolerance: %s, result: %s\n",
              sci(worst_double).c_str(), sci(worst_float).c_str(), sci(tol_double).c_str(), sci(tol_float).c_str(),
              ok ? "pass" : "FAIL");
  return ok ? 0 : 1;
}
