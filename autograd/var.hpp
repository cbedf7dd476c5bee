// Var<T>: a cheap handle to a tape node or to a persistent leaf (parameter or constant).
#pragma once

#include <memory>
#include <string>

#include "tape.hpp"

namespace xgrad {

template <class T>
class Var {
 public:
  Var() = default;

  // A handle to node `index` of `tape` in its current generation.
  Var(Tape<T>* tape, std::size_t index)
      : slot_(&tape->node(index)), tape_(tape), index_(index), generation_(tape->generation()) {
    ++slot_->handles;
  }
  // A handle to a leaf.
  explicit Var(std::shared_ptr<Leaf<T>> leaf) : slot_(leaf.get()), leaf_(std::move(leaf)) {}
  // Handles to a tape node are counted: when the last one goes and no recorded backward rule
  // reads the node's value, the tape takes the value's storage back (a moved-from Var is empty).
  Var(const Var& o) : slot_(o.slot_), tape_(o.tape_), index_(o.index_), generation_(o.generation_), leaf_(o.leaf_) {
    if (live_node()) ++slot_->handles;
  }
  Var(Var&& o) noexcept
      : slot_(o.slot_), tape_(o.tape_), index_(o.index_), generation_(o.generation_), leaf_(std::move(o.leaf_)) {
    o.slot_ = nullptr;
    o.tape_ = nullptr;
  }
  Var& operator=(const Var& o) {
    Var copy(o);
    return *this = std::move(copy);
  }
  Var& operator=(Var&& o) noexcept {
    if (this == &o) return *this;
    drop();
    slot_ = o.slot_;
    tape_ = o.tape_;
    index_ = o.index_;
    generation_ = o.generation_;
    leaf_ = std::move(o.leaf_);
    o.slot_ = nullptr;
    o.tape_ = nullptr;
    return *this;
  }
  ~Var() { drop(); }

  const Array<T>& value() const { return slot("value").value; }
  // The gradient after backward(); zeros where no gradient reached this value. For an
  // intermediate value (not a leaf) only if retain_grad() was called before backward().
  const Array<T>& grad() const;
  // Keeps this intermediate value's gradient after backward() (parameters always keep theirs).
  const Var& retain_grad() const;
  const typename Array<T>::shape_type& shape() const { return slot("shape").value.shape(); }
  std::size_t size() const { return slot("size").elements(); }
  std::size_t dim() const { return slot("dim").value.dimension(); }
  bool requires_grad() const { return slot("requires_grad").requires_grad; }
  bool defined() const { return slot_ != nullptr; }
  // A parameter: a persistent leaf whose gradient accumulates until zero_grad().
  bool is_param() const { return leaf_ && leaf_->requires_grad; }
  bool is_leaf() const { return leaf_ != nullptr; }

  // Back-propagates from this scalar (a value with one element).
  void backward() const;
  // This value as a constant leaf: no gradient flows through it, and it survives clear_tape().
  Var detach() const;

  // Parameters only.
  void zero_grad() const;
  // Replaces a parameter's value; the new array must have the same shape (else ShapeError).
  void set_value(const Array<T>& v) const;
  // The gradient buffer of a parameter, for optimizers and clipping.
  Array<T>& mutable_grad() const;
  // The value of a parameter, to change in place. Each call marks the value changed (copies the
  // tape made of it, its packed weights, are not read again): write through the reference
  // before the next op reads the parameter, and call again to write after that.
  Array<T>& mutable_value() const;

  // Internals for ops: the slot after checking the handle is live. `who` (the op or accessor
  // asking) is only read to name it in the StaleHandleError.
  Slot<T>& slot(const char* who) const {
    if (slot_ == nullptr || (tape_ != nullptr && tape_->generation() != generation_)) throw_stale(who);
    return *slot_;
  }
  Tape<T>* tape() const { return tape_; }
  std::size_t index() const { return index_; }
  const std::shared_ptr<Leaf<T>>& leaf() const { return leaf_; }

 private:
  // The StaleHandleError for a cleared tape or an empty (default-constructed) Var, naming `who`.
  [[noreturn]] void throw_stale(const char* who) const;
  // A handle to a node of its tape's current generation (not a leaf, not stale, not empty).
  bool live_node() const { return tape_ != nullptr && tape_->generation() == generation_; }
  void drop() {
    if (live_node() && --slot_->handles == 0 && !slot_->value_read) tape_->free_value(*slot_);
  }
  Leaf<T>& param_leaf(const char* what) const;

  Slot<T>* slot_ = nullptr;
  Tape<T>* tape_ = nullptr;  // null for leaves
  std::size_t index_ = 0;
  std::uint64_t generation_ = 0;
  std::shared_ptr<Leaf<T>> leaf_;
};

// A parameter: persistent, requires a gradient, accumulates it.
template <class T>
Var<T> param(Array<T> value);
// A constant leaf: persistent, no gradient.
template <class T>
Var<T> constant(Array<T> value);

}  // namespace xgrad
