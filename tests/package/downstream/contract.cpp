// Checks the public API for custom models from outside the library, through the installed
// package only: custom ops, the tensor and nn ops, the modules (LayerNorm, Dropout, Sequential,
// Attention), a cell of our own in nn::Recurrent, nn::LayerNormLSTMCell, recurrent dropout and
// the gradient check of a model. Every check compares against a hand computation, a shape or a
// finite-difference gradient; each failure prints what differed, and the exit status is 1 if
// any check failed.
#include <xgrad/xgrad.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace xgrad;

namespace {

int failures = 0;
int checks = 0;
std::string section;

bool expect(bool ok, const std::string& what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "contract: FAIL [%s] %s\n", section.c_str(), what.c_str());
  }
  return ok;
}

template <class S>
std::string dims(const S& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ')';
  return os.str();
}

Shape shape_of(const Var<double>& v) { return Shape(v.shape().begin(), v.shape().end()); }
template <class A>
Shape shape_of_array(const A& a) { return Shape(a.shape().begin(), a.shape().end()); }

bool expect_shape(const Var<double>& v, const Shape& want, const std::string& what) {
  return expect(shape_of(v) == want, what + ": shape " + dims(shape_of(v)) + ", expected " + dims(want));
}

// got and want of the same shape and within tol of each other, element by element.
bool expect_close(const Array<double>& got, const Array<double>& want, const std::string& what, double tol = 1e-9) {
  if (shape_of_array(got) != shape_of_array(want))
    return expect(false, what + ": shape " + dims(shape_of_array(got)) + ", expected " + dims(shape_of_array(want)));
  for (std::size_t n = 0; n < got.size(); ++n) {
    const double g = got.flat(n), w = want.flat(n);
    if (!(std::abs(g - w) <= tol * std::max(1.0, std::abs(w)))) {
      std::ostringstream os;
      os << what << ": element " << n << " is " << g << ", expected " << w;
      return expect(false, os.str());
    }
  }
  return expect(true, what);
}

bool expect_value(double got, double want, const std::string& what, double tol = 1e-9) {
  std::ostringstream os;
  os << what << ": " << got << ", expected " << want;
  return expect(std::abs(got - want) <= tol * std::max(1.0, std::abs(want)), os.str());
}

// A column (n, 1) of values (a braced list of one-element rows is ambiguous to xtensor).
template <class V>
xt::xarray<V> column(std::initializer_list<V> values) {
  xt::xarray<V> a = xt::xarray<V>::from_shape({values.size(), 1});
  std::size_t i = 0;
  for (V v : values) a(i++, 0) = v;
  return a;
}

// Deterministic values in (−1, 1) of a shape, different for each seed.
Array<double> fill_values(const Shape& shape, double seed) {
  Array<double> a = xt::zeros<double>(shape);
  for (std::size_t n = 0; n < a.size(); ++n) a.flat(n) = std::sin(1.37 * static_cast<double>(n) + 2.1 * seed + 0.3);
  return a;
}

// A loss with an uneven gradient: Σ v ∘ c for a fixed array c of v's shape.
Var<double> weighted(const Var<double>& v, double seed = 5) {
  return sum(v * constant<double>(fill_values(shape_of(v), seed)));
}

void expect_gradcheck(const std::function<Var<double>(const std::vector<Var<double>>&)>& f,
                      const std::vector<Array<double>>& inputs, const std::string& what) {
  GradcheckResult r = gradcheck(f, inputs);
  expect(r.ok && r.checked > 0, what + ": gradcheck: " + r.report());
  clear_tape();
}

void expect_module_gradcheck(const nn::Module<double>& module, const std::function<Var<double>()>& loss_fn,
                             const std::string& what) {
  GradcheckResult r = gradcheck(module, loss_fn);
  expect(r.ok && r.checked > 0, what + ": gradcheck(module, loss_fn): " + r.report());
  std::set<std::string> names;
  for (const auto& [name, p] : module.named_parameters()) names.insert(name);
  expect(names.count(r.name) == 1, what + ": the worst element's parameter name '" + r.name +
                                       "' is one of named_parameters()");
  clear_tape();
}

template <class E>
bool expect_throws_naming(const std::function<void()>& f, const std::string& needle, const std::string& what) {
  try {
    f();
  } catch (const E& e) {
    return expect(std::string(e.what()).find(needle) != std::string::npos,
                  what + ": the message '" + e.what() + "' names '" + needle + "'");
  } catch (const std::exception& e) {
    return expect(false, what + ": threw another exception: " + e.what());
  }
  return expect(false, what + ": threw nothing");
}

double sigmoid_of(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// ---------------------------------------------------------------------------------------------
// Custom ops.

// The public API's example, verbatim.
Var<double> my_softplus(const Var<double>& x) {
  Var<double> y = xgrad::custom_op<double>("softplus", {x},
      [](const auto& in) { return xgrad::Array<double>(xt::log1p(xt::exp(in[0]))); },
      [](const auto& grad, const auto& in, const auto& out) {
        return std::vector<xgrad::Array<double>>{grad / (1.0 + xt::exp(-in[0]))}; });
  return y;
}

// y = k·w∘x∘mask with k and w captured, the second input (mask) not differentiated.
Var<double> scaled_by(const Var<double>& x, const Var<double>& mask, double k, const Array<double>& w) {
  return xgrad::custom_op<double>("scaled_by", {x, mask},
      [k, w](const auto& in) { return xgrad::Array<double>(k * w * in[0] * in[1]); },
      [k, w](const auto& grad, const auto& in, const auto& out) {
        (void)out;
        return std::vector<xgrad::Array<double>>{xgrad::Array<double>(grad * k * w * in[1]),
                                                 xgrad::Array<double>::from_shape({0})};
      });
}

void custom_ops() {
  const Array<double> xs = {-1.5, 0.0, 2.0, 0.7};
  Var<double> x = param<double>(xs);
  Var<double> y = my_softplus(x);
  Array<double> want = xt::zeros<double>({4}), dwant = xt::zeros<double>({4});
  for (std::size_t i = 0; i < 4; ++i) {
    want(i) = std::log1p(std::exp(xs(i)));
    dwant(i) = sigmoid_of(xs(i));
  }
  expect_close(y.value(), want, "softplus custom op forward");
  expect(y.requires_grad(), "a custom op on a parameter requires a gradient");
  sum(y).backward();
  expect_close(x.grad(), dwant, "softplus custom op backward");
  x.zero_grad();
  clear_tape();
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(my_softplus(in[0])); }, {xs},
                   "softplus custom op");
  {
    NoGradGuard guard;
    Var<double> z = my_softplus(x);
    expect(!z.requires_grad(), "a custom op under NoGradGuard is a constant");
    expect_close(z.value(), want, "softplus custom op forward under NoGradGuard");
  }

  // Recorded like a built-in: to_dot shows it by name, DetectAnomaly names it.
  const std::string dot = to_dot(my_softplus(x));
  expect(dot.find("softplus") != std::string::npos, "to_dot of a custom op's output names the op 'softplus'");
  clear_tape();
  {
    DetectAnomaly anomaly;
    expect_throws_naming<AnomalyError>(
        [&] {
          Var<double> bad = xgrad::custom_op<double>("log_below_ten", {x},
              [](const auto& in) { return xgrad::Array<double>(xt::log(in[0] - 10.0)); },
              [](const auto& grad, const auto& in, const auto& out) {
                (void)out;
                return std::vector<xgrad::Array<double>>{xgrad::Array<double>(grad / (in[0] - 10.0))};
              });
          sum(bad).backward();
        },
        "log_below_ten", "DetectAnomaly: the NaN of a custom op's forward");
  }
  x.zero_grad();
  clear_tape();

  // A capturing lambda: constants and a saved array; an input it does not differentiate.
  const double k = 2.5;
  const Array<double> w = {1.0, -2.0, 0.5, 3.0};
  const Array<double> mask_v = {1.0, 0.0, 1.0, 1.0};
  Var<double> mask = constant<double>(mask_v);
  Var<double> s = scaled_by(x, mask, k, w);
  expect_close(s.value(), Array<double>(k * w * xs * mask_v), "capturing custom op forward");
  weighted(s, 2).backward();
  expect_close(x.grad(), Array<double>(fill_values({4}, 2) * k * w * mask_v), "capturing custom op backward");
  x.zero_grad();
  clear_tape();
  expect_gradcheck(
      [&](const std::vector<Var<double>>& in) { return weighted(scaled_by(in[0], constant<double>(mask_v), k, w)); },
      {xs}, "capturing custom op");

  // A backward with a wrong count or shape: a ShapeError naming the op.
  expect_throws_naming<ShapeError>(
      [&] {
        Var<double> bad = xgrad::custom_op<double>("two_for_one", {x},
            [](const auto& in) { return xgrad::Array<double>(in[0] * 2.0); },
            [](const auto& grad, const auto& in, const auto& out) {
              (void)in, (void)out;
              return std::vector<xgrad::Array<double>>{grad, grad};
            });
        sum(bad).backward();
      },
      "two_for_one", "custom op backward returning two arrays for one input");
  x.zero_grad();
  clear_tape();
  expect_throws_naming<ShapeError>(
      [&] {
        Var<double> bad = xgrad::custom_op<double>("short_grad", {x},
            [](const auto& in) { return xgrad::Array<double>(in[0] * 2.0); },
            [](const auto& grad, const auto& in, const auto& out) {
              (void)grad, (void)in, (void)out;
              return std::vector<xgrad::Array<double>>{xt::zeros<double>({2})};
            });
        sum(bad).backward();
      },
      "short_grad", "custom op backward returning a (2,) gradient for a (4,) input");
  x.zero_grad();
  clear_tape();

  // Each thread records on its own tape.
  std::vector<Array<double>> grads(2);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 2; ++t)
    threads.emplace_back([&grads, &xs, t] {
      Var<double> p = param<double>(Array<double>(xs * double(t + 1)));
      sum(my_softplus(p)).backward();
      grads[t] = p.grad();
      clear_tape();
    });
  for (auto& th : threads) th.join();
  for (std::size_t t = 0; t < 2; ++t) {
    Array<double> d = xt::zeros<double>({4});
    for (std::size_t i = 0; i < 4; ++i) d(i) = sigmoid_of(xs(i) * double(t + 1));
    expect_close(grads[t], d, "softplus custom op backward on thread " + std::to_string(t));
  }
}

