// nn::Recurrent<Cell>: any cell run over time-major input x (T, m, n_x), optionally several
// layers deep and in both directions, from a zero or given initial state, on batches of
// sequences of different lengths, with dropout between layers and recurrent dropout. Every step
// is ordinary autograd ops, so the tape holds the unrolled graph and one backward() is
// backpropagation through time. RNN, LSTM and GRU (sequence.hpp) are Recurrent of their cells.
//
//   nn::Recurrent<MyCell<double>> r(n_x, n_a, nn::RecurrentOptions().layers(2).bidirectional());
//   auto res = r(x);                    // or r(x, initial), r(x, initial, lengths)
//   res.output  (T, m, directions·n_a): the last layer's hidden state at every step, the forward
//               direction in columns [0, n_a), the reverse one in [n_a, 2·n_a);
//   res.state   one State per layer and direction, index layer·directions + direction
//               (PyTorch's h_n order): the state after the last real step of each example.
// Parameters: layers.<k>.<cell parameter>, the reverse direction layers.<k>.reverse.<...>.
//
// The cell contract. A cell is any Module<T> with
//   using State = ...;                               // Var<T>, or a struct of Vars (below)
//   MyCell(std::size_t n_in, std::size_t n_a, extra...);   // one per layer and direction;
//                                                    // extra: Recurrent's trailing arguments
//   State zero_state(std::size_t m) const;           // the initial state of m examples
//   State step(const Var<T>& x, const State& s) const;     // x (m, n_in) -> the next state
// and optionally
//   Var<T> input_projection(const Var<T>& x) const;  // (N, n_in) -> (N, G), for all T·m rows
//                                                    // in one product; step then gets the
//                                                    // projected rows (m, G) instead of x_t
//   Var<T> input_projection(const std::vector<int>& ids) const;  // the same for one-hot rows
//                                                    // given by their ids, for forward_onehot
// Layer 0 reads n_in = n_x inputs, layer k > 0 reads directions·n_a. Without input_projection,
// step gets x_t itself; without input_projection(ids), forward_onehot builds the one-hot array.
//
// Struct states. The machinery needs a state's hidden output (what goes into `output` and is
// the next layer's input), per-row blending of old and new states (lengths) and the hidden part
// alone (recurrent dropout). A struct state lists its Vars for it in a specialisation of
// nn::StateTraits, hidden output first; every field must be a (m, ·) matrix:
//
//   struct PeepholeState { xgrad::Var<double> a, c; };
//   template <> struct xgrad::nn::StateTraits<PeepholeState> {
//     template <class S> static auto fields(S& s) { return std::tie(s.a, s.c); }  // a: hidden
//     static constexpr const char* names[] = {"hidden state a", "memory cell c"};  // optional
//   };
//
// (names, if given, name the fields in error messages; else "state field <i>".) Var<T> and
// LSTMState<T> come specialised. hidden_of(s), with_hidden(s, a) and map_state(f, s, ...) (f
// applied field by field) work on any such state, e.g. map_state([](auto& v) { return
// v.detach(); }, s) to carry a state across truncated-BPTT segments.
//
// Variable lengths: lengths[i] in [1, T] is example i's length. Its outputs at t ≥ lengths[i]
// are zero, its state stops changing there (the reverse direction starts at lengths[i] − 1), and
// padding gets no gradient: at a step where some sequences have ended, every field of the new
// state is blended with the old one by a (m, 1) mask, mask∘new + (1 − mask)∘old.
//
// Recurrent dropout (Gal & Ghahramani 2016), RecurrentOptions().recurrent_dropout(p): in
// training mode, at the start of each forward, one mask (m, n_a) per layer and direction is
// drawn from generator() (entries 0 with probability p, else 1/(1 − p)) and multiplies the hidden
// part of the state fed into every step, the first included; the same units of a sequence are
// dropped at every step, different ones for each sequence. The state that is output, blended and
// returned is the cell's own, unmasked. Off in eval mode.
#pragma once

#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "../autograd/grad_report.hpp"
#include "../autograd/ops.hpp"
#include "../autograd/ops_detail.hpp"
#include "../autograd/options.hpp"
#include "checks.hpp"
#include "lstm_cell.hpp"
#include "module.hpp"

