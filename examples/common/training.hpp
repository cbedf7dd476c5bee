// The training loop the examples share, so that each example is its data, its model and its step:
//
//   Training training(cli, "char_lm", {/*adopted=*/{"cell", "hidden"}, /*fixed=*/{"batch"}});
//   ... data, model, optimizer ...
//   Training::Loop loop = training.loop();
//   loop.evaluate = [&](double) { return Training::Point{held_out_loss(), "held-out ..."}; };
//   training.run(model, opt, loop, [&](std::int64_t) { return cross_entropy(model(x), y); });  // float or double
//   return training.finish("char_lm: loss", "held-out: 1.9150 nats/char");
//
// It owns: --seed (nn::manual_seed), --resume (the checkpoint must be this program's and agree
// with the command line), --checkpoint (saved every save_every steps and at the end, atomically
// as io/checkpoint.hpp does), the loss curve to --out (SVG and CSV; kept in the checkpoint, so a
// resumed run draws it whole), the progress line, evaluation every eval_every steps, and each
// step's zero_grad, backward, clipping, optimizer step and clear_tape.
//
// Data-parallel (each rank a share of every batch): set_lead(rank == 0) and loop.all_reduce.
// Every rank runs the same steps and the same optimizer updates; the lead alone prints, evaluates
// and writes the checkpoint and the curve (loop.save still runs on every rank, so that it may
// gather what the ranks hold).
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <string>
#include <type_traits>
#include <vector>

#include <xgrad/io/checkpoint.hpp>

#include "common/cli.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"

namespace xgrad::examples {

// Typed values of a checkpoint's extra map; a missing key or another type is a CheckpointError
// naming the key and the file.
std::int64_t extra_int(const CheckpointExtra& extra, const std::string& key, const std::string& path);
std::string extra_string(const CheckpointExtra& extra, const std::string& key, const std::string& path);
Array<float> extra_floats(const CheckpointExtra& extra, const std::string& key, const std::string& path);
// A float32 (T = float) or float64 (T = double) array.
template <class T>
Array<T> extra_array(const CheckpointExtra& extra, const std::string& key, const std::string& path);

// The options a checkpoint keeps under their own names (int, float64 or string values, a flag as
// 0 or 1). On --resume, `adopted` options (the model's shape) are taken from the checkpoint unless
// given on the command line, where they must agree with it; `fixed` options must agree with it,
// given or defaulted ("--cell lstm was given, but checkpoint 'a.ckpt' holds a model with cell gru").
struct KeptOptions {
  std::vector<std::string> adopted, fixed;
};

class Training {
 public:
  // An evaluation: the value drawn on the evaluation curve and a note for the progress line.
  struct Point {
    double value = 0;
    std::string note;
  };

  struct Loop {
    std::int64_t steps = 0;       // in total, counting those of a resumed run
    int window = 10;              // training losses averaged into one curve point
    double clip = 0;              // clip gradients to this global norm; 0: no clipping
    std::int64_t eval_every = 0;  // evaluate every N steps and after the last (0: never)
    // Evaluations end epochs: the curve's window is closed and the progress line ended first
    // (evaluate may print a line of its own), and a checkpoint is saved after each.
    bool epochs = false;
    std::int64_t save_every = 0;  // with --checkpoint: also every N steps (0: at the end only)
    std::string eval_name = "validation";  // the evaluation curve's legend entry
    Progress::Options progress;
    // The mean training loss since the last evaluation -> the evaluation.
    std::function<Point(double)> evaluate;
    // What the example keeps in a checkpoint beside the model, the optimizer, the options, the
    // step and the curves (a data position, a hidden state), and reads back on --resume.
    std::function<void(CheckpointExtra&)> save;
    std::function<void(const CheckpointExtra&, const std::string& path)> resume;
    // Data-parallel training: called on every rank after backward and before clipping with this
    // rank's loss; it combines the ranks' gradients into the whole batch's and returns the whole
    // batch's loss, which every rank then reports and checks. Null: one process.
    std::function<double(double)> all_reduce;
  };

  // With --resume: reads the checkpoint's extra values, checks that `program` wrote it (else a
  // CheckpointError saying whose it is) and the kept options against the command line, adopting
  // as described above. Seeds nn::manual_seed with --seed.
  Training(Cli& cli, std::string program, KeptOptions kept);

  // A Loop with steps, clip, eval_every and save_every from --steps, --clip, --eval-every and
  // --save-every, those the program has.
  Loop loop() const;

  // The checkpoint's extra values with --resume, else nullptr.
  const CheckpointExtra* resumed() const { return resume_path_.empty() ? nullptr : &resumed_; }
  const std::string& resume_path() const { return resume_path_; }
  std::uint64_t seed() const;

  // False on the ranks other than 0 of a data-parallel run: they train but print nothing,
  // evaluate nothing and write no files. True by default.
  void set_lead(bool lead) { lead_ = lead; }
  bool lead() const { return lead_; }

  // Data a resumed run must be trained on: `value` is kept under `key`; on --resume a different
  // value is a CheckpointError "checkpoint 'P' was trained on <description>".
  void same_data(const std::string& key, const std::string& value, const std::string& description);

  // Trains from the step a resumed run reached (after loading model and optimizer state) up to
  // loop.steps. step(s) records the loss of step s (0-based); a non-finite loss ends the run
  // with a ValueError.
  // T is float or double, taken from the model (the step's type is not deduced, so a lambda
  // converts).
  template <class T>
  void run(nn::Module<T>& model, optim::Optimizer<T>& opt, const Loop& loop,
           const typename std::common_type<std::function<Var<T>(std::int64_t)>>::type& step);

  // Writes the loss curve to --out (if given) titled `title`, prints `last_line` (the final
  // figures, `name: value` pairs) and returns main's exit status, 0.
  int finish(const std::string& title, const std::string& last_line) const;

 private:
  template <class T>
  void save(const nn::Module<T>& model, const optim::Optimizer<T>& opt, const Loop& loop, std::int64_t step) const;

  const Cli& cli_;
  std::string program_, resume_path_;
  KeptOptions kept_;
  bool lead_ = true;
  CheckpointExtra resumed_, data_;
  Series train_{"train", {}, {}}, eval_{"validation", {}, {}};
};

// Runs body(); an exception becomes "<program>: error: <message>" on stderr and exit status 1.
template <class F>
int guarded_main(const char* program, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace xgrad::examples
