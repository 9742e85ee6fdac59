#include "train/optim/optim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "tensor/backend.h"

namespace ahmsa {

Optimizer::Optimizer(std::vector<Tensor> params, float lr) : params_(std::move(params)), lr_(lr) {
  if (!params_.empty()) device_ = params_[0].device();
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.is_contiguous())
      throw ShapeError("optimiser: parameter " + std::to_string(i) + " is a non-contiguous view " + p.str());
    if (p.device() != device_)
      throw std::runtime_error("optimiser: all parameters must be on one device, parameter 0 is on " +
                               std::string(device_name(device_)) + ", parameter " + std::to_string(i) + " on " +
                               device_name(p.device()));
    offsets_.push_back(total_);
    total_ += p.numel();
  }
  // Made here, not in step_captured(): allocated (and zeroed) inside a capture, it would be zeroed by
  // every replay, after upload_terms() wrote it.
  terms_device_ = Tensor::zeros({int64_t(sizeof(tt::StepTerms) / sizeof(float))}, device_);
}

void Optimizer::allocate_state(int slots) { state_ = Tensor::zeros({int64_t(slots) * total_}, device_); }

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

void Optimizer::step() {
  ++t_;
  update(param_list());
}

void Optimizer::step_captured() {
  ++t_;
  terms_host_ = terms();
  tt::ParamList list = param_list();
  list.live = terms_device_.data();
  update(list);
}

void Optimizer::advance_replay() {
  ++t_;
  terms_host_ = terms();
}

void Optimizer::upload_terms() {
  const float* f = reinterpret_cast<const float*>(&terms_host_);
  terms_device_.copy_(Tensor::from_vector(terms_device_.shape(), std::vector<float>(f, f + terms_device_.numel())));
}

tt::ParamList Optimizer::param_list() const {
  tt::ParamList list;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (params_[i].device() != device_)  // moved after the optimiser was made (Module::to)
      throw std::runtime_error("optimiser: parameter " + std::to_string(i) + " moved to " +
                               device_name(params_[i].device()) + " after the optimiser was made on " +
                               device_name(device_));
    if (g.defined() && !g.is_contiguous())  // gradients are accumulated contiguous (autograd.cpp)
      throw ShapeError("optimiser: gradient of parameter " + std::to_string(i) + " is a non-contiguous view " + g.str());
    list.theta.push_back(params_[i].data());
    list.grad.push_back(g.defined() ? g.data() : nullptr);
    list.numel.push_back(params_[i].numel());
    list.offset.push_back(offsets_[i]);
  }
  return list;
}

SGD::SGD(std::vector<Tensor> params, float lr, float momentum, float weight_decay, bool nesterov)
    : Optimizer(std::move(params), lr), momentum_(momentum), wd_(weight_decay), nesterov_(nesterov) {
  if (momentum_ != 0.f) allocate_state(1);
}

tt::StepTerms SGD::terms() const { return tt::sgd_terms(lr_); }

void SGD::update(const tt::ParamList& list) {
  // The first step with momentum starts the buffer (v = d): a launch that serves every replay of a
  // graph cannot be that one.
  if (list.live && t_ == 1 && momentum_ != 0.f)
    throw std::logic_error("SGD with momentum: the first step cannot be captured (run it eagerly)");
  tt::sgd_update(device_, list, momentum_ != 0.f ? slot(0) : nullptr, lr_, momentum_, wd_, nesterov_, t_ == 1);
}

Adam::Adam(std::vector<Tensor> params, float lr, float beta1, float beta2, float eps, float weight_decay,
           bool decoupled)
    : Optimizer(std::move(params), lr), b1_(beta1), b2_(beta2), eps_(eps), wd_(weight_decay), decoupled_(decoupled) {
  allocate_state(2);
}

tt::StepTerms Adam::terms() const { return tt::adam_terms(lr_, b1_, b2_, wd_, t_); }

void Adam::update(const tt::ParamList& list) {
  tt::adam_update(device_, list, slot(0), slot(1), lr_, b1_, b2_, eps_, wd_, decoupled_, t_);
}

float LrSchedule::at(int64_t step) const {
  step = std::clamp<int64_t>(step, 0, std::max<int64_t>(total_steps - 1, 0));
  switch (kind) {
    case Constant:
      return base_lr;
    case CosineWarmup: {
      // lr(t) = base·t/W for t < W (lr(0) = 0, lr(W) = base), the formula of the PyTorch-side
      // fixture (tests/fixtures/optim.safetensors, "sched/cosine_warmup").
      if (step < warmup_steps) return base_lr * float(step) / float(warmup_steps);
      int64_t span = std::max<int64_t>(total_steps - warmup_steps, 1);
      double progress = double(step - warmup_steps) / double(span);
      return float(min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress)));
    }
    case OneCycle: {  // PyTorch OneCycleLR (three_phase=False, anneal_strategy='cos')
      double initial = base_lr / div_factor, min_final = initial / final_div_factor;
      double end_up = double(pct_start * float(total_steps)) - 1.0, end_down = double(total_steps - 1);
      auto cos_anneal = [](double a, double b, double pct) { return b + (a - b) / 2.0 * (std::cos(M_PI * pct) + 1.0); };
      if (step <= end_up) return float(cos_anneal(initial, base_lr, double(step) / end_up));
      return float(cos_anneal(base_lr, min_final, (double(step) - end_up) / (end_down - end_up)));
    }
  }
  return base_lr;
}

LrSchedule LrSchedule::parse(const std::string& name, float base_lr, int64_t total_steps) {
  LrSchedule s;
  s.base_lr = base_lr;
  s.total_steps = total_steps;
  if (name == "constant") s.kind = Constant;
  else if (name == "cosine") s.kind = CosineWarmup, s.warmup_steps = std::max<int64_t>(1, total_steps / 20);
  else if (name == "onecycle") s.kind = OneCycle;
  else throw std::invalid_argument("unknown LR schedule '" + name + "' (constant, cosine, onecycle)");
  return s;
}

}  // namespace ahmsa
