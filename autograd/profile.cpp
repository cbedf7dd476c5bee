#include "profile.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <unordered_map>

#include "errors.hpp"

namespace xgrad {

namespace detail {

struct ProfileState {
  std::unordered_map<std::string, OpProfile> ops;
  ProfileState* outer = nullptr;  // the Profile that was innermost when this one started

  OpProfile& entry(const char* op) {
    auto it = ops.find(op);
    if (it == ops.end()) {
      it = ops.emplace(op, OpProfile{}).first;
      it->second.op = op;
    }
    return it->second;
  }
};

namespace {
double seconds_since(ProfileClock::time_point start) {
  return std::chrono::duration<double>(ProfileClock::now() - start).count();
}
}  // namespace

void profile_forward(ProfileState* state, const char* op, ProfileClock::time_point start, std::size_t value_bytes) {
  const double s = seconds_since(start);
  for (ProfileState* p = state; p != nullptr; p = p->outer) {
    OpProfile& e = p->entry(op);
    ++e.calls;
    e.forward_seconds += s;
    e.value_bytes += value_bytes;
  }
}

void profile_backward(ProfileState* state, const char* op, ProfileClock::time_point start, std::size_t grad_bytes) {
  const double s = seconds_since(start);
  for (ProfileState* p = state; p != nullptr; p = p->outer) {
    OpProfile& e = p->entry(op);
    ++e.backward_calls;
    e.backward_seconds += s;
    e.grad_bytes += grad_bytes;
  }
}

}  // namespace detail

Profile::Profile() : state_(std::make_unique<detail::ProfileState>()) {
  state_->outer = detail::tl_thread.profile;
  detail::tl_thread.profile = state_.get();
}

Profile::~Profile() {
  if (recording_ && detail::tl_thread.profile == state_.get()) detail::tl_thread.profile = state_->outer;
}

void Profile::stop() {
  if (!recording_) return;
  if (detail::tl_thread.profile != state_.get())
    throw Error("Profile::stop: this Profile is not the innermost one recording on this thread");
  detail::tl_thread.profile = state_->outer;
  recording_ = false;
}

std::vector<OpProfile> Profile::ops() const {
  std::vector<OpProfile> r;
  for (const auto& [name, e] : state_->ops) r.push_back(e);
  std::sort(r.begin(), r.end(), [](const OpProfile& a, const OpProfile& b) {
    if (a.total_seconds() != b.total_seconds()) return a.total_seconds() > b.total_seconds();
    return a.op < b.op;
  });
  return r;
}

OpProfile Profile::op(const std::string& op) const {
  auto it = state_->ops.find(op);
  if (it != state_->ops.end()) return it->second;
  OpProfile e;
  e.op = op;
  return e;
}

void Profile::print(std::ostream& os) const {
  const std::vector<OpProfile> rows = ops();
  OpProfile total;
  total.op = "total";
  std::size_t width = total.op.size();
  for (const OpProfile& e : rows) {
    width = std::max(width, e.op.size());
    total.calls += e.calls;
    total.forward_seconds += e.forward_seconds;
    total.backward_calls += e.backward_calls;
    total.backward_seconds += e.backward_seconds;
    total.value_bytes += e.value_bytes;
    total.grad_bytes += e.grad_bytes;
  }
  const int w = static_cast<int>(width);
  std::ostringstream out;
  out << std::left << std::setw(w) << "op" << std::right << std::setw(9) << "calls" << std::setw(12) << "forward ms"
      << std::setw(10) << "bw calls" << std::setw(13) << "backward ms" << std::setw(11) << "total ms" << std::setw(8)
      << "%" << std::setw(14) << "value bytes" << std::setw(14) << "grad bytes" << "\n";
  auto row = [&](const OpProfile& e) {
    const double share = total.total_seconds() > 0 ? 100 * e.total_seconds() / total.total_seconds() : 0;
    out << std::left << std::setw(w) << e.op << std::right << std::setw(9) << e.calls << std::fixed
        << std::setprecision(3) << std::setw(12) << 1e3 * e.forward_seconds << std::setw(10) << e.backward_calls
        << std::setw(13) << 1e3 * e.backward_seconds << std::setw(11) << 1e3 * e.total_seconds()
        << std::setprecision(1) << std::setw(8) << share << std::setw(14) << e.value_bytes << std::setw(14)
        << e.grad_bytes << "\n";
  };
  for (const OpProfile& e : rows) row(e);
  row(total);
  os << out.str();
}

std::string Profile::report() const {
  std::ostringstream os;
  print(os);
  return os.str();
}

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string r = "\"";
  for (char c : s) {
    if (c == '"') r += '"';
    r += c;
  }
  return r + "\"";
}
}  // namespace

void Profile::write_csv(const std::string& path) const {
  std::ofstream f(path);
  if (!f) throw Error("Profile::write_csv: cannot write " + path);
  f << "op,calls,forward_seconds,backward_calls,backward_seconds,total_seconds,value_bytes,grad_bytes\n";
  f << std::setprecision(9);
  for (const OpProfile& e : ops())
    f << csv_field(e.op) << ',' << e.calls << ',' << e.forward_seconds << ',' << e.backward_calls << ','
      << e.backward_seconds << ',' << e.total_seconds() << ',' << e.value_bytes << ',' << e.grad_bytes << '\n';
  if (!f.flush()) throw Error("Profile::write_csv: cannot write " + path);
}

}  // namespace xgrad
