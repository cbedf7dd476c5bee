// to_dot: the graph in Graphviz DOT, ops recorded under a NameScope drawn as clusters, an
// unrolled recurrent layer as one cluster per direction holding one per time step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include <xgrad/xgrad.hpp>

#include "testing.hpp"

using namespace xgrad;
using A = Array<double>;
using xgrad::testing::contains;

namespace {

class DotTest : public ::testing::Test {
 protected:
  void TearDown() override { clear_tape(); }
};

// A cluster of the DOT text: its label, the ops drawn directly in it (tape index -> op name)
// and its clusters, in order. Cluster 0 is the graph itself.
struct Cluster {
  std::string label;
  std::map<int, std::string> nodes;
  std::vector<int> children;
};

// Reads to_dot's own layout: one statement a line, a cluster's `label=` first inside it.
std::vector<Cluster> clusters_of(const std::string& dot) {
  std::vector<Cluster> all(1);
  std::vector<int> open{0};
  std::istringstream in(dot);
  std::string line;
  while (std::getline(in, line)) {
    line.erase(0, line.find_first_not_of(' '));
    if (line.rfind("subgraph cluster_", 0) == 0) {
      all.emplace_back();
      all[open.back()].children.push_back(static_cast<int>(all.size()) - 1);
      open.push_back(static_cast<int>(all.size()) - 1);
    } else if (line.rfind("label=\"", 0) == 0) {
      all[open.back()].label = line.substr(7, line.size() - 9);
    } else if (line == "}") {
      open.pop_back();
    } else if (line.size() > 1 && line[0] == 'n' && std::isdigit(static_cast<unsigned char>(line[1])) && !contains(line, "->")) {
      const std::size_t q = line.find("[label=\"") + 8, hash = line.find(" #");
      all[open.back()].nodes[std::stoi(line.substr(1))] = line.substr(q, hash - q);
    }
  }
  EXPECT_EQ(open.size(), 0u) << dot;  // the closing brace of the graph popped cluster 0
  return all;
}

std::vector<std::string> ops_of(const Cluster& c) {
  std::vector<std::string> ops;
  for (const auto& [i, op] : c.nodes) ops.push_back(op);
  return ops;
}

// Checks the cluster of one direction of a recurrent layer of T steps: labelled `label`, holding
// one cluster per step in the order they ran, "<label> t=1", ..., each with the same ops, one
// tanh among them, its nodes recorded together, after those of the step before.
void expect_unrolled(const std::vector<Cluster>& all, const Cluster& layer, const std::string& label, int steps,
                     bool reverse, const std::string& dot) {
  EXPECT_EQ(layer.label, label) << dot;
  ASSERT_EQ(layer.children.size(), static_cast<std::size_t>(steps)) << dot;
  int last = -1;
  for (int s = 0; s < steps; ++s) {
    const Cluster& step = all[layer.children[s]];
    const int t = reverse ? steps - s : s + 1;
    EXPECT_EQ(step.label, label + " t=" + std::to_string(t)) << dot;
    EXPECT_TRUE(step.children.empty()) << dot;
    const std::vector<std::string> ops = ops_of(step);
    EXPECT_EQ(std::count(ops.begin(), ops.end(), "tanh"), 1) << dot;
    EXPECT_EQ(ops, ops_of(all[layer.children[0]])) << dot;
    ASSERT_FALSE(step.nodes.empty());
    const int first = step.nodes.begin()->first, end = step.nodes.rbegin()->first;
    EXPECT_GT(first, last) << dot;
    // No node of another cluster was drawn between this step's first and last.
    for (const Cluster& c : all) {
      if (&c == &step) continue;
      for (const auto& [i, op] : c.nodes) {
        EXPECT_FALSE(i > first && i < end) << "node " << i << "\n" << dot;
      }
    }
    last = end;
  }
}

}  // namespace