// ---------------------------------------------------------------------------------------------
// Ops.

// (x − mean) / sqrt(var + eps) over the last axis of a (rows, n) array, then ∘ w + b.
Array<double> layer_norm_by_hand(const Array<double>& x, const Array<double>* w, const Array<double>* b, double eps) {
  const std::size_t rows = x.shape()[0], n = x.shape()[1];
  Array<double> y = xt::zeros<double>({rows, n});
  for (std::size_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (std::size_t j = 0; j < n; ++j) mu += x(r, j) / double(n);
    for (std::size_t j = 0; j < n; ++j) var += (x(r, j) - mu) * (x(r, j) - mu) / double(n);
    for (std::size_t j = 0; j < n; ++j) {
      y(r, j) = (x(r, j) - mu) / std::sqrt(var + eps);
      if (w) y(r, j) = y(r, j) * (*w)(j) + (*b)(j);
    }
  }
  return y;
}

void norm_and_dropout_ops() {
  const Array<double> xv = {{1.0, 2.0, 4.0}, {-1.0, 0.0, 3.0}};
  const Array<double> wv = {0.5, 1.0, 2.0}, bv = {0.1, 0.0, -0.2};
  Var<double> x = param<double>(xv), w = param<double>(wv), b = param<double>(bv);
  expect_close(layer_norm(x, w, b, 1e-5).value(), layer_norm_by_hand(xv, &wv, &bv, 1e-5),
               "layer_norm(x, weight, bias, eps)");
  expect_close(layer_norm(x, 0.1).value(), layer_norm_by_hand(xv, nullptr, nullptr, 0.1), "layer_norm(x, eps)");
  clear_tape();
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(layer_norm(in[0], in[1], in[2], 1e-5)); },
                   {xv, wv, bv}, "layer_norm(x, weight, bias, eps)");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(layer_norm(in[0], 1e-3)); }, {xv},
                   "layer_norm(x, eps)");

  // dropout(x, p, training): inverted, masks from nn::generator().
  const Array<double> big = Array<double>(fill_values({10, 10}, 1) + 2.0);  // no zeros
  Var<double> d = param<double>(big);
  nn::manual_seed(42);
  Var<double> y1 = dropout(d, 0.25, true);
  Var<double> y3 = dropout(d, 0.25, true);
  nn::manual_seed(42);
  Var<double> y2 = dropout(d, 0.25, true);
  std::size_t zeros = 0;
  bool inverted = true;
  for (std::size_t n = 0; n < big.size(); ++n) {
    const double v = y1.value().flat(n);
    if (v == 0) ++zeros;
    else if (std::abs(v - big.flat(n) / 0.75) > 1e-12) inverted = false;
  }
  expect(inverted, "dropout: every survivor is x / (1 − p)");
  expect(zeros >= 10 && zeros <= 45, "dropout(p = 0.25) zeroed " + std::to_string(zeros) + " of 100 entries");
  expect_close(y2.value(), y1.value(), "dropout after the same nn::manual_seed gives the same mask", 0);
  expect(!xt::allclose(y3.value(), y1.value()), "dropout draws a new mask on the next call");
  sum(y1).backward();
  expect_close(d.grad(), Array<double>(y1.value() / big), "dropout backward is the mask / (1 − p)");
  d.zero_grad();
  clear_tape();
  Var<double> off = dropout(d, 0.25, false);
  expect_close(off.value(), big, "dropout(x, p, training = false) is x", 0);
  sum(off).backward();
  expect_close(d.grad(), Array<double>(xt::ones<double>({10, 10})), "dropout(training = false) backward is 1");
  d.zero_grad();
  clear_tape();
}

