#include "common/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <thread>

#include <xgrad/autograd/blas.hpp>

namespace xgrad::examples {

namespace {

const char* type_name(Cli::Type t) {
  switch (t) {
    case Cli::Type::Int: return "N";
    case Cli::Type::Double: return "X";
    case Cli::Type::String: return "S";
    case Cli::Type::Flag: return "";
  }
  return "";
}

std::string fmt_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Levenshtein distance, for "did you mean" on a mistyped option.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

Cli::Cli(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}

Cli::Option& Cli::declare(const std::string& name, const std::string& help, Type type) {
  if (name.empty() || name == "help" || options_.count(name))
    throw std::logic_error("Cli: option --" + name + " declared twice or reserved");
  order_.push_back(name);
  Option& o = options_[name];
  o.name = name;
  o.help = help;
  o.type = type;
  return o;
}

Cli& Cli::add_int(const std::string& name, std::int64_t def, const std::string& help,
                  std::int64_t min, std::int64_t max) {
  Option& o = declare(name, help, Type::Int);
  o.int_value = def, o.int_min = min, o.int_max = max;
  return *this;
}

Cli& Cli::add_double(const std::string& name, double def, const std::string& help, double min,
                     double max, bool min_exclusive) {
  Option& o = declare(name, help, Type::Double);
  o.double_value = def, o.double_min = min, o.double_max = max, o.min_exclusive = min_exclusive;
  return *this;
}

Cli& Cli::add_string(const std::string& name, const std::string& def, const std::string& help,
                     std::vector<std::string> choices) {
  Option& o = declare(name, help, Type::String);
  o.string_value = def;
  o.choices = std::move(choices);
  return *this;
}

Cli& Cli::add_flag(const std::string& name, const std::string& help) {
  declare(name, help, Type::Flag);
  return *this;
}

Cli& Cli::add_common(std::int64_t seed, std::int64_t threads) {
  add_int("seed", seed, "random seed (initialisation, batches, sampling)", 0);
  add_threads(threads);
  add_string("checkpoint", "", "save a checkpoint to PATH as training goes");
  add_string("resume", "", "resume from the checkpoint at PATH");
  add_string("out", "", "write the loss curve to DIR as SVG and CSV");
  return *this;
}

Cli& Cli::add_threads(std::int64_t def) {
  return add_int("threads", def, "most threads per product or loop (small ones use 1); 0: all cores", 0, 1024);
}

void Cli::set_value(Option& o, const std::string& v) const {
  const std::string where = "option --" + o.name + ": ";
  switch (o.type) {
    case Type::Int: {
      errno = 0;
      char* end = nullptr;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') throw CliError(where + "'" + v + "' is not an integer");
      if (errno == ERANGE || x < o.int_min || x > o.int_max)
        throw CliError(where + "value " + v + " out of range (must be " + range_text(o) + ")");
      o.int_value = x;
      break;
    }
    case Type::Double: {
      errno = 0;
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(x))
        throw CliError(where + "'" + v + "' is not a finite number");
      const bool low = o.min_exclusive ? !(x > o.double_min) : x < o.double_min;
      if (low || x > o.double_max)
        throw CliError(where + "value " + v + " out of range (must be " + range_text(o) + ")");
      o.double_value = x;
      break;
    }
    case Type::String: {
      if (!o.choices.empty()) {
        bool ok = false;
        std::string list;
        for (const auto& c : o.choices) {
          ok = ok || c == v;
          list += (list.empty() ? "" : ", ") + c;
        }
        if (!ok) throw CliError(where + "'" + v + "' is not one of " + list);
      }
      o.string_value = v;
      break;
    }
    case Type::Flag: o.flag_value = true; break;
  }
  o.given = true;
}

bool Cli::try_parse(const std::vector<std::string>& args, std::ostream& help_out) {
  std::map<std::string, Option> parsed = options_;  // commit only when all is well
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      help_out << usage();
      return false;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0)
      throw CliError("unexpected argument '" + a + "' (options start with --)");
    const std::size_t eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    auto it = parsed.find(name);
    if (it == parsed.end()) {
      std::string msg = "unknown option '--" + name + "'";
      std::string best;
      std::size_t best_d = 3;
      for (const auto& n : order_) {
        const std::size_t d = edit_distance(name, n);
        if (d < best_d) best_d = d, best = n;
      }
      if (!best.empty()) msg += " (did you mean --" + best + "?)";
      throw CliError(msg);
    }
    Option& o = it->second;
    if (o.type == Type::Flag) {
      if (eq != std::string::npos)
        throw CliError("option --" + name + " is a flag and takes no value, got '" +
                       a.substr(eq + 1) + "'");
      set_value(o, "");
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else {
      // A following "--word" is another option, not a value; "-1" is a value.
      if (i + 1 >= args.size() || args[i + 1].compare(0, 2, "--") == 0)
        throw CliError("option --" + name + " needs a value (--" + name + " " +
                       type_name(o.type) + ")");
      value = args[++i];
    }
    set_value(o, value);
  }
  options_ = std::move(parsed);
  return true;
}

