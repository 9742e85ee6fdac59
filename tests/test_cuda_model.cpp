// AHMSA-Net on CUDA against the PyTorch fixture (tests/fixtures/model_parity.safetensors, as
// tests/test_model_parity.cpp on the CPU): training-mode logits and loss within 1e-4, every gradient
// within 1e-3, the parameters and running statistics after three AdamW steps within 1e-4, eval-mode
// logits within 1e-4; and the same with dropout on, CUDA against the CPU (the counter-based masks are
// the same on both devices). Built for the simulator and with nvcc (a GPU, or it says why it skips).
#include <doctest/doctest.h>

#include <cstdio>
#include <memory>

#include "model/ahmsa_net.h"
#include "model_fixture.h"
#include "op_registry.h"
#include "tensor/device.h"
#include "train/optim/optim.h"
#include "train/step_graph.h"

using namespace ahmsa;
using ahmsa::testing::rel_error;

namespace {


bool usable() {
  if (cuda_available()) return true;
  std::printf("test_cuda_model: skipped, no usable GPU (this build has CUDA but the machine has no driver or device)\n");
  return false;
}

}  // namespace

TEST_CASE("on CUDA: training-mode logits, loss, every gradient and three AdamW steps match PyTorch") {
  if (!usable()) return;
  auto f = read_safetensors(testing::kModelFixture);
  Generator g(1);
  AhmsaConfig config;
  config.dropout = 0.f;  // the fixture's training pass has dropout off
  AhmsaNet net(config, g);
  net.load(testing::sub_file(f, "w/"), Device::CUDA);
  for (auto& [name, p] : net.named_parameters()) REQUIRE(p.device() == Device::CUDA);
  net.train();
  AdamW opt(net.parameters(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f);
  const Tensor x = f.tensor("input").to(Device::CUDA);
  const auto y = testing::labels_of(f);
  for (int step = 1; step <= 3; ++step) {
    CAPTURE(step);
    opt.zero_grad();
    Tensor logits = net.forward(x, g);
    REQUIRE(logits.device() == Device::CUDA);
    Tensor loss = cross_entropy(logits, y);
    if (step == 1) {
      CHECK(rel_error(logits.to_vector(), f.tensor("train/logits").to_vector()) <= 1e-4);
      CHECK(std::abs(loss.item() - f.tensor("train/loss").item()) <= 1e-4 * std::abs(f.tensor("train/loss").item()));
    }
    loss.backward();
    if (step == 1) {
      int n = 0;
      for (auto& [name, p] : net.named_parameters()) {
        CAPTURE(name);
        REQUIRE(p.grad().defined());
        CHECK(p.grad().device() == Device::CUDA);
        const double e = rel_error(p.grad().to_vector(), f.tensor("grad/" + name).to_vector());
        CHECK_MESSAGE(e <= 1e-3, name << " gradient rel error " << e);
        ++n;
      }
      CHECK(n == 86);
    }
    opt.step();
  }
  for (auto& [name, t] : net.state_dict())
    testing::check_after_three_steps(name, t.to_vector(), f.tensor("step3/" + name).to_vector());
}

TEST_CASE("on CUDA: eval-mode logits match PyTorch") {
  if (!usable()) return;
  auto f = read_safetensors(testing::kModelFixture);
  Generator g(1);
  AhmsaNet net(AhmsaConfig{}, g);
  net.load(testing::sub_file(f, "w/"), Device::CUDA);
  net.eval();
  NoGradGuard ng;
  Tensor logits = net.forward(f.tensor("input").to(Device::CUDA));
  CHECK(rel_error(logits.to_vector(), f.tensor("eval/logits").to_vector()) <= 1e-4);
}

TEST_CASE("on CUDA with dropout on: the same logits and gradients as the CPU (the same masks)") {
  if (!usable()) return;
  auto f = read_safetensors(testing::kModelFixture);
  std::vector<float> logits[2];
  std::map<std::string, std::vector<float>> grads[2];
  for (int d = 0; d < 2; ++d) {
    const Device device = d ? Device::CUDA : Device::CPU;
    Generator g(7);
    AhmsaNet net(AhmsaConfig{}, g);  // dropout 0.3
    net.load(testing::sub_file(f, "w/"), device);
    net.train();
    Tensor out = net.forward(f.tensor("input").to(device), g);
    logits[d] = out.to_vector();
    cross_entropy(out, testing::labels_of(f)).backward();
    for (auto& [name, p] : net.named_parameters()) grads[d][name] = p.grad().to_vector();
  }
  CHECK(rel_error(logits[1], logits[0]) <= 1e-4);
  for (auto& [name, gc] : grads[0]) {
    CAPTURE(name);
    CHECK(rel_error(grads[1][name], gc) <= 1e-3);
  }
}

#ifdef AHMSA_CUDA_SIM
#include <cuda_runtime.h>  // the simulator counts cudaMalloc calls

TEST_CASE("after the first training step, a step calls cudaMalloc no more (the caching allocator)") {
  Generator g(3);
  AhmsaConfig config;
  config.input_size = 16;  // a small model: the property does not depend on the size
  config.stem = 8;
  config.channels = {32, 32};
  AhmsaNet net(config, g);
  net.to(Device::CUDA);
  net.train();
  AdamW opt(net.parameters(), 1e-3f);
  Tensor x = Tensor::empty({4, 3, 16, 16});
  uniform_(x, 0.f, 1.f, g);
  const std::vector<int> y = {0, 1, 2, 1};
  auto step = [&] {
    opt.zero_grad();
    Tensor loss = cross_entropy(net.forward(x.to(Device::CUDA), g), y);
    loss.backward();
    opt.step();
  };
  step();
  const uint64_t after_first = cudasim::malloc_calls();
  REQUIRE(after_first > 0);  // the first step did allocate (its tensors live on the device)
  step();
  step();
  CHECK(cudasim::malloc_calls() == after_first);
}

#endif

// The same five training steps twice: all eager, and with steps 2, 3 and 5 through StepGraph (captured
// at step 2, replayed after), step 4 eager in between. Different batches, targets and learning rates at
// every step, dropout on: the replays must read the step's batch, ids, lr, bias corrections and dropout
// offsets from device memory. The losses, logits and final weights must be equal bit for bit.
namespace {
struct Trace {
  std::vector<double> losses;
  std::vector<std::vector<float>> logits;
  std::vector<std::vector<float>> state;
};

template <class MakeOpt>
Trace train_five(bool graphed, MakeOpt make_opt, uint64_t* replays_out = nullptr, uint64_t* mallocs_out = nullptr) {
  Generator init(11), data(12), drop(13);
  AhmsaConfig config;
  config.input_size = 16;
  config.stem = 8;
  config.channels = {32, 32};
  AhmsaNet net(config, init);  // dropout 0.3
  net.to(Device::CUDA);
  net.train();
  std::unique_ptr<Optimizer> opt = make_opt(net.parameters());
  std::unique_ptr<train::StepGraph> graph;
  if (graphed) graph = std::make_unique<train::StepGraph>(net, *opt, drop, Tensor(), 0.1f);
  Trace t;
  for (int step = 1; step <= 5; ++step) {
    Tensor x = Tensor::empty({4, 3, 16, 16});
    uniform_(x, 0.f, 1.f, data);
    std::vector<int> y(4);
    for (int& c : y) c = int(data.below(3));
    const float lr = 1e-3f * float(step);
    if (graphed && step != 1 && step != 4) {
      train::StepGraph::Result r = graph->run(x, y, lr);
      t.losses.push_back(r.loss);
      t.logits.push_back(r.logits);
    } else {
      opt->set_lr(lr);
      Tensor logits = net.forward(x.to(Device::CUDA), drop);
      Tensor loss = cross_entropy(logits, y, Tensor(), 0.1f);
      t.losses.push_back(loss.item());
      opt->zero_grad();
      loss.backward();
      opt->step();
      t.logits.push_back(logits.detach().to_vector());
    }
#ifdef AHMSA_CUDA_SIM
    if (step == 2 && mallocs_out) *mallocs_out = cudasim::malloc_calls();
    if (step == 3 && mallocs_out) *mallocs_out = cudasim::malloc_calls() - *mallocs_out;
#endif
  }
#ifdef AHMSA_CUDA_SIM
  if (replays_out) *replays_out = cudasim::graph_launches();
#endif
  for (auto& [name, v] : net.state_dict()) t.state.push_back(v.to_vector());
  return t;
}

template <class MakeOpt>
void check_graph_equals_eager(MakeOpt make_opt) {
  const Trace eager = train_five(false, make_opt);
  uint64_t launches_after = 0, mallocs = 0;
#ifdef AHMSA_CUDA_SIM
  const uint64_t launches_before = cudasim::graph_launches();
#endif
  const Trace graphed = train_five(true, make_opt, &launches_after, &mallocs);
#ifdef AHMSA_CUDA_SIM  // the simulator counts graph launches and cudaMalloc calls
  CHECK(launches_after - launches_before == 3);  // steps 2, 3 and 5 were replays
  CHECK(mallocs == 0);                            // the second replay calls no cudaMalloc
#endif
  REQUIRE(eager.losses.size() == graphed.losses.size());
  for (size_t i = 0; i < eager.losses.size(); ++i) {
    CAPTURE(i);
    CHECK(graphed.losses[i] == eager.losses[i]);
    CHECK(graphed.logits[i] == eager.logits[i]);
  }
  REQUIRE(eager.state.size() == graphed.state.size());
  for (size_t i = 0; i < eager.state.size(); ++i) {
    CAPTURE(i);
    CHECK(graphed.state[i] == eager.state[i]);
  }
  CHECK(eager.losses[1] != eager.losses[2]);  // the steps differ (a replay of stale inputs would not)
}
}  // namespace

TEST_CASE("a training step replayed as a CUDA graph computes what the eager step computes, bit for bit") {
  if (!usable()) return;
  SUBCASE("AdamW") {
    check_graph_equals_eager([](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> {
      return std::make_unique<AdamW>(std::move(p), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f);
    });
  }
  SUBCASE("SGD with Nesterov momentum") {
    check_graph_equals_eager([](std::vector<Tensor> p) -> std::unique_ptr<Optimizer> {
      return std::make_unique<SGD>(std::move(p), 1e-2f, 0.9f, 1e-4f, true);
    });
  }
}

TEST_CASE("a capture that would run work outside the graph fails, naming the cause, and leaves no graph") {
  if (!usable()) return;
  DeviceGraph graph;
  Tensor a = Tensor::scalar(1.f, Device::CUDA);
#ifdef AHMSA_CUDA_SIM
  CHECK_THROWS_WITH_AS(graph.capture([&] { (void)a.item(); }), doctest::Contains("not permitted when stream is capturing"),
                       std::runtime_error);
#else  // a GPU refuses the copy, or invalidates the capture: the error names CUDA either way
  CHECK_THROWS_WITH_AS(graph.capture([&] { (void)a.item(); }), doctest::Contains("CUDA"), std::runtime_error);
#endif
  CHECK_FALSE(graph.captured());
  CHECK(a.item() == 1.f);  // the device is usable after the failed capture
}
