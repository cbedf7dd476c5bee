// The tape: nodes appended in execution order, one reverse sweep for backward.
//
// A node's storage (value, gradient, saved arrays, input list) is kept when the tape is
// cleared and reused by the node recorded at the same position next time, so a training loop
// whose graph has the same shapes every step allocates nothing after its first step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <xtensor/xarray.hpp>

#include "errors.hpp"
#include "packed.hpp"

namespace xgrad {

template <class T>
using Array = xt::xarray<T>;
using Shape = std::vector<std::size_t>;

// What an op reads from an input and where it sends the gradient: a tape node or a leaf.
template <class T>
struct Slot {
  Array<T> value;
  Array<T> grad;               // valid when has_grad
  bool requires_grad = false;  // gradient flows into this slot
  bool has_grad = false;       // grad holds a value in the current sweep (always for params)
  // Part of grad waits in the tape: in the sweep's batched weight gradients, or as a block of a
  // later node's gradient (Tape::grad_blocks), added when the sweep reaches this node.
  bool deferred = false;
  bool is_node = false;  // a tape node (the sweep reaches it), not a leaf
  std::uint32_t block_source = kNoSource;  // the held gradient this node's block is in
  std::size_t block_offset = 0;            // where in it
  static constexpr std::uint32_t kNoSource = ~std::uint32_t(0);
  // Tape nodes only: the live Var handles to this node, whether a recorded backward rule reads
  // this value, and whether the value's storage went back to the tape (no handle, no reader).
  // A freed value keeps its shape, so rules still size gradients from it.
  std::uint32_t handles = 0;
  bool value_read = false;
  bool value_freed = false;

  // The value's element count from its shape: right even when the value was freed.
  std::size_t elements() const {
    std::size_t n = 1;
    for (std::size_t d : value.shape()) n *= d;
    return n;
  }

  // Pointer to a gradient buffer of value's shape, and the GEMM beta to write into it:
  // 0 when the buffer is fresh in this sweep, 1 when it already holds a gradient.
  T* grad_buffer(T& beta);
  // Gives a node without a gradient in this sweep a buffer of value's shape (from the sweeping
  // tape's pool when it has one of that size; its contents are to be overwritten) and marks
  // has_grad. A gradient's buffer is so taken when its first part is written, not before.
  void fresh_grad();
};

namespace detail {
// A number no leaf value had before (one counter for the program).
std::uint64_t next_leaf_version();
}  // namespace detail

// A persistent leaf: a parameter (requires_grad) or a constant. Owns its value and gradient
// and outlives any tape.
template <class T>
struct Leaf : Slot<T> {
  std::uint64_t held_generation = 0;  // the tape generation that last took a reference
  const void* held_tape = nullptr;
  // Renewed at every change of the value through the API (Var::set_value, Var::mutable_value,
  // a no-grad output leaf taken again for a new value):
  // one number per content over the program's life, so a copy made from the value (a tape's
  // packed weight) knows whether it still holds it.
  std::uint64_t version = detail::next_leaf_version();
};

template <class T>
struct Node;
template <class T>
using BackwardFn = void (*)(Node<T>&);

// One recorded op. Whatever its backward needs beyond the inputs' values and its own output
// is kept in the node, so the backward rule is a plain function: an array, a list of ids, and
// a small trivially copyable struct of the op's own with named fields (its axis, its range, its
// factor), written by OpRecord::save and read by detail::saved<S>(node). All three are reused
// by the node recorded at this position next time: saving allocates nothing after the first step.
template <class T>
struct Node : Slot<T> {
  static constexpr std::size_t kSavedBytes = 32;
  Node() { this->is_node = true; }

  const char* op = "";
  std::vector<Slot<T>*> inputs;
  std::vector<bool> input_is_param;  // for graph export
  BackwardFn<T> backward = nullptr;
  Array<T> saved_array;
  std::vector<int> saved_ids;
  unsigned char saved_bytes[kSavedBytes] = {};  // the op's struct, copied in and out with memcpy
  // Keep this node's gradient after backward (Var::retain_grad); otherwise its buffer goes back
  // to the tape's pool as soon as the node's own backward has used it.
  bool retain = false;
  bool released = false;  // the gradient was handed back to the pool in the last sweep
  int scope = 0;          // the NameScope the op was recorded in (0: none), for graph export

