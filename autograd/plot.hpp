// Line plots as a standalone SVG file (axes, ticks with labels, title, one line per series,
// legend) and the same numbers as CSV: the examples' loss curves and GradReport's gradient norms.
// No dependencies: the SVG is written by hand.
#pragma once

#include <string>
#include <vector>

namespace xgrad::plot {

// One named curve, e.g. {"train", steps, losses}; x and y have the same length.
struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct PlotOptions {
  std::string title = "Loss";
  std::string x_label = "step";
  std::string y_label = "loss";
  int width = 800, height = 500;
  // y on a log10 axis with ticks at whole decades; values ≤ 0 are left out of the drawing.
  bool log_y = false;
};

// Non-finite points are left out of the drawing (they stay in the CSV). Throws
// std::runtime_error naming the path if the file cannot be written, std::invalid_argument if a
// series' x and y differ in length.
void write_svg(const std::string& path, const std::vector<Series>& series,
               const PlotOptions& options = {});
// Long format, one row per point: "series,<x_label>,<y_label>" then "train,100,2.345".
void write_csv(const std::string& path, const std::vector<Series>& series,
               const PlotOptions& options = {});

// "Nice" tick positions (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about
// `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace xgrad::plot
