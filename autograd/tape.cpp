#include "tape.hpp"

#include "parallel.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "blas.hpp"
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
std::uint64_t next_leaf_version() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}
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
  n.handles = 0;
  n.value_read = false;
  n.deferred = false;
  n.block_source = Slot<T>::kNoSource;
  if (n.value_freed) {  // storage for the value it had: every freed buffer comes back this way
    n.value_freed = false;
    if (!take(n.value.storage(), n.elements()))
      n.value = Array<T>::from_shape({0});  // the shape is stale: resizing to it must allocate
  }
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
  for (PackEntry& e : packs_) e.w = nullptr;
}

template <class T>
void Tape<T>::release() {
  clear();
  nodes_.clear();
  nodes_.shrink_to_fit();
  pool_.clear();
  batches_.clear();
  batches_.shrink_to_fit();
  packs_.clear();
  packs_.shrink_to_fit();
  sources_.clear();
  sources_.shrink_to_fit();
  waiting_.shrink_to_fit();
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
  for (const auto& [size, buffers] : pool_)
    for (const auto& b : buffers) bytes += b.capacity() * sizeof(T);
  for (const Source& src : sources_) bytes += src.grad.capacity() * sizeof(T);
  return bytes + batch_bytes();
}

template <class T>
void Tape<T>::give(Storage& storage) {
  if (storage.size() == 0) return;
  pool_[storage.size()].push_back(std::move(storage));
  storage = Storage();
}

template <class T>
bool Tape<T>::take(Storage& storage, std::size_t n) {
  auto it = pool_.find(n);
  if (it == pool_.end() || it->second.empty()) return false;
  storage = std::move(it->second.back());
  it->second.pop_back();
  return true;
}

template <class T>
void Tape<T>::free_value(Slot<T>& s) {
  if (s.value.storage().size() == 0) return;
  try {
    give(s.value.storage());
  } catch (...) {  // no room in the pool's list: the storage is simply released (a destructor calls this)
    s.value.storage() = Storage();
  }
  s.value_freed = true;
}

template <class T>
void Tape<T>::size_output(Array<T>& v, const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  if (v.storage().size() != n) {
    give(v.storage());
    take(v.storage(), n);
    v.resize(shape, true);  // the storage already holds n elements unless the pool had none
    return;
  }
  v.resize(shape);
}

template <class T>
std::size_t Tape<T>::batch_bytes() const {
  std::size_t bytes = 0;
  for (const Batch& b : batches_) bytes += (b.g.capacity() + b.a.capacity()) * sizeof(T);
  return bytes;
}

template <class T>
void Tape<T>::acquire(Slot<T>& s) {
  const std::size_t n = s.elements();
  if (s.grad.storage().size() == n) return;
  Storage buffer;
  if (!take(buffer, n)) return;  // the first write allocates
  give(s.grad.storage());
  s.grad.storage() = std::move(buffer);
  s.grad.resize(s.value.shape(), true);  // the storage holds n elements: only the shape changes
}

template <class T>
void Tape<T>::release_grad(Node<T>& node) {
  node.has_grad = false;
  node.released = true;
  if (node.grad.storage().size() == 0) return;
  give(node.grad.storage());
  node.grad = Array<T>::from_shape({0});  // no storage (a default xarray is 0-d with one element)
}

namespace {
// The tape of T this thread is sweeping, for the rules' weight_grad(); null outside a sweep.
template <class T>
Tape<T>*& sweeping_tape() {
  thread_local Tape<T>* tape = nullptr;
  return tape;
}

}  // namespace

template <class T>
Tape<T>& Tape<T>::active() {
  Tape* t = sweeping_tape<T>();
  return t != nullptr ? *t : current();
}

template <class T>
typename Tape<T>::PackEntry& Tape<T>::pack_entry(const Leaf<T>& w, bool trans_b, bool plain, bool* current) {
  PackEntry* entry = nullptr;
  for (PackEntry& e : packs_) {
    if (e.w == &w && e.trans_b == trans_b && e.plain == plain) {
      *current = e.version == w.version;
      return e;  // when w changed since, made again here
    }
    if (e.w == nullptr && entry == nullptr) entry = &e;
  }
  if (entry == nullptr) entry = &packs_.emplace_back();
  const auto& s = w.value.shape();
  if (s.size() != 2) throw Error("Tape::packed: the weight must be a matrix, got " + shape_str(s));
  *current = false;
  return *entry;
}

