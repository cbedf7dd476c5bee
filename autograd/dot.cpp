#include "dot.hpp"

#include <sstream>
#include <unordered_map>

namespace xgrad {

template <class T>
std::string to_dot(const Var<T>& v, const std::vector<std::pair<std::string, Var<T>>>& names) {
  const Slot<T>* root = &v.slot("to_dot");
  std::unordered_map<const Slot<T>*, std::string> leaf_names;
  for (const auto& [name, p] : names) leaf_names[&p.slot("to_dot")] = name;

  std::ostringstream os;
  os << "digraph xgrad {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n";
  std::unordered_map<const Slot<T>*, std::string> ids;  // slot -> DOT node id
  auto leaf_id = [&](const Slot<T>* s, bool is_param) {
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    const std::string id = "l" + std::to_string(ids.size());
    ids[s] = id;
    auto nm = leaf_names.find(s);
    const std::string label = nm != leaf_names.end() ? nm->second : (is_param ? "param" : "constant");
    os << "  " << id << " [label=\"" << label << "\\n" << shape_str(s->value.shape()) << "\", shape="
       << (is_param ? "box, style=filled, fillcolor=lightblue" : "ellipse") << "];\n";
    return id;
  };

  if (v.tape() == nullptr) {
    leaf_id(root, v.is_param());
  } else {
    Tape<T>& tape = *v.tape();
    // Mark the nodes v depends on, walking back from v in tape order.
    std::unordered_map<const Slot<T>*, std::size_t> index;
    for (std::size_t i = 0; i <= v.index(); ++i) index[&tape.node(i)] = i;
    std::vector<bool> needed(v.index() + 1, false);
    needed[v.index()] = true;
    for (std::size_t i = v.index() + 1; i-- > 0;) {
      if (!needed[i]) continue;
      for (const Slot<T>* in : tape.node(i).inputs) {
        auto it = index.find(in);
        if (it != index.end()) needed[it->second] = true;
      }
    }
    for (std::size_t i = 0; i <= v.index(); ++i) {
      if (!needed[i]) continue;
      Node<T>& n = tape.node(i);
      const std::string id = "n" + std::to_string(i);
      ids[&n] = id;
      os << "  " << id << " [label=\"" << n.op << " #" << i << "\\n" << shape_str(n.value.shape()) << "\"];\n";
      for (std::size_t k = 0; k < n.inputs.size(); ++k) {
        const Slot<T>* in = n.inputs[k];
        auto it = index.find(in);
        const std::string from = it != index.end() ? "n" + std::to_string(it->second) : leaf_id(in, n.input_is_param[k]);
        os << "  " << from << " -> " << id << ";\n";
      }
    }
  }
  os << "}\n";
  return os.str();
}

template std::string to_dot(const Var<float>&, const std::vector<std::pair<std::string, Var<float>>>&);
template std::string to_dot(const Var<double>&, const std::vector<std::pair<std::string, Var<double>>>&);

}  // namespace xgrad
