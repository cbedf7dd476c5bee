#include "common/training.hpp"

#include <xgrad/autograd/errors.hpp>

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

}  // namespace

std::int64_t extra_int(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<std::int64_t>(extra, key, path, "an integer");
}
double extra_double(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<double>(extra, key, path, "a number");
}
std::string extra_string(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<std::string>(extra, key, path, "a string");
}
Array<float> extra_floats(const CheckpointExtra& extra, const std::string& key, const std::string& path) {
  return typed<Array<float>>(extra, key, path, "a float32 array");
}

CheckpointExtra load_extra_of(const std::string& program, const std::string& path) {
  CheckpointExtra extra = load_extra(path);
  auto it = extra.find("model");
  const std::string* model = it == extra.end() ? nullptr : std::get_if<std::string>(&it->second);
  if (model == nullptr)
    throw CheckpointError("checkpoint '" + path + "' was not written by an xgrad example (no 'model' value)");
  if (*model != program)
    throw CheckpointError("checkpoint '" + path + "' holds a " + *model + " model, not a " + program + " model");
  return extra;
}

void put_series(CheckpointExtra& extra, const std::string& key, const Series& s) {
  Array<double> x = Array<double>::from_shape({s.x.size()}), y = Array<double>::from_shape({s.y.size()});
  std::copy(s.x.begin(), s.x.end(), x.begin());
  std::copy(s.y.begin(), s.y.end(), y.begin());
  extra[key + ".x"] = std::move(x);
  extra[key + ".y"] = std::move(y);
}

Series get_series(const CheckpointExtra& extra, const std::string& key, const std::string& name) {
  Series s{name, {}, {}};
  auto ix = extra.find(key + ".x"), iy = extra.find(key + ".y");
  if (ix == extra.end() || iy == extra.end()) return s;
  const auto* x = std::get_if<Array<double>>(&ix->second);
  const auto* y = std::get_if<Array<double>>(&iy->second);
  if (x == nullptr || y == nullptr || x->size() != y->size()) return s;
  s.x.assign(x->begin(), x->end());
  s.y.assign(y->begin(), y->end());
  return s;
}

void check_same(const std::string& option, const std::string& given, const std::string& saved, bool was_given,
                const std::string& path) {
  if (was_given && given != saved)
    throw CheckpointError("--" + option + " " + given + " was given, but checkpoint '" + path + "' holds a model with " +
                          option + " " + saved);
}

}  // namespace xgrad::examples