  Slot<T>& in(std::size_t i) { return *inputs[i]; }
};

template <class T>
class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // This thread's tape for element type T: the one ops record on.
  static Tape& current();

  // Appends a node, reusing the storage of the node that last stood at this position.
  Node<T>& push(const char* op);
  // Keeps a leaf alive while this tape's generation refers to it.
  void hold(const std::shared_ptr<Leaf<T>>& leaf);
  // Keeps an object (a custom op's backward closure and name) alive until the next clear(),
  // which frees it: a node's saved_bytes may then hold a plain pointer to it.
  void keep(std::shared_ptr<void> object) { kept_.push_back(std::move(object)); }
  // Forgets every node (handles into it become stale) but keeps their storage.
  void clear();
  // Frees the kept storage too.
  void release();

  std::size_t size() const { return size_; }
  std::uint64_t generation() const { return generation_; }
  Node<T>& node(std::size_t i) { return *nodes_[i]; }
  // Bytes held by the tape's nodes (values, gradients, saved arrays), used or kept for reuse.
  std::size_t memory_bytes() const;
  // The value of node s (on this tape) lost its last handle and no backward rule reads it: its
  // storage goes to the pool for the next op's output of that size (Var's destructor calls this).
  void free_value(Slot<T>& s);
  // Sizes an op's output v to `shape`, its storage from the pool when v's does not fit.
  void size_output(Array<T>& v, const Shape& shape);
  // Of memory_bytes(), the stacks of batched weight gradients (at most kBatchBytes per weight).
  std::size_t batch_bytes() const;
  // Reverse sweep from node `root`, whose value must have one element. Parameters accumulate
  // their gradients; an intermediate node keeps its gradient only if retain_grad() was asked.
  void backward(std::size_t root);

  // The weight gradient of a product with few rows, w += gᵀ·a (w (n, k), g (rows, n), a (rows, k))
  // or, with !w_is_nk, w += aᵀ·g (w (k, n)). During a sweep of this thread's tape of T the rows
  // are copied onto w's stack and summed with the other products into w in one GEMM with
  // K = all the rows (a 32-row product runs at a quarter of a large one's rate): before the
  // sweep reaches w's node, when the stack would pass kBatchBytes, or at the end of the sweep.
  // Outside a sweep, or under DetectAnomaly or a Profile (which look at each rule's gradients
  // and time), one GEMM now.
  static void weight_grad(Slot<T>& w, const T* g, const T* a, std::size_t rows, std::size_t n, std::size_t k,
                          bool w_is_nk);
  // linear_onehot's weight gradient dw[:, ids[i]] += g[i] for i < count (dw (out, in), g (count,
  // out)). During a sweep that batches, for a w of at most kBatchBytes, the rows are added into a
  // dwᵀ (in, out) held for w, where they are contiguous (in dw a column's values are `in` apart,
  // one cache line each), and dwᵀ goes into dw as weight_grad's stacks do: before the sweep
  // reaches w's node, or at its end. Returns false where it does not batch: the caller adds.
  static bool onehot_grad(Slot<T>& w, const int* ids, std::size_t count, const T* g);
  // Node n's gradient laid out as its inputs' gradients one after another (stack, concat along
  // axis 0, reshape): input i receives the block after those of inputs 0..i-1. During a sweep
  // that batches (not under DetectAnomaly or a Profile) and unless n's gradient is retained,
  // n's buffer is held and each input node adds its block when the sweep reaches it, so T
  // stacked steps take one buffer instead of T more at once; otherwise each block is added now.
  static void grad_blocks(Node<T>& n);
  // The tape products run for on this thread: the one being swept, else current().
  static Tape& active();
  // op(w) (trans_b: wᵀ) packed for blas::gemm_packed, for products with few rows that read the
  // 2-D leaf w: a recurrent weight, read at every step of the forward pass (wᵀ) and again at
  // every step of the sweep (w). Packed at the first such product of this generation and reused
  // while w's version stays; clear() forgets the packs and keeps their storage. Not counted in
  // memory_bytes(): like a BLAS's packing buffers it copies weights, not the graph (pack_bytes()).
  const blas::Packed<T>& packed(const Leaf<T>& w, bool trans_b);
  // wᵀ (in, out) of the 2-D leaf w (out, in), row-major: the rows linear_onehot gathers, which in
  // w are columns. Made at the first gather of this generation and kept while w's version
  // stays, as packed(), and counted in pack_bytes().
  const T* transposed(const Leaf<T>& w);
  std::size_t pack_bytes() const;
  // Products with at most this many rows read a packed parameter (ops' products); more rows
  // amortise a GEMM's own packing.
  static constexpr std::size_t kPackMaxRows = 128;
  // A product with at least this many rows runs near the GEMM peak: its weight gradient is not batched.
  static constexpr std::size_t kBatchMaxRows = 512;
  // Bound of one weight's stack of rows (g's and a's), so batching holds little memory.
  static constexpr std::size_t kBatchBytes = std::size_t(1) << 20;

