// Graph export: the graph that produced a value, in Graphviz DOT.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "var.hpp"

namespace xgrad {

// Every op that `v` depends on with its shape; parameters are boxes (named when `names`
// gives them, e.g. model.named_parameters()), constants are ellipses.
template <class T>
std::string to_dot(const Var<T>& v, const std::vector<std::pair<std::string, Var<T>>>& names = {});

}  // namespace xgrad
