// Every op of the registry (tests/op_registry.h) on CUDA against the CPU, forward and backward, and
// the finite-difference checker on CUDA. Built for the simulator (run in three thread orders on every
// CI run) and with nvcc (on a GPU for real; without a usable GPU it says why and checks only that).
//
// Tolerances: relative error ≤ 1e-4 between the devices for outputs and every input gradient (fp32
// both; TF32 is off). Finite differences on CUDA: for a sample of elements of every input, the
// central difference of L = Σ out ⊙ gout (evaluated on CUDA, summed in double on the host) against
// the CUDA gradient, within the bounds of tests/test_gradcheck.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "model/safetensors.h"
#include "op_registry.h"
#include "tensor/device.h"

using namespace ahmsa;
using namespace ahmsa::testing;

namespace {

struct FixtureCase {
  std::string name;
  Args args;
  std::vector<Tensor> inputs;      // CPU
  std::vector<bool> differentiable;
  std::vector<int> targets;
  Tensor gout;                     // CPU
};

std::vector<FixtureCase> fixture_cases() {
  auto f = read_safetensors(AHMSA_SOURCE_DIR "/tests/fixtures/ops.safetensors");
  std::vector<FixtureCase> cases;
  for (auto& [name, spec] : f.metadata) {
    Args a = parse_args(spec);
    if (!a.count("op")) continue;
    FixtureCase c;
    c.name = name;
    c.args = a;
    const bool ce = a["op"] == "cross_entropy";
    for (int i = 0; f.has(name + "/in" + std::to_string(i)); ++i) {
      const std::string key = name + "/in" + std::to_string(i);
      if (ce && i == 1) {
        for (auto t : f.ints(key)) c.targets.push_back(int(t));
        continue;
      }
      c.inputs.push_back(f.tensor(key));
      c.differentiable.push_back(f.has(name + "/grad" + std::to_string(i)));
    }
    c.gout = f.tensor(name + "/gout");
    cases.push_back(std::move(c));
  }
  return cases;
}

struct Run {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;  // per input; empty where none
  std::vector<std::vector<float>> inputs_after;  // BatchNorm's running statistics are updated in place
};

// Runs a case on `device`: fresh leaf copies there, forward, backward with gout.
Run run_on(const FixtureCase& c, Device device) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor t = c.inputs[i].clone().to(device);
    if (c.differentiable[i]) t.set_requires_grad(true);
    in.push_back(t);
  }
  Tensor out = run_op(c.args, in, c.targets);
  REQUIRE(out.device() == device);
  Run r;
  r.out = out.to_vector();
  out.backward(c.gout.reshape(out.shape()).to(device));
  for (size_t i = 0; i < in.size(); ++i) {
    r.grads.push_back(c.differentiable[i] && in[i].grad().defined() ? in[i].grad().to_vector() : std::vector<float>());
    if (c.differentiable[i]) CHECK_MESSAGE(in[i].grad().defined(), c.name << ": no gradient for input " << i);
    if (in[i].grad().defined()) CHECK(in[i].grad().device() == device);
    r.inputs_after.push_back(in[i].to_vector());
  }
  return r;
}

// L = Σ out ⊙ gout on `device`, in double.
double loss_on(const FixtureCase& c, const std::vector<Tensor>& cpu_inputs, Device device) {
  std::vector<Tensor> in;
  for (const Tensor& t : cpu_inputs) in.push_back(t.clone().to(device));
  NoGradGuard no_grad;
  const std::vector<float> out = run_op(c.args, in, c.targets).to_vector();
  const std::vector<float> g = c.gout.to_vector();
  double L = 0;
  for (size_t i = 0; i < out.size(); ++i) L += double(out[i]) * double(g[i]);
  return L;
}

bool usable(const char* what) {
  if (cuda_available()) return true;
  std::printf("%s: skipped, no usable GPU (this build has CUDA but the machine has no driver or device)\n", what);
  return false;
}

}  // namespace