namespace xgrad::nn {

// Options of the sequence layers, with chained setters: RecurrentOptions().layers(2).dropout(0.1).
// Derived is RecurrentOptions, RNNOptions, LSTMOptions or GRUOptions (autograd/options.hpp).
template <class Derived>
struct SequenceOptions {
  // Stacked layers; layer k > 0 reads layer k−1's output.
  XGRAD_OPTION(Derived, std::size_t, layers, 1)
  // A second cell per layer runs from the end of each sequence to its start.
  XGRAD_FLAG(Derived, bidirectional)
  // Probability of zeroing an element of a layer's output before the next layer (not after the
  // last), in training mode only; survivors are scaled by 1/(1 − p). Masks come from generator().
  XGRAD_OPTION(Derived, double, dropout, 0.0)
  // Probability of zeroing a hidden unit fed back into the step, one mask per sequence, layer
  // and direction, tied across time steps; training mode only, survivors scaled by 1/(1 − p).
  XGRAD_OPTION(Derived, double, recurrent_dropout, 0.0)
};

struct RecurrentOptions : SequenceOptions<RecurrentOptions> {};

// How the machinery sees a state: fields(s) ties its Vars, the hidden output first (see the
// header comment). Specialise it for a struct state of your own.
template <class State>
struct StateTraits {
  static_assert(sizeof(State) == 0,
                "a cell's State is Var<T> or a struct of Vars with a specialisation of nn::StateTraits<State> "
                "giving fields(s) (layers/recurrent.hpp)");
};

template <class T>
struct StateTraits<Var<T>> {
  template <class S>
  static auto fields(S& s) { return std::tie(s); }
  static constexpr const char* names[] = {"hidden state"};
};

template <class T>
struct StateTraits<LSTMState<T>> {
  template <class S>
  static auto fields(S& s) { return std::tie(s.a, s.c); }
  static constexpr const char* names[] = {"hidden state a", "memory cell c"};
};

// The number of Vars in a state.
template <class State>
constexpr std::size_t state_size =
    std::tuple_size_v<decltype(StateTraits<State>::fields(std::declval<State&>()))>;

// The hidden output of a state (m, n_a).
template <class State>
const auto& hidden_of(const State& s) {
  return std::get<0>(StateTraits<State>::fields(s));
}

// s with its hidden output replaced by a.
template <class State, class V>
State with_hidden(State s, V a) {
  std::get<0>(StateTraits<State>::fields(s)) = std::move(a);
  return s;
}

template <class T, class State>
struct RecurrentResult {
  Var<T> output;             // (T, m, directions·n_a)
  std::vector<State> state;  // layers·directions entries
};

namespace detail {

template <class T>
T scalar_of_module(const Module<T>*);
// The T of a cell deriving from Module<T>.
template <class Cell>
using cell_scalar_t = decltype(scalar_of_module(std::declval<const Cell*>()));

template <class Cell, class = void>
struct has_input_projection : std::false_type {};
template <class Cell>
struct has_input_projection<Cell, std::void_t<decltype(std::declval<const Cell&>().input_projection(
                                      std::declval<const Var<cell_scalar_t<Cell>>&>()))>> : std::true_type {};

template <class Cell, class = void>
struct has_onehot_projection : std::false_type {};
template <class Cell>
struct has_onehot_projection<Cell, std::void_t<decltype(std::declval<const Cell&>().input_projection(
                                       std::declval<const std::vector<int>&>()))>> : std::true_type {};

template <class Traits, class = void>
struct has_state_names : std::false_type {};
template <class Traits>
struct has_state_names<Traits, std::void_t<decltype(Traits::names[0])>> : std::true_type {};

template <class State>
std::string state_field_name(std::size_t i) {
  if constexpr (has_state_names<StateTraits<State>>::value)
    return StateTraits<State>::names[i];
  else
    return "state field " + std::to_string(i);
}

// Calls f(i) for i in [0, N), i as a std::integral_constant.
template <class F, std::size_t... I>
void for_each_index(F&& f, std::index_sequence<I...>) {
  (f(std::integral_constant<std::size_t, I>{}), ...);
}

// Calls f(i, field i of a, field i of b) for every field.
template <class State, class F>
void for_each_field(const State& a, const State& b, F&& f) {
  for_each_index(
      [&](auto i) {
        constexpr std::size_t k = decltype(i)::value;
        f(k, std::get<k>(StateTraits<State>::fields(a)), std::get<k>(StateTraits<State>::fields(b)));
      },
      std::make_index_sequence<state_size<State>>{});
}

// An inverted-dropout mask of `shape`: 0 with probability p, else 1/(1 − p), from generator().
template <class T>
Array<T> dropout_mask(const Shape& shape, double p) {
  Array<T> mask = Array<T>::from_shape(shape);
  std::bernoulli_distribution keep(1.0 - p);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (T& v : mask) v = keep(generator()) ? scale : T(0);
  return mask;
}

// The name a layer's errors carry (RNN, LSTM, GRU pass theirs).
struct LayerName {
  const char* name;
};

}  // namespace detail

// The state whose field i is f(field i of s, field i of more...).
template <class F, class State, class... More>
State map_state(F&& f, const State& s, const More&... more) {
  State out = s;
  detail::for_each_index(
      [&](auto i) {
        constexpr std::size_t k = decltype(i)::value;
        std::get<k>(StateTraits<State>::fields(out)) =
            f(std::get<k>(StateTraits<State>::fields(s)), std::get<k>(StateTraits<State>::fields(more))...);
      },
      std::make_index_sequence<state_size<State>>{});
  return out;
}

template <class Cell>
class Recurrent : public Module<detail::cell_scalar_t<Cell>> {
 public:
  // The cell's T (not named T, which would hide a T of a class template deriving from this).
  using Scalar = detail::cell_scalar_t<Cell>;
  using value_type = Scalar;
  using State = std::decay_t<decltype(std::declval<const Cell&>().zero_state(std::size_t{1}))>;
  using Result = RecurrentResult<Scalar, State>;