void layout_ops() {
  const Array<double> av = fill_values({2, 2, 3}, 1), bv = fill_values({2, 3, 2}, 2), cv = fill_values({2, 4, 3}, 3);
  Var<double> a = param<double>(av), b = param<double>(bv), c = param<double>(cv);
  Array<double> want = xt::zeros<double>({2, 2, 2});
  for (std::size_t B = 0; B < 2; ++B)
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 2; ++j)
        for (std::size_t k = 0; k < 3; ++k) want(B, i, j) += av(B, i, k) * bv(B, k, j);
  expect_close(bmm(a, b).value(), want, "bmm (2, 2, 3)·(2, 3, 2)");
  Array<double> want_nt = xt::zeros<double>({2, 2, 4});
  for (std::size_t B = 0; B < 2; ++B)
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 4; ++j)
        for (std::size_t k = 0; k < 3; ++k) want_nt(B, i, j) += av(B, i, k) * cv(B, j, k);
  expect_close(bmm_nt(a, c).value(), want_nt, "bmm_nt (2, 2, 3)·(2, 4, 3)ᵀ");
  clear_tape();
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(bmm(in[0], in[1])); }, {av, bv}, "bmm");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(bmm_nt(in[0], in[1])); }, {av, cv},
                   "bmm_nt");

  const Array<double> tv = fill_values({2, 3, 4}, 4);
  Var<double> t = param<double>(tv);
  Var<double> p = permute(t, {2, 0, 1});
  Var<double> tr = transpose(t, 0, 2);
  if (expect_shape(p, {4, 2, 3}, "permute((2, 3, 4), {2, 0, 1})") &&
      expect_shape(tr, {4, 3, 2}, "transpose((2, 3, 4), 0, 2)")) {
    bool ok_p = true, ok_t = true;
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 3; ++j)
        for (std::size_t k = 0; k < 4; ++k) {
          ok_p = ok_p && p.value()(k, i, j) == tv(i, j, k);
          ok_t = ok_t && tr.value()(k, j, i) == tv(i, j, k);
        }
    expect(ok_p, "permute: result(k, i, j) = a(i, j, k)");
    expect(ok_t, "transpose(a, 0, 2): result(k, j, i) = a(i, j, k)");
  }
  Var<double> u = unsqueeze(param<double>(fill_values({2, 3}, 5)), 1);
  if (expect_shape(u, {2, 1, 3}, "unsqueeze((2, 3), 1)")) {
    Var<double> sq = squeeze(u, 1);
    expect_shape(sq, {2, 3}, "squeeze((2, 1, 3), 1)");
    expect_close(sq.value(), fill_values({2, 3}, 5), "squeeze(unsqueeze(a)) is a", 0);
  }
  clear_tape();
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(permute(in[0], {1, 2, 0})); }, {tv},
                   "permute");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(transpose(in[0], 2, 1)); }, {tv},
                   "transpose(a, axis0, axis1)");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(squeeze(unsqueeze(in[0], 0), 0)); },
                   {fill_values({2, 3}, 5)}, "unsqueeze, squeeze");

  // split(a, axis, sizes) -> std::vector<Var<T>>; an unused piece sends no gradient.
  const Array<double> sv = fill_values({2, 5}, 6);
  Var<double> s = param<double>(sv);
  std::vector<Var<double>> pieces = split(s, 1, {2, 3});
  if (expect(pieces.size() == 2, "split into sizes {2, 3} gives 2 pieces, got " + std::to_string(pieces.size())) &&
      expect_shape(pieces[0], {2, 2}, "split piece 0") && expect_shape(pieces[1], {2, 3}, "split piece 1")) {
    for (std::size_t r = 0; r < 2; ++r)
      for (std::size_t j = 0; j < 5; ++j)
        expect_value(j < 2 ? pieces[0].value()(r, j) : pieces[1].value()(r, j - 2), sv(r, j),
                     "split value at (" + std::to_string(r) + ", " + std::to_string(j) + ")", 0);
    sum(pieces[0]).backward();
    expect_close(s.grad(), Array<double>{{1, 1, 0, 0, 0}, {1, 1, 0, 0, 0}}, "split: only the used piece's block");
  }
  s.zero_grad();
  clear_tape();
  expect_gradcheck(
      [](const std::vector<Var<double>>& in) {
        std::vector<Var<double>> q = split(in[0], 1, {2, 3});
        return weighted(q[0], 1) + weighted(q[1], 2);
      },
      {sv}, "split");

  // index_select(a, axis, ids), repeats adding up.
  const Array<double> iv = {{1, 2}, {3, 4}, {5, 6}};
  Var<double> ia = param<double>(iv);
  expect_close(index_select(ia, 0, {2, 0, 2}).value(), Array<double>{{5, 6}, {1, 2}, {5, 6}},
               "index_select(a, 0, {2, 0, 2})");
  expect_close(index_select(ia, 1, {1}).value(), column<double>({2, 4, 6}), "index_select(a, 1, {1})");
  sum(index_select(ia, 0, {2, 0, 2})).backward();
  expect_close(ia.grad(), Array<double>{{1, 1}, {0, 0}, {2, 2}}, "index_select backward adds repeats");
  ia.zero_grad();
  clear_tape();
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(index_select(in[0], 1, {1, 1, 0})); },
                   {iv}, "index_select");
}

void reduction_ops() {
  const Array<double> av = {{1, 3, 3}, {2, 0, -1}, {-2, -2, 5}};
  Var<double> a = param<double>(av);
  Var<double> s = sum(a, 1, true);
  if (expect_shape(s, {3, 1}, "sum(a, 1, keepdims = true)")) expect_close(s.value(), column<double>({7, 1, 1}), "sum(a, 1, true)");
  Var<double> s0 = sum(a, 0, false);
  if (expect_shape(s0, {3}, "sum(a, 0, keepdims = false)")) expect_close(s0.value(), Array<double>{1, 1, 7}, "sum(a, 0, false)");
  Var<double> m1 = mean(a, 1);
  if (expect_shape(m1, {3}, "mean(a, 1)")) expect_close(m1.value(), Array<double>{7.0 / 3, 1.0 / 3, 1.0 / 3}, "mean(a, 1)");
  Var<double> m0 = mean(a, 0, true);
  if (expect_shape(m0, {1, 3}, "mean(a, 0, keepdims = true)"))
    expect_close(m0.value(), Array<double>{{1.0 / 3, 1.0 / 3, 7.0 / 3}}, "mean(a, 0, true)");
  Var<double> m2 = mean(a, 1, false);
  expect_shape(m2, {3}, "mean(a, 1, keepdims = false)");

  Var<double> mx = max(a, 1), mn = min(a, 1);
  expect_close(mx.value(), Array<double>{3, 2, 5}, "max(a, 1)");
  expect_close(mn.value(), Array<double>{1, -1, -2}, "min(a, 1)");
  sum(mx).backward();
  expect_close(a.grad(), Array<double>{{0, 1, 0}, {1, 0, 0}, {0, 0, 1}}, "max backward to the first largest entry");
  a.zero_grad();
  clear_tape();
  sum(min(a, 1)).backward();
  expect_close(a.grad(), Array<double>{{1, 0, 0}, {0, 0, 1}, {1, 0, 0}}, "min backward to the first smallest entry");
  a.zero_grad();
  clear_tape();
  const auto am1 = argmax(a, 1);
  const auto am0 = argmax(a, 0);
  expect(shape_of_array(am1) == Shape{3} && am1(0) == 1 && am1(1) == 0 && am1(2) == 2,
         "argmax(a, 1) is {1, 0, 2} (first of equal entries)");
  expect(shape_of_array(am0) == Shape{3} && am0(0) == 1 && am0(1) == 0 && am0(2) == 2, "argmax(a, 0) is {1, 0, 2}");

  const Array<double> gv = fill_values({3, 4}, 7);
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(sum(in[0], 1, true)); }, {gv},
                   "sum(a, axis, keepdims)");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(mean(in[0], 0)); }, {gv}, "mean(a, axis)");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(mean(in[0], 1, true)); }, {gv},
                   "mean(a, axis, keepdims)");
  expect_gradcheck([](const std::vector<Var<double>>& in) { return weighted(max(in[0], 1)) + weighted(min(in[0], 0)); },
                   {gv}, "max, min");
}

void mask_ops() {
  const Array<double> av = {{1, 2, 3}, {4, 5, 6}}, bv = {{-1, -2, -3}, {-4, -5, -6}};
  Var<double> a = param<double>(av), b = param<double>(bv);
  const xt::xarray<bool> mask = {{true, false, true}};  // (1, 3), broadcast to (2, 3)
  Var<double> wh = where(mask, a, b);
  expect_close(wh.value(), Array<double>{{1, -2, 3}, {4, -5, 6}}, "where(mask (1, 3), a, b)");
  sum(wh).backward();
  expect_close(a.grad(), Array<double>{{1, 0, 1}, {1, 0, 1}}, "where backward to a");
  expect_close(b.grad(), Array<double>{{0, 1, 0}, {0, 1, 0}}, "where backward to b");
  a.zero_grad();
  b.zero_grad();
  clear_tape();
  const xt::xarray<bool> rows = column<bool>({true, false});  // (2, 1)
  Var<double> mf = masked_fill(a, rows, -7.0);
  expect_close(mf.value(), Array<double>{{-7, -7, -7}, {4, 5, 6}}, "masked_fill(a, mask (2, 1), -7)");
  sum(mf).backward();
  expect_close(a.grad(), Array<double>{{0, 0, 0}, {1, 1, 1}}, "masked_fill backward: no gradient where filled");
  a.zero_grad();
  clear_tape();
  expect_gradcheck([&](const std::vector<Var<double>>& in) { return weighted(where(mask, in[0], in[1])); }, {av, bv},
                   "where");
  expect_gradcheck([&](const std::vector<Var<double>>& in) { return weighted(masked_fill(in[0], rows, 0.5)); }, {av},
                   "masked_fill");
}

