#include "dot.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_map>

namespace xgrad {

namespace {

std::string dot_escaped(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r;
}

}  // namespace

template <class T>
std::string to_dot(const Var<T>& v, const std::vector<std::pair<std::string, Var<T>>>& names) {
  const Slot<T>* root = &v.slot("to_dot");
  std::unordered_map<const Slot<T>*, std::string> leaf_names;
  for (const auto& [name, p] : names) leaf_names[&p.slot("to_dot")] = name;

  std::ostringstream os;  // the header and the leaves, outside every cluster
  os << "digraph xgrad {\n  rankdir=BT;\n  node [fontname=\"monospace\"];\n";
  std::ostringstream edges;
  std::map<int, std::vector<std::string>> scoped;  // scope id -> its nodes' lines (0: no scope)
  std::vector<int> scope_order;                    // scopes in order of first use, parents first
  std::unordered_map<int, detail::ScopeInfo> scopes;
  std::unordered_map<const Slot<T>*, std::string> ids;  // slot -> DOT node id
  auto leaf_id = [&](const Slot<T>* s, bool is_param) {
    auto it = ids.find(s);
    if (it != ids.end()) return it->second;
    const std::string id = "l" + std::to_string(ids.size());
    ids[s] = id;
    auto nm = leaf_names.find(s);
    const std::string label = nm != leaf_names.end() ? nm->second : (is_param ? "param" : "constant");
    os << "  " << id << " [label=\"" << dot_escaped(label) << "\\n" << shape_str(s->value.shape()) << "\", shape="
       << (is_param ? "box, style=filled, fillcolor=lightblue" : "ellipse") << "];\n";
    return id;
  };
  std::function<void(int)> use_scope = [&](int id) {
    if (id == 0 || scopes.count(id)) return;
    detail::ScopeInfo info = detail::scope_info(id);
    use_scope(info.parent);
    scopes[id] = std::move(info);
    scope_order.push_back(id);
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
      use_scope(n.scope);
      scoped[n.scope].push_back(id + " [label=\"" + dot_escaped(n.op) + " #" + std::to_string(i) + "\\n" +
                                shape_str(n.value.shape()) + "\"];");
      for (std::size_t k = 0; k < n.inputs.size(); ++k) {
        const Slot<T>* in = n.inputs[k];
        auto it = index.find(in);
        const std::string from = it != index.end() ? "n" + std::to_string(it->second) : leaf_id(in, n.input_is_param[k]);
        edges << "  " << from << " -> " << id << ";\n";
      }
    }
  }
  // Each scope a cluster labelled with its full name, nested in its parent's.
  std::function<void(int, const std::string&)> emit = [&](int scope, const std::string& indent) {
    for (const std::string& line : scoped[scope]) os << indent << line << "\n";
    for (int child : scope_order) {
      if (scopes[child].parent != scope) continue;
      os << indent << "subgraph cluster_" << child << " {\n"
         << indent << "  label=\"" << dot_escaped(scopes[child].label) << "\";\n";
      emit(child, indent + "  ");
      os << indent << "}\n";
    }
  };
  emit(0, "  ");
  os << edges.str() << "}\n";
  return os.str();
}

template std::string to_dot(const Var<float>&, const std::vector<std::pair<std::string, Var<float>>>&);
template std::string to_dot(const Var<double>&, const std::vector<std::pair<std::string, Var<double>>>&);

}  // namespace xgrad
