#include "tape.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "record.hpp"
#include "var.hpp"

namespace xgrad {

thread_local detail::ThreadState detail::tl_thread XGRAD_TLS_INITIAL_EXEC;

namespace {

// Every scope ever opened, id - 1 as index; a (parent, name) pair is interned once.
struct ScopeTable {
  std::mutex mutex;
  std::vector<detail::ScopeInfo> scopes;
  std::map<std::pair<int, std::string>, int> ids;
  static ScopeTable& instance() {
    static auto* table = new ScopeTable;  // never destroyed: thread exits may come after static destruction
    return *table;
  }
};
}  // namespace

NameScope::NameScope(const std::string& name) : previous_(detail::tl_thread.scope) {
  ScopeTable& table = ScopeTable::instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  auto [it, fresh] = table.ids.try_emplace({previous_, name}, static_cast<int>(table.scopes.size()) + 1);
  if (fresh) {
    const std::string label = previous_ == 0 ? name : table.scopes[previous_ - 1].label + " " + name;
    table.scopes.push_back({name, label, previous_});
  }
  detail::tl_thread.scope = it->second;
}
NameScope::~NameScope() { detail::tl_thread.scope = previous_; }

namespace detail {
int current_scope() { return tl_thread.scope; }
ScopeInfo scope_info(int id) {
  ScopeTable& table = ScopeTable::instance();
  std::lock_guard<std::mutex> lock(table.mutex);
  if (id <= 0 || static_cast<std::size_t>(id) > table.scopes.size())
    throw Error("scope_info: no scope has id " + std::to_string(id));
  return table.scopes[id - 1];
}
}  // namespace detail

NoGradGuard::NoGradGuard() : previous_(detail::tl_thread.no_grad) { detail::tl_thread.no_grad = true; }
NoGradGuard::~NoGradGuard() { detail::tl_thread.no_grad = previous_; }
DetectAnomaly::DetectAnomaly() : previous_(detail::tl_thread.anomaly) { detail::tl_thread.anomaly = true; }
DetectAnomaly::~DetectAnomaly() { detail::tl_thread.anomaly = previous_; }

template <class T>
T* Slot<T>::grad_buffer(T& beta) {
  if (has_grad) {
    beta = T(1);
  } else {
    grad.resize(value.shape());
    has_grad = true;
    beta = T(0);
  }
  return grad.data();
}

namespace {

// A thread's tape is taken from this pool and given back, emptied, when the thread ends. Tapes
// are never freed, so a handle that outlives its thread finds a newer generation and reports
// itself stale instead of reading freed memory.
template <class T>
struct TapePool {
  std::mutex mutex;
  std::vector<Tape<T>*> free;
  static TapePool& instance() {
    static auto* pool = new TapePool;  // never destroyed: thread exits may come after static destruction
    return *pool;
  }
};

template <class T>
struct ThreadTape {
  Tape<T>* tape;
  ThreadTape() {
    TapePool<T>& pool = TapePool<T>::instance();
    std::lock_guard<std::mutex> lock(pool.mutex);
    if (pool.free.empty()) {
      tape = new Tape<T>;
    } else {
      tape = pool.free.back();
      pool.free.pop_back();
    }
  }
  ~ThreadTape() {
    tape->release();
    TapePool<T>& pool = TapePool<T>::instance();
    std::lock_guard<std::mutex> lock(pool.mutex);
    pool.free.push_back(tape);
  }
};

}  // namespace

template <class T>
Tape<T>& Tape<T>::current() {
  thread_local ThreadTape<T> holder;
  return *holder.tape;
}

template <class T>
Node<T>& Tape<T>::push(const char* op) {
  if (size_ == nodes_.size()) nodes_.push_back(std::make_unique<Node<T>>());
  Node<T>& n = *nodes_[size_++];
  n.op = op;
  n.inputs.clear();
  n.input_is_param.clear();
  n.backward = nullptr;
  n.has_grad = false;
  n.retain = false;
  n.released = false;
  n.scope = detail::tl_thread.scope;
  return n;
}

template <class T>
void Tape<T>::hold(const std::shared_ptr<Leaf<T>>& leaf) {
  if (leaf->held_tape == this && leaf->held_generation == generation_) return;
  leaf->held_tape = this;
  leaf->held_generation = generation_;
  held_.push_back(leaf);
}

template <class T>
void Tape<T>::clear() {
  size_ = 0;
  ++generation_;
  held_.clear();
  kept_.clear();
}

template <class T>
void Tape<T>::release() {
  clear();
  nodes_.clear();
  nodes_.shrink_to_fit();
  grad_pool_.clear();
  held_.shrink_to_fit();
  kept_.shrink_to_fit();
}

template <class T>
std::size_t Tape<T>::memory_bytes() const {
  std::size_t bytes = nodes_.capacity() * sizeof(void*) + held_.capacity() * sizeof(void*);
  for (const auto& n : nodes_) {
    bytes += sizeof(Node<T>);
    bytes += (n->value.storage().capacity() + n->grad.storage().capacity() + n->saved_array.storage().capacity()) *
             sizeof(T);
    bytes += n->inputs.capacity() * sizeof(Slot<T>*) + n->saved_ids.capacity() * sizeof(int);
  }
  for (const auto& [size, buffers] : grad_pool_)
    for (const auto& b : buffers) bytes += b.storage().capacity() * sizeof(T);
  return bytes;
}

template <class T>
void Tape<T>::acquire(Array<T>& grad, std::size_t n) {
  if (grad.size() == n) return;
  auto it = grad_pool_.find(n);
  if (it == grad_pool_.end() || it->second.empty()) return;  // the first write allocates
  grad = std::move(it->second.back());
  it->second.pop_back();
}

template <class T>
void Tape<T>::release_grad(Node<T>& node) {
  node.has_grad = false;
  node.released = true;
  if (node.grad.size() == 0) return;
  grad_pool_[node.grad.size()].push_back(std::move(node.grad));
  node.grad = Array<T>::from_shape({0});  // no storage (a default xarray is 0-d with one element)
}

template <class T>
void Tape<T>::backward(std::size_t root) {
  for (std::size_t i = 0; i <= root; ++i) {
    nodes_[i]->has_grad = false;
    nodes_[i]->released = false;
  }
  Node<T>& r = *nodes_[root];
  acquire(r.grad, r.value.size());
  r.grad.resize(r.value.shape());
  std::fill(r.grad.begin(), r.grad.end(), T(1));
  r.has_grad = true;
  const bool check = anomaly_enabled();
  detail::ProfileState* profile = detail::profile_state();
  detail::ProfileClock::time_point start;
  detail::SweepObserver<T>* const observers = detail::sweep_observers<T>();
  for (detail::SweepObserver<T>* o = observers; o != nullptr; o = o->next) o->sweep_started(*this, root);
  for (std::size_t i = root + 1; i-- > 0;) {
    Node<T>& n = *nodes_[i];
    if (observers != nullptr)
      for (detail::SweepObserver<T>* o = observers; o != nullptr; o = o->next) o->node_done(i, n);
    if (n.backward == nullptr || !n.has_grad) continue;
    // Inputs that are nodes and receive their first gradient take a buffer from the pool
    // (leaves own theirs and always have has_grad).
    for (Slot<T>* s : n.inputs)
      if (s->requires_grad && !s->has_grad) acquire(s->grad, s->value.size());
    if (profile != nullptr) start = detail::ProfileClock::now();
    n.backward(n);
    if (profile != nullptr) {
      std::size_t bytes = 0;
      for (Slot<T>* s : n.inputs)
        if (s->requires_grad) bytes += s->value.size() * sizeof(T);
      detail::profile_backward(profile, n.op, start, bytes);
    }
    if (check) {
      for (Slot<T>* s : n.inputs) {
        if (s->requires_grad && s->has_grad && !detail::all_finite(s->grad)) {
          std::vector<std::string> shapes;
          for (Slot<T>* in : n.inputs) shapes.push_back(shape_str(in->value.shape()));
          detail::throw_anomaly(n.op, i, "gradient", shapes);
        }
      }
    }
    if (!n.retain) release_grad(n);
  }
}

void clear_tape() {
  Tape<float>::current().clear();
  Tape<double>::current().clear();
}

namespace detail {

template <class T>
SweepObserver<T>*& sweep_observers() {
  thread_local SweepObserver<T>* head = nullptr;
  return head;
}
template SweepObserver<float>*& sweep_observers<float>();
template SweepObserver<double>*& sweep_observers<double>();

void throw_anomaly(const char* op, std::size_t position, const char* where,
                   const std::vector<std::string>& input_shapes) {
  std::string msg = std::string("anomaly: ") + op + " (tape position " + std::to_string(position) +
                    ") produced NaN or Inf in its " + where + "; input shapes:";
  for (const auto& s : input_shapes) msg += " " + s;
  throw AnomalyError(msg);
}

template <class T>
Array<T> sum_to(const Array<T>& g, const typename Array<T>::shape_type& target) {
  const std::size_t lead = g.dimension() - target.size();
  // Fast path: target is the trailing block of g (a bias row): add the blocks up.
  std::size_t block = 1;
  bool trailing = true;
  for (std::size_t j = 0; j < target.size(); ++j) {
    block *= target[j];
    if (target[j] != g.shape()[lead + j]) trailing = false;
  }
  Array<T> r = Array<T>::from_shape(target);
  if (trailing) {
    std::fill(r.begin(), r.end(), T(0));
    const T* src = g.data();
    T* dst = r.data();
    for (std::size_t off = 0; off < g.size(); off += block)
      for (std::size_t k = 0; k < block; ++k) dst[k] += src[off + k];
    return r;
  }
  std::vector<std::size_t> axes;
  for (std::size_t i = 0; i < lead; ++i) axes.push_back(i);
  for (std::size_t j = 0; j < target.size(); ++j)
    if (target[j] == 1 && g.shape()[lead + j] != 1) axes.push_back(lead + j);
  Array<T> s = xt::sum(g, axes, xt::evaluation_strategy::immediate);
  std::copy(s.begin(), s.end(), r.begin());
  return r;
}

template Array<float> sum_to(const Array<float>&, const Array<float>::shape_type&);
template Array<double> sum_to(const Array<double>&, const Array<double>::shape_type&);

}  // namespace detail

template struct Slot<float>;
template struct Slot<double>;
template class Tape<float>;
template class Tape<double>;

}  // namespace xgrad
