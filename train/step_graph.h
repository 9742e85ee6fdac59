// The training step as one CUDA graph (--cuda-graphs, on by default with --device cuda).
//
// The step of a fold at its full batch size always launches the same kernels on the same shapes, so
// it is captured once (tensor/device_graph.h) and replayed: forward, loss, backward and the optimiser
// update with one launch, instead of one per kernel. What changes from step to step lives in device
// memory that the host rewrites before each replay: the batch and its class ids, the optimiser's
// terms (lr, bias corrections: Optimizer::upload_terms) and the shift of the dropout stream
// (Generator::set_counter_shift). The replays compute exactly what the eager step computes (the same
// kernels in the same order), so the numbers do not depend on the switch (tests/test_cuda_model.cpp).
//
// Capture it after at least one eager step (the optimiser's first SGD momentum step, cuBLAS's set-up).
// One difference: the eager step checks the loss before updating; a replay updates and then reports a
// non-finite loss. The fold stops on it either way, and its weights are not used.
#pragma once
#include <memory>
#include <vector>

#include "model/ahmsa_net.h"
#include "tensor/buffer.h"
#include "tensor/device_graph.h"
#include "train/optim/optim.h"

namespace ahmsa::train {

class StepGraph {
 public:
  StepGraph(AhmsaNet& model, Optimizer& opt, Generator& dropout_gen, Tensor class_weights, float label_smoothing);

  struct Result {
    double loss;
    std::vector<float> logits;  // [B, K], row-major
  };
  // One training step on `batch` (on the host, [B, 3, S, S], the shape of every call) with class ids
  // `targets` at learning rate lr. The first call captures the step, every call runs it.
  Result run(const Tensor& batch, const std::vector<int>& targets, float lr);

 private:
  void capture(const Tensor& batch);

  AhmsaNet& model_;
  Optimizer& opt_;
  Generator& dropout_gen_;
  Tensor class_weights_;
  float label_smoothing_;
  DeviceGraph graph_;
  Tensor x_;                           // the batch, in device memory the graph reads
  std::unique_ptr<IntBuffer> ids_;     // its class ids
  std::unique_ptr<IntBuffer> shift_;   // a uint64: what each replay adds to the captured dropout offsets
  Tensor loss_, logits_;               // written by every replay
  uint64_t capture_offset_ = 0, per_step_ = 0;  // the dropout stream at capture, and its draws per step
};

}  // namespace ahmsa::train