void Cli::parse(int argc, const char* const* argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  try {
    if (!try_parse(args, std::cout)) {
      std::cout.flush();
      std::exit(0);
    }
  } catch (const CliError& e) {
    std::cerr << program_ << ": " << e.what() << "\n"
              << "Try '" << program_ << " --help' for the options.\n";
    std::exit(2);
  }
  if (options_.count("threads")) {
    const auto n = get_int("threads");
    // An upper bound: the library runs small products and loops on 1 thread whatever it is.
    blas::set_num_threads(n > 0 ? int(n) : int(std::max(1u, std::thread::hardware_concurrency())));
  }
}

// ">= 1 and <= 1024", "> 0", or "" for a number option without bounds.
std::string Cli::range_text(const Option& o) {
  std::string lo, hi;
  if (o.type == Type::Int) {
    if (o.int_min != std::numeric_limits<std::int64_t>::min()) lo = ">= " + std::to_string(o.int_min);
    if (o.int_max != std::numeric_limits<std::int64_t>::max()) hi = "<= " + std::to_string(o.int_max);
  } else {
    if (std::isfinite(o.double_min)) lo = (o.min_exclusive ? "> " : ">= ") + fmt_double(o.double_min);
    if (std::isfinite(o.double_max)) hi = "<= " + fmt_double(o.double_max);
  }
  return lo.empty() || hi.empty() ? lo + hi : lo + " and " + hi;
}

const Cli::Option& Cli::find(const std::string& name, Type type) const {
  auto it = options_.find(name);
  if (it == options_.end() || it->second.type != type)
    throw std::logic_error("Cli: no option --" + name + " of the requested type");
  return it->second;
}

std::int64_t Cli::get_int(const std::string& name) const { return find(name, Type::Int).int_value; }
double Cli::get_double(const std::string& name) const {
  return find(name, Type::Double).double_value;
}
const std::string& Cli::get_string(const std::string& name) const {
  return find(name, Type::String).string_value;
}
bool Cli::get_flag(const std::string& name) const { return find(name, Type::Flag).flag_value; }
bool Cli::given(const std::string& name) const {
  auto it = options_.find(name);
  if (it == options_.end()) throw std::logic_error("Cli: no option --" + name);
  return it->second.given;
}
Cli::Type Cli::type_of(const std::string& name) const {
  auto it = options_.find(name);
  if (it == options_.end()) throw std::logic_error("Cli: no option --" + name);
  return it->second.type;
}
void Cli::set(const std::string& name, const std::string& value) {
  auto it = options_.find(name);
  if (it == options_.end()) throw std::logic_error("Cli: no option --" + name);
  set_value(it->second, value);
  if (it->second.type == Type::Flag) it->second.flag_value = value != "0";
}

std::string Cli::usage() const {
  std::ostringstream os;
  os << "Usage: " << program_ << " [options]\n";
  if (!description_.empty()) os << description_ << "\n";
  os << "\nOptions:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("--help", "show this help and exit");
  for (const auto& name : order_) {
    const Option& o = options_.at(name);
    std::string left = "--" + name;
    std::string right = o.help;
    switch (o.type) {
      case Type::Int:
      case Type::Double: {
        const bool is_int = o.type == Type::Int;
        const std::string range = range_text(o);
        left += is_int ? " N" : " X";
        right += " (default " + (is_int ? std::to_string(o.int_value) : fmt_double(o.double_value)) +
                 (range.empty() ? "" : ", " + range) + ")";
        break;
      }
      case Type::String: {
        if (o.choices.empty()) {
          left += " S";
        } else {
          left += " ";
          for (std::size_t i = 0; i < o.choices.size(); ++i)
            left += (i ? "|" : "") + o.choices[i];
        }
        if (!o.string_value.empty()) right += " (default " + o.string_value + ")";
        break;
      }
      case Type::Flag: break;
    }
    rows.emplace_back(left, right);
  }
  std::size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size());
  for (const auto& r : rows)
    os << "  " << r.first << std::string(width - r.first.size() + 2, ' ') << r.second << "\n";
  return os.str();
}

}  // namespace xgrad::examples
