// Every op's forward and backward against values PyTorch computed once (float64, stored as
// float32) in tests/fixtures/ops.safetensors (tools/reference/make_op_fixtures.py).
// Tolerances: relative error ≤ 1e-4 forward, ≤ 1e-3 gradients.
#include <doctest/doctest.h>

#include <set>

#include "model/safetensors.h"
#include "op_registry.h"

using namespace ahmsa;
using namespace ahmsa::testing;

TEST_CASE("every op matches PyTorch forward and backward") {
  auto f = read_safetensors(AHMSA_SOURCE_DIR "/tests/fixtures/ops.safetensors");
  REQUIRE(f.metadata.size() >= 40);
  int checked = 0;
  for (auto& [name, spec] : f.metadata) {
    Args a = parse_args(spec);
    if (!a.count("op")) continue;
    CAPTURE(name);
    CAPTURE(spec);
    const bool ce = a["op"] == "cross_entropy";
    std::vector<Tensor> in;
    std::vector<int> targets;
    for (int i = 0; f.has(name + "/in" + std::to_string(i)); ++i) {
      std::string key = name + "/in" + std::to_string(i);
      if (ce && i == 1) {
        for (auto t : f.ints(key)) targets.push_back(int(t));
        continue;
      }
      Tensor t = f.tensor(key);
      if (f.has(name + "/grad" + std::to_string(i))) t.set_requires_grad(true);
      in.push_back(t);
    }
    Tensor out = run_op(a, in, targets);
    Tensor expect = f.tensor(name + "/out");
    REQUIRE(out.shape() == expect.shape());
    double fe = rel_error(out.to_vector(), expect.to_vector());
    CHECK_MESSAGE(fe <= 1e-4, name << " forward rel error " << fe);

    out.backward(f.tensor(name + "/gout").reshape(out.shape()));
    int input_index = 0;
    for (int i = 0; f.has(name + "/in" + std::to_string(i)); ++i) {
      if (ce && i == 1) continue;  // targets
      std::string gk = name + "/grad" + std::to_string(i);
      Tensor& t = in[size_t(input_index++)];
      if (!f.has(gk)) continue;
      REQUIRE(t.grad().defined());
      double ge = rel_error(t.grad().to_vector(), f.tensor(gk).to_vector());
      CHECK_MESSAGE(ge <= 1e-3, name << " grad of input " << i << " rel error " << ge);
    }
    if (a["op"] == "batch_norm2d" && f.has(name + "/running_mean_after")) {
      CHECK(rel_error(in[3].to_vector(), f.tensor(name + "/running_mean_after").to_vector()) <= 1e-5);
      CHECK(rel_error(in[4].to_vector(), f.tensor(name + "/running_var_after").to_vector()) <= 1e-5);
    }
    ++checked;
  }
  CHECK(checked >= 40);
}
