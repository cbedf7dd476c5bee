#include "common/training.hpp"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <system_error>

#include <xgrad/autograd/errors.hpp>
#include <xgrad/layers/module.hpp>
#include <xgrad/optim/clip.hpp>

namespace xgrad::examples {

namespace {

template <class V>
const V& typed(const CheckpointExtra& extra, const std::string& key, const std::string& path, const char* type) {
  auto it = extra.find(key);
  if (it == extra.end())
    throw CheckpointError("checkpoint '" + path + "' has no value '" + key + "' (not written by this program?)");
  const V* v = std::get_if<V>(&it->second);
  if (v == nullptr) throw CheckpointError("checkpoint '" + path + "': value '" + key + "' is not " + type);
  return *v;
}

// Makes --checkpoint PATH's directory (as --out makes its own) and refuses a PATH no save could
// write (its directory not makeable or not writable, PATH itself a directory) before anything is
// trained, rather than at the first save, steps later.
void prepare_checkpoint_path(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  auto refuse = [&](const std::string& why) {
    throw CheckpointError("--checkpoint '" + path + "' cannot be written: " + why + " (nothing was trained)");
  };
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) refuse("cannot create directory '" + dir.string() + "': " + ec.message());
  if (::access(dir.c_str(), W_OK | X_OK) != 0) refuse("directory '" + dir.string() + "': " + std::strerror(errno));
  if (fs::is_directory(path, ec)) refuse("it is a directory");
}

// An option's value as the checkpoint keeps it, and as a message or Cli::set spells it.
CheckpointValue kept_value(const Cli& cli, const std::string& name) {
  switch (cli.type_of(name)) {
    case Cli::Type::Int: return cli.get_int(name);
    case Cli::Type::Double: return cli.get_double(name);
    case Cli::Type::String: return cli.get_string(name);
    case Cli::Type::Flag: return std::int64_t(cli.get_flag(name));
  }
  return std::int64_t(0);
}

std::string text_of(const CheckpointValue& v, const std::string& key, const std::string& path) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", *d);
    return buf;
  }
  throw CheckpointError("checkpoint '" + path + "': value '" + key + "' is not an option's value");
}

// A curve kept as "<key>.x" and "<key>.y" (float64 arrays).
void put_series(CheckpointExtra& extra, const std::string& key, const Series& s) {
  Array<double> x = Array<double>::from_shape({s.x.size()}), y = Array<double>::from_shape({s.y.size()});
  std::copy(s.x.begin(), s.x.end(), x.begin());
  std::copy(s.y.begin(), s.y.end(), y.begin());
  extra[key + ".x"] = std::move(x);
  extra[key + ".y"] = std::move(y);
}

void get_series(const CheckpointExtra& extra, const std::string& key, Series& s) {
  auto ix = extra.find(key + ".x"), iy = extra.find(key + ".y");
  if (ix == extra.end() || iy == extra.end()) return;
  const auto* x = std::get_if<Array<double>>(&ix->second);
  const auto* y = std::get_if<Array<double>>(&iy->second);
  if (x == nullptr || y == nullptr || x->size() != y->size()) return;
  s.x.assign(x->begin(), x->end());
  s.y.assign(y->begin(), y->end());
}

}  // namespace

std::int64_t extra_int(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<std::int64_t>(extra, key, path, "an integer");
}
std::string extra_string(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<std::string>(extra, key, path, "a string");
}
Array<float> extra_floats(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return extra_array<float>(extra, key, path);
}
template <class T>
Array<T> extra_array(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<Array<T>>(extra, key, path, std::is_same_v<T, float> ? "a float32 array" : "a float64 array");
}
template Array<float> extra_array(const CheckpointExtra&, const std::string&, const std::string&);
template Array<double> extra_array(const CheckpointExtra&, const std::string&, const std::string&);

Training::Training(Cli& cli, std::string program, KeptOptions kept)
    : cli_(cli), program_(std::move(program)), resume_path_(cli.get_string("resume")), kept_(std::move(kept)) {
  nn::manual_seed(seed());
  if (cli.has("checkpoint") && !cli.get_string("checkpoint").empty()) prepare_checkpoint_path(cli.get_string("checkpoint"));
  if (resume_path_.empty()) return;
  const std::string& path = resume_path_;
  resumed_ = load_extra(path);
  auto it = resumed_.find("model");
  const std::string* model = it == resumed_.end() ? nullptr : std::get_if<std::string>(&it->second);
  if (model == nullptr)
    throw CheckpointError("checkpoint '" + path + "' was not written by an xgrad example (no 'model' value)");
  if (*model != program_)
    throw CheckpointError("checkpoint '" + path + "' holds a " + *model + " model, not a " + program_ + " model");
  for (const auto* names : {&kept_.adopted, &kept_.fixed})
    for (const auto& name : *names) {
      auto saved_it = resumed_.find(name);
      if (saved_it == resumed_.end())
        throw CheckpointError("checkpoint '" + path + "' has no value '" + name + "' (not written by this program?)");
      const std::string saved = text_of(saved_it->second, name, path),
                        given = text_of(kept_value(cli, name), name, path);
      const bool adopted = names == &kept_.adopted;
      if (given != saved && (!adopted || cli.given(name)))
        throw CheckpointError("--" + name + " " + given + " was given, but checkpoint '" + path +
                              "' holds a model with " + name + " " + saved);
      if (adopted) cli.set(name, saved);
    }
}

