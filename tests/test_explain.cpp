// `ahmsa explain` driven as a user would (the built binary): on a checkpoint trained by `ahmsa train`
// on a tiny cache, the picture is written and --json holds the same probabilities `ahmsa eval` gives
// for that clip, a = sigmoid(mix) of the checkpoint, per-level ca and m of the right sizes in (0, 1),
// and a saliency map whose channel shares sum to 1; the flow PNG of the clip explains the same way;
// bad requests are refused with their reason.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "flow/image.h"
#include "model/safetensors.h"
#include "train/data/table.h"
#include "tool_helpers.h"

namespace fs = std::filesystem;

namespace {


using ahmsa::testing::slurp;
using Result = ahmsa::testing::ToolResult;

Result run_tool(const fs::path& dir, const std::string& args) {
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = std::string(AHMSA_TOOL) + " " + args + " > " + out.string() + " 2> " + err.string();
  const int st = std::system(cmd.c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128, slurp(out), slurp(err)};
}

void tiny_cache(const fs::path& dir) { ahmsa::testing::tiny_flow_cache(dir, "test_explain tiny cache"); }

}  // namespace

TEST_CASE("ahmsa explain: the picture, and --json with the numbers of the checkpoint's forward") {
  const fs::path d = fs::temp_directory_path() / ("ahmsa_test_explain_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  tiny_cache(d / "cache");
  const std::string cache = (d / "cache").string(), model = (d / "run" / "fold_01" / "model.safetensors").string();
  Result tr = run_tool(d, "train --cache " + cache + " --out " + (d / "run").string() +
                              " --model-config 'size=8;stem=8;channels=32,32' --epochs 4 --batch 6 --lr 0.003 --warmup 1 --seed 3 --threads 2 --quiet --device cpu");
  REQUIRE_MESSAGE(tr.status == 0, tr.err);
  // fold 1 holds out casme2/sub01: its clip EP01_00 (positive) is unseen by this checkpoint.
  Result ex = run_tool(d, "explain --model " + model + " --cache " + cache + " --clip casme2/sub01/EP01_00 -o " + (d / "e.png").string() +
                              " --json " + (d / "e.json").string() + " --threads 2");
  REQUIRE_MESSAGE(ex.status == 0, ex.err);
  CHECK(ex.out.find("(truth positive)") != std::string::npos);
  const ahmsa::img::Image pic = ahmsa::img::load((d / "e.png").string());
  CHECK(pic.width > 900);
  CHECK(pic.height > 600);
  const auto j = nlohmann::json::parse(slurp(d / "e.json"));
  CHECK(j["truth"] == "positive");
  CHECK(j["classes"] == nlohmann::json({"negative", "positive", "surprise"}));
  const auto p = j["probabilities"].get<std::vector<double>>();
  REQUIRE(p.size() == 3);
  CHECK(p[0] + p[1] + p[2] == doctest::Approx(1.0).epsilon(1e-5));
  const size_t best = size_t(std::max_element(p.begin(), p.end()) - p.begin());
  CHECK(j["prediction"] == j["classes"][best]);

  // The same probabilities as `ahmsa eval` for this clip.
  Result ev = run_tool(d, "eval --model " + model + " --cache " + cache + " --subjects casme2/sub01 --out " + (d / "eval").string() +
                              " --device cpu --threads 2");
  REQUIRE_MESSAGE(ev.status == 0, ev.err);
  const ahmsa::data::Table pred = ahmsa::data::read_csv((d / "eval" / "predictions.csv").string());
  bool found = false;
  for (size_t r = 1; r < pred.size(); ++r)
    if (pred[r][3] == "EP01_00") {
      found = true;
      for (int k = 0; k < 3; ++k) CHECK(std::stod(pred[r][size_t(6 + k)]) == doctest::Approx(p[size_t(k)]).epsilon(1e-4));
    }
  CHECK(found);

  // a = sigmoid(mix) of the checkpoint; ca per channel and m per position in (0, 1), of the level's sizes.
  const ahmsa::SafetensorsFile st = ahmsa::read_safetensors(model);
  REQUIRE(j["levels"].size() == 2);
  const int C_in[2] = {8, 32}, s[2] = {4, 2};
  for (int l = 0; l < 2; ++l) {
    CAPTURE(l);
    const auto& lv = j["levels"][size_t(l)];
    CHECK(lv["size"] == s[l]);
    const std::vector<float> mix = st.tensor("levels." + std::to_string(l) + ".down.mix").to_vector();
    const auto a = lv["mix_a"].get<std::vector<double>>();
    REQUIRE(a.size() == size_t(C_in[l]));
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(1 / (1 + std::exp(-double(mix[i])))).epsilon(1e-5));
    const auto ca = lv["channel_attention"].get<std::vector<double>>();
    CHECK(ca.size() == 32);
    for (double v : ca) CHECK((v > 0 && v < 1));
    REQUIRE(lv["spatial_attention"].size() == size_t(s[l]));
    for (auto& row : lv["spatial_attention"]) {
      CHECK(row.size() == size_t(s[l]));
      for (auto& v : row) CHECK((v.get<double>() > 0 && v.get<double>() < 1));
    }
  }
  const auto& sal = j["saliency"];
  CHECK(sal["target"] == j["prediction"]);
  CHECK(sal["map"].size() == 8);
  double total = 0;
  for (auto& row : sal["map"])
    for (auto& v : row) {
      CHECK(v.get<double>() >= 0);
      total += v.get<double>();
    }
  CHECK(total > 0);
  const auto& sh = sal["channel_share"];
  CHECK(sh["u"].get<double>() + sh["v"].get<double>() + sh["strain"].get<double>() == doctest::Approx(1.0).epsilon(1e-5));

  // The clip's flow PNG gives the same numbers (no truth known).
  Result fl = run_tool(d, "explain --model " + model + " --flow " + (d / "cache" / "flows" / "sub01_EP01_00.png").string() + " -o " +
                              (d / "f.png").string() + " --json " + (d / "f.json").string());
  REQUIRE_MESSAGE(fl.status == 0, fl.err);
  const auto jf = nlohmann::json::parse(slurp(d / "f.json"));
  CHECK(jf["truth"].is_null());
  CHECK(jf["probabilities"] == j["probabilities"]);
  CHECK(jf["saliency"]["map"] == sal["map"]);

  // Refusals.
  Result no_clip = run_tool(d, "explain --model " + model + " --cache " + cache + " --clip casme2/sub09/EP00_00 -o " + (d / "x.png").string());
  CHECK(no_clip.status == 1);
  CHECK(no_clip.err.find("no clip 'casme2/sub09/EP00_00' in the cache") != std::string::npos);
  Result twice = run_tool(d, "explain --model " + model + " --cache " + cache + " --clip EP00_00 -o " + (d / "x.png").string());
  CHECK(twice.status == 1);
  CHECK(twice.err.find("give SUBJECT/CLIP") != std::string::npos);
  Result two = run_tool(d, "explain --model " + model + " --cache " + cache + " --clip EP00_00 --flow a.png");
  CHECK(two.status == 2);
  CHECK(two.err.find("give one clip") != std::string::npos);
  Result target = run_tool(d, "explain --model " + model + " --flow " + (d / "cache" / "flows" / "sub01_EP01_00.png").string() + " --target joy -o " +
                                  (d / "x.png").string());
  CHECK(target.status == 2);
  CHECK(target.err.find("'joy' is not one of this model's classes") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "x.png"));
  fs::remove_all(d);
}
