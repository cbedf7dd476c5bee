#include "grad_report.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <type_traits>
#include <unordered_map>

#include "errors.hpp"
#include "plot.hpp"
#include "profile.hpp"

namespace xgrad {

std::string GradSeries::label() const {
  return "layer " + std::to_string(layer) + (reverse ? " reverse " : " ") + field;
}

namespace detail {

namespace {

// Sum of squares in double, whatever T: the norm a test recomputes from a retained gradient.
template <class T>
double frobenius(const Array<T>& g) {
  double sq = 0;
  for (T v : g) sq += static_cast<double>(v) * static_cast<double>(v);
  return std::sqrt(sq);
}

template <class T>
void link(SweepObserver<T>* o) {
  o->next = sweep_observers<T>();
  sweep_observers<T>() = o;
}
template <class T>
void unlink(SweepObserver<T>* o) {
  for (SweepObserver<T>** p = &sweep_observers<T>(); *p != nullptr; p = &(*p)->next)
    if (*p == o) {
      *p = o->next;
      return;
    }
}

}  // namespace

class GradReportState {
 public:
  // The watched nodes of one tape generation of T, and the norms they write.
  template <class T>
  struct Watch final : SweepObserver<T> {
    struct Point {
      std::size_t series, t;
    };
    GradReportState* owner = nullptr;
    const Tape<T>* tape = nullptr;
    std::uint64_t generation = 0;
    std::unordered_map<std::size_t, std::vector<Point>> nodes;  // tape position -> its points
    bool sweeping = false;  // the current sweep is over the recorded generation

    void sweep_started(const Tape<T>& t, std::size_t) override {
      sweeping = !nodes.empty() && &t == tape && t.generation() == generation;
      if (!sweeping) return;
      // Points the sweep does not reach (after its root, or cut off) keep 0.
      for (GradSeries& s : owner->series) std::fill(s.norms.begin(), s.norms.end(), 0.0);
      owner->swept = true;
    }
    void node_done(std::size_t i, const Node<T>& node) override {
      if (!sweeping) return;
      auto it = nodes.find(i);
      if (it == nodes.end()) return;
      const double norm = node.has_grad ? frobenius(node.grad) : 0.0;
      for (const Point& p : it->second) owner->series[p.series].norms[p.t] = norm;
    }
    bool live() const { return tape != nullptr && tape->generation() == generation; }
  };

  GradReportState(const void* watched) : layer(watched) {
    wf.owner = this;
    wd.owner = this;
  }

  template <class T>
  Watch<T>& watch() {
    if constexpr (std::is_same_v<T, float>)
      return wf;
    else
      return wd;
  }

  // Opens this forward's steps and returns the first one's index in the record.
  template <class T>
  std::size_t begin_forward(std::size_t layers, std::size_t directions, std::size_t n_steps, std::size_t fields,
                            std::string (*field_name)(std::size_t)) {
    Watch<T>& w = watch<T>();
    const Tape<T>& tape = Tape<T>::current();
    const bool continues = steps > 0 && !swept && w.tape == &tape && w.generation == tape.generation();
    if (!continues) {
      series.clear();
      for (std::size_t k = 0; k < layers; ++k)
        for (std::size_t d = 0; d < directions; ++d)
          for (std::size_t f = 0; f < fields; ++f) series.push_back({k, d == 1, field_name(f), {}});
      steps = 0;
      swept = false;
      wf.nodes.clear();
      wd.nodes.clear();
      wf.tape = nullptr;
      wd.tape = nullptr;
      w.tape = &tape;
      w.generation = tape.generation();
    }
    const std::size_t offset = steps;
    steps += n_steps;
    for (GradSeries& s : series) s.norms.resize(steps, 0.0);
    return offset;
  }

