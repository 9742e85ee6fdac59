#include "train/step_graph.h"

#include <stdexcept>
#include <string>

#include "autograd/ops.h"

namespace ahmsa::train {

StepGraph::StepGraph(AhmsaNet& model, Optimizer& opt, Generator& dropout_gen, Tensor class_weights,
                     float label_smoothing)
    : model_(model), opt_(opt), dropout_gen_(dropout_gen), class_weights_(std::move(class_weights)),
      label_smoothing_(label_smoothing) {
  if (!DeviceGraph::supported()) throw std::runtime_error("CUDA graphs need the CUDA backend (this build has none)");
}

// The two 32-bit words of a uint64, for the IntBuffer that holds it on the device.
static std::vector<int32_t> words(uint64_t v) {
  return {int32_t(uint32_t(v & 0xFFFFFFFFu)), int32_t(uint32_t(v >> 32))};
}

void StepGraph::capture(const Tensor& batch) {
  const Device dev = model_.device();
  x_ = Tensor::empty(batch.shape(), dev);
  ids_ = std::make_unique<IntBuffer>(batch.size(0), dev);
  shift_ = std::make_unique<IntBuffer>(2, dev);
  shift_->assign(words(0));
  capture_offset_ = dropout_gen_.counter_offset();
  dropout_gen_.set_counter_shift(reinterpret_cast<const uint64_t*>(shift_->data()));
  try {
    graph_.capture([&] {
      Tensor logits = model_.forward(x_, dropout_gen_);
      Tensor loss = cross_entropy(logits, *ids_, class_weights_, label_smoothing_);
      opt_.zero_grad();
      loss.backward();
      opt_.step_captured();
      logits_ = logits.detach(), loss_ = loss.detach();
    });
  } catch (const std::exception& e) {
    dropout_gen_.set_counter_shift(nullptr);
    throw std::runtime_error(std::string("capturing the training step as a CUDA graph: ") + e.what() +
                             " (--no-cuda-graphs runs the step kernel by kernel)");
  }
  dropout_gen_.set_counter_shift(nullptr);
  per_step_ = dropout_gen_.counter_offset() - capture_offset_;
}

StepGraph::Result StepGraph::run(const Tensor& batch, const std::vector<int>& targets, float lr) {
  opt_.set_lr(lr);
  if (!graph_.captured()) {
    capture(batch);  // the step's host side ran: t advanced, the dropout stream moved by one step
  } else {
    if (batch.shape() != x_.shape())
      throw ShapeError("StepGraph: a batch " + batch.str() + " for a step captured at " + x_.str());
    opt_.advance_replay();
    // This replay's dropout draws start where the stream is now: shift the captured offsets there.
    shift_->assign(words(dropout_gen_.counter_offset() - capture_offset_));
    dropout_gen_.counter_block(per_step_);
  }
  x_.copy_(batch);
  ids_->assign(std::vector<int32_t>(targets.begin(), targets.end()));
  opt_.upload_terms();
  graph_.replay();
  return {double(loss_.item()), logits_.to_vector()};
}

}  // namespace ahmsa::train