  // cell_args follow (n_in, n_a) into every cell's constructor.
  template <class... CellArgs>
  Recurrent(std::size_t n_x, std::size_t n_a, const RecurrentOptions& options = RecurrentOptions(),
            const CellArgs&... cell_args)
      : Recurrent(detail::LayerName{"Recurrent"}, n_x, n_a, options, cell_args...) {}

  // x (T, m, n_x); initial: empty (zeros) or layers·directions states; lengths: empty (all T) or m.
  Result forward(const Var<Scalar>& x) const { return forward(x, {}, {}); }
  Result forward(const Var<Scalar>& x, const std::vector<State>& initial_state) const {
    return forward(x, initial_state, {});
  }
  Result forward(const Var<Scalar>& x, const std::vector<State>& initial_state, const std::vector<int>& lengths) const;
  // One-hot input without the one-hot array: ids (T·m) time-major, ids[t·m + i] in [0, n_x) is
  // example i's class at step t. Same result as forward(onehot(ids)); layer 0 gathers its input
  // projection by id when the cell has input_projection(ids).
  Result forward_onehot(const std::vector<int>& ids, std::size_t steps, const std::vector<State>& initial_state = {},
                        const std::vector<int>& lengths = {}) const;
  Result operator()(const Var<Scalar>& x) const { return forward(x); }
  Result operator()(const Var<Scalar>& x, const std::vector<State>& initial_state) const {
    return forward(x, initial_state);
  }
  Result operator()(const Var<Scalar>& x, const std::vector<State>& initial_state,
                    const std::vector<int>& lengths) const {
    return forward(x, initial_state, lengths);
  }

  std::size_t input_size() const { return n_x_; }
  std::size_t hidden_size() const { return n_a_; }
  std::size_t num_layers() const { return layers_; }
  std::size_t directions() const { return directions_; }
  double dropout() const { return dropout_; }
  double recurrent_dropout() const { return recurrent_dropout_; }
  // The cell of layer k, forward or reverse direction.
  const Cell& cell(std::size_t k, bool reverse = false) const;

 protected:
  template <class... CellArgs>
  Recurrent(detail::LayerName name, std::size_t n_x, std::size_t n_a, const RecurrentOptions& options,
            const CellArgs&... cell_args);

 private:
  // shape: the input's (T, m, n_x).
  void check(const Shape& shape, const std::vector<State>& initial, const std::vector<int>& lengths) const;
  Result run_layers(const Var<Scalar>* x, const std::vector<int>* ids, std::size_t m, const std::vector<State>& initial,
                    const std::vector<int>& lengths) const;
  // One layer in one direction: input (T, m, n_in), or one-hot ids (T·m) when ids is given,
  // -> outputs (T, m, n_a) and the final state; drop: the recurrent-dropout mask (m, n_a) or null;
  // report: told each step's new state (as layer `layer`) when a GradReport watches this layer.
  Var<Scalar> run_direction(const Cell& cell, const Var<Scalar>* input, const std::vector<int>* ids,
                            std::size_t steps, std::size_t m, State& state, bool reverse,
                            const std::vector<int>& lengths, const Var<Scalar>* drop,
                            xgrad::detail::GradReportForward& report, std::size_t layer) const;