// op(x) against f(x) elementwise, then by gradcheck on x.
void check_elementwise(const std::string& name, const std::function<Var<double>(const Var<double>&)>& op,
                       const std::function<double(double)>& f, const Array<double>& xv, bool gradient = true) {
  Array<double> want = xt::zeros<double>(shape_of_array(xv));
  for (std::size_t n = 0; n < xv.size(); ++n) want.flat(n) = f(xv.flat(n));
  expect_close(op(param<double>(xv)).value(), want, name, 1e-12);
  clear_tape();
  if (gradient)
    expect_gradcheck([&](const std::vector<Var<double>>& in) { return weighted(op(in[0])); }, {xv}, name);
}

void elementwise_ops() {
  const Array<double> mixed = {-2.0, -0.6, 0.3, 1.7};
  const Array<double> positive = {0.2, 0.9, 1.5, 3.0};
  check_elementwise("pow(a, 1.5)", [](const Var<double>& a) { return pow(a, 1.5); },
                    [](double v) { return std::pow(v, 1.5); }, positive);
  check_elementwise("pow(a, 3)", [](const Var<double>& a) { return pow(a, 3.0); },
                    [](double v) { return v * v * v; }, mixed);
  check_elementwise("abs", [](const Var<double>& a) { return abs(a); }, [](double v) { return std::abs(v); }, mixed);
  check_elementwise("clamp(a, -1, 1)", [](const Var<double>& a) { return clamp(a, -1.0, 1.0); },
                    [](double v) { return std::min(1.0, std::max(-1.0, v)); }, mixed);
  check_elementwise("log1p", [](const Var<double>& a) { return log1p(a); }, [](double v) { return std::log1p(v); },
                    positive);
  check_elementwise("softplus", [](const Var<double>& a) { return softplus(a); },
                    [](double v) { return std::log1p(std::exp(v)); }, mixed);
  check_elementwise("softplus at ±40", [](const Var<double>& a) { return softplus(a); },
                    [](double v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); },
                    Array<double>{-40.0, 40.0}, false);
  check_elementwise("log_sigmoid", [](const Var<double>& a) { return log_sigmoid(a); },
                    [](double v) { return -std::log1p(std::exp(-v)); }, mixed);
  check_elementwise("leaky_relu(a, 0.1)", [](const Var<double>& a) { return leaky_relu(a, 0.1); },
                    [](double v) { return v > 0 ? v : 0.1 * v; }, mixed);
  check_elementwise("gelu", [](const Var<double>& a) { return gelu(a); },
                    [](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }, mixed);

  // Gradients at the kinks as documented: abs 0 at 0, clamp 1 on the bounds included.
  Var<double> z = param<double>(Array<double>{0.0, -1.0, 1.0, 2.0});
  sum(abs(z)).backward();
  expect_close(z.grad(), Array<double>{0, -1, 1, 1}, "abs backward is sign(a)");
  z.zero_grad();
  clear_tape();
  sum(clamp(z, -1.0, 1.0)).backward();
  expect_close(z.grad(), Array<double>{1, 1, 1, 0}, "clamp backward is 1 on [lo, hi]");
  z.zero_grad();
  clear_tape();
}

void cross_entropy_options() {
  const Array<double> lv = fill_values({3, 4}, 8);
  const std::vector<int> targets = {1, -100, 3};
  auto nll = [&](std::size_t r, std::size_t t) {
    double lse = 0;
    for (std::size_t c = 0; c < 4; ++c) lse += std::exp(lv(r, c));
    return std::log(lse) - lv(r, t);
  };
  const double want_sum = nll(0, 1) + nll(2, 3);
  Var<double> logits = param<double>(lv);
  Var<double> loss = cross_entropy(logits, targets, CrossEntropyOptions().ignore_index(-100).reduction(Reduction::sum));
  expect_value(loss.value().flat(0), want_sum, "cross_entropy(ignore_index -100, Reduction::sum)", 1e-12);
  loss.backward();
  Array<double> dwant = xt::zeros<double>({3, 4});
  for (std::size_t r : {0, 2}) {
    double lse = 0;
    for (std::size_t c = 0; c < 4; ++c) lse += std::exp(lv(r, c));
    for (std::size_t c = 0; c < 4; ++c) dwant(r, c) = std::exp(lv(r, c)) / lse - (c == std::size_t(targets[r]) ? 1 : 0);
  }
  expect_close(logits.grad(), dwant, "cross_entropy(Reduction::sum) backward: nothing to the ignored row");
  logits.zero_grad();
  clear_tape();
  Var<double> mean_loss = cross_entropy(logits, targets, CrossEntropyOptions().ignore_index(-100));
  expect_value(mean_loss.value().flat(0), want_sum / 2, "cross_entropy(Reduction::mean) over the 2 counted rows", 1e-12);
  Var<double> none = cross_entropy(logits, targets, CrossEntropyOptions().reduction(Reduction::none));
  if (expect_shape(none, {3}, "cross_entropy(Reduction::none)"))
    expect_close(none.value(), Array<double>{nll(0, 1), 0.0, nll(2, 3)}, "cross_entropy(Reduction::none)", 1e-12);
  clear_tape();
  expect_gradcheck(
      [&](const std::vector<Var<double>>& in) {
        return cross_entropy(in[0], targets, CrossEntropyOptions().ignore_index(-100).reduction(Reduction::sum));
      },
      {lv}, "cross_entropy(ignore_index, Reduction::sum)");
}

void var_with_xarray() {
  const Array<double> vv = {1.0, 2.0, 4.0};
  const Array<double> arr = {10.0, 20.0, 30.0};
  Var<double> v = param<double>(vv);
  auto plus = v + arr;
  auto times = arr * v;
  auto minus = v - arr;
  auto over = arr / v;
  static_assert(std::is_same_v<decltype(plus), Var<double>>, "Var + xt::xarray is a Var");
  static_assert(std::is_same_v<decltype(times), Var<double>>, "xt::xarray * Var is a Var");
  static_assert(std::is_same_v<decltype(minus), Var<double>>, "Var - xt::xarray is a Var");
  static_assert(std::is_same_v<decltype(over), Var<double>>, "xt::xarray / Var is a Var");
  expect_close(plus.value(), Array<double>{11, 22, 34}, "Var + xt::xarray");
  expect_close(times.value(), Array<double>{10, 40, 120}, "xt::xarray * Var");
  expect_close(minus.value(), Array<double>{-9, -18, -26}, "Var - xt::xarray");
  expect_close(over.value(), Array<double>{10, 10, 7.5}, "xt::xarray / Var");
  (sum(times) + sum(over)).backward();  // d/dv: arr − arr / v²
  expect_close(v.grad(), Array<double>{10.0 - 10.0, 20.0 - 5.0, 30.0 - 30.0 / 16}, "Var with xt::xarray: gradient");
  v.zero_grad();
  clear_tape();
  // A broadcast (2, 1) array with a (3,) Var.
  const Array<double> col = column<double>({1.0, 2.0});
  Var<double> bc = v * col;
  if (expect_shape(bc, {2, 3}, "Var (3,) * xt::xarray (2, 1)"))
    expect_close(bc.value(), Array<double>{{1, 2, 4}, {2, 4, 8}}, "Var (3,) * xt::xarray (2, 1)");
  clear_tape();
}

