// CUDA graphs of a repeated piece of device work (the training step): captured once, replayed many
// times with one launch, so the host's cost per step is one call instead of one per kernel.
//
// While capture() runs `body`, every kernel and async copy of the backend goes to the graph's stream
// (cuda::stream(), tensor/cuda_check.h) and is recorded, not run; and every device allocation of this
// thread comes from a memory pool private to the graph. Blocks of that pool are only ever handed out
// again to the same graph's capture, so the addresses the graph was recorded with stay its own for as
// long as it lives: tensors made outside it (evaluation, an eager step) never receive them. The
// tensors that `body` leaves alive (the step's loss and logits, the gradients) are the memory that
// each replay writes again; read them after replay().
//
// `body` must only queue device work: no host read of device memory (item(), to_vector()), no upload or
// download (those are synchronous copies, which would wait for work that has not run: the capture
// fails, naming the error). Values that change from step to step are read by the kernels from device
// memory that the host rewrites before each replay (ParamList::live, Generator::set_counter_shift).
#pragma once
#include <functional>
#include <memory>

namespace ahmsa {

class DeviceGraph {
 public:
  DeviceGraph();
  ~DeviceGraph();
  DeviceGraph(const DeviceGraph&) = delete;
  DeviceGraph& operator=(const DeviceGraph&) = delete;

  // Whether this build can capture (it has the CUDA backend; the simulator counts).
  static bool supported();
  // Records body's device work; throws (naming the CUDA error) when the capture fails, leaving no graph.
  void capture(const std::function<void()>& body);
  bool captured() const;
  // Runs the recorded work and waits for it to finish.
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ahmsa
