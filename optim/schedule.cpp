#include "schedule.hpp"

#include <cmath>

namespace xgrad::optim {

namespace {
void check_step(std::int64_t t) {
  if (t < 0) throw ValueError("schedule: step " + std::to_string(t) + " is negative");
}
}  // namespace

Schedule constant_lr(double lr) {
  check_option(lr >= 0, "constant_lr", "lr", ">= 0", lr);
  return [lr](std::int64_t t) {
    check_step(t);
    return lr;
  };
}

Schedule step_lr(double base, std::int64_t step_size, double gamma) {
  check_option(base >= 0, "step_lr", "base", ">= 0", base);
  check_option(step_size > 0, "step_lr", "step_size", "> 0", double(step_size));
  check_option(gamma >= 0, "step_lr", "gamma", ">= 0", gamma);
  return [=](std::int64_t t) {
    check_step(t);
    return base * std::pow(gamma, double(t / step_size));
  };
}

Schedule exponential_lr(double base, double gamma) {
  check_option(base >= 0, "exponential_lr", "base", ">= 0", base);
  check_option(gamma >= 0, "exponential_lr", "gamma", ">= 0", gamma);
  return [=](std::int64_t t) {
    check_step(t);
    return base * std::pow(gamma, double(t));
  };
}

Schedule cosine_lr(double base, std::int64_t t_max, double eta_min) {
  check_option(base >= 0, "cosine_lr", "base", ">= 0", base);
  check_option(t_max > 0, "cosine_lr", "t_max", "> 0", double(t_max));
  check_option(eta_min >= 0, "cosine_lr", "eta_min", ">= 0", eta_min);
  return [=](std::int64_t t) {
    check_step(t);
    if (t >= t_max) return eta_min;
    return eta_min + (base - eta_min) * (1 + std::cos(M_PI * double(t) / double(t_max))) / 2;
  };
}

Schedule warmup(Schedule after, std::int64_t steps, double start_factor) {
  if (!after) throw ValueError("warmup: the schedule to warm up into is empty");
  check_option(steps >= 0, "warmup", "steps", ">= 0", double(steps));
  check_option(start_factor >= 0 && start_factor <= 1, "warmup", "start_factor", "in [0, 1]", start_factor);
  return [after = std::move(after), steps, start_factor](std::int64_t t) {
    check_step(t);
    if (t >= steps) return after(t - steps);
    return after(0) * (start_factor + (1 - start_factor) * double(t) / double(steps));
  };
}

template <class T>
Scheduler<T>::Scheduler(Optimizer<T>& opt, Schedule schedule) : opt_(opt), schedule_(std::move(schedule)) {
  if (!schedule_) throw ValueError("Scheduler: the schedule is empty");
}

template <class T>
double Scheduler<T>::step() {
  const double lr = schedule_(opt_.step_count());
  opt_.set_lr(lr);
  return lr;
}

template class Scheduler<float>;
template class Scheduler<double>;

}  // namespace xgrad::optim