// ---------------------------------------------------------------------------------------------
// Modules.

std::map<std::string, Var<double>> params_of(const nn::Module<double>& m) {
  std::map<std::string, Var<double>> out;
  for (const auto& [name, p] : m.named_parameters()) out[name] = p;
  return out;
}

// The value of the parameter `name`, or an error naming it and the parameters there are.
const Array<double>& value_of(const std::map<std::string, Var<double>>& p, const std::string& name) {
  auto it = p.find(name);
  if (it == p.end()) {
    std::string all;
    for (const auto& [n, v] : p) all += (all.empty() ? "" : ", ") + n;
    throw std::runtime_error("no parameter named " + name + " (there are: " + all + ")");
  }
  return it->second.value();
}

std::set<std::string> names_of(const nn::Module<double>& m) {
  std::set<std::string> out;
  for (const auto& [name, p] : m.named_parameters()) out.insert(name);
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& n : s) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void layer_norm_module() {
  nn::LayerNorm<double> ln(3);
  auto p = params_of(ln);
  if (!expect(names_of(ln) == std::set<std::string>{"weight", "bias"},
              "nn::LayerNorm parameters are weight, bias; got " + join(names_of(ln))))
    return;
  expect_close(p["weight"].value(), Array<double>{1, 1, 1}, "nn::LayerNorm weight starts at ones", 0);
  expect_close(p["bias"].value(), Array<double>{0, 0, 0}, "nn::LayerNorm bias starts at zeros", 0);
  const Array<double> wv = {0.5, -1.0, 2.0}, bv = {0.1, 0.2, 0.3};
  p["weight"].set_value(wv);
  p["bias"].set_value(bv);
  const Array<double> xv = fill_values({4, 3}, 9);
  Var<double> x = constant<double>(xv);
  expect_close(ln(x).value(), layer_norm_by_hand(xv, &wv, &bv, 1e-5), "nn::LayerNorm(3) forward");
  Var<double> x3 = constant<double>(fill_values({2, 2, 3}, 9));
  expect_shape(ln(x3), {2, 2, 3}, "nn::LayerNorm(3) on (2, 2, 3)");
  clear_tape();
  expect_module_gradcheck(ln, [&] { return weighted(ln(x)); }, "nn::LayerNorm");
}

void dropout_module() {
  nn::Dropout<double> drop(0.5);
  const Array<double> xv = xt::ones<double>({20, 20});
  Var<double> x = constant<double>(xv);
  Var<double> y = drop(x);
  std::size_t zeros = 0, twos = 0;
  for (std::size_t n = 0; n < xv.size(); ++n) {
    zeros += y.value().flat(n) == 0;
    twos += y.value().flat(n) == 2;
  }
  expect(zeros + twos == xv.size() && zeros > 120 && zeros < 280,
         "nn::Dropout(0.5) in training: entries 0 or 2, " + std::to_string(zeros) + " zeros of 400");
  drop.eval();
  expect(!drop.is_training(), "nn::Dropout after eval() is not training");
  expect_close(drop(x).value(), xv, "nn::Dropout in eval mode is the identity", 0);
  drop.train();
  expect(drop.is_training(), "nn::Dropout after train() is training");
  clear_tape();
}

void sequential_module() {
  nn::Sequential<double> mlp;
  mlp.emplace<nn::Linear<double>>(4, 6);
  mlp.add([](const Var<double>& v) { return tanh(v); });
  mlp.emplace<nn::LayerNorm<double>>(6);
  mlp.add(std::make_unique<nn::Linear<double>>(6, 2));
  expect(mlp.size() == 4, "nn::Sequential has 4 steps");
  const std::set<std::string> want = {"0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"};
  expect(names_of(mlp) == want, "nn::Sequential parameter names: got " + join(names_of(mlp)));
  auto p = params_of(mlp);
  const Array<double> xv = fill_values({5, 4}, 10);
  Var<double> x = constant<double>(xv);
  Var<double> y = mlp(x);
  if (expect_shape(y, {5, 2}, "nn::Sequential (5, 4) -> (5, 2)")) {
    // By hand: Linear, tanh, LayerNorm, Linear.
    const Array<double>&W0 = p["0.weight"].value(), &b0 = p["0.bias"].value();
    const Array<double>&W3 = p["3.weight"].value(), &b3 = p["3.bias"].value();
    const Array<double>&g = p["2.weight"].value(), &be = p["2.bias"].value();
    Array<double> h = xt::zeros<double>({5, 6});
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = 0; j < 6; ++j) {
        double z = b0(j);
        for (std::size_t k = 0; k < 4; ++k) z += xv(i, k) * W0(j, k);
        h(i, j) = std::tanh(z);
      }
    Array<double> hn = layer_norm_by_hand(h, &g, &be, 1e-5);
    Array<double> want_y = xt::zeros<double>({5, 2});
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = 0; j < 2; ++j) {
        double z = b3(j);
        for (std::size_t k = 0; k < 6; ++k) z += hn(i, k) * W3(j, k);
        want_y(i, j) = z;
      }
    expect_close(y.value(), want_y, "nn::Sequential forward = Linear, tanh, LayerNorm, Linear by hand", 1e-9);
  }
  clear_tape();
  expect_module_gradcheck(mlp, [&] { return cross_entropy(mlp(x), {0, 1, 1, 0, 1}); }, "nn::Sequential");
}

// Scores by hand: e[i][s] for query row i and key position s.
void attention_kind(nn::AttentionKind kind, const std::string& name) {
  const std::size_t m = 2, S = 3, n_k = 4, n_v = 3;
  const std::size_t n_q = kind == nn::AttentionKind::dot ? 4 : 5;
  nn::Attention<double> att(n_q, n_k, nn::AttentionOptions().kind(kind));
  const Array<double> qv = fill_values({m, n_q}, 11), kv = fill_values({S, m, n_k}, 12), vv = fill_values({S, m, n_v}, 13);
  const std::vector<int> lengths = {3, 2};
  Var<double> q = constant<double>(qv), k = constant<double>(kv), v = constant<double>(vv);
  auto res = att(q, k, v, lengths);
  auto [context, weights] = att(q, k, v, lengths);  // the context and the weights
  expect_close(context.value(), res.context.value(), name + ": the first of the result is the context", 0);
  expect_close(weights.value(), res.weights.value(), name + ": the second of the result is the weights", 0);
  if (!expect_shape(res.context, {m, n_v}, name + " context") || !expect_shape(res.weights, {m, S}, name + " weights"))
    return;
  auto p = params_of(att);
  Array<double> e = xt::zeros<double>({m, S});
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t s = 0; s < S; ++s) {
      double score = 0;
      if (kind == nn::AttentionKind::dot) {
        for (std::size_t d = 0; d < n_k; ++d) score += qv(i, d) * kv(s, i, d);
      } else if (kind == nn::AttentionKind::general) {
        const Array<double>& W = value_of(p, "W");  // (n_q, n_k)
        for (std::size_t d = 0; d < n_q; ++d)
          for (std::size_t f = 0; f < n_k; ++f) score += qv(i, d) * W(d, f) * kv(s, i, f);
      } else {
        const Array<double>&Wq = value_of(p, "Wq"), &Wk = value_of(p, "Wk"), &vw = value_of(p, "v");
        for (std::size_t h = 0; h < vw.size(); ++h) {
          double z = 0;
          for (std::size_t d = 0; d < n_q; ++d) z += Wq(h, d) * qv(i, d);
          for (std::size_t f = 0; f < n_k; ++f) z += Wk(h, f) * kv(s, i, f);
          score += vw(h) * std::tanh(z);
        }
      }
      e(i, s) = score;
    }
  Array<double> alpha = xt::zeros<double>({m, S}), ctx = xt::zeros<double>({m, n_v});
  for (std::size_t i = 0; i < m; ++i) {
    const std::size_t len = std::size_t(lengths[i]);
    double mx = e(i, 0), z = 0;
    for (std::size_t s = 0; s < len; ++s) mx = std::max(mx, e(i, s));
    for (std::size_t s = 0; s < len; ++s) z += std::exp(e(i, s) - mx);
    for (std::size_t s = 0; s < len; ++s) alpha(i, s) = std::exp(e(i, s) - mx) / z;
    for (std::size_t s = 0; s < S; ++s)
      for (std::size_t c = 0; c < n_v; ++c) ctx(i, c) += alpha(i, s) * vv(s, i, c);
  }
  expect_close(res.weights.value(), alpha, name + " weights by hand (key lengths {3, 2})", 1e-12);
  expect_value(res.weights.value()(1, 2), 0.0, name + ": the padded key position has weight exactly 0", 0);
  expect_close(res.context.value(), ctx, name + " context by hand", 1e-12);
  clear_tape();
  if (kind == nn::AttentionKind::dot) {
    expect_gradcheck(
        [&](const std::vector<Var<double>>& in) {
          auto r = att(in[0], in[1], in[2], lengths);
          return weighted(r.context) + weighted(r.weights, 3);
        },
        {qv, kv, vv}, name);
  } else {
    expect(!p.empty(), name + " has parameters");
    expect_module_gradcheck(att, [&] {
      auto r = att(q, k, v, lengths);
      return weighted(r.context) + weighted(r.weights, 3);
    }, name);
  }
}

