// Devices: ops refuse tensors on two devices naming both, the dispatch layer names the kernel when a
// build has no CUDA, modules and checkpoints move with their names and gradients, optimisers keep
// their state on the parameters' device. The CUDA halves run where a usable GPU is present (or the
// simulated build); without one the tests check the no-CUDA errors instead and say so.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include "autograd/ops.h"
#include "layers/module.h"
#include "model/ahmsa_net.h"
#include "tensor/backend.h"
#include "tensor/device.h"
#include "train/optim/optim.h"

using namespace ahmsa;

namespace {

template <class F>
std::string runtime_message(F&& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no exception)";
}

const char* const kNoCuda = "this build has no CUDA backend (nvcc was not found at configure time)";

class TinyNet : public Module {
 public:
  explicit TinyNet(Generator& g)
      : conv(child<Conv2d>("conv", 2, 3, 3, 1, 1, true, g)), bn(child<BatchNorm2d>("bn", 3)),
        fc(child<Linear>("fc", 3, 2, true, g)) {}
  Tensor forward(const Tensor& x) {
    Tensor h = adaptive_avg_pool2d(relu(bn->forward(conv->forward(x))), 1, 1);
    return fc->forward(h.reshape({x.size(0), 3}));
  }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Linear> fc;
};

Tensor sample_input(uint64_t seed) {
  Generator g(seed);
  Tensor x = Tensor::empty({4, 2, 5, 5});
  uniform_(x, -1.f, 1.f, g);
  return x;
}

std::map<std::string, std::vector<float>> values_of(const Module& m) {
  std::map<std::string, std::vector<float>> v;
  for (auto& [name, t] : m.state_dict()) v[name] = t.to_vector();
  return v;
}

}  // namespace

TEST_CASE("an op given tensors on two devices fails naming the op and both devices") {
  if (cuda_available()) {
    Tensor x = Tensor::ones({1, 2, 4, 4}).to(Device::CUDA), w = Tensor::ones({3, 2, 3, 3});
    CHECK(runtime_message([&] { conv2d(x, w, Tensor()); }) ==
          "conv2d: inputs on different devices: x on cuda, weight on cpu");
    Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({2, 3}).to(Device::CUDA);
    CHECK(runtime_message([&] { add(a, b); }) == "add: inputs on different devices: a on cpu, b on cuda");
    CHECK(runtime_message([&] { matmul(a, b.transpose(0, 1)); }) ==
          "matmul: inputs on different devices: a on cpu, b on cuda");
    Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
    Tensor xb = Tensor::ones({2, 2, 2, 2}).to(Device::CUDA);
    CHECK(runtime_message([&] { batch_norm2d(xb, Tensor(), Tensor(), rm, rv, true); }) ==
          "batch_norm2d: inputs on different devices: x on cuda, running_mean on cpu, running_var on cpu");
  } else if (!tt::cuda_built()) {
    MESSAGE("no CUDA in this build: checking the errors that say so");
    CHECK(runtime_message([] { Tensor::empty({2}, Device::CUDA); }) == kNoCuda);
    CHECK(runtime_message([] { tt::fill(Device::CUDA, nullptr, 0, 0.f); }) == std::string("fill: ") + kNoCuda);
    CHECK(runtime_message([] { tt::conv2d_forward(Device::CUDA, {}, nullptr, nullptr, nullptr, nullptr); }) ==
          std::string("conv2d_forward: ") + kNoCuda);
  } else {
    MESSAGE("CUDA is built but no usable GPU is present: creating a CUDA tensor must fail");
    CHECK_THROWS_AS(Tensor::empty({2}, Device::CUDA), std::runtime_error);
  }
}

TEST_CASE("ops on one device allocate their outputs there; a 0-d sum and cross-entropy's loss are tensors") {
  Tensor s = Tensor::scalar(2.5f);
  CHECK(sum(s).item() == 2.5f);
  CHECK(sum(s).device() == Device::CPU);
  Tensor logits = Tensor::from_vector({2, 3}, {1.f, 2.f, 3.f, 0.f, 0.f, 0.f}).set_requires_grad(true);
  Tensor loss = cross_entropy(logits, {2, 1});
  CHECK(loss.dim() == 0);
  CHECK(loss.device() == logits.device());
  mul(loss, 3.f).backward();  // the incoming gradient 3 scales ∂loss/∂logits through a broadcast mul
  Tensor plain = Tensor::from_vector({2, 3}, {1.f, 2.f, 3.f, 0.f, 0.f, 0.f}).set_requires_grad(true);
  cross_entropy(plain, {2, 1}).backward();
  auto g3 = logits.grad().to_vector(), g1 = plain.grad().to_vector();
  for (size_t i = 0; i < g1.size(); ++i) CHECK(g3[i] == doctest::Approx(3.f * g1[i]).epsilon(1e-6));
}

