// Loss curves as a standalone SVG file (axes, ticks with labels, title, one line per series,
// legend) and the same numbers as CSV. No dependencies: the SVG is written by hand.
#pragma once

#include <string>
#include <vector>

namespace xgrad::examples {

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
};

// Non-finite points are left out of the drawing (they stay in the CSV). Throws
// std::runtime_error naming the path if the file cannot be written, std::invalid_argument if a
// series' x and y differ in length.
void write_svg(const std::string& path, const std::vector<Series>& series,
               const PlotOptions& options = {});
// Long format, one row per point: "series,<x_label>,<y_label>" then "train,100,2.345".
void write_csv(const std::string& path, const std::vector<Series>& series,
               const PlotOptions& options = {});
// Creates dir if needed and writes <dir>/<basename>.svg and <dir>/<basename>.csv; returns the
// SVG's path.
std::string write_loss_curve(const std::string& dir, const std::string& basename,
                             const std::vector<Series>& series, const PlotOptions& options = {});

// "Nice" tick positions (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about
// `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace xgrad::examples