void attention_module() {
  attention_kind(nn::AttentionKind::dot, "nn::Attention dot");
  attention_kind(nn::AttentionKind::general, "nn::Attention general");
  attention_kind(nn::AttentionKind::additive, "nn::Attention additive");
}

// ---------------------------------------------------------------------------------------------
// Any cell in the sequence machinery.

// An Elman cell of our own: s' = tanh(x·Wᵀ + s·Uᵀ + b).
template <class T>
class MyCell : public xgrad::nn::Module<T> {
 public:
  using State = xgrad::Var<T>;
  MyCell(std::size_t n_in, std::size_t n_a) : n_a_(n_a) {
    W = this->register_parameter("W", xgrad::nn::uniform<T>({n_a, n_in}, 0.6));
    U = this->register_parameter("U", xgrad::nn::uniform<T>({n_a, n_a}, 0.6));
    b = this->register_parameter("b", xgrad::nn::uniform<T>({n_a}, 0.6));
  }
  State zero_state(std::size_t m) const { return xgrad::constant<T>(xt::zeros<T>({m, n_a_})); }
  State step(const xgrad::Var<T>& x, const State& s) const {
    return xgrad::tanh(xgrad::matmul(x, xgrad::transpose(W)) + xgrad::matmul(s, xgrad::transpose(U)) + b);
  }

  xgrad::Var<T> W, U, b;

 private:
  std::size_t n_a_;
};

// The same cell with input_projection: x·Wᵀ + b for all T·m rows at once, step gets those rows.
template <class T>
class MyProjectedCell : public xgrad::nn::Module<T> {
 public:
  using State = xgrad::Var<T>;
  MyProjectedCell(std::size_t n_in, std::size_t n_a) : n_a_(n_a) {
    W = this->register_parameter("W", xgrad::nn::uniform<T>({n_a, n_in}, 0.6));
    U = this->register_parameter("U", xgrad::nn::uniform<T>({n_a, n_a}, 0.6));
    b = this->register_parameter("b", xgrad::nn::uniform<T>({n_a}, 0.6));
  }
  xgrad::Var<T> input_projection(const xgrad::Var<T>& x) const { return xgrad::matmul(x, xgrad::transpose(W)) + b; }
  State zero_state(std::size_t m) const { return xgrad::constant<T>(xt::zeros<T>({m, n_a_})); }
  State step(const xgrad::Var<T>& px, const State& s) const {
    return xgrad::tanh(px + xgrad::matmul(s, xgrad::transpose(U)));
  }

  xgrad::Var<T> W, U, b;

 private:
  std::size_t n_a_;
};

struct Reference {
  Array<double> output;              // (T, m, directions·n_a)
  std::vector<Array<double>> state;  // layers·directions entries
};

// The stacked bidirectional Elman network by hand, from the named parameters.
Reference my_cell_by_hand(const Array<double>& x, std::map<std::string, Var<double>>& p, std::size_t layers,
                          std::size_t n_a, const std::vector<Array<double>>& initial, const std::vector<int>& lengths) {
  const std::size_t T = x.shape()[0], m = x.shape()[1];
  Array<double> input = x;
  Reference ref;
  for (std::size_t k = 0; k < layers; ++k) {
    const std::size_t n_in = input.shape()[2];
    Array<double> out = xt::zeros<double>({T, m, 2 * n_a});
    for (std::size_t d = 0; d < 2; ++d) {
      const std::string pre = "layers." + std::to_string(k) + (d == 1 ? ".reverse." : ".");
      const Array<double>&W = value_of(p, pre + "W"), &U = value_of(p, pre + "U"), &b = value_of(p, pre + "b");
      Array<double> h = initial.empty() ? Array<double>(xt::zeros<double>({m, n_a})) : initial[k * 2 + d];
      for (std::size_t s = 0; s < T; ++s) {
        const std::size_t t = d == 1 ? T - 1 - s : s;
        Array<double> next = h;
        for (std::size_t i = 0; i < m; ++i) {
          if (!lengths.empty() && t >= std::size_t(lengths[i])) continue;
          for (std::size_t j = 0; j < n_a; ++j) {
            double z = b(j);
            for (std::size_t l = 0; l < n_in; ++l) z += W(j, l) * input(t, i, l);
            for (std::size_t l = 0; l < n_a; ++l) z += U(j, l) * h(i, l);
            next(i, j) = std::tanh(z);
            out(t, i, d * n_a + j) = next(i, j);
          }
        }
        h = next;
      }
      ref.state.push_back(h);
    }
    input = out;
  }
  ref.output = input;
  return ref;
}

