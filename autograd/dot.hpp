// Graph export: the graph that produced a value, in Graphviz DOT.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "var.hpp"

namespace xgrad {

// Every op that `v` depends on with its shape; parameters are boxes (named when `names`
// gives them, e.g. model.named_parameters()), constants are ellipses. The ops recorded inside a
// NameScope (tape.hpp) are drawn in a cluster labelled with its name, nested as the scopes were:
// nn::Recurrent's unrolled steps come out as clusters "layer 0 t=1", "layer 0 t=2", ... inside
// "layer 0", the diagram of backpropagation through time.
template <class T>
std::string to_dot(const Var<T>& v, const std::vector<std::pair<std::string, Var<T>>>& names = {});

}  // namespace xgrad
