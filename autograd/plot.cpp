#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace xgrad::plot {

namespace {

// Tableau-like colours, distinguishable and printable.
const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// The shortest of 15, 16 or 17 significant digits that reads back as the same double.
std::string num(double v) {
  std::string out;
  for (int digits = 15; digits <= 17; ++digits) {
    std::ostringstream os;
    os << std::setprecision(digits) << v;
    out = os.str();
    if (std::strtod(out.c_str(), nullptr) == v) break;
  }
  return out;
}

std::string px(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << v;
  return os.str();
}

// A tick label with no more digits than the tick step needs.
std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;
  const double a = std::max(std::abs(v), step);
  std::ostringstream os;
  if (a >= 1e6 || a < 1e-4) {
    os << std::setprecision(3) << v;
    return os.str();
  }
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  os << std::fixed << std::setprecision(decimals) << v;
  return os.str();
}

// The label of decade tick k: 10^k written out near 1, as 1e-5 otherwise.
std::string decade_label(double k) {
  const int e = static_cast<int>(std::lround(k));
  if (e >= -3 && e <= 3) {
    std::ostringstream os;
    os << std::pow(10.0, e);
    return os.str();
  }
  return "1e" + std::to_string(e);
}

std::ofstream open_out(const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("plot: cannot write '" + path + "'");
  return f;
}

void check_series(const std::vector<Series>& series) {
  for (const auto& s : series)
    if (s.x.size() != s.y.size())
      throw std::invalid_argument("plot: series '" + s.name + "' has " +
                                  std::to_string(s.x.size()) + " x values but " +
                                  std::to_string(s.y.size()) + " y values");
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(t);
  return ticks;
}

namespace {
// Ticks at whole decades (log10 values) covering [lo, hi], at most about `target` of them.
std::vector<double> decade_ticks(double lo, double hi, int target) {
  const double first = std::floor(lo + 1e-9), last = std::ceil(hi - 1e-9);
  const double step = std::max(1.0, std::ceil((last - first) / std::max(1, target)));
  std::vector<double> ticks;
  for (double t = first; t <= std::max(last, first + 1) + 1e-9; t += step) ticks.push_back(t);
  return ticks;
}
}  // namespace