template <class T>
const blas::Packed<T>& Tape<T>::packed(const Leaf<T>& w, bool trans_b) {
  bool current;
  PackEntry& entry = pack_entry(w, trans_b, false, &current);
  if (current) return entry.packed;
  const auto& s = w.value.shape();
  entry.packed.pack(trans_b, trans_b ? s[0] : s[1], trans_b ? s[1] : s[0], w.value.data());
  entry.w = &w;
  entry.version = w.version;
  entry.trans_b = trans_b;
  entry.plain = false;
  return entry.packed;
}

template <class T>
const T* Tape<T>::transposed(const Leaf<T>& w) {
  bool current;
  PackEntry& entry = pack_entry(w, false, true, &current);
  if (current) return entry.copy.data();
  const auto& s = w.value.shape();
  entry.copy.resize(w.value.size());
  blas::transpose(s[0], s[1], w.value.data(), entry.copy.data());
  entry.w = &w;
  entry.version = w.version;
  entry.trans_b = false;
  entry.plain = true;
  return entry.copy.data();
}

template <class T>
std::size_t Tape<T>::pack_bytes() const {
  std::size_t bytes = 0;
  for (const PackEntry& e : packs_) bytes += e.packed.bytes() + e.copy.capacity() * sizeof(T);
  return bytes;
}

template <class T>
void Slot<T>::fresh_grad() {
  if (Tape<T>* tape = sweeping_tape<T>(); tape != nullptr && is_node) tape->acquire(*this);
  grad.resize(value.shape());  // nothing to do when the pool gave a buffer
  has_grad = true;
}

template <class T>
T* Slot<T>::grad_buffer(T& beta) {
  if (has_grad) {
    beta = T(1);
  } else {
    fresh_grad();
    beta = T(0);
  }
  return grad.data();
}

namespace {
// dw (+)= gᵀ·a (dw (n, k)) or aᵀ·g (dw (k, n)) over `rows` rows, β as grad_buffer gives it.
template <class T>
void weight_gemm(T* dw, T beta, const T* g, const T* a, std::size_t rows, std::size_t n, std::size_t k,
                 bool w_is_nk) {
  if (w_is_nk)
    blas::gemm(true, false, n, k, rows, T(1), g, a, beta, dw);
  else
    blas::gemm(true, false, k, n, rows, T(1), a, g, beta, dw);
}
}  // namespace

template <class T>
void Tape<T>::weight_grad(Slot<T>& w, const T* g, const T* a, std::size_t rows, std::size_t n, std::size_t k,
                          bool w_is_nk) {
  Tape* tape = sweeping_tape<T>();
  const std::size_t bytes = rows * (n + k) * sizeof(T);
  if (tape == nullptr || !tape->batching_ || rows >= kBatchMaxRows || bytes > kBatchBytes) {
    T beta;
    T* dw = w.grad_buffer(beta);
    weight_gemm(dw, beta, g, a, rows, n, k, w_is_nk);
    return;
  }
  Batch* b = &tape->batch_for(w, false, w_is_nk, n, k);
  if ((b->rows + rows) * (n + k) * sizeof(T) > kBatchBytes) {
    tape->flush(*b);
    b->w = &w;
  }
  tape->add_rows(*b, g, a, rows);
  w.deferred = true;
}

template <class T>
typename Tape<T>::Batch& Tape<T>::batch_for(Slot<T>& w, bool onehot, bool w_is_nk, std::size_t n, std::size_t k) {
  Batch* b = nullptr;
  Batch* free = nullptr;
  for (Batch& x : batches_) {
    if (x.w == &w) b = &x;
    if (x.w == nullptr && free == nullptr) free = &x;
  }
  // The same weight in a product of the other orientation, or in linear_onehot and a product:
  // its rows go on a stack of their own shape, so the first stack is summed now.
  if (b != nullptr && (b->onehot != onehot || b->w_is_nk != w_is_nk || b->n != n || b->k != k)) {
    flush(*b);
    free = b;
    b = nullptr;
  }
  if (b != nullptr) return *b;
  if (free == nullptr) free = &batches_.emplace_back();
  free->w = &w;
  free->onehot = onehot;
  free->w_is_nk = w_is_nk;
  free->n = n;
  free->k = k;
  free->rows = 0;
  return *free;
}

