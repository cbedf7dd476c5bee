#include "optimizer.hpp"

#include <algorithm>
#include <sstream>

namespace xgrad::optim {

void check_option(bool ok, const char* what, const char* name, const char* rule, double value) {
  if (ok) return;
  std::ostringstream os;
  os << what << ": " << name << " must be " << rule << ", got " << value;
  throw ValueError(os.str());
}

template <class T>
Optimizer<T>::Optimizer(std::vector<Var<T>> params, double lr) : params_(std::move(params)), lr_(lr) {
  check_option(lr >= 0, "optimizer", "lr", ">= 0", lr);
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (!params_[i].defined() || !params_[i].is_param())
      throw ValueError("optimizer: element " + std::to_string(i) + " of the parameter list is not a parameter");
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
  check_option(lr >= 0, kind(), "lr", ">= 0", lr);
  lr_ = lr;
}

template <class T>
void Optimizer<T>::step() {
  ++step_;
  update();
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

template <class T>
std::size_t Optimizer<T>::add_buffer(const std::string& name) {
  std::vector<Array<T>> b;
  b.reserve(params_.size());
  for (auto& p : params_) b.push_back(xt::zeros<T>(p.shape()));
  buffer_names_.push_back(name);
  buffers_.push_back(std::move(b));
  return buffers_.size() - 1;
}

template <class T>
OptimizerState<T> Optimizer<T>::state() const {
  OptimizerState<T> s;
  s.kind = kind();
  s.step = step_;
  s.lr = lr_;
  for (std::size_t k = 0; k < buffers_.size(); ++k)
    for (std::size_t i = 0; i < params_.size(); ++i)
      s.arrays.emplace_back(buffer_names_[k] + "." + std::to_string(i), buffers_[k][i]);
  return s;
}

template <class T>
std::string Optimizer<T>::check_state(const OptimizerState<T>& s) const {
  if (s.kind != kind()) return "optimizer state is of " + s.kind + ", but the optimizer is " + kind();
  if (s.step < 0) return "optimizer state has a negative step count " + std::to_string(s.step);
  if (!(s.lr >= 0)) return "optimizer state has an invalid learning rate " + std::to_string(s.lr);
  const std::size_t n = buffers_.size() * params_.size();
  if (s.arrays.size() != n)
    return std::string("optimizer state of ") + kind() + " holds " + std::to_string(s.arrays.size()) +
           " buffers, this optimizer has " + std::to_string(n) + " (" + std::to_string(buffers_.size()) +
           " per parameter, " + std::to_string(params_.size()) + " parameters)";
  std::size_t j = 0;
  for (std::size_t k = 0; k < buffers_.size(); ++k)
    for (std::size_t i = 0; i < params_.size(); ++i, ++j) {
      const std::string name = buffer_names_[k] + "." + std::to_string(i);
      if (s.arrays[j].first != name)
        return "optimizer state: buffer " + std::to_string(j) + " is '" + s.arrays[j].first + "', expected '" + name + "'";
      const auto& a = s.arrays[j].second.shape();
      const auto& b = params_[i].shape();
      if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin()))
        return "optimizer state: buffer '" + name + "' has shape " + shape_str(a) + ", parameter " +
               std::to_string(i) + " has shape " + shape_str(b);
    }
  return {};
}

template <class T>
void Optimizer<T>::load_state(const OptimizerState<T>& s) {
  std::string err = check_state(s);
  if (!err.empty()) throw ValueError("load_state: " + err);
  step_ = s.step;
  lr_ = s.lr;
  std::size_t j = 0;
  for (auto& b : buffers_)
    for (auto& a : b) {
      const auto& src = s.arrays[j++].second;
      std::copy(src.begin(), src.end(), a.begin());
    }
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace xgrad::optim
