// Weight exchange in the safetensors format, the one the PyTorch ecosystem shares weights in,
// under xgrad's parameter names or PyTorch's state_dict names.
//
//   xgrad::save_safetensors(model, "model.safetensors", xgrad::Names::pytorch);
//   xgrad::load_safetensors(model, "model.safetensors", xgrad::Names::pytorch);
//
//   # PyTorch: from safetensors.torch import load_file
//   net.load_state_dict(load_file("model.safetensors"), strict=True)
//
// The format: u64 little-endian header length N, N bytes of a JSON object
//   {"<name>": {"dtype": "F32", "shape": [4, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt", "library": "xgrad 0.1.0"}}
// (padded with spaces to a multiple of 8), then the tensors' raw little-endian row-major
// bytes; offsets count from the end of the header.
//
// Names::xgrad: named_parameters() as they are ("lstm.layers.1.reverse.Wx").
// Names::pytorch: PyTorch's names for the modules it has, anywhere in the tree; every other
// parameter keeps its xgrad name:
//   Linear     weight, bias                          (the same)
//   Embedding  weight                                (the same)
//   RNN, LSTM, GRU (any nn::Recurrent of RNNCell, LSTMCell, GRUCell) registered as P:
//     P.layers.<k>[.reverse].Wx|Wax   <->  P.weight_ih_l<k>[_reverse]
//     P.layers.<k>[.reverse].Wa|Waa   <->  P.weight_hh_l<k>[_reverse]
//     GRU:  .bx <-> bias_ih_l<k>[_reverse],  .ba <-> bias_hh_l<k>[_reverse]
//     LSTM .b, RNN .ba: PyTorch has two biases that are only ever added, so the file gets
//       bias_ih = b and bias_hh = 0, and loading sets b = bias_ih + bias_hh.
// The gate orders are PyTorch's (i, f, g, o and r, z, n), so weights carry over unchanged.
//
// save_safetensors writes the module's element type (F32 for float, F64 for double) to
// "<path>.tmp" and renames it over `path`: a failed save leaves the previous file as it was.
// load_safetensors reads F32, F64, F16 and BF16, converting to the module's element type where
// that is exact (everything into double; F32, F16, BF16 into float). The file is checked
// entirely first (header length, JSON, dtypes, shapes against byte ranges, offsets covering the
// data section without overlaps or gaps, no duplicate names), then its names against the
// module's (no missing, no extra tensor) and every shape; only then are the parameters set.
// Every failure is a CheckpointError naming the file and the tensor, and changes nothing.
#pragma once

#include <string>

#include "../layers/module.hpp"

namespace xgrad {

// Which names the tensors of a safetensors file carry.
enum class Names { xgrad, pytorch };

template <class T>
void save_safetensors(const nn::Module<T>& module, const std::string& path, Names names = Names::xgrad);

template <class T>
void load_safetensors(nn::Module<T>& module, const std::string& path, Names names = Names::xgrad);

}  // namespace xgrad