TEST_F(DotTest, OpsUnderANameScopeAreACluster) {
  auto x = param(A{1.0, 2.0});
  Var<double> y;
  {
    NameScope a("a");
    y = x * x;  // #0
    {
      NameScope b("b");
      y = tanh(y);  // #1
    }
    y = y + x;  // #2
  }
  {
    NameScope a("a");  // the same name again: the same cluster
    y = y * x;         // #3
  }
  auto loss = sum(y);  // #4: outside every scope
  const std::string dot = to_dot(loss, {{"x", x}});
  const std::vector<Cluster> all = clusters_of(dot);
  ASSERT_EQ(all.size(), 3u) << dot;
  EXPECT_EQ(all[0].nodes.size(), 1u) << dot;
  EXPECT_EQ(all[0].nodes.count(4), 1u) << dot;
  ASSERT_EQ(all[0].children, std::vector<int>{1}) << dot;
  EXPECT_EQ(all[1].label, "a") << dot;
  EXPECT_EQ(all[1].nodes.size(), 3u) << dot;
  for (int i : {0, 2, 3}) EXPECT_EQ(all[1].nodes.count(i), 1u) << dot;
  ASSERT_EQ(all[1].children, std::vector<int>{2}) << dot;
  EXPECT_EQ(all[2].label, "a b") << dot;
  EXPECT_EQ(all[2].nodes, (std::map<int, std::string>{{1, "tanh"}})) << dot;
  EXPECT_TRUE(contains(dot, "x\\n(2,)")) << dot;  // leaves stay outside, as before
}

TEST_F(DotTest, ScopeInfoOfAnUnknownIdThrows) {
  XGRAD_EXPECT_THROW_MSG(detail::scope_info(-1), Error, "scope_info", "-1");
  XGRAD_EXPECT_THROW_MSG(detail::scope_info(1 << 30), Error, "scope_info");
  EXPECT_EQ(detail::current_scope(), 0);
  {
    NameScope s("name with \"quotes\"");
    EXPECT_EQ(detail::scope_info(detail::current_scope()).label, "name with \"quotes\"");
    auto y = tanh(param(A{1.0}));
    EXPECT_TRUE(contains(to_dot(y), "label=\"name with \\\"quotes\\\"\";")) << to_dot(y);
  }
  EXPECT_EQ(detail::current_scope(), 0);
}

TEST_F(DotTest, AThreeStepRNNIsOneClusterPerStep) {
  nn::RNN<double> rnn(2, 3);
  auto x = constant(A(xt::ones<double>({3, 1, 2}) * 0.5));  // (T, m, n_x) = (3, 1, 2)
  auto loss = sum(rnn(x).output);
  const std::string dot = to_dot(loss, rnn.named_parameters());
  const std::vector<Cluster> all = clusters_of(dot);
  ASSERT_EQ(all[0].children.size(), 1u) << dot;
  expect_unrolled(all, all[all[0].children[0]], "layer 0", 3, false, dot);
  EXPECT_EQ(all.size(), 5u) << dot;  // the graph, the layer, its 3 steps
}

TEST_F(DotTest, TwoLayersBothDirectionsAreClusteredByLayerDirectionAndStep) {
  nn::RNN<double> rnn(2, 3, nn::RNNOptions().layers(2).bidirectional());
  auto x = constant(A(xt::ones<double>({3, 2, 2}) * 0.5));  // (T, m, n_x) = (3, 2, 2)
  auto loss = sum(rnn(x).output);
  const std::string dot = to_dot(loss, rnn.named_parameters());
  const std::vector<Cluster> all = clusters_of(dot);
  const std::vector<std::string> labels{"layer 0", "layer 0 reverse", "layer 1", "layer 1 reverse"};
  ASSERT_EQ(all[0].children.size(), labels.size()) << dot;
  for (std::size_t i = 0; i < labels.size(); ++i)
    expect_unrolled(all, all[all[0].children[i]], labels[i], 3, i % 2 == 1, dot);
}

TEST_F(DotTest, GraphvizRendersTheUnrolledGraph) {
  // scripts/setup.sh installs Graphviz, so its absence is a broken setup, not a skip.
  ASSERT_EQ(xgrad::testing::run_command("command -v dot >/dev/null 2>&1 && echo yes").out, "yes\n")
      << "Graphviz's dot is not installed: run scripts/setup.sh (apt-get install graphviz)";
  nn::LSTM<double> lstm(2, 3, nn::LSTMOptions().bidirectional());
  auto x = constant(A(xt::ones<double>({3, 1, 2}) * 0.5));
  const std::string path = ::testing::TempDir() + "xgrad_rnn.dot";
  std::ofstream(path) << to_dot(sum(lstm(x).output), lstm.named_parameters());
  const xgrad::testing::Outcome r = xgrad::testing::run_command("dot -Tsvg " + path + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "<svg")) << r.out;
  EXPECT_TRUE(contains(r.out, "layer 0 reverse t=2")) << r.out;
  std::remove(path.c_str());
}
