// Optimizer<T>: the parameter list, the learning rate, the step count and the per-parameter
// state buffers every optimizer keeps; step() and zero_grad(). The update rules live in the
// subclasses (sgd.hpp, adagrad.hpp, rmsprop.hpp, adam.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../autograd/options.hpp"  // XGRAD_OPTION, XGRAD_FLAG: the optimizers' options structs
#include "../autograd/var.hpp"

namespace xgrad::optim {

// Everything an optimizer needs to continue exactly where it stopped: its kind, step count,
// learning rate and its buffers, named "<buffer>.<parameter index>" ("exp_avg.3").
template <class T>
struct OptimizerState {
  std::string kind;
  std::int64_t step = 0;
  double lr = 0;
  std::vector<std::pair<std::string, Array<T>>> arrays;
};

template <class T>
class Optimizer {
 public:
  // Every element of `params` must be a parameter (xgrad::param or a Module's); lr >= 0.
  Optimizer(std::vector<Var<T>> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter from its accumulated gradient.
  void step();
  // Sets every parameter's gradient to zero.
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr);
  // Updates taken so far.
  std::int64_t step_count() const { return step_; }
  const std::vector<Var<T>>& params() const { return params_; }
  // "SGD", "Adam", ...: checked when state is loaded.
  virtual const char* kind() const = 0;

  OptimizerState<T> state() const;
  // Empty if `s` fits this optimizer (kind, buffer names, shapes), else what does not fit.
  std::string check_state(const OptimizerState<T>& s) const;
  // Replaces step count, lr and buffers; throws ValueError (and changes nothing) if
  // check_state finds a mismatch.
  void load_state(const OptimizerState<T>& s);

 protected:
  // The update, with step_count() already counting this step (1 on the first call).
  virtual void update() = 0;
  // Adds a buffer of zeros shaped like each parameter; returns its index for buffer().
  std::size_t add_buffer(const std::string& name);
  // Buffer `k` of parameter `i`.
  Array<T>& buffer(std::size_t k, std::size_t i) { return buffers_[k][i]; }

 private:
  std::vector<Var<T>> params_;
  double lr_;
  std::int64_t step_ = 0;
  std::vector<std::string> buffer_names_;
  std::vector<std::vector<Array<T>>> buffers_;
};

// Throws ValueError "<what>: <name> must be <rule>, got <value>" unless ok.
void check_option(bool ok, const char* what, const char* name, const char* rule, double value);

}  // namespace xgrad::optim
