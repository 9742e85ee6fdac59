// Reverse-mode automatic differentiation: a tape of Nodes recorded by the ops.
//
// Every differentiable op computes its output, then calls record(): if gradients are enabled
// and an input requires them, a Node holding the op's backward closure is attached to the
// output. Tensor::backward() visits the nodes in reverse topological order, calls each closure
// with the gradient of its output, and accumulates the results into the inputs' nodes or, for
// leaves, into their .grad(). Closures are released after use unless retain_graph is set, so a
// second backward through the same graph is an error, not silently wrong gradients.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace ahmsa {

// Given dL/d(output), returns dL/d(input_i) for each recorded input (undefined = no gradient).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

struct Node {
  std::string op;                                   // op name, for messages
  std::vector<std::shared_ptr<TensorImpl>> inputs;  // in the order the closure returns gradients
  BackwardFn backward;                              // null once released
  Shape out_shape;
  ~Node();  // frees the graph behind it iteratively (a long chain would overflow the stack otherwise)
};

namespace autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

// Attaches history to `out` if any input requires a gradient and gradients are enabled.
// Closures must capture outputs as out.detach() (never `out` itself) to avoid a reference cycle.
void record(Tensor& out, const char* op, const std::vector<Tensor>& inputs, BackwardFn fn);

// True when record() would attach history for these inputs: lets an op skip saving buffers.
bool needs_grad(const std::vector<Tensor>& inputs);

void backward(const Tensor& root, const Tensor& grad_out, bool retain_graph);

// A coarse per-op profiler, on when the environment has AHMSA_PROFILE=1: forward time is the
// time since the previous recorded op (so it includes untracked work between ops), backward
// time is each closure's. profile_report() prints the table sorted by total time.
bool profiling();
void profile_report();

}  // namespace autograd

// Disables recording for its lifetime (evaluation, optimiser updates).
struct NoGradGuard {
  NoGradGuard() : prev_(autograd::grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace ahmsa
