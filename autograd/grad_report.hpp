// GradReport: how large the gradient of the loss is at every time step of a sequence layer,
// the quantity behind vanishing and exploding gradients in backpropagation through time.
//
//   nn::LSTM<double> lstm(n_x, n_a, nn::LSTMOptions().layers(2));
//   {
//     xgrad::GradReport report(lstm);     // watches lstm on this thread while it lives
//     auto loss = loss_of(lstm(x).output);
//     loss.backward();
//     report.print(std::cout);            // one column per layer, direction and state field
//     report.write_svg("grads.svg");      // log-scale norm against t, one line per series
//     report.norms()[0].norms[t];         // ‖∂L/∂a_{t+1}‖ of layer 0, forward direction
//   }
//
// For every step t of every layer and direction, and every field of the state (nn::StateTraits:
// a alone for RNN and GRU, a and c for LSTM), the norm of ∂L/∂s_t, the gradient of the loss with
// respect to the state the cell produced at t (before any blending for finished sequences),
// reached by every path: this step's output and all later steps. The norm is Frobenius over the
// whole (m, n_a) matrix, i.e. over the batch and the units together, summed in double.
//
// Nothing is retained: the report notes which tape nodes hold the states (nn::Recurrent tells
// it, step by step) and reads each one's gradient at the moment the backward sweep has finished
// it, before the sweep frees the buffer. The tape's memory is the same with or without a report;
// with none alive, recording costs nothing (the layer reads one thread-local pointer per forward,
// the sweep one per backward).
//
// What is recorded: the forwards of the watched layer while the report lives, with gradients
// recorded (a forward under NoGradGuard is not). Forwards before a backward add their steps one
// after another (segments of one long sequence); the first forward after a backward, or after
// clear_tape(), starts a new record. Each backward over the recorded nodes overwrites the
// norms. A step at which every sequence of the batch has ended (lengths) has no state of its own
// and reports 0, as does a field no gradient reached.
//
// Like Profile, a report belongs to the thread that made it and sees only that thread's work.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "var.hpp"

namespace xgrad {

// One line of the report: a state field of one layer and direction over time.
struct GradSeries {
  std::size_t layer = 0;
  bool reverse = false;       // the reverse direction of a bidirectional layer
  std::string field;          // the state field's name, e.g. "hidden state a", "memory cell c"
  std::vector<double> norms;  // norms[t]: ‖∂L/∂s_{t+1}‖_F over the (m, n_a) state (steps from 1)
  // "layer 0 hidden state a", "layer 1 reverse memory cell c".
  std::string label() const;
};

namespace detail {
class GradReportState;
}

class GradReport {
 public:
  // Watches `layer` (an nn::Recurrent: RNN, LSTM, GRU or any cell) on this thread. The layer is
  // known by its address, so the report must not outlive it.
  template <class Layer, class = decltype(std::declval<const Layer&>().directions())>
  explicit GradReport(const Layer& layer) : GradReport(static_cast<const void*>(&layer), 0) {}
  ~GradReport();
  GradReport(const GradReport&) = delete;
  GradReport& operator=(const GradReport&) = delete;

  // Every series, by layer, then direction (forward first), then state field. Error if the
  // layer never ran forward under the report or no backward has reached its record yet;
  // StaleHandleError if clear_tape() came between the forward and any backward.
  const std::vector<GradSeries>& norms() const;
  // The steps recorded (the length of every series' norms).
  std::size_t steps() const;
  // The table: t from 1, then one column per series; the norms with 4 significant digits.
  void print(std::ostream& os) const;
  std::string table() const;
  // "series,t,norm" then one row per series and step (norms to 17 digits: they read back
  // exactly). Error if the file cannot be written.
  void write_csv(const std::string& path) const;
  // The norms against t on a log axis, one line per series (autograd/plot.hpp). Error if the
  // file cannot be written.
  void write_svg(const std::string& path, const std::string& title = "Gradient norm over time") const;

 private:
  GradReport(const void* layer, int);
  std::unique_ptr<detail::GradReportState> state_;
};

namespace detail {

// What nn::Recurrent tells the reports watching it during one forward. Made at the start of the
// forward: with no report alive on the thread, one thread-local read and nothing else.
class GradReportForward {
 public:
  // steps: T of this forward; fields: the state's Vars, field_name(i) naming field i (read only
  // when a report watches the layer).
  GradReportForward(const void* layer, std::size_t layers, std::size_t directions, std::size_t steps,
                    std::size_t fields, std::string (*field_name)(std::size_t));
  bool active() const { return !reports_.empty(); }
  // Field `field` of the state that layer `layer`, direction `direction` produced at step t.
  void step(std::size_t layer, std::size_t direction, std::size_t t, std::size_t field, const Var<float>& v);
  void step(std::size_t layer, std::size_t direction, std::size_t t, std::size_t field, const Var<double>& v);

 private:
  template <class T>
  void record(std::size_t layer, std::size_t direction, std::size_t t, std::size_t field, const Var<T>& v);
  struct Entry {
    GradReportState* report;
    std::size_t offset = 0;  // this forward's step 0 is the report's step `offset`
    bool opened = false;     // the record opened, at the first step (which tells T)
  };
  std::vector<Entry> reports_;
  std::size_t layers_ = 0, directions_ = 1, steps_ = 0, fields_ = 1;
  std::string (*field_name_)(std::size_t) = nullptr;
};

}  // namespace detail

}  // namespace xgrad