 private:
  std::vector<std::unique_ptr<Node<T>>> nodes_;
  std::size_t size_ = 0;
  std::uint64_t generation_ = 1;
  using Storage = typename Array<T>::storage_type;
  // Moves a buffer's storage into the pool (nothing for an empty one).
  void give(Storage& storage);
  // A buffer of n elements from the pool into `storage`, if one is free.
  bool take(Storage& storage, std::size_t n);
  // Gives s's gradient a buffer of its value's size from the pool if one is free.
  void acquire(Slot<T>& s);
  friend struct Slot<T>;
  void release_grad(Node<T>& node);

  std::vector<std::shared_ptr<Leaf<T>>> held_;
  std::vector<std::shared_ptr<void>> kept_;
  // Free buffers by element count, one pool for values and gradients: a value no rule reads and
  // no handle holds comes here (a forward pass holds the values its backward reads and those with
  // handles, plus a few in flight), and so does an intermediate gradient once its rule has run
  // (during a sweep only the gradients still waiting to be propagated hold memory). The next
  // output or gradient of that size takes it: the sweep's gradients reuse the forward's freed
  // values, and the next forward pass the sweep's gradients.
  std::unordered_map<std::size_t, std::vector<Storage>> pool_;

  // One weight's batched gradient products in the current sweep: the rows stacked so far.
  // Kept (emptied) across sweeps, so the stacks are allocated once.
  // onehot_grad's batch instead: g holds dwᵀ (k = in rows of n = out), rows counts the ids added.
  struct Batch {
    Slot<T>* w = nullptr;  // null: free
    bool w_is_nk = true;
    bool onehot = false;
    std::size_t n = 0, k = 0, rows = 0;
    std::vector<T> g, a;  // (rows, n) and (rows, k)
  };
  std::vector<Batch> batches_;
  // w's batch of this kind and shape, emptied (rows = 0) if new; w's batch of another kind or
  // shape is summed into w first.
  Batch& batch_for(Slot<T>& w, bool onehot, bool w_is_nk, std::size_t n, std::size_t k);
  // The packed leaf weights of this generation (w null: free, storage kept).
  struct PackEntry {
    const Leaf<T>* w = nullptr;
    std::uint64_t version = 0;
    bool trans_b = false;
    bool plain = false;  // transposed(): `copy` holds wᵀ, `packed` is unused
    blas::Packed<T> packed;
    std::vector<T> copy;
  };
  std::vector<PackEntry> packs_;
  // w's entry of this kind: *current says whether it holds w as it is now; else the caller fills it.
  PackEntry& pack_entry(const Leaf<T>& w, bool trans_b, bool plain, bool* current);
  bool batching_ = false;  // in a sweep that batches weight gradients
  // Gradients held for grad_blocks: the buffer and how many input nodes still wait for a block.
  struct Source {
    Storage grad;
    std::size_t waiting = 0;
  };
  std::vector<Source> sources_;
  std::vector<Slot<T>*> waiting_;  // the nodes with a block pending, for a failed sweep
  void add_block(Slot<T>& s);      // s's pending block into its gradient
  void add_rows(Batch& b, const T* g, const T* a, std::size_t rows);
  void flush(Batch& b);
  void flush(Slot<T>& w);
  void flush_all();
  void drop_batches();  // a failed sweep: the partial stacks are forgotten
};