template <class T>
bool Tape<T>::onehot_grad(Slot<T>& w, const int* ids, std::size_t count, const T* g) {
  Tape* tape = sweeping_tape<T>();
  const std::size_t out = w.value.shape()[0], in = w.value.shape()[1];
  if (tape == nullptr || !tape->batching_ || out * in * sizeof(T) > kBatchBytes) return false;
  Batch& b = tape->batch_for(w, true, true, out, in);
  if (b.rows == 0) b.g.assign(in * out, T(0));  // dwᵀ, zero until the first ids
  T* dwt = b.g.data();
  for (std::size_t i = 0; i < count; ++i) {
    T* row = dwt + static_cast<std::size_t>(ids[i]) * out;
    const T* gi = g + i * out;
    for (std::size_t o = 0; o < out; ++o) row[o] += gi[o];
  }
  b.rows += count;
  w.deferred = true;
  return true;
}

template <class T>
void Tape<T>::add_rows(Batch& b, const T* g, const T* a, std::size_t rows) {
  // The stacks only grow (resizing within their size would zero-fill rows about to be copied over);
  // their capacity doubles, never past the bound, so a sweep reallocates each stack O(log rows)
  // times (growing from the size instead reallocated and copied the whole stack at every step).
  const std::size_t total = b.rows + rows;
  const std::size_t bound = kBatchBytes / ((b.n + b.k) * sizeof(T));
  auto grow = [&](std::vector<T>& v, std::size_t width) {
    if (v.size() >= total * width) return;
    if (v.capacity() < total * width)
      v.reserve(std::max(total, std::min(bound, 2 * (v.capacity() / width))) * width);
    v.resize(total * width);
  };
  grow(b.g, b.n);
  grow(b.a, b.k);
  // Split by rows as the elementwise rules that wrote g split theirs (for_rows in nn_ops.cpp):
  // each thread copies rows its core's cache holds.
  T* sg = b.g.data() + b.rows * b.n;
  T* sa = b.a.data() + b.rows * b.k;
  const std::size_t n = b.n, k = b.k;
  auto copy = [=](std::size_t begin, std::size_t end) {
    std::copy(g + begin * n, g + end * n, sg + begin * n);
    std::copy(a + begin * k, a + end * k, sa + begin * k);
  };
  const std::size_t grain = std::max<std::size_t>(1, parallel::kFunctionGrain / (n + k));
  if (rows < 2 * grain)
    copy(0, rows);  // a small copy: no loop object to build at every step
  else
    parallel::parallel_for(rows, grain, copy);
  b.rows = total;
}

template <class T>
void Tape<T>::flush(Batch& b) {
  if (b.w == nullptr) return;
  Slot<T>& w = *b.w;
  if (b.rows > 0) {
    T beta;
    T* dw = w.grad_buffer(beta);
    if (b.onehot)
      blas::transpose(b.k, b.n, b.g.data(), dw, beta != T(0));  // dwᵀ (in, out) into dw (out, in)
    else
      weight_gemm(dw, beta, b.g.data(), b.a.data(), b.rows, b.n, b.k, b.w_is_nk);
  }
  w.deferred = w.block_source != Slot<T>::kNoSource;
  b.w = nullptr;
  b.rows = 0;
}

template <class T>
void Tape<T>::flush(Slot<T>& w) {
  if (w.block_source != Slot<T>::kNoSource) add_block(w);
  for (Batch& b : batches_)
    if (b.w == &w) flush(b);
  w.deferred = false;
}

template <class T>
void Tape<T>::flush_all() {
  for (Batch& b : batches_) flush(b);
  for (Slot<T>* s : waiting_)
    if (s->block_source != Slot<T>::kNoSource) flush(*s);
  waiting_.clear();
}

template <class T>
void Tape<T>::drop_batches() {
  for (Batch& b : batches_) {
    if (b.w != nullptr) b.w->deferred = false;
    b.w = nullptr;
    b.rows = 0;
  }
  for (Slot<T>* s : waiting_) {
    s->block_source = Slot<T>::kNoSource;
    s->deferred = false;
  }
  waiting_.clear();
  for (Source& src : sources_) {
    give(src.grad);
    src.waiting = 0;
  }
}