TEST_CASE("Tensor::to keeps the values of views") {
  Tensor base = Tensor::from_vector({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  Tensor view = base.transpose(0, 1).narrow(0, 1, 2);  // [[1, 5, 9], [2, 6, 10]]
  CHECK(view.to(Device::CPU).to_vector() == std::vector<float>{1, 5, 9, 2, 6, 10});
  if (cuda_available()) {
    Tensor d = view.to(Device::CUDA);
    CHECK(d.device() == Device::CUDA);
    CHECK(d.is_contiguous());
    CHECK(d.to_vector() == std::vector<float>{1, 5, 9, 2, 6, 10});
    CHECK(d.transpose(0, 1).to(Device::CPU).to_vector() == std::vector<float>{1, 2, 5, 6, 9, 10});
  }
}

TEST_CASE("Module::to keeps names, requires_grad, gradients and values, in place") {
  Generator g(3);
  TinyNet net(g);
  net.forward(sample_input(4)).backward(Tensor::ones({4, 2}));
  const auto before = values_of(net);
  std::map<std::string, std::vector<float>> grads;
  for (auto& [name, t] : net.named_parameters()) {
    REQUIRE(t.grad().defined());
    grads[name] = t.grad().to_vector();
  }
  Tensor weight_handle = net.conv->weight;  // the layer's member and the registry share one tensor
  auto round_trip = [&](Device d) {
    CAPTURE(device_name(d));
    net.to(d);
    CHECK(net.device() == d);
    for (auto& [name, t] : net.state_dict()) CHECK(t.device() == d);
    CHECK(weight_handle.device() == d);
    CHECK((net.conv->weight.impl_ptr() == weight_handle.impl_ptr()));
    for (auto& [name, t] : net.named_parameters()) {
      CAPTURE(name);
      CHECK(t.requires_grad());
      REQUIRE(t.grad().defined());
      CHECK(t.grad().device() == d);
    }
    for (auto& [name, t] : net.named_buffers()) CHECK_FALSE(t.requires_grad());
  };
  if (cuda_available()) round_trip(Device::CUDA);
  else MESSAGE("no usable GPU: Module::to is checked on the CPU only");
  round_trip(Device::CPU);
  CHECK(values_of(net) == before);
  for (auto& [name, t] : net.named_parameters()) CHECK(t.grad().to_vector() == grads[name]);
  // the moved module still trains: one AdamW step from the moved parameters changes them
  AdamW opt(net.parameters(), 0.01f);
  opt.step();
  CHECK(values_of(net).at("conv.weight") != before.at("conv.weight"));
  CHECK(values_of(net).at("bn.running_mean") == before.at("bn.running_mean"));  // buffers are not optimised
}

TEST_CASE("optimisers need every parameter on one device, their state lives there") {
  Tensor a = Tensor::ones({3}).set_requires_grad(true);
  if (cuda_available()) {
    Tensor b = Tensor::ones({2}).to(Device::CUDA).set_requires_grad(true);
    CHECK(runtime_message([&] { SGD({a, b}, 0.1f); }) ==
          "optimiser: all parameters must be on one device, parameter 0 is on cpu, parameter 1 on cuda");
    // on the GPU: the same values as on the CPU
    Tensor c = Tensor::from_vector({3}, {1.f, -2.f, 3.f}).to(Device::CUDA).set_requires_grad(true);
    Tensor h = Tensor::from_vector({3}, {1.f, -2.f, 3.f}).set_requires_grad(true);
    AdamW on_gpu({c}, 0.1f), on_cpu({h}, 0.1f);
    for (int i = 0; i < 3; ++i) {
      on_gpu.zero_grad(), on_cpu.zero_grad();
      sum(mul(c, c)).backward(), sum(mul(h, h)).backward();
      on_gpu.step(), on_cpu.step();
    }
    auto vg = c.to_vector(), vc = h.to_vector();
    for (size_t i = 0; i < vc.size(); ++i) CHECK(vg[i] == doctest::Approx(vc[i]).epsilon(1e-6));
    // a parameter moved after the optimiser was made is an error naming it, not a read of the wrong memory
    Generator g(5);
    TinyNet net(g);
    SGD late(net.parameters(), 0.1f);
    net.to(Device::CUDA);
    net.forward(sample_input(6).to(Device::CUDA)).backward(Tensor::ones({4, 2}, Device::CUDA));
    CHECK(runtime_message([&] { late.step(); }) ==
          "optimiser: parameter 0 moved to cuda after the optimiser was made on cpu");
  } else {
    MESSAGE("no usable GPU: the mixed-device optimiser errors are checked where one is present");
  }
  SGD sgd({a}, 0.1f);  // the CPU path: θ −= lr g
  sum(a).backward();
  sgd.step();
  CHECK(a.to_vector() == std::vector<float>{0.9f, 0.9f, 0.9f});
}

TEST_CASE("a checkpoint loads onto a device: converted on the CPU, then moved") {
  AhmsaConfig cfg;
  cfg.input_size = 8, cfg.stem = 8, cfg.channels = {16, 32}, cfg.head_dim = 8, cfg.reduction = 4;
  Generator g1(1), g2(2);
  AhmsaNet a(cfg, g1), b(cfg, g2);
  // One file per process: CTest runs this test and its simulated CUDA twins at the same time.
  const std::string path = "test_tensor_devices_checkpoint_" + std::to_string(getpid()) + ".safetensors";
  a.save(path);
  SafetensorsFile f = read_safetensors(path);
  std::remove(path.c_str());
  CHECK(f.tensor("head.weight", Device::CPU).device() == Device::CPU);
  REQUIRE(values_of(a) != values_of(b));
  b.load(f, Device::CPU);
  CHECK(b.device() == Device::CPU);
  CHECK(values_of(b) == values_of(a));
  if (cuda_available()) {
    AhmsaNet c(cfg, g2);
    c.load(f, Device::CUDA);
    CHECK(c.device() == Device::CUDA);
    for (auto& [name, t] : c.state_dict()) CHECK(t.device() == Device::CUDA);
    CHECK(values_of(c) == values_of(a));
    CHECK(f.tensor("head.weight", Device::CUDA).device() == Device::CUDA);
  }
}