  const char* name_;
  std::size_t n_x_, n_a_, layers_, directions_;
  double dropout_, recurrent_dropout_;
  std::vector<std::unique_ptr<Cell>> cells_;  // index k·directions + direction
};

// ---- definitions (out of the class, so that `extern template` skips them for built-in cells)

template <class Cell>
template <class... CellArgs>
Recurrent<Cell>::Recurrent(detail::LayerName name, std::size_t n_x, std::size_t n_a, const RecurrentOptions& o,
                           const CellArgs&... cell_args)
    : name_(name.name),
      n_x_(n_x),
      n_a_(n_a),
      layers_(o.layers()),
      directions_(o.bidirectional() ? 2 : 1),
      dropout_(o.dropout()),
      recurrent_dropout_(o.recurrent_dropout()) {
  const std::string who(name_);
  if (n_x == 0 || n_a == 0)
    throw ValueError(who + ": sizes must be positive, got n_x " + std::to_string(n_x) + ", n_a " + std::to_string(n_a));
  if (layers_ == 0) throw ValueError(who + ": needs at least one layer, got layers = 0");
  if (!(dropout_ >= 0.0 && dropout_ < 1.0))
    throw ValueError(who + ": dropout must be in [0, 1), got " + xgrad::detail::num_str(dropout_));
  if (!(recurrent_dropout_ >= 0.0 && recurrent_dropout_ < 1.0))
    throw ValueError(who + ": recurrent_dropout must be in [0, 1), got " +
                     xgrad::detail::num_str(recurrent_dropout_));
  for (std::size_t k = 0; k < layers_; ++k) {
    const std::size_t n_in = k == 0 ? n_x : directions_ * n_a;
    for (std::size_t d = 0; d < directions_; ++d) {
      cells_.push_back(std::make_unique<Cell>(n_in, n_a, cell_args...));
      this->register_module("layers." + std::to_string(k) + (d == 1 ? ".reverse" : ""), *cells_.back());
    }
  }
}

template <class Cell>
const Cell& Recurrent<Cell>::cell(std::size_t k, bool reverse) const {
  if (k >= layers_ || (reverse && directions_ == 1))
    throw IndexError(std::string(name_) + ": no cell for layer " + std::to_string(k) + (reverse ? " (reverse)" : "") +
                     " in " + std::to_string(layers_) + " layer(s), " + std::to_string(directions_) +
                     " direction(s)");
  return *cells_[k * directions_ + (reverse ? 1 : 0)];
}

template <class Cell>
void Recurrent<Cell>::check(const Shape& s, const std::vector<State>& initial, const std::vector<int>& lengths) const {
  const std::string name(name_);
  if (s.size() != 3) throw ShapeError(name + ": input must have shape (T, m, n_x), got " + shape_str(s));
  if (s[2] != n_x_)
    throw ShapeError(name + ": input of shape " + shape_str(s) + " does not fit n_x = " + std::to_string(n_x_) +
                     ": expected (T, m, " + std::to_string(n_x_) + ")");
  if (s[0] == 0) throw ValueError(name + ": empty sequence: input of shape " + shape_str(s) + " has T = 0");
  if (s[1] == 0) throw ValueError(name + ": empty batch: input of shape " + shape_str(s) + " has m = 0");
  const std::size_t steps = s[0], m = s[1];
  if (!initial.empty()) {
    if (initial.size() != layers_ * directions_)
      throw ShapeError(name + ": initial state has " + std::to_string(initial.size()) +
                       " entries, expected layers·directions = " + std::to_string(layers_ * directions_) +
                       " for input " + shape_str(s));
    for (std::size_t i = 0; i < initial.size(); ++i) {
      // Each field must have the shape of the cell's zero state's (constants: nothing recorded).
      const State zero = cells_[i]->zero_state(m);
      detail::for_each_field(initial[i], zero, [&](std::size_t f, const Var<Scalar>& given,
                                                   const Var<Scalar>& expected) {
        if (!given.defined() || given.shape() != expected.shape())
          throw ShapeError(name + ": initial state of layer " + std::to_string(i / directions_) +
                           (i % directions_ == 1 ? " (reverse)" : "") + " " + detail::state_field_name<State>(f) +
                           " has shape " + (given.defined() ? shape_str(given.shape()) : std::string("(undefined)")) +
                           ", expected " + shape_str(expected.shape()));
      });
    }
  }
  if (!lengths.empty()) {
    if (lengths.size() != m)
      throw ShapeError(name + ": " + std::to_string(lengths.size()) + " lengths for a batch of m = " +
                       std::to_string(m) + " (input shape " + shape_str(s) + ")");
    for (std::size_t i = 0; i < m; ++i)
      if (lengths[i] < 1 || static_cast<std::size_t>(lengths[i]) > steps)
        throw IndexError(name + ": length " + std::to_string(lengths[i]) + " of example " + std::to_string(i) +
                         " is outside [1, T = " + std::to_string(steps) + "] (input shape " + shape_str(s) + ")");
  }
}

template <class Cell>
typename Recurrent<Cell>::Result Recurrent<Cell>::forward(const Var<Scalar>& x, const std::vector<State>& initial,
                                                          const std::vector<int>& lengths) const {
  check(Shape(x.shape().begin(), x.shape().end()), initial, lengths);
  return run_layers(&x, nullptr, x.shape()[1], initial, lengths);
}

template <class Cell>
typename Recurrent<Cell>::Result Recurrent<Cell>::forward_onehot(const std::vector<int>& ids, std::size_t steps,
                                                                 const std::vector<State>& initial,
                                                                 const std::vector<int>& lengths) const {
  const std::string name(name_);
  if (steps == 0 || ids.empty() || ids.size() % steps != 0)
    throw ShapeError(name + ": " + std::to_string(ids.size()) + " one-hot ids do not split into T = " +
                     std::to_string(steps) + " steps of a non-empty batch");
  for (std::size_t j = 0; j < ids.size(); ++j)
    if (ids[j] < 0 || static_cast<std::size_t>(ids[j]) >= n_x_)
      throw IndexError(name + ": one-hot id " + std::to_string(ids[j]) + " at position " + std::to_string(j) +
                       " is outside [0, n_x = " + std::to_string(n_x_) + ")");
  const std::size_t m = ids.size() / steps;
  check(Shape{steps, m, n_x_}, initial, lengths);
  if constexpr (detail::has_onehot_projection<Cell>::value) {
    return run_layers(nullptr, &ids, m, initial, lengths);
  } else {
    Array<Scalar> x = xt::zeros<Scalar>({steps, m, n_x_});  // (T, m, n_x)
    for (std::size_t j = 0; j < ids.size(); ++j) x.data()[j * n_x_ + static_cast<std::size_t>(ids[j])] = Scalar(1);
    const Var<Scalar> xv = constant<Scalar>(std::move(x));
    return run_layers(&xv, nullptr, m, initial, lengths);
  }
}

template <class Cell>
typename Recurrent<Cell>::Result Recurrent<Cell>::run_layers(const Var<Scalar>* x, const std::vector<int>* ids,
                                                             std::size_t m, const std::vector<State>& initial,
                                                             const std::vector<int>& lengths) const {
  const std::size_t steps = x ? x->shape()[0] : ids->size() / m;
  // Recurrent dropout: every mask of this forward drawn first, layer by layer and direction.
  std::vector<Var<Scalar>> drops;
  if (this->is_training() && recurrent_dropout_ > 0)
    for (std::size_t i = 0; i < layers_ * directions_; ++i)
      drops.push_back(constant<Scalar>(detail::dropout_mask<Scalar>({m, n_a_}, recurrent_dropout_)));
  std::vector<State> final_state;
  Var<Scalar> input;  // (T, m, n_in); layer 0 reads *x or ids
  xgrad::detail::GradReportForward report(this, layers_, directions_, steps, state_size<State>,
                                          &detail::state_field_name<State>);
  for (std::size_t k = 0; k < layers_; ++k) {
    std::vector<Var<Scalar>> outputs;
    const Var<Scalar>* in = k == 0 ? x : &input;
    const std::vector<int>* in_ids = k == 0 ? ids : nullptr;
    for (std::size_t d = 0; d < directions_; ++d) {
      const std::size_t i = k * directions_ + d;
      State state = initial.empty() ? cells_[i]->zero_state(m) : initial[i];
      // to_dot draws this direction's ops as a cluster, each step's as one inside it.
      const NameScope scope("layer " + std::to_string(k) + (d == 1 ? " reverse" : ""));
      outputs.push_back(run_direction(*cells_[i], in, in_ids, steps, m, state, d == 1, lengths,
                                      drops.empty() ? nullptr : &drops[i], report, k));
      final_state.push_back(state);
    }
    Var<Scalar> y = outputs.size() == 1 ? outputs[0] : concat(outputs, 2);  // (T, m, directions·n_a)
    if (this->is_training() && dropout_ > 0 && k + 1 < layers_) {
      Shape shape(y.shape().begin(), y.shape().end());
      y = y * constant(detail::dropout_mask<Scalar>(shape, dropout_));
    }
    input = y;
  }
  return {input, std::move(final_state)};
}

// input (T, m, n_in) -> outputs (T, m, n_a); `state` goes in as the initial state and comes out
// as the final one.
template <class Cell>
Var<typename Recurrent<Cell>::Scalar> Recurrent<Cell>::run_direction(const Cell& cell, const Var<Scalar>* input,
                                                                     const std::vector<int>* ids, std::size_t steps,
                                                                     std::size_t m, State& state, bool reverse,
                                                                     const std::vector<int>& lengths,
                                                                     const Var<Scalar>* drop,
                                                                     xgrad::detail::GradReportForward& report,
                                                                     std::size_t layer) const {
  // Dense input: all T input projections in one GEMM, (T·m, n_in) -> (T, m, G), each step
  // selecting its block (a cell without input_projection gets its x_t). One-hot ids: each step
  // gathers its own block (no product, no copy).
  Var<Scalar> px;
  if (input != nullptr) {
    if constexpr (detail::has_input_projection<Cell>::value) {
      const std::size_t n_in = input->shape()[2];
      px = cell.input_projection(reshape(*input, {steps * m, n_in}));
      const std::size_t g = px.shape()[1];
      px = reshape(px, {steps, m, g});
    } else {
      px = *input;
    }
  }
  std::vector<int> step_ids;
  std::vector<Var<Scalar>> outputs(steps);
  bool checked = false;  // the cell's hidden output checked once, at its first step
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t t = reverse ? steps - 1 - s : s;
    const NameScope step_scope("t=" + std::to_string(t + 1));  // steps named from 1, as in the notation a⟨1⟩
    std::size_t active = m;
    if (!lengths.empty()) {
      active = 0;
      for (int len : lengths) active += t < static_cast<std::size_t>(len) ? 1 : 0;
    }
    if (active == 0) {  // every sequence has ended: zero output, state unchanged
      outputs[t] = constant<Scalar>(xt::zeros<Scalar>({m, n_a_}));
      continue;
    }
    Var<Scalar> px_t;
    if (input != nullptr) {
      px_t = select(px, static_cast<long>(t));
    } else if constexpr (detail::has_onehot_projection<Cell>::value) {
      step_ids.assign(ids->begin() + static_cast<long>(t * m), ids->begin() + static_cast<long>((t + 1) * m));
      px_t = cell.input_projection(step_ids);
    }
    State next = drop ? cell.step(px_t, with_hidden(state, hidden_of(state) * *drop)) : cell.step(px_t, state);
    if (!checked) detail::check_matrix(name_, "the cell's hidden output", hidden_of(next), m, n_a_);
    checked = true;
    if (report.active())  // the cell's own new state, before blending: its gradient is ∂L/∂s_t
      detail::for_each_index(
          [&](auto f) {
            constexpr std::size_t k = decltype(f)::value;
            report.step(layer, reverse ? 1 : 0, t, k, std::get<k>(StateTraits<State>::fields(next)));
          },
          std::make_index_sequence<state_size<State>>{});
    if (active == m) {
      outputs[t] = hidden_of(next);
      state = std::move(next);
      continue;
    }
    // mask (m, 1): 1 for examples still running at step t, 0 for those whose sequence has ended.
    Array<Scalar> mask_v = Array<Scalar>::from_shape({m, 1});
    for (std::size_t i = 0; i < m; ++i) mask_v(i, 0) = t < static_cast<std::size_t>(lengths[i]) ? Scalar(1) : Scalar(0);
    Var<Scalar> keep = constant<Scalar>(Array<Scalar>(Scalar(1) - mask_v));
    Var<Scalar> mask = constant<Scalar>(std::move(mask_v));
    outputs[t] = hidden_of(next) * mask;
    // mask∘new + keep∘old, keep = 1 − mask: examples whose sequence has ended keep their state.
    state = map_state([&](const Var<Scalar>& n, const Var<Scalar>& o) { return mask * n + keep * o; }, next, state);
  }
  return stack(outputs);
}

}  // namespace xgrad::nn
