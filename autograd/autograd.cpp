#include "autograd/autograd.h"

#include <algorithm>
#include <string>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "autograd/ops.h"

namespace ahmsa::autograd {

static thread_local bool g_grad_enabled = true;

// ---- profiler ----
namespace {
struct OpTimes {
  double fwd_ms = 0, bwd_ms = 0;
  long calls = 0;
};
struct Profile {
  bool on = std::getenv("AHMSA_PROFILE") && std::string(std::getenv("AHMSA_PROFILE")) == "1";
  std::map<std::string, OpTimes> ops;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  ~Profile() {
    if (on) profile_report();
  }
};
Profile& prof() {
  static Profile p;
  return p;
}
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

bool profiling() { return prof().on; }

void profile_report() {
  std::vector<std::pair<std::string, OpTimes>> rows(prof().ops.begin(), prof().ops.end());
  std::sort(rows.begin(), rows.end(),
            [](auto& a, auto& b) { return a.second.fwd_ms + a.second.bwd_ms > b.second.fwd_ms + b.second.bwd_ms; });
  double total = 0;
  for (auto& [n, t] : rows) total += t.fwd_ms + t.bwd_ms;
  std::fprintf(stderr, "%-22s %8s %11s %11s %6s\n", "op", "calls", "forward ms", "backward ms", "share");
  for (auto& [n, t] : rows)
    std::fprintf(stderr, "%-22s %8ld %11.1f %11.1f %5.1f%%\n", n.c_str(), t.calls, t.fwd_ms, t.bwd_ms,
                 100.0 * (t.fwd_ms + t.bwd_ms) / std::max(total, 1e-9));
}

// ---- graph teardown ----
// A Node owns its inputs and its closure (which holds saved tensors); each may own the Node that made
// it, so freeing the output of an n-op chain would nest n destructor calls and overflow the stack
// (a few hundred thousand ops with 8 MB). Instead the outermost ~Node on a thread keeps a work list;
// nested ~Node calls only move what they own onto it, and the outermost frees the list in a loop.
namespace {
struct Teardown {
  std::vector<std::shared_ptr<TensorImpl>> impls;
  std::vector<BackwardFn> closures;
};
thread_local Teardown* t_teardown = nullptr;  // the active list of this thread, if any
}  // namespace

}  // namespace ahmsa::autograd

ahmsa::Node::~Node() {
  using autograd::Teardown;
  auto hand_over = [this](Teardown& td) {
    for (auto& in : inputs)
      if (in) td.impls.push_back(std::move(in));
    if (backward) td.closures.push_back(std::move(backward));
  };
  if (autograd::t_teardown) {
    hand_over(*autograd::t_teardown);
    return;
  }
  Teardown td;
  autograd::t_teardown = &td;
  hand_over(td);
  while (!td.impls.empty() || !td.closures.empty()) {
    if (!td.closures.empty()) {
      BackwardFn fn = std::move(td.closures.back());
      td.closures.pop_back();
    } else {
      std::shared_ptr<TensorImpl> impl = std::move(td.impls.back());
      td.impls.pop_back();
    }  // freed here: Nodes it owned append to td instead of recursing
  }
  autograd::t_teardown = nullptr;
}

namespace ahmsa::autograd {

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (prof().on) {
    auto& p = prof();
    p.ops[op].fwd_ms += ms_since(p.last);
    p.ops[op].calls++;
    p.last = std::chrono::steady_clock::now();
  }
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->backward = std::move(fn);
  node->out_shape = out.shape();
  for (auto& t : inputs) node->inputs.push_back(t.defined() && t.requires_grad() ? t.impl_ptr() : nullptr);
  out.impl().grad_fn = node;
  out.impl().requires_grad = true;
}

// slot += g. Gradients are never modified in place (an op may hand the same tensor to two
// inputs, e.g. add), so a second contribution makes a new tensor.
static void accumulate(std::shared_ptr<TensorImpl>& slot, const Tensor& g, const std::string& op) {
  Tensor gc = g.contiguous_nograd();
  if (!slot) {
    slot = gc.impl_ptr();
    return;
  }
  Tensor acc(slot);
  if (acc.shape() != g.shape())
    throw ShapeError("backward of " + op + ": gradient of shape " + g.str() + " for a tensor of shape " + acc.str());
  slot = add(acc, gc).impl_ptr();
}

void backward(const Tensor& root, const Tensor& grad_out, bool retain_graph) {
  if (!root.requires_grad()) throw std::logic_error("backward() on a tensor that does not require grad");
  Tensor g0 = grad_out;
  if (!g0.defined()) {
    if (root.numel() != 1)
      throw ShapeError("backward() without a gradient needs a 1-element output, got " + root.str());
    g0 = Tensor::ones(root.shape(), root.device());
  } else if (g0.shape() != root.shape()) {
    throw ShapeError("backward(): gradient shape " + g0.str() + " differs from output " + root.str());
  }
  NoGradGuard ng;  // backward closures build no history (no double backward)

  const auto& root_fn = root.grad_fn();
  if (!root_fn) {  // a leaf
    accumulate(root.impl().grad, g0, "backward");
    return;
  }
  // Topological order by iterative depth-first search.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{root_fn.get(), 0}};
  seen.insert(root_fn.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      auto& in = node->inputs[next++];
      if (in && in->grad_fn && seen.insert(in->grad_fn.get()).second) stack.push_back({in->grad_fn.get(), 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  std::unordered_map<Node*, std::shared_ptr<TensorImpl>> grads;
  grads[root_fn.get()] = g0.contiguous_nograd().impl_ptr();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto gi = grads.find(node);
    if (gi == grads.end()) continue;  // no gradient flowed here
    Tensor g(gi->second);
    grads.erase(gi);
    if (!node->backward)
      throw std::logic_error("backward through '" + node->op +
                             "' a second time: its saved tensors were freed (use retain_graph=true)");
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor> gin = node->backward(g);
    if (prof().on) prof().ops[node->op].bwd_ms += ms_since(t0), prof().last = std::chrono::steady_clock::now();
    if (!retain_graph) node->backward = nullptr;
    if (gin.size() != node->inputs.size())
      throw std::logic_error("backward of " + node->op + " returned the wrong number of gradients");
    for (size_t i = 0; i < gin.size(); ++i) {
      auto& in = node->inputs[i];
      if (!in || !gin[i].defined()) continue;
      if (gin[i].shape() != in->shape)
        throw ShapeError("backward of " + node->op + ": input " + std::to_string(i) + " has shape " +
                         shape_str(in->shape) + " but its gradient has shape " + gin[i].str());
      if (in->grad_fn)
        accumulate(grads[in->grad_fn.get()], gin[i], node->op);
      else
        accumulate(in->grad, gin[i], node->op);
    }
  }
}

}  // namespace ahmsa::autograd

namespace ahmsa {

// Declared in tensor/tensor.h, defined here so that tensor/ does not depend on autograd/ (the
// layering tensor -> autograd holds at link level too).
void Tensor::backward(const Tensor& grad_out, bool retain_graph) const { autograd::backward(*this, grad_out, retain_graph); }

}  // namespace ahmsa
