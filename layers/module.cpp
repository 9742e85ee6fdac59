#include "layers/module.h"

#include <cmath>
#include <stdexcept>

namespace ahmsa {

Tensor Module::param(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  entries_.push_back({name, t, true});
  return t;
}

Tensor Module::buffer(const std::string& name, Tensor t) {
  entries_.push_back({name, t, false});
  return t;
}

void Module::collect(const std::string& prefix, NamedTensors& out, int which) const {
  for (auto& e : entries_)
    if (which == 0 || (which == 1) == e.is_param) out.emplace_back(prefix + e.name, e.tensor);
  for (auto& [name, m] : children_) m->collect(prefix + name + ".", out, which);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out, 1);
  return out;
}
NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", out, 2);
  return out;
}
NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", out, 0);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

// Rebinds t's storage to a copy on d. Every handle shares t's TensorImpl, so all of them see the
// move; the autograd fields (requires_grad, grad) stay, the gradient moved along.
static void move_in_place(Tensor& t, Device d) {
  if (t.grad_fn()) throw std::logic_error("Module::to: a registered tensor " + t.str() + " has autograd history");
  TensorImpl& impl = t.impl();
  if (impl.grad && Tensor(impl.grad).device() != d) impl.grad = Tensor(impl.grad).to(d).impl_ptr();
  if (t.device() == d) return;
  Tensor moved = t.to(d);
  impl.storage = moved.impl().storage;
  impl.strides = moved.strides();
  impl.offset = 0;
}

Module& Module::to(Device d) {
  for (auto& e : entries_) move_in_place(e.tensor, d);
  for (auto& [n, m] : children_) m->to(d);
  return *this;
}

Device Module::device() const {
  auto all = state_dict();
  return all.empty() ? Device::CPU : all.front().second.device();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t.zero_grad();
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int stride, int pad, bool with_bias, Generator& gen)
    : stride(stride), pad(pad) {
  Tensor w = Tensor::empty({out, in, k, k});
  kaiming_uniform_default_(w, gen);
  weight = param("weight", w);
  if (with_bias) {  // PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    Tensor b = Tensor::empty({out});
    float bound = 1.f / std::sqrt(float(in * k * k));
    uniform_(b, -bound, bound, gen);
    bias = param("bias", b);
  }
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen) {
  Tensor w = Tensor::empty({out, in});
  kaiming_uniform_default_(w, gen);
  weight = param("weight", w);
  if (with_bias) {
    Tensor b = Tensor::empty({out});
    float bound = 1.f / std::sqrt(float(in));
    uniform_(b, -bound, bound, gen);
    bias = param("bias", b);
  }
}

BatchNorm2d::BatchNorm2d(int64_t c, float momentum, float eps) : momentum(momentum), eps(eps) {
  weight = param("weight", Tensor::ones({c}));
  bias = param("bias", Tensor::zeros({c}));
  running_mean = buffer("running_mean", Tensor::zeros({c}));
  running_var = buffer("running_var", Tensor::ones({c}));
}

ChannelNorm::ChannelNorm(int64_t c, float eps) : eps(eps) {
  weight = param("weight", Tensor::ones({c}));
  bias = param("bias", Tensor::zeros({c}));
}

}  // namespace ahmsa