void user_cell() {
  const std::size_t n_x = 3, n_a = 4, T = 4, m = 2;
  nn::manual_seed(5);
  nn::Recurrent<MyCell<double>> r(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
  std::set<std::string> want_names;
  for (const char* layer : {"layers.0.", "layers.0.reverse.", "layers.1.", "layers.1.reverse."})
    for (const char* name : {"W", "U", "b"}) want_names.insert(std::string(layer) + name);
  expect(names_of(r) == want_names, "nn::Recurrent<MyCell> parameter names: got " + join(names_of(r)));
  auto p = params_of(r);
  if (!expect(p.count("layers.1.reverse.W") == 1, "nn::Recurrent<MyCell> has layers.1.reverse.W")) return;
  expect(shape_of(p["layers.0.W"]) == Shape{n_a, n_x}, "layers.0.W is (n_a, n_x): the cell got n_in = n_x");
  expect(shape_of(p["layers.1.reverse.W"]) == Shape{n_a, 2 * n_a},
         "layers.1.reverse.W is (n_a, 2·n_a): layer 1's cells got n_in = directions·n_a");

  const Array<double> xv = fill_values({T, m, n_x}, 14);
  Var<double> x = constant<double>(xv);

  auto res = r(x);
  if (expect_shape(res.output, {T, m, 2 * n_a}, "r(x).output") &&
      expect(res.state.size() == 4, "r(x).state has layers·directions = 4 entries")) {
    Reference ref = my_cell_by_hand(xv, p, 2, n_a, {}, {});
    expect_close(res.output.value(), ref.output, "r(x).output by hand", 1e-12);
    for (std::size_t i = 0; i < 4; ++i)
      expect_close(res.state[i].value(), ref.state[i], "r(x).state[" + std::to_string(i) + "] by hand", 1e-12);
  }

  std::vector<Var<double>> initial;
  std::vector<Array<double>> initial_v;
  for (std::size_t i = 0; i < 4; ++i) {
    initial_v.push_back(fill_values({m, n_a}, 20.0 + double(i)));
    initial.push_back(constant<double>(initial_v.back()));
  }
  auto res_i = r(x, initial);
  if (expect_shape(res_i.output, {T, m, 2 * n_a}, "r(x, initial).output")) {
    Reference ref = my_cell_by_hand(xv, p, 2, n_a, initial_v, {});
    expect_close(res_i.output.value(), ref.output, "r(x, initial).output by hand", 1e-12);
  }

  const std::vector<int> lengths = {4, 2};
  auto res_l = r(x, initial, lengths);
  if (expect_shape(res_l.output, {T, m, 2 * n_a}, "r(x, initial, lengths).output") &&
      expect(res_l.state.size() == 4, "r(x, initial, lengths).state has 4 entries")) {
    Reference ref = my_cell_by_hand(xv, p, 2, n_a, initial_v, lengths);
    expect_close(res_l.output.value(), ref.output, "r(x, initial, lengths {4, 2}).output by hand", 1e-12);
    for (std::size_t i = 0; i < 4; ++i)
      expect_close(res_l.state[i].value(), ref.state[i],
                   "r(x, initial, lengths).state[" + std::to_string(i) + "] by hand", 1e-12);
    expect_value(res_l.output.value()(3, 1, 0), 0.0, "r(x, initial, lengths): padding outputs are zero", 0);
  }

  // With input_projection: the same results from the same weights.
  nn::Recurrent<MyProjectedCell<double>> rp(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
  expect(names_of(rp) == want_names, "nn::Recurrent<MyProjectedCell> parameter names: got " + join(names_of(rp)));
  for (auto& [name, v] : params_of(rp)) v.set_value(value_of(p, name));
  auto res_p = rp(x, initial, lengths);
  if (expect_shape(res_p.output, {T, m, 2 * n_a}, "a cell with input_projection: output")) {
    Reference ref = my_cell_by_hand(xv, p, 2, n_a, initial_v, lengths);
    expect_close(res_p.output.value(), ref.output, "a cell with input_projection: output by hand", 1e-12);
  }
  clear_tape();
  expect_module_gradcheck(r, [&] {
    std::vector<Var<double>> init;
    for (const auto& a : initial_v) init.push_back(constant<double>(a));
    auto out = r(x, init, lengths);
    return weighted(out.output) + weighted(out.state[3], 4);
  }, "nn::Recurrent<MyCell> with initial state and lengths");
}

// A cell without parameters whose next state is x + s: it shows the state fed into each step.
template <class T>
class Accumulate : public xgrad::nn::Module<T> {
 public:
  using State = xgrad::Var<T>;
  Accumulate(std::size_t n_in, std::size_t n_a) : n_a_(n_a) { (void)n_in; }
  State zero_state(std::size_t m) const { return xgrad::constant<T>(xt::zeros<T>({m, n_a_})); }
  State step(const xgrad::Var<T>& x, const State& s) const { return x + s; }

 private:
  std::size_t n_a_;
};

// LSTMState {a, c} of LayerNormLSTMCell by hand over T steps from zeros, one direction.
Reference ln_lstm_by_hand(const Array<double>& x, std::map<std::string, Var<double>>& p, std::size_t n_a) {
  const std::size_t T = x.shape()[0], m = x.shape()[1], n_x = x.shape()[2], G = 4 * n_a;
  auto P = [&](const std::string& n) -> const Array<double>& { return value_of(p, "layers.0." + n); };
  const Array<double>&Wx = P("Wx"), &Wa = P("Wa"), &b = P("b");
  const Array<double>&gx = P("ln_x.weight"), &bx = P("ln_x.bias"), &ga = P("ln_a.weight"), &ba = P("ln_a.bias");
  const Array<double>&gc = P("ln_c.weight"), &bc = P("ln_c.bias");
  Array<double> a = xt::zeros<double>({m, n_a}), c = xt::zeros<double>({m, n_a});
  Reference ref;
  ref.output = xt::zeros<double>({T, m, n_a});
  for (std::size_t t = 0; t < T; ++t) {
    Array<double> zx = xt::zeros<double>({m, G}), za = xt::zeros<double>({m, G});
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t g = 0; g < G; ++g) {
        for (std::size_t l = 0; l < n_x; ++l) zx(i, g) += x(t, i, l) * Wx(g, l);
        for (std::size_t l = 0; l < n_a; ++l) za(i, g) += a(i, l) * Wa(g, l);
      }
    Array<double> pre = Array<double>(layer_norm_by_hand(zx, &gx, &bx, 1e-5) + layer_norm_by_hand(za, &ga, &ba, 1e-5));
    Array<double> cn = xt::zeros<double>({m, n_a});
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n_a; ++j) {
        const double gi = sigmoid_of(pre(i, j) + b(j)), gf = sigmoid_of(pre(i, n_a + j) + b(n_a + j));
        const double gg = std::tanh(pre(i, 2 * n_a + j) + b(2 * n_a + j));
        cn(i, j) = gf * c(i, j) + gi * gg;
      }
    Array<double> lc = layer_norm_by_hand(cn, &gc, &bc, 1e-5);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n_a; ++j) {
        const double go = sigmoid_of(pre(i, 3 * n_a + j) + b(3 * n_a + j));
        a(i, j) = go * std::tanh(lc(i, j));
        ref.output(t, i, j) = a(i, j);
      }
    c = cn;
  }
  ref.state = {a, c};
  return ref;
}

