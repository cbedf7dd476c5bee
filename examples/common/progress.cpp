#include "common/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace xgrad::examples {

Progress::Progress(std::int64_t total, Options options)
    : total_(total), opt_(std::move(options)), out_(opt_.out ? opt_.out : &std::cerr) {
  if (opt_.in_place >= 0)
    in_place_ = opt_.in_place == 1;
  else
    in_place_ = out_ == &std::cerr && ::isatty(::fileno(stderr));
  start_time_ = last_draw_ = Clock::now();
  step_ = opt_.start;
}

Progress::~Progress() {
  try {
    if (drawn_ && !finished_) finish();
  } catch (...) {
  }
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long s = static_cast<long long>(seconds + 0.5);
  std::ostringstream os;
  if (s >= 3600) os << s / 3600 << ':' << std::setw(2) << std::setfill('0') << (s / 60) % 60;
  else os << s / 60;
  os << ':' << std::setw(2) << std::setfill('0') << s % 60;
  return os.str();
}

std::string Progress::format_rate(double r) {
  std::ostringstream os;
  os << std::fixed;
  if (!std::isfinite(r) || r < 0) return "?";
  if (r >= 1e6) os << std::setprecision(2) << r / 1e6 << 'M';
  else if (r >= 1e4) os << std::setprecision(1) << r / 1e3 << 'k';
  else if (r >= 100) os << std::setprecision(0) << r;
  else os << std::setprecision(2) << r;
  return os.str();
}

std::string Progress::line(std::int64_t step, double loss, const std::string& extra,
                           double elapsed) const {
  std::ostringstream os;
  os << "step " << step << '/' << total_ << "  loss " << std::fixed
     << std::setprecision(4) << loss;
  const double done = static_cast<double>(step - opt_.start);
  if (elapsed > 0 && done > 0) {
    const double steps_per_s = done / elapsed;
    os << "  " << format_rate(steps_per_s * opt_.items_per_step) << ' ' << opt_.unit << "/s";
    os << "  elapsed " << format_duration(elapsed);
    os << "  left " << format_duration(static_cast<double>(total_ - step) / steps_per_s);
  } else {
    os << "  elapsed " << format_duration(elapsed);
  }
  if (!extra.empty()) os << "  " << extra;
  return os.str();
}

void Progress::draw(const std::string& text) {
  if (in_place_) {
    // Pad with blanks so a shorter line fully covers the previous one.
    std::string padded = text;
    if (padded.size() < last_width_) padded.append(last_width_ - padded.size(), ' ');
    last_width_ = text.size();
    *out_ << '\r' << padded << std::flush;
  } else {
    *out_ << text << '\n' << std::flush;
  }
  drawn_ = true;
}

void Progress::update(std::int64_t step, double loss, const std::string& extra) {
  step_ = step, loss_ = loss, extra_ = extra;
  finished_ = false;
  current_drawn_ = false;
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  const double interval = in_place_ ? opt_.min_interval : opt_.log_interval;
  if (drawn_ && since < interval) return;
  last_draw_ = now;
  draw(line(step, loss, extra, std::chrono::duration<double>(now - start_time_).count()));
  current_drawn_ = true;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!in_place_ && current_drawn_) return;  // a log has this step's line already: no copy of it
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_time_).count();
  const std::string text = line(step_, loss_, extra_, elapsed);
  if (in_place_) {
    draw(text);
    *out_ << '\n' << std::flush;
  } else {
    draw(text);
  }
}

}  // namespace xgrad::examples
