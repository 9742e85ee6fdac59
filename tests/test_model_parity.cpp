// AHMSA-Net against the PyTorch implementation of the spec (tools/reference/ahmsa_torch.py):
// tests/fixtures/model_parity.safetensors holds the initial weights (w/…), a batch, the logits
// and loss in training mode (dropout off), every parameter's gradient (grad/…), the parameters
// and running statistics after 3 AdamW steps (step3/…), and eval-mode logits.
// Bounds: logits and loss 1e-4 relative, gradients 1e-3, parameters after the steps 1e-4.
#include <doctest/doctest.h>

#include <cstdio>

#include "model/ahmsa_net.h"
#include "model_fixture.h"
#include "op_registry.h"
#include "train/optim/optim.h"

using namespace ahmsa;
using ahmsa::testing::rel_error;

namespace {

AhmsaConfig parity_config() {
  AhmsaConfig c;
  c.dropout = 0.f;  // the fixture's training pass has dropout off
  return c;
}

}  // namespace

TEST_CASE("default AHMSA-Net has the spec's 1,128,950 parameters and names") {
  Generator g(1);
  AhmsaNet net(AhmsaConfig{}, g);
  CHECK(net.num_parameters() == 1128950);
  auto f = read_safetensors(testing::kModelFixture);
  auto w = testing::sub_file(f, "w/");
  auto state = net.state_dict();
  CHECK(state.size() == w.entries.size());
  for (auto& [name, t] : state) {
    CAPTURE(name);
    REQUIRE(w.has(name));
    CHECK(w.entries.at(name).shape == t.shape());
  }
}

TEST_CASE("training-mode logits, loss and every gradient match PyTorch") {
  auto f = read_safetensors(testing::kModelFixture);
  Generator g(1);
  AhmsaNet net(parity_config(), g);
  net.load(testing::sub_file(f, "w/"));
  net.train();
  Tensor x = f.tensor("input");
  Tensor logits = net.forward(x, g);
  CHECK(rel_error(logits.to_vector(), f.tensor("train/logits").to_vector()) <= 1e-4);
  Tensor loss = cross_entropy(logits, testing::labels_of(f));
  CHECK(std::abs(loss.item() - f.tensor("train/loss").item()) <= 1e-4 * std::abs(f.tensor("train/loss").item()));
  loss.backward();
  int n = 0;
  for (auto& [name, p] : net.named_parameters()) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    double e = rel_error(p.grad().to_vector(), f.tensor("grad/" + name).to_vector());
    CHECK_MESSAGE(e <= 1e-3, name << " gradient rel error " << e);
    ++n;
  }
  CHECK(n == 86);
}