void layer_norm_lstm_cell() {
  const std::size_t n_x = 3, n_a = 2, T = 3, m = 2;
  nn::manual_seed(6);
  nn::Recurrent<nn::LayerNormLSTMCell<double>> one(n_x, n_a);
  auto p = params_of(one);
  // Give the normalisations' gains and shifts values of their own, so that each one shows.
  double seed = 30;
  for (auto& [name, v] : p)
    if (name.find(".ln_") != std::string::npos) v.set_value(Array<double>(fill_values(shape_of(v), seed++) * 0.5 + 0.8));
  const Array<double> xv = fill_values({T, m, n_x}, 15);
  Var<double> x = constant<double>(xv);
  auto res = one(x);
  if (expect(p.count("layers.0.Wx") && p.count("layers.0.ln_c.bias"),
             "nn::Recurrent<nn::LayerNormLSTMCell> parameters: got " + join(names_of(one))) &&
      expect_shape(res.output, {T, m, n_a}, "nn::Recurrent<nn::LayerNormLSTMCell>(x).output")) {
    Reference ref = ln_lstm_by_hand(xv, p, n_a);
    expect_close(res.output.value(), ref.output, "nn::LayerNormLSTMCell over 3 steps by hand (Ba et al. 2016)", 1e-10);
    expect(res.state.size() == 1, "one layer, one direction: one state");
    expect_close(res.state[0].a.value(), ref.state[0], "LayerNormLSTMCell final state a by hand", 1e-10);
    expect_close(res.state[0].c.value(), ref.state[1], "LayerNormLSTMCell final state c by hand", 1e-10);
  }
  clear_tape();

  nn::Recurrent<nn::LayerNormLSTMCell<double>> bi(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
  const std::vector<int> lengths = {3, 1};
  auto rb = bi(x, {}, lengths);
  if (expect_shape(rb.output, {T, m, 2 * n_a}, "bidirectional LayerNormLSTMCell output") &&
      expect(rb.state.size() == 4, "2 layers, 2 directions: 4 states")) {
    const Array<double>& out = rb.output.value();
    for (std::size_t j = 0; j < n_a; ++j) {
      expect_value(rb.state[2].a.value()(0, j), out(T - 1, 0, j), "layer 1 forward state a is the last output", 1e-12);
      expect_value(rb.state[3].a.value()(0, j), out(0, 0, n_a + j), "layer 1 reverse state a is the first output", 1e-12);
      expect_value(rb.state[2].a.value()(1, j), out(0, 1, j), "a length-1 example's forward state is its step 0", 1e-12);
      expect_value(out(2, 1, j), 0.0, "a length-1 example's padding output is zero", 0);
    }
  }
  clear_tape();
  expect_module_gradcheck(bi, [&] {
    auto o = bi(x, {}, lengths);
    return weighted(o.output) + weighted(o.state[1].c, 2);
  }, "nn::Recurrent<nn::LayerNormLSTMCell> 2 layers bidirectional");
}

void recurrent_dropout() {
  const std::size_t n = 4, T = 3, m = 6;
  nn::Recurrent<Accumulate<double>> acc(n, n, nn::RecurrentOptions().recurrent_dropout(0.5));
  Var<double> x = constant<double>(xt::ones<double>({T, m, n}));
  nn::manual_seed(7);
  const Array<double> out = acc(x).output.value();
  // With a mask d per sequence and unit (0 or 2): s1 = 1, s2 = d·1 + 1, s3 = d·s2 + 1.
  bool tied = true, dropped = false, kept = false, rows_differ = false;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      const double s1 = out(0, i, j), s2 = out(1, i, j), s3 = out(2, i, j);
      const bool drop = s1 == 1 && s2 == 1 && s3 == 1, keep = s1 == 1 && s2 == 3 && s3 == 7;
      tied = tied && (drop || keep);
      dropped = dropped || drop;
      kept = kept || keep;
      rows_differ = rows_differ || out(1, i, j) != out(1, 0, j);
    }
  expect(tied, "recurrent_dropout(0.5): one mask per sequence and unit, tied across time steps (0 or 1/(1 − p))");
  expect(dropped && kept, "recurrent_dropout(0.5): some units dropped, some kept");
  expect(rows_differ, "recurrent_dropout: different masks for different sequences");
  acc.eval();
  Array<double> want = xt::zeros<double>({T, m, n});
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) want(t, i, j) = double(t + 1);
  expect_close(acc(x).output.value(), want, "recurrent_dropout is off in eval mode", 0);
  clear_tape();

  // On nn::LayerNormLSTMCell: the same model without recurrent dropout gives the same first
  // step (the zero initial state masked is zero) and different later steps in training; equal
  // outputs in eval mode.
  nn::manual_seed(8);
  nn::Recurrent<nn::LayerNormLSTMCell<double>> with(3, 5, nn::RecurrentOptions().recurrent_dropout(0.4));
  nn::Recurrent<nn::LayerNormLSTMCell<double>> without(3, 5);
  auto pw = params_of(with);
  for (auto& [name, v] : params_of(without)) v.set_value(value_of(pw, name));
  Var<double> xs = constant<double>(fill_values({4, 3, 3}, 16));
  const Array<double> yw = with(xs).output.value(), yo = without(xs).output.value();
  bool first_same = true, later_differ = false;
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 5; ++j) {
      first_same = first_same && std::abs(yw(0, i, j) - yo(0, i, j)) < 1e-12;
      for (std::size_t t = 1; t < 4; ++t) later_differ = later_differ || std::abs(yw(t, i, j) - yo(t, i, j)) > 1e-6;
    }
  expect(first_same, "LayerNormLSTMCell with recurrent_dropout: step 0 from a zero state is unchanged");
  expect(later_differ, "LayerNormLSTMCell with recurrent_dropout: later steps change in training");
  with.eval();
  expect_close(with(xs).output.value(), yo, "LayerNormLSTMCell with recurrent_dropout in eval mode", 1e-12);
  clear_tape();
}

// ---------------------------------------------------------------------------------------------
// Gradient check of a model.

struct SmallModel : nn::Module<double> {
  nn::Recurrent<MyCell<double>> rnn;
  nn::LayerNorm<double> norm;
  nn::Linear<double> head;
  SmallModel() : rnn(3, 4, nn::RecurrentOptions().layers(2).bidirectional()), norm(8), head(8, 5) {
    register_module("rnn", rnn);
    register_module("norm", norm);
    register_module("head", head);
  }
  Var<double> loss(const Var<double>& x, const std::vector<int>& targets) const {
    Var<double> out = rnn(x).output;                           // (T, m, 8)
    Var<double> last = squeeze(slice(out, 0, 2, 3), 0);        // (m, 8)
    return cross_entropy(head(gelu(norm(last))), targets, CrossEntropyOptions().reduction(Reduction::sum));
  }
};

// A parameter whose gradient is deliberately wrong (twice the truth) through a custom op.
struct WrongGradient : nn::Module<double> {
  Var<double> w;
  WrongGradient() { w = register_parameter("w", Array<double>{0.3, -0.2}); }
};

void model_gradcheck() {
  nn::manual_seed(9);
  SmallModel model;
  Var<double> x = constant<double>(fill_values({3, 2, 3}, 17));
  const std::vector<int> targets = {4, 1};
  expect_module_gradcheck(model, [&] { return model.loss(x, targets); }, "a small model (Recurrent<MyCell>, LayerNorm, Linear)");
  const std::set<std::string> names = names_of(model);
  expect(names.count("rnn.layers.1.reverse.U") && names.count("norm.weight") && names.count("head.bias"),
         "a small model's parameter names: got " + join(names));

  WrongGradient bad;
  GradcheckResult r = gradcheck(bad, [&] {
    return sum(xgrad::custom_op<double>("cube", {bad.w},
        [](const auto& in) { return xgrad::Array<double>(in[0] * in[0] * in[0]); },
        [](const auto& grad, const auto& in, const auto& out) {
          (void)out;
          return std::vector<xgrad::Array<double>>{xgrad::Array<double>(grad * 6.0 * in[0] * in[0])};
        }));
  });
  expect(!r.ok, "gradcheck(module, loss_fn) fails on a wrong gradient: " + r.report());
  expect(r.name == "w", "gradcheck(module, loss_fn) names the parameter 'w' of the worst element, got '" + r.name + "'");
  expect(r.report().find("w") != std::string::npos, "the report names the parameter: " + r.report());
  clear_tape();
}

void run(const char* name, void (*fn)()) {
  section = name;
  try {
    fn();
  } catch (const std::exception& e) {
    expect(false, std::string("threw ") + e.what());
  }
  clear_tape();
}

}  // namespace

int main() {
  run("custom ops", custom_ops);
  run("layer_norm, dropout", norm_and_dropout_ops);
  run("layout ops", layout_ops);
  run("reductions", reduction_ops);
  run("masks", mask_ops);
  run("elementwise ops", elementwise_ops);
  run("cross_entropy options", cross_entropy_options);
  run("Var with xt::xarray", var_with_xarray);
  run("nn::LayerNorm", layer_norm_module);
  run("nn::Dropout", dropout_module);
  run("nn::Sequential", sequential_module);
  run("nn::Attention", attention_module);
  run("user cell in nn::Recurrent", user_cell);
  run("nn::LayerNormLSTMCell", layer_norm_lstm_cell);
  run("recurrent dropout", recurrent_dropout);
  run("gradcheck of a model", model_gradcheck);
  if (failures) {
    std::fprintf(stderr, "contract: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("contract: all %d checks passed\n", checks);
  return 0;
}
