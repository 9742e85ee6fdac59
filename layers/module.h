// Module: a node in a tree of layers holding named parameters (trained) and buffers (running
// statistics), with PyTorch state_dict names ("levels.0.down.conv.weight").
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "tensor/rng.h"

namespace ahmsa {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;

  NamedTensors named_parameters() const;  // trainable, requires_grad
  NamedTensors named_buffers() const;     // e.g. BatchNorm running_mean / running_var
  NamedTensors state_dict() const;        // parameters and buffers, in registration order
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;

  // Moves every parameter, buffer and existing gradient of this module and its children to d, in
  // place: the layers' members and the state_dict entries are the same tensors and see the move;
  // names and requires_grad are kept. An optimiser must be made after the move (its state lives on
  // the parameters' device).
  Module& to(Device d);
  Device device() const;  // of the parameters and buffers (CPU for a module without any)

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();

 protected:
  Tensor param(const std::string& name, Tensor t);   // registers and returns t (requires_grad set)
  Tensor buffer(const std::string& name, Tensor t);
  template <class M, class... A>
  std::shared_ptr<M> child(const std::string& name, A&&... args) {
    auto m = std::make_shared<M>(std::forward<A>(args)...);
    children_.emplace_back(name, m);
    return m;
  }

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
    bool is_param;
  };
  void collect(const std::string& prefix, NamedTensors& out, int which) const;  // 0 all, 1 params, 2 buffers
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// ---- the layers AHMSA-Net is built from (PyTorch defaults for initialisation) ----

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t k, int stride, int pad, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) const { return conv2d(x, weight, bias, stride, pad); }
  Tensor weight, bias;
  int stride, pad;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) const { return linear(x, weight, bias); }
  Tensor weight, bias;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float momentum = 0.1f, float eps = 1e-5f);
  Tensor forward(const Tensor& x) {
    return batch_norm2d(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
  }
  Tensor weight, bias, running_mean, running_var;
  float momentum, eps;
};

// LayerNorm over the channel vector at each position: forward() on N×C×H×W maps,
// forward_tokens() on token-major [..., C] tensors (same parameters, same maths).
class ChannelNorm : public Module {
 public:
  explicit ChannelNorm(int64_t channels, float eps = 1e-5f);
  Tensor forward(const Tensor& x) const { return channel_norm(x, weight, bias, eps); }
  Tensor forward_tokens(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }
  Tensor weight, bias;
  float eps;
};

class Dropout : public Module {
 public:
  explicit Dropout(float p) : p(p) {}
  Tensor forward(const Tensor& x, Generator& gen) const { return dropout(x, p, is_training(), gen); }
  float p;
};

}  // namespace ahmsa