  const void* layer;
  GradReportState* outer = nullptr;  // the report made before this one on this thread
  std::vector<GradSeries> series;
  std::size_t steps = 0;
  bool swept = false;  // a backward has swept the record since it was opened
  Watch<float> wf;
  Watch<double> wd;
};

namespace {
// This thread's reports, the newest first: the one thing a forward reads when none is alive.
thread_local GradReportState* tl_reports XGRAD_TLS_INITIAL_EXEC = nullptr;
}  // namespace

GradReportForward::GradReportForward(const void* layer, std::size_t layers, std::size_t directions,
                                     std::size_t steps, std::size_t fields, std::string (*field_name)(std::size_t))
    : directions_(directions), fields_(fields) {
  if (tl_reports == nullptr || !grad_enabled()) return;
  for (GradReportState* r = tl_reports; r != nullptr; r = r->outer)
    if (r->layer == layer) reports_.push_back({r, 0});
  // The layer's element type is known from its first step; the record opens there.
  layers_ = layers;
  steps_ = steps;
  field_name_ = field_name;
}

template <class T>
void GradReportForward::record(std::size_t layer, std::size_t direction, std::size_t t, std::size_t field,
                               const Var<T>& v) {
  for (Entry& e : reports_) {
    if (!e.opened) {
      e.offset = e.report->begin_forward<T>(layers_, directions_, steps_, fields_, field_name_);
      e.opened = true;
    }
    GradReportState::Watch<T>& w = e.report->watch<T>();
    if (v.is_leaf() || v.tape() != w.tape) continue;  // a constant: no gradient to read
    const std::size_t series = (layer * directions_ + direction) * fields_ + field;
    w.nodes[v.index()].push_back({series, e.offset + t});
  }
}

void GradReportForward::step(std::size_t layer, std::size_t direction, std::size_t t, std::size_t field,
                             const Var<float>& v) {
  record(layer, direction, t, field, v);
}
void GradReportForward::step(std::size_t layer, std::size_t direction, std::size_t t, std::size_t field,
                             const Var<double>& v) {
  record(layer, direction, t, field, v);
}

}  // namespace detail

GradReport::GradReport(const void* layer, int) : state_(std::make_unique<detail::GradReportState>(layer)) {
  state_->outer = detail::tl_reports;
  detail::tl_reports = state_.get();
  detail::link<float>(&state_->wf);
  detail::link<double>(&state_->wd);
}

GradReport::~GradReport() {
  detail::unlink<float>(&state_->wf);
  detail::unlink<double>(&state_->wd);
  for (detail::GradReportState** p = &detail::tl_reports; *p != nullptr; p = &(*p)->outer)
    if (*p == state_.get()) {
      *p = state_->outer;
      break;
    }
}

const std::vector<GradSeries>& GradReport::norms() const {
  const detail::GradReportState& s = *state_;
  if (s.steps == 0)
    throw Error("GradReport: the watched layer has not run forward (with gradients recorded) while the report "
                "was alive: nothing to report");
  if (!s.swept) {
    if (!s.wf.live() && !s.wd.live())
      throw StaleHandleError("GradReport: the tape was cleared after the layer's forward of " +
                             std::to_string(s.steps) + " steps and before any backward: its gradients are gone "
                             "(call backward() before clear_tape())");
    throw Error("GradReport: no backward() has reached the layer's forward of " + std::to_string(s.steps) +
                " steps yet");
  }
  return s.series;
}

std::size_t GradReport::steps() const { return norms().empty() ? 0 : state_->steps; }

void GradReport::print(std::ostream& os) const {
  const std::vector<GradSeries>& series = norms();
  std::ostringstream out;
  std::vector<int> widths;
  out << std::setw(5) << "t";
  for (const GradSeries& s : series) {
    widths.push_back(static_cast<int>(std::max<std::size_t>(s.label().size(), 10)) + 2);
    out << std::setw(widths.back()) << s.label();
  }
  out << "\n" << std::scientific << std::setprecision(3);
  for (std::size_t t = 0; t < state_->steps; ++t) {
    out << std::setw(5) << t + 1;
    for (std::size_t k = 0; k < series.size(); ++k) out << std::setw(widths[k]) << series[k].norms[t];
    out << "\n";
  }
  os << out.str();
}

std::string GradReport::table() const {
  std::ostringstream os;
  print(os);
  return os.str();
}

namespace {
// The series as plot lines over t = 1..T, with the axis names the CSV header carries.
std::vector<plot::Series> plot_series(const std::vector<GradSeries>& series, std::size_t steps) {
  std::vector<plot::Series> lines;
  for (const GradSeries& s : series) {
    plot::Series line{s.label(), {}, s.norms};
    for (std::size_t t = 0; t < steps; ++t) line.x.push_back(static_cast<double>(t + 1));
    lines.push_back(std::move(line));
  }
  return lines;
}
plot::PlotOptions plot_options(const std::string& title) {
  plot::PlotOptions o;
  o.title = title;
  o.x_label = "t";
  o.y_label = "norm";
  o.log_y = true;
  return o;
}
}  // namespace

void GradReport::write_csv(const std::string& path) const {
  try {
    plot::write_csv(path, plot_series(norms(), state_->steps), plot_options(""));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(std::string("GradReport::write_csv: ") + e.what());
  }
}

void GradReport::write_svg(const std::string& path, const std::string& title) const {
  plot::PlotOptions o = plot_options(title);
  o.y_label = "norm of dL/ds_t (Frobenius, log scale)";
  try {
    plot::write_svg(path, plot_series(norms(), state_->steps), o);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(std::string("GradReport::write_svg: ") + e.what());
  }
}

}  // namespace xgrad
