// A parallel loop over the library's threads, for elementwise work on large arrays (the
// optimizers' updates, the loss over (T·m, V) logits, elementwise ops) and large products.
//
// parallel_for(n, grain, fn) calls fn(begin, end) on disjoint ranges covering [0, n), each a
// contiguous block, and returns when all have run. It runs fn(0, n) on the calling thread when
// n < 2·grain, when the bound is 1 thread (blas::num_threads()), inside another parallel_for, or
// while another thread of the program is using the pool: small loops pay no hand-off, nested and
// concurrent calls never wait on each other. Otherwise the range is cut in one block per thread
// (at most n / grain blocks) and the caller runs blocks beside the pool's threads, block 0 first
// (so the same thread runs the same part of a loop repeated at every step, its data in that
// core's cache).
//
// The pool is persistent: its threads start at the first parallel loop that needs them (up to
// the bound minus one, the caller being one). Between loops each polls for 200 µs (a step's
// loops come tens of µs apart, a wake-up through the kernel costs more) and then sleeps on a
// condition variable, so an idle pool takes no CPU from other programs.
//
// An exception thrown by fn in any block is rethrown to the caller after every started block has
// finished (the first one thrown; blocks not yet started are skipped).
#pragma once

#include <cstddef>
#include <functional>

namespace xgrad::parallel {

using RangeFn = std::function<void(std::size_t begin, std::size_t end)>;

void parallel_for(std::size_t n, std::size_t grain, const RangeFn& fn);

// Elements per block below which an elementwise loop is not worth a hand-off (a few µs of
// waking a thread against ~1 ns per element), measured on the optimizers' updates.
inline constexpr std::size_t kElementwiseGrain = 32768;

// The same for loops with more work per element: a function such as sigmoid or tanh, or several
// arrays read and written per element (the LSTM ops). W3's 8–32k-element steps split so on 2
// threads ran 6% faster (4 alternated rounds; 4096 measured the same as 8192).
inline constexpr std::size_t kFunctionGrain = 8192;

}  // namespace xgrad::parallel