TEST_CASE("every registry op on CUDA equals the CPU, forward and backward") {
  if (!usable("test_cuda_ops")) return;
  const auto cases = fixture_cases();
  REQUIRE(cases.size() >= 40);
  std::set<std::string> ops;
  double worst_fwd = 0, worst_grad = 0;
  for (const FixtureCase& c : cases) {
    CAPTURE(c.name);
    const Run cpu = run_on(c, Device::CPU), gpu = run_on(c, Device::CUDA);
    REQUIRE(gpu.out.size() == cpu.out.size());
    const double fe = rel_error(gpu.out, cpu.out);
    worst_fwd = std::max(worst_fwd, fe);
    CHECK_MESSAGE(fe <= 1e-4, c.name << " forward: CUDA vs CPU relative error " << fe);
    for (size_t i = 0; i < cpu.grads.size(); ++i) {
      if (cpu.grads[i].empty()) continue;
      REQUIRE(gpu.grads[i].size() == cpu.grads[i].size());
      const double ge = rel_error(gpu.grads[i], cpu.grads[i]);
      worst_grad = std::max(worst_grad, ge);
      CHECK_MESSAGE(ge <= 1e-4, c.name << " gradient of input " << i << ": CUDA vs CPU relative error " << ge);
    }
    if (c.args.at("op") == "batch_norm2d")  // running statistics updated the same way
      for (size_t i = 3; i < cpu.inputs_after.size(); ++i)
        CHECK(rel_error(gpu.inputs_after[i], cpu.inputs_after[i]) <= 1e-5);
    ops.insert(c.args.at("op"));
  }
  CHECK(ops.size() >= 25);
  MESSAGE(cases.size() << " cases, " << ops.size() << " ops: worst forward " << worst_fwd << ", worst gradient "
                       << worst_grad);
}

TEST_CASE("finite differences on CUDA agree with the CUDA gradients (a sample of elements of every input)") {
  if (!usable("test_cuda_ops")) return;
  const auto cases = fixture_cases();
  int checked = 0;
  for (const FixtureCase& c : cases) {
    const std::string op = c.args.at("op");
    CAPTURE(c.name);
    const Run gpu = run_on(c, Device::CUDA);
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      if (!c.differentiable[i] || gpu.grads[i].empty()) continue;
      const std::vector<float> x0 = c.inputs[i].to_vector();
      const std::vector<float>& a = gpu.grads[i];
      double amax = 1;
      for (float v : a) amax = std::max(amax, double(std::fabs(v)));
      // Three elements per input, spread over it (the same ones in every run).
      for (size_t j : {size_t(0), x0.size() / 2, x0.size() - 1}) {
        const float h = 1e-3f * std::max(1.f, std::fabs(x0[j]));
        std::vector<Tensor> plus = c.inputs, minus = c.inputs;
        std::vector<float> xp = x0, xm = x0;
        xp[j] += h;
        xm[j] -= h;
        plus[i] = Tensor::from_vector(c.inputs[i].shape(), xp);
        minus[i] = Tensor::from_vector(c.inputs[i].shape(), xm);
        const double Lp = loss_on(c, plus, Device::CUDA), Lm = loss_on(c, minus, Device::CUDA);
        const double n = (Lp - Lm) / double(xp[j] - xm[j]);
        // Non-smooth ops: skip an element whose one-sided differences disagree (a kink within h).
        if (op == "relu" || op == "max" || op == "max_pool2d" || op == "adaptive_max_pool2d") {
          const double L0 = loss_on(c, c.inputs, Device::CUDA);
          const double dp = (Lp - L0) / double(xp[j] - x0[j]), dm = (L0 - Lm) / double(x0[j] - xm[j]);
          if (std::fabs(dp - dm) > 0.05 * std::max({1.0, std::fabs(dp), std::fabs(dm)})) continue;
        }
        CHECK_MESSAGE(std::fabs(double(a[j]) - n) <= 2e-3 * amax + 1e-2 * std::fabs(n),
                      c.name << " input " << i << " element " << j << ": CUDA gradient " << a[j]
                             << ", central difference " << n);
        ++checked;
      }
    }
  }
  CHECK(checked >= 100);
}

TEST_CASE("an op given tensors on two devices names the op and both devices") {
  if (!usable("test_cuda_ops")) return;
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({2, 3}).to(Device::CUDA);
  CHECK_THROWS_WITH(add(a, b), doctest::Contains("add"));
  CHECK_THROWS_WITH(add(a, b), doctest::Contains("cuda"));
  CHECK_THROWS_WITH(add(a, b), doctest::Contains("cpu"));
}
