// Helpers over tests/fixtures/model_parity.safetensors (written by tools/reference/make_model_fixture.py),
// shared by the CPU parity test and its CUDA twin.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "model/safetensors.h"
#include "op_registry.h"

namespace ahmsa::testing {

inline const char* kModelFixture = AHMSA_SOURCE_DIR "/tests/fixtures/model_parity.safetensors";

// The entries under `prefix`, renamed without it, as a file the model can load.
inline SafetensorsFile sub_file(const SafetensorsFile& f, const std::string& prefix) {
  SafetensorsFile out;
  out.path = f.path + ":" + prefix;
  for (auto& [name, e] : f.entries)
    if (name.rfind(prefix, 0) == 0) out.entries[name.substr(prefix.size())] = e;
  return out;
}

inline std::vector<int> labels_of(const SafetensorsFile& f) {
  std::vector<int> y;
  for (auto v : f.ints("labels")) y.push_back(int(v));
  return y;
}

// A state entry after the fixture's 3 AdamW steps (lr 1e-3) against PyTorch's: relative error ≤ 1e-4.
// The k third of attn.qkv.bias has an exactly zero true gradient (adding a constant to every key
// shifts each softmax row uniformly), so its computed gradient is pure rounding noise (~1e-8 in
// float32, ~1e-17 in the float64 reference) and Adam turns noise into steps of up to lr with a random
// sign: those entries are held to |Δ| ≤ 2·lr·steps, q and v to 1e-4.
inline void check_after_three_steps(const std::string& name, const std::vector<float>& ours,
                                    const std::vector<float>& theirs) {
  CAPTURE(name);
  if (name.find("attn.qkv.bias") != std::string::npos) {
    const size_t c = ours.size() / 3;
    std::vector<float> qv_ours(ours.begin(), ours.begin() + c), qv_theirs(theirs.begin(), theirs.begin() + c);
    qv_ours.insert(qv_ours.end(), ours.begin() + 2 * c, ours.end());
    qv_theirs.insert(qv_theirs.end(), theirs.begin() + 2 * c, theirs.end());
    CHECK(rel_error(qv_ours, qv_theirs) <= 1e-4);
    for (size_t i = c; i < 2 * c; ++i) CHECK(std::abs(ours[i] - theirs[i]) <= 2 * 1e-3f * 3);
    return;
  }
  const double e = rel_error(ours, theirs);
  CHECK_MESSAGE(e <= 1e-4, name << " after 3 steps rel error " << e);
}

}  // namespace ahmsa::testing