template <class T>
void Tape<T>::grad_blocks(Node<T>& n) {
  Tape* tape = sweeping_tape<T>();
  const bool hold = tape != nullptr && tape->batching_ && !n.retain;
  std::uint32_t id = Slot<T>::kNoSource;
  std::size_t offset = 0, waiting = 0;
  for (Slot<T>* in : n.inputs) {
    const std::size_t size = in->elements();
    if (in->requires_grad) {
      if (hold && in->is_node && in->block_source == Slot<T>::kNoSource) {
        if (id == Slot<T>::kNoSource) {  // a free source, or a new one
          id = 0;
          while (id < tape->sources_.size() && tape->sources_[id].waiting != 0) ++id;
          if (id == tape->sources_.size()) tape->sources_.emplace_back();
        }
        in->block_source = id;
        in->block_offset = offset;
        in->deferred = true;
        tape->waiting_.push_back(in);
        ++waiting;
      } else {
        detail::add_grad_copy(*in, n.grad.data() + offset);
      }
    }
    offset += size;
  }
  if (waiting == 0) return;
  Source& src = tape->sources_[id];
  src.grad = std::move(n.grad.storage());
  src.waiting = waiting;
  n.grad = Array<T>::from_shape({0});
}

template <class T>
void Tape<T>::add_block(Slot<T>& s) {
  Source& src = sources_[s.block_source];
  s.block_source = Slot<T>::kNoSource;
  detail::add_grad_copy(s, src.grad.data() + s.block_offset);
  if (--src.waiting == 0) give(src.grad);  // every block delivered: the buffer serves the next node
}

template <class T>
void Tape<T>::backward(std::size_t root) {
  for (std::size_t i = 0; i <= root; ++i) {
    nodes_[i]->has_grad = false;
    nodes_[i]->released = false;
  }
  Node<T>& r = *nodes_[root];
  acquire(r);
  r.grad.resize(r.value.shape());
  std::fill(r.grad.begin(), r.grad.end(), T(1));
  r.has_grad = true;
  const bool check = anomaly_enabled();
  detail::ProfileState* profile = detail::profile_state();
  detail::ProfileClock::time_point start;
  // Weight gradients are batched unless something looks at each rule's gradients or time.
  struct Sweeping {
    Tape* tape;
    Tape* previous;
    bool was_batching;
    Sweeping(Tape* t, bool batching) : tape(t), previous(sweeping_tape<T>()), was_batching(t->batching_) {
      sweeping_tape<T>() = t;
      t->batching_ = batching;
    }
    ~Sweeping() {
      tape->drop_batches();  // after a throw; empty after a finished sweep
      tape->batching_ = was_batching;
      sweeping_tape<T>() = previous;
    }
  } sweeping(this, !check && profile == nullptr);
  detail::SweepObserver<T>* const observers = detail::sweep_observers<T>();
  for (detail::SweepObserver<T>* o = observers; o != nullptr; o = o->next) o->sweep_started(*this, root);
  for (std::size_t i = root + 1; i-- > 0;) {
    Node<T>& n = *nodes_[i];
    if (n.deferred) flush(n);  // every node after this one has sent its gradient: complete it
    if (observers != nullptr)
      for (detail::SweepObserver<T>* o = observers; o != nullptr; o = o->next) o->node_done(i, n);
    if (n.backward == nullptr || !n.has_grad) continue;
    if (profile != nullptr) start = detail::ProfileClock::now();
    n.backward(n);
    if (profile != nullptr) {
      std::size_t bytes = 0;
      for (Slot<T>* s : n.inputs)
        if (s->requires_grad) bytes += s->elements() * sizeof(T);
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
  flush_all();  // the parameters' batched products
}

void clear_tape() {
  Tape<float>::current().clear();
  Tape<double>::current().clear();
}

namespace detail {

template <class T>
std::shared_ptr<Leaf<T>> no_grad_leaf() {
  thread_local std::shared_ptr<Leaf<T>> recent[kRecentLeaves];
  thread_local std::size_t next = 0;
  for (std::shared_ptr<Leaf<T>>& leaf : recent) {
    if (leaf != nullptr && leaf.use_count() == 1) {  // only this list holds it
      leaf->requires_grad = false;
      leaf->has_grad = false;
      leaf->held_generation = 0;
      leaf->held_tape = nullptr;
      leaf->version = detail::next_leaf_version();  // a new value at the same address
      return leaf;
    }
  }
  std::shared_ptr<Leaf<T>>& slot = recent[next++ % kRecentLeaves];
  slot = std::make_shared<Leaf<T>>();
  return slot;
}
template std::shared_ptr<Leaf<float>> no_grad_leaf<float>();
template std::shared_ptr<Leaf<double>> no_grad_leaf<double>();

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
