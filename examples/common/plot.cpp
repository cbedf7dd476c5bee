#include "common/plot.hpp"

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace xgrad::examples {

std::string write_loss_curve(const std::string& dir, const std::string& basename,
                             const std::vector<Series>& series, const PlotOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("plot: cannot create directory '" + dir + "': " + ec.message());
  const std::string base = (fs::path(dir) / basename).string();
  write_csv(base + ".csv", series, options);
  write_svg(base + ".svg", series, options);
  return base + ".svg";
}

std::string write_grad_report(const GradReport& report, const std::string& svg_path, const std::string& title) {
  std::string csv = std::filesystem::path(svg_path).replace_extension(".csv").string();
  report.write_svg(svg_path, title);
  report.write_csv(csv);
  return csv;
}

}  // namespace xgrad::examples
