// A tiny command-line parser for the examples: options are declared with a name, a default,
// a help line, a type and a range; --help prints the usage and exits 0; a bad command line
// prints one message naming the option and the value, and exits 2.
//
//   Cli cli("char_lm", "Train a character-level language model.");
//   cli.add_common();
//   cli.add_int("steps", 2000, "training steps", 1);
//   cli.add_double("temperature", 1.0, "sampling temperature", 0.0, 100.0, /*min_exclusive=*/true);
//   cli.add_string("cell", "lstm", "recurrent cell", {"rnn", "lstm", "gru"});
//   cli.parse(argc, argv);
//   int steps = cli.get_int("steps");
#pragma once

#include <cstdint>
#include <iosfwd>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace xgrad::examples {

// A bad command line; the message names the option and the value.
struct CliError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Cli {
 public:
  enum class Type { Int, Double, String, Flag };

  Cli(std::string program, std::string description);

  // Options are written --name VALUE or --name=VALUE; a flag is --name alone. Declaring a
  // name twice is a programming error (std::logic_error).
  Cli& add_int(const std::string& name, std::int64_t def, const std::string& help,
               std::int64_t min = std::numeric_limits<std::int64_t>::min(),
               std::int64_t max = std::numeric_limits<std::int64_t>::max());
  Cli& add_double(const std::string& name, double def, const std::string& help,
                  double min = -std::numeric_limits<double>::infinity(),
                  double max = std::numeric_limits<double>::infinity(),
                  bool min_exclusive = false);
  // choices empty: any string; otherwise the value must be one of them.
  Cli& add_string(const std::string& name, const std::string& def, const std::string& help,
                  std::vector<std::string> choices = {});
  Cli& add_flag(const std::string& name, const std::string& help);
  // The flags every example accepts: --seed N, --threads N, --checkpoint PATH, --resume PATH,
  // --out DIR (empty: nothing written). --help is always there. `threads` is --threads' default
  // (the training examples use 1: on a busy 2-core machine two OpenBLAS threads made char_lm's
  // steps 3x slower).
  Cli& add_common(std::int64_t seed = 1, std::int64_t threads = 0);
  // --threads N: the BLAS threads, which parse() sets (0: all cores).
  Cli& add_threads(std::int64_t def = 0);

  // Parses argv; on --help prints usage to stdout and exits 0; on a bad command line prints
  // "<program>: <message>" and a hint to stderr and exits 2. Then applies --threads, if declared.
  void parse(int argc, const char* const* argv);
  void parse(int argc, char** argv) { parse(argc, const_cast<const char* const*>(argv)); }
  // The same without exiting, for tests: returns false if --help was given (usage written to
  // help_out), throws CliError on a bad command line. Values are only stored if all is well.
  bool try_parse(const std::vector<std::string>& args, std::ostream& help_out);

  std::int64_t get_int(const std::string& name) const;
  double get_double(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  bool get_flag(const std::string& name) const;
  // True if the option was on the command line (not just defaulted).
  bool given(const std::string& name) const;
  bool has(const std::string& name) const { return options_.count(name) != 0; }
  Type type_of(const std::string& name) const;
  // Sets an option as if given as --name value (a flag: value "0" is off); CliError if bad.
  void set(const std::string& name, const std::string& value);

  std::string usage() const;
  const std::string& program() const { return program_; }

 private:
  struct Option {
    std::string name, help;
    Type type = Type::Flag;
    std::int64_t int_value = 0, int_min = 0, int_max = 0;
    double double_value = 0, double_min = 0, double_max = 0;
    bool min_exclusive = false;
    std::string string_value;
    std::vector<std::string> choices;
    bool flag_value = false;
    bool given = false;
  };
  Option& declare(const std::string& name, const std::string& help, Type type);
  const Option& find(const std::string& name, Type type) const;
  void set_value(Option& o, const std::string& value) const;
  static std::string range_text(const Option& o);

  std::string program_, description_;
  std::vector<std::string> order_;
  std::map<std::string, Option> options_;
};

}  // namespace xgrad::examples