Training::Loop Training::loop() const {
  Loop l;
  if (cli_.has("steps")) l.steps = cli_.get_int("steps");
  if (cli_.has("clip")) l.clip = cli_.get_double("clip");
  if (cli_.has("eval-every")) l.eval_every = cli_.get_int("eval-every");
  if (cli_.has("save-every")) l.save_every = cli_.get_int("save-every");
  return l;
}

std::uint64_t Training::seed() const { return static_cast<std::uint64_t>(cli_.get_int("seed")); }

void Training::same_data(const std::string& key, const std::string& value, const std::string& description) {
  if (!resume_path_.empty() && extra_string(resumed_, key, resume_path_) != value)
    throw CheckpointError("checkpoint '" + resume_path_ + "' was trained on " + description);
  data_[key] = value;
}

template <class T>
void Training::save(const nn::Module<T>& model, const optim::Optimizer<T>& opt, const Loop& loop,
                    std::int64_t step) const {
  const std::string& path = cli_.get_string("checkpoint");
  if (path.empty()) return;
  CheckpointExtra e = data_;
  e["model"] = program_;
  e["step"] = step;
  for (const auto* names : {&kept_.adopted, &kept_.fixed})
    for (const auto& name : *names) e[name] = kept_value(cli_, name);
  put_series(e, "curve.train", train_);
  put_series(e, "curve.eval", eval_);
  if (loop.save) loop.save(e);  // on every rank: it may gather from the others
  if (lead_) xgrad::save(model, opt, path, e);
}

template <class T>
void Training::run(nn::Module<T>& model, optim::Optimizer<T>& opt, const Loop& loop,
                   const typename std::common_type<std::function<Var<T>(std::int64_t)>>::type& step_fn) {
  eval_.name = loop.eval_name;
  std::int64_t step = 0;
  if (!resume_path_.empty()) {
    load(model, opt, resume_path_);
    step = extra_int(resumed_, "step", resume_path_);
    get_series(resumed_, "curve.train", train_);
    get_series(resumed_, "curve.eval", eval_);
    if (loop.resume) loop.resume(resumed_, resume_path_);
    if (lead_) std::printf("resumed from %s at step %lld\n", resume_path_.c_str(), (long long)step);
  }
  const auto params = model.parameters();
  Progress::Options po = loop.progress;
  po.start = step;
  std::ostream discard(nullptr);  // no buffer: a rank other than the lead draws nothing
  if (!lead_) po.out = &discard;
  Progress progress(loop.steps, po);
  double window = 0, since_eval = 0;
  int in_window = 0, in_since_eval = 0;
  std::string note;
  while (step < loop.steps) {
    opt.zero_grad();
    const Var<T> loss = step_fn(step);
    loss.backward();
    double l = loss.value().flat(0);
    if (loop.all_reduce) l = loop.all_reduce(l);  // the whole batch's gradients and loss
    if (loop.clip > 0) optim::clip_grad_norm(params, loop.clip);
    opt.step();
    clear_tape();
    ++step;
    if (!std::isfinite(l))
      throw ValueError("training diverged: loss " + std::to_string(l) + " at step " + std::to_string(step) +
                       " (try a smaller --lr)");
    window += l, ++in_window, since_eval += l, ++in_since_eval;
    const bool last = step == loop.steps;
    const bool eval = loop.evaluate && loop.eval_every > 0 && (step % loop.eval_every == 0 || last);
    if (in_window == loop.window || last || (eval && loop.epochs)) {
      train_.x.push_back(double(step)), train_.y.push_back(window / in_window);
      window = 0, in_window = 0;
    }
    if (eval && loop.epochs) progress.update(step, train_.y.back(), note), progress.finish();
    if (eval && lead_) {  // the other ranks would compute the same figure
      const Point p = loop.evaluate(since_eval / in_since_eval);
      eval_.x.push_back(double(step)), eval_.y.push_back(p.value);
      note = p.note;
      since_eval = 0, in_since_eval = 0;
    }
    if (!(eval && loop.epochs)) progress.update(step, train_.y.empty() ? l : train_.y.back(), note);
    if (!last && ((loop.save_every > 0 && step % loop.save_every == 0) || (eval && loop.epochs)))
      save(model, opt, loop, step);
  }
  progress.finish();
  save(model, opt, loop, step);
}

template void Training::run(nn::Module<float>&, optim::Optimizer<float>&, const Loop&,
                            const std::function<Var<float>(std::int64_t)>&);
template void Training::run(nn::Module<double>&, optim::Optimizer<double>&, const Loop&,
                            const std::function<Var<double>(std::int64_t)>&);

int Training::finish(const std::string& title, const std::string& last_line) const {
  if (!lead_) return 0;
  const std::string& out = cli_.get_string("out");
  if (!out.empty()) {
    PlotOptions po;
    po.title = title;
    std::printf("loss curve: %s\n", write_loss_curve(out, program_, {train_, eval_}, po).c_str());
  }
  std::printf("%s\n", last_line.c_str());
  return 0;
}

}  // namespace xgrad::examples
