// Optimisers with PyTorch's update rules, and learning-rate schedules.
//
// All state (moments, momentum buffers) lives in one allocation (a tensor on the parameters'
// device) with a range per parameter, and one kernel call per step updates every parameter
// (tt::sgd_update / tt::adam_update over a ParamList), so a step allocates nothing. Every
// parameter must be on one device; the state lives there too.
#pragma once
#include <string>
#include <vector>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace ahmsa {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params, float lr);
  virtual ~Optimizer() = default;
  void step();  // parameters without a gradient are skipped
  void zero_grad();
  void set_lr(float lr) { lr_ = lr; }
  float lr() const { return lr_; }
  int64_t steps() const { return t_; }

  // For a step captured in a CUDA graph (tensor/device_graph.h): step_captured() is step() whose update
  // reads the step's terms (lr, and t's bias corrections) from device memory instead of baking them in
  // the launch; before the captured work runs, and before every replay after advance_replay() (one
  // more step on the host's count, at the current lr), upload_terms() writes them there.
  void step_captured();
  void advance_replay();
  void upload_terms();

 protected:
  // One zeroed state slab of `slots` × (all parameters' sizes); slot s starts at slot(s), and
  // parameter i's state at slot(s) + offsets_[i].
  void allocate_state(int slots);
  float* slot(int s) const { return state_.data() + int64_t(s) * total_; }
  // The parameters, their current gradients (null where none) and state offsets, for one kernel call.
  tt::ParamList param_list() const;
  // The update rule's terms at step t_ and lr_ (tensor/kernels.h), and its kernel call over `list`.
  virtual tt::StepTerms terms() const = 0;
  virtual void update(const tt::ParamList& list) = 0;
  std::vector<Tensor> params_;
  Device device_ = Device::CPU;  // of every parameter and of the state
  std::vector<int64_t> offsets_;
  int64_t total_ = 0;
  Tensor state_;
  float lr_;
  int64_t t_ = 0;
  Tensor terms_device_;          // a StepTerms on the parameters' device (read by captured steps)
  tt::StepTerms terms_host_{};   // what upload_terms() writes there
};

// SGD: v = μ v + (g + λ θ) (first step: v = g + λθ);  θ −= lr v   (nesterov: θ −= lr (g + λθ + μ v))
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, float lr, float momentum = 0.f, float weight_decay = 0.f, bool nesterov = false);

 private:
  tt::StepTerms terms() const override;
  void update(const tt::ParamList& list) override;
  float momentum_, wd_;
  bool nesterov_;
};

// Adam (weight decay as L2 added to the gradient) and AdamW (decoupled: θ −= lr λ θ first).
// m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²;  θ −= lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε)
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, float lr, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
       float weight_decay = 0.f, bool decoupled = false);

 private:
  tt::StepTerms terms() const override;
  void update(const tt::ParamList& list) override;
  float b1_, b2_, eps_, wd_;
  bool decoupled_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, float lr, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f,
        float weight_decay = 0.01f)
      : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}
};

// ---- learning-rate schedules: lr(step) for step = 0 .. total−1 ----
struct LrSchedule {
  enum Kind { Constant, CosineWarmup, OneCycle } kind = Constant;
  float base_lr = 1e-3f;
  int64_t total_steps = 1;
  int64_t warmup_steps = 0;   // CosineWarmup: linear from 0 to base over warmup_steps, then cosine to min_lr
  float min_lr = 0.f;
  float pct_start = 0.3f;     // OneCycle (PyTorch OneCycleLR, cos annealing, two phases)
  float div_factor = 25.f;
  float final_div_factor = 1e4f;
  float at(int64_t step) const;
  static LrSchedule parse(const std::string& name, float base_lr, int64_t total_steps);  // "constant", "cosine", "onecycle"
};

}  // namespace ahmsa
