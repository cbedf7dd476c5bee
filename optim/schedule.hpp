// Learning-rate schedules: the learning rate as a function of the number of steps taken,
// t = 0, 1, 2, ... A schedule holds no state, so a resumed run (whose optimizer's step count
// comes from the checkpoint) gets the same rates as an uninterrupted one.
//
//   Scheduler<float> sched(opt, warmup(cosine_lr(3e-3, 10000), 500));
//   for (...) { sched.step(); ...backward...; opt.step(); }   // sched.step() sets opt's lr
#pragma once

#include <cstdint>
#include <functional>

#include "optimizer.hpp"

namespace xgrad::optim {

// lr(t) for t = steps taken so far (0 before the first step).
using Schedule = std::function<double(std::int64_t t)>;

// lr(t) = lr.
Schedule constant_lr(double lr);
// lr(t) = base · gamma^⌊t / step_size⌋ (PyTorch StepLR).
Schedule step_lr(double base, std::int64_t step_size, double gamma = 0.1);
// lr(t) = base · gamma^t (PyTorch ExponentialLR).
Schedule exponential_lr(double base, double gamma);
// lr(t) = eta_min + (base − eta_min)·(1 + cos(π·t/t_max))/2 for t ≤ t_max, then eta_min
// (PyTorch CosineAnnealingLR's closed form, held at its minimum after t_max).
Schedule cosine_lr(double base, std::int64_t t_max, double eta_min = 0.0);
// Linear warm-up in front of `after`: for t < steps, lr(t) = after(0)·(f + (1 − f)·t/steps)
// with f = start_factor; from then on lr(t) = after(t − steps), so `after` starts at its own 0.
Schedule warmup(Schedule after, std::int64_t steps, double start_factor = 0.0);

// Applies a schedule to an optimizer: step() sets opt.lr() to schedule(opt.step_count()).
// Call it before each opt.step().
template <class T>
class Scheduler {
 public:
  Scheduler(Optimizer<T>& opt, Schedule schedule);
  // Sets and returns the rate for the coming step.
  double step();
  double lr_at(std::int64_t t) const { return schedule_(t); }

 private:
  Optimizer<T>& opt_;
  Schedule schedule_;
};

}  // namespace xgrad::optim
