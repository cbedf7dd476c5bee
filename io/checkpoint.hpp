// Checkpoints: a module's parameters, optionally with an optimizer's state, the random-number
// state of nn::generator() and a user map of values (data position, vocabulary, ...), so that
// a resumed run continues exactly as an uninterrupted one.
//
//   save(model, opt, "run.ckpt", {{"position", std::int64_t(batches.position())}});
//   auto extra = load(model, opt, "run.ckpt");  // CheckpointError if anything does not fit
//
// File format, version 1 (little-endian):
//   header (32 bytes): magic "XGRADCKP", u32 version, u32 flags (0), u64 payload size,
//                      u64 FNV-1a 64 checksum of the payload
//   payload: u64 record count, then per record
//            u32 name length, name bytes, u8 type, value:
//              type 1/2 tensor float32/float64: u32 ndim, ndim × u64 dims, elements
//              type 3 int64, type 4 float64: 8 bytes;  type 5 string: u64 length, bytes
// Record names: "param/<parameter name>", "optim/kind", "optim/step", "optim/lr",
// "optim/<buffer>.<parameter index>", "rng/generator", "extra/<key>".
//
// save() writes "<path>.tmp" in the same directory, fsyncs it and renames it over `path`:
// a failed or interrupted save leaves the previous checkpoint as it was.
// load() reads and checks everything (magic, version, size, checksum, names, element types,
// shapes) before it changes anything; every failure is a CheckpointError naming the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "../optim/optimizer.hpp"
#include "../layers/module.hpp"

namespace xgrad {

constexpr std::uint32_t kCheckpointVersion = 1;

using CheckpointValue = std::variant<std::int64_t, double, std::string, Array<float>, Array<double>>;
// User values saved beside the model: a batcher position, a serialized vocabulary, the hidden
// state carried between BPTT segments: extra["position"] = std::int64_t(1234),
// extra["a"] = a.value().
using CheckpointExtra = std::map<std::string, CheckpointValue>;

// Parameters (and `extra`) only.
template <class T>
void save(const nn::Module<T>& module, const std::string& path, const CheckpointExtra& extra = {});
// Sets every parameter of `module` from the file; the file's parameter names, element type and
// shapes must match the module's exactly. Returns the file's extra values.
template <class T>
CheckpointExtra load(nn::Module<T>& module, const std::string& path);

// Training state: parameters, the optimizer's buffers, step count and lr, nn::generator()'s
// state, and `extra`.
template <class T>
void save(const nn::Module<T>& module, const optim::Optimizer<T>& opt, const std::string& path,
          const CheckpointExtra& extra = {});
// Restores all of it (the generator too); the file must hold optimizer state of the same kind
// and shapes. Returns the file's extra values.
template <class T>
CheckpointExtra load(nn::Module<T>& module, optim::Optimizer<T>& opt, const std::string& path);

// The extra values of a checkpoint (after checking the whole file), e.g. to rebuild a
// vocabulary before the model that the checkpoint fits is constructed.
CheckpointExtra load_extra(const std::string& path);

namespace detail {
// Writes `bytes` to "<path>.tmp", fsyncs it and renames it over `path` (CheckpointError on
// failure, the previous file left as it was); shared by the savers in io/.
void write_atomically(const std::string& path, const std::string& bytes);
// The whole file; a CheckpointError "<kind> '<path>': ..." if it cannot be read.
std::vector<char> read_bytes(const std::string& path, const char* kind);
}  // namespace detail

}  // namespace xgrad
