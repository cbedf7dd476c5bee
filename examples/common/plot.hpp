// Loss curves: the library's SVG and CSV writer (autograd/plot.hpp) under the examples' names,
// and the pair of files an example writes into its --out directory.
#pragma once

#include <string>
#include <vector>

#include <xgrad/autograd/grad_report.hpp>
#include <xgrad/autograd/plot.hpp>

namespace xgrad::examples {

using plot::nice_ticks;
using plot::PlotOptions;
using plot::Series;
using plot::write_csv;
using plot::write_svg;

// Creates dir if needed and writes <dir>/<basename>.svg and <dir>/<basename>.csv; returns the
// SVG's path.
std::string write_loss_curve(const std::string& dir, const std::string& basename,
                             const std::vector<Series>& series, const PlotOptions& options = {});

// The report's picture at svg_path (FILE.svg) and its numbers beside it (FILE.csv: the
// extension replaced, or added when there is none); returns the CSV's path.
std::string write_grad_report(const GradReport& report, const std::string& svg_path, const std::string& title);

}  // namespace xgrad::examples
