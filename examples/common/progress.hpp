// A progress line for long work, on stderr:
//   step 120/2000  loss 2.3456  61.2k tok/s  elapsed 0:12  left 3:05
// On a terminal it is rewritten in place ("\r") at most every min_interval seconds; elsewhere
// (a log file, a pipe) a full line is written at most every log_interval seconds, so logs stay
// readable. finish() writes the last state and a newline.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace xgrad::examples {

class Progress {
 public:
  struct Options {
    std::string unit = "steps";   // the rate's unit: "steps", or "tok" with items_per_step
    double items_per_step = 1;    // e.g. B*T tokens per step for a rate in tok/s
    std::int64_t start = 0;       // the step a resumed run starts from (rate and time left)
    double min_interval = 0.25;   // seconds between in-place redraws
    double log_interval = 10;     // seconds between lines when not on a terminal
    std::ostream* out = nullptr;  // nullptr: std::cerr
    int in_place = -1;            // 1 yes, 0 no, -1: yes if out is std::cerr and it is a tty
  };

  explicit Progress(std::int64_t total, Options options);
  explicit Progress(std::int64_t total) : Progress(total, Options{}) {}
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // step: steps done so far (1..total). extra, if any, is appended (e.g. "val 2.01").
  void update(std::int64_t step, double loss, const std::string& extra = "");
  // Draws the last state unthrottled and ends the line. Called by the destructor if needed.
  void finish();

  // The text of the line for the given state; no I/O (for tests and for final reports).
  std::string line(std::int64_t step, double loss, const std::string& extra,
                   double elapsed_seconds) const;
  // "0:07", "12:34", "1:02:03".
  static std::string format_duration(double seconds);
  // "950", "12.3k", "4.56M".
  static std::string format_rate(double per_second);

 private:
  using Clock = std::chrono::steady_clock;
  void draw(const std::string& text);

  std::int64_t total_;
  Options opt_;
  std::ostream* out_;
  bool in_place_;
  Clock::time_point start_time_, last_draw_;
  bool drawn_ = false, finished_ = false;
  bool current_drawn_ = false;  // the last update's line is already written (log mode: finish adds nothing)
  std::int64_t step_ = 0;
  double loss_ = 0;
  std::string extra_;
  std::size_t last_width_ = 0;
};

}  // namespace xgrad::examples