// Clears this thread's float and double tapes.
void clear_tape();

// Thread-locals read at a fixed offset from the thread pointer, even in position-independent
// code, instead of through a call to __tls_get_addr.
#if defined(__GNUC__)
#define XGRAD_TLS_INITIAL_EXEC __attribute__((tls_model("initial-exec")))
#else
#define XGRAD_TLS_INITIAL_EXEC
#endif

namespace detail {
struct ProfileState;
// Everything an op asks of its thread, in one thread-local block that it reads once: the guards
// that change recording (NoGradGuard, DetectAnomaly, Profile, NameScope) write here. All zero is
// the default, so the block needs no initialisation code, and reading it costs a load, not a call.
struct ThreadState {
  bool no_grad;           // inside a NoGradGuard
  bool anomaly;           // inside a DetectAnomaly
  int scope;              // the innermost NameScope's id (0: none)
  ProfileState* profile;  // the innermost recording Profile (null: none)
};
extern thread_local ThreadState tl_thread XGRAD_TLS_INITIAL_EXEC;

// The output leaf of an op under a NoGradGuard. A thread keeps the last kRecentLeaves it made
// and hands out again one that no Var or tape holds any more, storage and all, so a sampling
// loop allocates nothing after its first steps (they hold at most that many arrays).
inline constexpr std::size_t kRecentLeaves = 8;
template <class T>
std::shared_ptr<Leaf<T>> no_grad_leaf();
inline const ThreadState& thread_state() { return tl_thread; }
}  // namespace detail

// Whether ops record (false inside a NoGradGuard), and anomaly detection; both per thread.
inline bool grad_enabled() { return !detail::tl_thread.no_grad; }
inline bool anomaly_enabled() { return detail::tl_thread.anomaly; }

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Names the ops recorded on this thread while it lives, for to_dot, which draws each scope as a
// cluster. Scopes nest: NameScope("layer 0") around NameScope("t=2") gives "layer 0 t=2", a
// cluster inside "layer 0". Costs an int stored per node; the name is looked up once, here.
class NameScope {
 public:
  explicit NameScope(const std::string& name);
  ~NameScope();
  NameScope(const NameScope&) = delete;
  NameScope& operator=(const NameScope&) = delete;

 private:
  int previous_;
};

namespace detail {
// A scope: its own name, its full label (the enclosing scopes' names first) and its parent (0
// for none). Ids are shared by all threads and stay valid for the life of the process; the same
// name inside the same parent always gets the same id.
struct ScopeInfo {
  std::string name;
  std::string label;
  int parent = 0;
};
int current_scope();
ScopeInfo scope_info(int id);

// Told by the backward sweeps of this thread's tapes of T about every node the sweep reaches,
// at the moment its gradient is final (all the nodes after it have sent theirs). Registered in a
// per-thread list (GradReport does); the sweep reads the list once, so with none registered a
// node pays one well-predicted branch on a local and the recording of ops pays nothing.
template <class T>
struct SweepObserver {
  SweepObserver* next = nullptr;
  virtual ~SweepObserver() = default;
  virtual void sweep_started(const Tape<T>& tape, std::size_t root) = 0;
  // Node i of the sweeping tape, its gradient final (has_grad false: no gradient reached it).
  virtual void node_done(std::size_t i, const Node<T>& node) = 0;
};
// The head of this thread's list of observers of T's sweeps.
template <class T>
SweepObserver<T>*& sweep_observers();
}  // namespace detail

// Under this guard the first NaN or Inf in any op's forward value or gradient throws an
// AnomalyError naming the op, its position on the tape and its inputs' shapes.
class DetectAnomaly {
 public:
  DetectAnomaly();
  ~DetectAnomaly();
  DetectAnomaly(const DetectAnomaly&) = delete;
  DetectAnomaly& operator=(const DetectAnomaly&) = delete;

 private:
  bool previous_;
};

}  // namespace xgrad