TEST_CASE("three AdamW steps match PyTorch's parameters and running statistics") {
  auto f = read_safetensors(testing::kModelFixture);
  Generator g(1);
  AhmsaNet net(parity_config(), g);
  net.load(testing::sub_file(f, "w/"));
  net.train();
  AdamW opt(net.parameters(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f);
  Tensor x = f.tensor("input");
  auto y = testing::labels_of(f);
  for (int step = 1; step <= 3; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy(net.forward(x, g), y);
    std::string key = "step3/loss" + std::to_string(step);
    if (f.has(key)) CHECK(std::abs(loss.item() - f.tensor(key).item()) <= 1e-4 * std::abs(f.tensor(key).item()));
    loss.backward();
    opt.step();
  }
  for (auto& [name, t] : net.state_dict())
    testing::check_after_three_steps(name, t.to_vector(), f.tensor("step3/" + name).to_vector());
}

TEST_CASE("eval-mode logits (running statistics) match PyTorch") {
  auto f = read_safetensors(testing::kModelFixture);
  Generator g(1);
  AhmsaNet net(AhmsaConfig{}, g);  // dropout 0.3 is inactive in eval mode
  net.load(testing::sub_file(f, "w/"));
  net.eval();
  NoGradGuard ng;
  Tensor logits = net.forward(f.tensor("input"));
  CHECK(rel_error(logits.to_vector(), f.tensor("eval/logits").to_vector()) <= 1e-4);
}

TEST_CASE("checkpoints round-trip and bad files are refused whole") {
  Generator g(3);
  AhmsaNet a(AhmsaConfig{}, g), b(AhmsaConfig{}, g);
  std::string path = "model_roundtrip.safetensors";
  a.save(path);
  auto f = read_safetensors(path);
  CHECK(AhmsaNet::config_of(f).to_string() == AhmsaConfig{}.to_string());
  b.load(f);
  for (size_t i = 0; i < a.state_dict().size(); ++i)
    CHECK(a.state_dict()[i].second.to_vector() == b.state_dict()[i].second.to_vector());

  // A missing key and a wrong shape are named, and nothing is loaded.
  auto before = b.state_dict()[0].second.to_vector();
  auto broken = f;
  broken.entries.erase("head.bias");
  broken.entries["levels.1.attn.pos"].shape = {128, 8, 8};
  broken.entries["extra.weight"] = broken.entries["head.weight"];
  Generator g2(9);
  AhmsaNet c(AhmsaConfig{}, g2);
  auto c_before = c.state_dict()[0].second.to_vector();
  try {
    c.load(broken);
    FAIL("load accepted a broken file");
  } catch (const SafetensorsError& e) {
    std::string m = e.what();
    CHECK(m.find("missing: head.bias") != std::string::npos);
    CHECK(m.find("levels.1.attn.pos") != std::string::npos);
    CHECK(m.find("unexpected: extra.weight") != std::string::npos);
  }
  CHECK(c.state_dict()[0].second.to_vector() == c_before);
  std::remove(path.c_str());
}

TEST_CASE("PyTorch-written weights give the config back from their shapes") {
  auto w = testing::sub_file(read_safetensors(testing::kModelFixture), "w/");
  AhmsaConfig c = AhmsaNet::config_of(w);
  CHECK(c.input_size == 28);
  CHECK(c.stem == 32);
  CHECK(c.channels == std::vector<int64_t>{64, 128, 256});
  CHECK(c.classes == 3);
  CHECK(c.kernels == std::vector<int64_t>{3, 5, 7});
}

TEST_CASE("wrong configurations are refused at construction, naming the level") {
  Generator g(0);
  AhmsaConfig c;
  c.input_size = 30;  // level sizes 15, 8, 4: 15 is not divisible by its 2×2 window grid
  CHECK_THROWS_WITH_AS(AhmsaNet(c, g), doctest::Contains("level 0 (size 15"), std::invalid_argument);
  AhmsaConfig d;
  d.channels = {64, 100, 256};
  CHECK_THROWS_WITH_AS(AhmsaNet(d, g), doctest::Contains("level 1"), std::invalid_argument);
  AhmsaConfig e;
  e.window_attention = false;
  e.input_size = 30;  // fine without windows
  CHECK_NOTHROW(AhmsaNet(e, g));
}

TEST_CASE("ablation switches build and run") {
  Generator g(5);
  for (int variant = 0; variant < 5; ++variant) {
    AhmsaConfig c;
    c.adaptive_down = variant != 0;
    c.window_attention = variant != 1;
    c.channel_attention = variant != 2;
    c.spatial_attention = variant != 3;
    if (variant == 4) c.kernels = {7}, c.channels = {64, 128}, c.input_size = 28;
    AhmsaNet net(c, g);
    net.train();
    Tensor x = Tensor::empty({2, 3, 28, 28});
    uniform_(x, 0.f, 1.f, g);
    Tensor loss = cross_entropy(net.forward(x, g), {0, 2});
    loss.backward();
    CHECK(std::isfinite(loss.item()));
    for (auto& [name, p] : net.named_parameters()) CHECK_MESSAGE(p.grad().defined(), name);
  }
}