void write_svg(const std::string& path, const std::vector<Series>& series,
               const PlotOptions& o) {
  check_series(series);
  // On a log axis a point is drawn at log10(y); zero and negative values cannot be and are left
  // out like non-finite ones.
  auto y_of = [&](double y) {
    if (!o.log_y) return y;
    return y > 0 ? std::log10(y) : std::numeric_limits<double>::quiet_NaN();
  };
  // Data range over the finite points.
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(y_of(s.y[i]))) {
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, y_of(s.y[i])), y1 = std::max(y1, y_of(s.y[i]));
      }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: bare axes
  std::vector<double> xt = nice_ticks(x0, x1), yt = o.log_y ? decade_ticks(y0, y1, 8) : nice_ticks(y0, y1);
  // The axes span the ticks' range extended to the data.
  const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
  x0 = std::min(x0, xt.front()), x1 = std::max(x1, xt.back());
  y0 = std::min(y0, yt.front()), y1 = std::max(y1, yt.back());
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;

  const double W = o.width, H = o.height;
  const double left = 70, right = 20, top = 45, bottom = 55;
  const double pw = W - left - right, ph = H - top - bottom;
  auto sx = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto sy = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << o.width << "\" height=\""
      << o.height << "\" viewBox=\"0 0 " << o.width << ' ' << o.height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << o.width << "\" height=\"" << o.height
      << "\" fill=\"white\"/>\n"
      << "<text x=\"" << px(W / 2) << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
      << xml_escape(o.title) << "</text>\n";
  auto line = [&](double x1, double y1, double x2, double y2, const std::string& style = "") {
    svg << "<line x1=\"" << px(x1) << "\" y1=\"" << px(y1) << "\" x2=\"" << px(x2) << "\" y2=\"" << px(y2)
        << "\"" << style << "/>\n";
  };
  // Grid and ticks.
  svg << "<g stroke=\"#dddddd\" stroke-width=\"1\">\n";
  for (double t : xt) line(sx(t), top, sx(t), top + ph);
  for (double t : yt) line(left, sy(t), left + pw, sy(t));
  svg << "</g>\n<g text-anchor=\"middle\">\n";
  for (double t : xt)
    svg << "<text x=\"" << px(sx(t)) << "\" y=\"" << px(top + ph + 18) << "\">"
        << tick_label(t, xs) << "</text>\n";
  svg << "</g>\n<g text-anchor=\"end\">\n";
  for (double t : yt)
    svg << "<text x=\"" << px(left - 8) << "\" y=\"" << px(sy(t) + 4) << "\">"
        << (o.log_y ? decade_label(t) : tick_label(t, ys)) << "</text>\n";
  svg << "</g>\n";
  // Axes and their labels.
  svg << "<g stroke=\"black\" stroke-width=\"1\">\n";
  line(left, top + ph, left + pw, top + ph);
  line(left, top, left, top + ph);
  svg << "</g>\n<text x=\"" << px(left + pw / 2) << "\" y=\"" << px(H - 12)
      << "\" text-anchor=\"middle\">" << xml_escape(o.x_label) << "</text>\n"
      << "<text x=\"16\" y=\"" << px(top + ph / 2) << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 "
      << px(top + ph / 2) << ")\">" << xml_escape(o.y_label) << "</text>\n";
  // One polyline per series; a non-finite point breaks the line.
  for (std::size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* colour = kColours[k % (sizeof kColours / sizeof *kColours)];
    std::string points;
    auto flush = [&] {
      if (!points.empty())
        svg << "<polyline fill=\"none\" stroke=\"" << colour
            << "\" stroke-width=\"1.5\" points=\"" << points << "\"/>\n";
      points.clear();
    };
    std::size_t drawn = 0, last = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(y_of(s.y[i]))) {
        flush();
        continue;
      }
      if (!points.empty()) points += ' ';
      points += px(sx(s.x[i])) + ',' + px(sy(y_of(s.y[i])));
      ++drawn, last = i;
    }
    flush();
    // A lone point (e.g. one validation figure) gets a marker so it is visible.
    if (drawn == 1)
      svg << "<circle cx=\"" << px(sx(s.x[last])) << "\" cy=\"" << px(sy(y_of(s.y[last])))
          << "\" r=\"3\" fill=\"" << colour << "\"/>\n";
  }
  // Legend, top right inside the plot.
  if (!series.empty()) {
    std::size_t longest = 0;
    for (const auto& s : series) longest = std::max(longest, s.name.size());
    const double lw = 40 + 7.0 * static_cast<double>(longest), lh = 8 + 18.0 * series.size();
    const double lx = left + pw - lw - 10, ly = top + 10;
    svg << "<g>\n<rect x=\"" << px(lx) << "\" y=\"" << px(ly) << "\" width=\"" << px(lw)
        << "\" height=\"" << px(lh) << "\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999999\"/>\n";
    for (std::size_t k = 0; k < series.size(); ++k) {
      const char* colour = kColours[k % (sizeof kColours / sizeof *kColours)];
      const double y = ly + 16 + 18.0 * k;
      line(lx + 8, y - 4, lx + 28, y - 4, " stroke=\"" + std::string(colour) + "\" stroke-width=\"2\"");
      svg << "<text x=\"" << px(lx + 34) << "\" y=\"" << px(y) << "\">" << xml_escape(series[k].name)
          << "</text>\n";
    }
    svg << "</g>\n";
  }
  svg << "</svg>\n";
  std::ofstream f = open_out(path);
  f << svg.str();
  if (!f.flush()) throw std::runtime_error("plot: cannot write '" + path + "'");
}

void write_csv(const std::string& path, const std::vector<Series>& series,
               const PlotOptions& o) {
  check_series(series);
  std::ofstream f = open_out(path);
  f << "series," << csv_field(o.x_label) << ',' << csv_field(o.y_label) << '\n';
  for (const auto& s : series)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      f << csv_field(s.name) << ',' << num(s.x[i]) << ',' << num(s.y[i]) << '\n';
  if (!f.flush()) throw std::runtime_error("plot: cannot write '" + path + "'");
}

}  // namespace xgrad::plot
