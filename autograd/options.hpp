// The one idiom for options structs (optimizers, layers, losses), as in PyTorch's C++ frontend:
// a small struct whose options are set by chained setters and read by getters of the same name,
//   optim::AdamOptions().betas(0.9, 0.98).amsgrad(true);   nn::LSTMOptions().layers(2).bidirectional();
//
// To add an option, write one line in the struct, with its meaning in a comment above it:
//   XGRAD_OPTION(Self, Type, name, default)   Self& name(Type v) sets it, Type name() const reads it;
//   XGRAD_FLAG(Self, name)                    a bool, off by default, that a bare name() turns on
//                                             (name(false) turns it off again; on a non-const
//                                             struct a bare name() is the setter, so read flags
//                                             through a const reference, as constructors do).
// Self is the struct itself, or in a base shared by several structs, its CRTP parameter (the
// setters then return the derived struct, so its own options chain after the shared ones).
// Each line leaves the struct's access public; a setter that sets several options at once is
// written by hand from the generated ones (`return beta1(b1).beta2(b2);`). Check the values
// where they are used (the constructor that takes the struct), naming the option.
#pragma once

// `parameter` is the setter's parameter, v, with its default argument if any.
#define XGRAD_OPTION_MEMBERS(Self, Type, name, parameter, init) \
 public:                                                        \
  Self& name(parameter) {                                       \
    name##_ = v;                                                \
    return static_cast<Self&>(*this);                           \
  }                                                             \
  Type name() const { return name##_; }                         \
                                                                \
 private:                                                       \
  Type name##_ = init;                                          \
                                                                \
 public:

#define XGRAD_OPTION(Self, Type, name, init) XGRAD_OPTION_MEMBERS(Self, Type, name, Type v, init)
#define XGRAD_FLAG(Self, name) XGRAD_OPTION_MEMBERS(Self, bool, name, bool v = true, false)
