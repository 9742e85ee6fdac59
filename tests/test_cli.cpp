// The `ahmsa` command line, driven as a user would (the built binary, AHMSA_TOOL): every subcommand
// refuses a misspelt option (naming the closest one) and a value outside its choices (naming the
// allowed ones) with exit status 2 before writing anything; a run file written by --write-config
// repeats the run to the same metrics.json; SIGINT / SIGTERM during train and prepare abandon the
// unit in progress, say how to resume and exit with 130 / 143; `model init` writes the same checkpoint
// for the same seed (the tiny embedding fixture among them).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "flow/image.h"
#include "tensor/device.h"
#include "tool_helpers.h"

namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("ahmsa_test_cli_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}




using ahmsa::testing::slurp;
using ahmsa::testing::wait_status;
using Result = ahmsa::testing::ToolResult;
const auto& spawn = ahmsa::testing::spawn_tool;

Result run_tool(const std::vector<std::string>& args) {
  static const fs::path d = temp_dir("io");
  return ahmsa::testing::run_tool_in(d, "io", args);
}

// The hand-made 8x8 flow cache of tests/tool_helpers.h, in dir.
fs::path tiny_cache(const fs::path& dir) {
  ahmsa::testing::tiny_flow_cache(dir, "test_cli tiny cache");
  return dir;
}

const std::vector<std::string> kTiny = {"--model-config", "size=8;stem=8;channels=32,32", "--epochs", "3", "--batch", "6",
                                        "--lr", "0.003", "--warmup", "1", "--seed", "3", "--threads", "2", "--quiet", "--device", "cpu"};

std::vector<std::string> cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("every subcommand refuses a misspelt option, names the closest one, and writes nothing") {
  const fs::path d = temp_dir("misspelt"), out = d / "out";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"synth", "--out", out.string(), "--subject", "3"}, "unknown option --subject (did you mean --subjects?)"},
      {{"prepare", "--dataset", "casme2", "--root", "x", "--out", out.string(), "--methd", "tvl1"}, "unknown option --methd (did you mean --method?)"},
      {{"flow", "a.png", "b.png", "-o", (out / "f.png").string(), "--sise", "28"}, "unknown option --sise (did you mean --size?)"},
      {{"train", "--cache", "c", "--out", out.string(), "--epoch", "1"}, "unknown option --epoch (did you mean --epochs?)"},
      {{"eval", "--modle", "m.safetensors", "--cache", "c"}, "unknown option --modle (did you mean --model?)"},
      {{"predict", "--model", "m", "a.png", "b.png", "--crop-sise", "64"}, "unknown option --crop-sise (did you mean --crop-size?)"},
      {{"explain", "--model", "m", "--flow", "f.png", "--jsn", (out / "e.json").string()}, "unknown option --jsn (did you mean --json?)"},
      {{"model", "forward", "--weight", "w", "--input", "x", "--output", (out / "y").string()}, "unknown option --weight (did you mean --weights?)"},
      {{"bench", "model", "--step", "3"}, "unknown option --step (did you mean --steps?)"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args[0]);
    Result r = run_tool(c.args);
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, r.err);
    CHECK(r.err.find("--help lists the options") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
  }
  Result r = run_tool({"trian"});
  CHECK(r.status == 2);
  CHECK(r.err.find("unknown command 'trian' (did you mean train?)") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("every subcommand refuses a value outside its choices, naming the allowed ones, and writes nothing") {
  const fs::path d = temp_dir("choices"), out = d / "out";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"synth", "--out", out.string(), "--format", "gif"}, "--format: 'gif' is not one of jpg, png"},
      {{"prepare", "--dataset", "casme4", "--root", "x", "--out", out.string()},
       "--dataset: 'casme4' is not one of casme2, samm, smic, casme3, composite"},
      {{"prepare", "--dataset", "composite", "--composite-csv", "x", "--out", out.string(), "--crop", "detect,casme2=maybe"},
       "--crop: unknown mode 'maybe' in 'detect,casme2=maybe' (auto, none, detect, boxes)"},
      {{"prepare", "--dataset", "composite", "--composite-csv", "x", "--out", out.string(), "--crop", "smic2=none"},
       "--crop: unknown dataset 'smic2' in 'smic2=none' (casme2, samm, smic, casme3)"},
      {{"prepare", "--dataset", "casme3", "--root", "x", "--out", out.string(), "--fix-onset-apex", "mean"},
       "--fix-onset-apex: 'mean' is not one of none, median, middle"},
      {{"flow", "a.png", "b.png", "-o", (out / "f.png").string(), "--method", "lucas-kanade"},
       "--method: 'lucas-kanade' is not one of tvl1, farneback"},
      {{"train", "--cache", "c", "--out", out.string(), "--select", "foo"}, "--select: 'foo' is not one of last, val"},
      {{"train", "--cache", "c", "--out", out.string(), "--optimizer", "lamb"}, "--optimizer: 'lamb' is not one of adamw, adam, sgd"},
      {{"eval", "--model", "m", "--cache", "c", "--device", "gpu"}, "--device: 'gpu' is not one of cpu, cuda, auto"},
      {{"predict", "--model", "m", "a.png", "b.png", "--crop", "maybe"}, "--crop: 'maybe' is not one of auto, detect, none"},
      {{"model", "forward", "--weights", "w", "--input", "x", "--output", (out / "y").string(), "--device", "tpu"},
       "--device: 'tpu' is not one of cpu, cuda, auto"},
      {{"bench", "model", "--device", "tpu"}, "--device: 'tpu' is not one of cpu, cuda, auto"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args[0]);
    Result r = run_tool(c.args);
    CHECK(r.status == 2);
    CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, r.err);
    CHECK_FALSE(fs::exists(out));
  }
  fs::remove_all(d);
}

TEST_CASE("--help of every subcommand lists its options and exits 0") {
  for (const char* cmd : {"synth", "prepare", "flow", "train", "eval", "predict", "explain", "model", "bench"}) {
    CAPTURE(cmd);
    Result r = run_tool({cmd, "--help"});
    CHECK(r.status == 0);
    CHECK(r.out.find("Usage: ahmsa " + std::string(cmd)) != std::string::npos);
  }
  Result r = run_tool({"train", "--help"});
  for (const char* opt : {"--epochs", "--select", "last|val", "--model-config", "--config", "--write-config", "--device", "--no-flip"})
    CHECK_MESSAGE(r.out.find(opt) != std::string::npos, opt);
}

TEST_CASE("--device: auto says which device it picked; cuda without a usable GPU is a clear error") {
  const fs::path d = temp_dir("device");
  Result r = run_tool({"model", "forward", "--weights", (d / "missing.safetensors").string(), "--input", "x", "--output",
                       (d / "y").string(), "--device", "cuda"});
  std::string why;
  if (!ahmsa::cuda_available(&why)) {
    CHECK(r.status == 2);
    // the reason: no backend in this build, or the CUDA runtime's error (no driver: error 35), or no device
    CHECK_MESSAGE(r.err.find("--device cuda: no usable CUDA GPU: " + why) != std::string::npos, r.err);
    CHECK((why.find("no CUDA backend") != std::string::npos || why.find("the CUDA runtime reports cudaError") == 0 ||
           why.find("no CUDA device") != std::string::npos));
  } else {
    CHECK(r.err.find("device: cuda") != std::string::npos);  // then it fails on the missing checkpoint
  }
  Result a = run_tool({"model", "forward", "--weights", (d / "missing.safetensors").string(), "--input", "x", "--output",
                       (d / "y").string()});
  CHECK(a.status == 1);  // the missing checkpoint
  CHECK(a.err.find(ahmsa::cuda_available() ? "device: cuda (auto: a usable GPU was found)" : "device: cpu (auto: no usable CUDA GPU: ") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(d / "y"));
  fs::remove_all(d);
}

TEST_CASE("an invalid train run leaves no file behind") {
  const fs::path d = temp_dir("invalid"), cache = tiny_cache(d / "cache"), out = d / "run";
  struct Case {
    std::vector<std::string> args;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--select", "val", "--val-fraction", "0"}, 2, "--select val needs validation subjects"},
      {{"--epochs", "0"}, 2, "--epochs: Value 0 not in range"},
      {{"--lr", "fast"}, 2, "--lr"},
      {{"--model-config", "stem=abc"}, 2, "--model-config"},
      {{"--folds", "9"}, 1, "--folds: there is no fold 9, this run has 4"},
      {{"--split", "kfold", "--k", "7"}, 1, "k = 7"},
      {{"--config", "size=8;stem=8"}, 2, "the model architecture KEY=V;... is --model-config"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args[0]);
    Result r = run_tool(cat(cat({"train", "--cache", cache.string(), "--out", out.string()}, kTiny), c.args));
    CHECK(r.status == c.status);
    CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, r.err);
    CHECK_FALSE(fs::exists(out));
  }
  fs::remove_all(d);
}

TEST_CASE("train --write-config then train --config repeats the run: the same metrics.json") {
  const fs::path d = temp_dir("runfile"), cache = tiny_cache(d / "cache");
  // With some of the recipe's options (docs/TRAINING.md §3), which the run file must carry as well.
  const std::vector<std::string> recipe = {"--translate", "0.1", "--mixup", "0.4", "--swa-epochs", "2"};
  Result direct = run_tool(cat(cat({"train", "--cache", cache.string(), "--out", (d / "direct").string(), "--balanced-loss", "--no-flip"}, kTiny),
                               recipe));
  REQUIRE_MESSAGE(direct.status == 0, direct.err);
  const fs::path toml = d / "run.toml";
  Result w = run_tool(cat(cat({"train", "--cache", cache.string(), "--out", (d / "from_file").string(), "--balanced-loss", "--no-flip",
                            "--write-config", toml.string()},
                           kTiny),
                       recipe));
  REQUIRE_MESSAGE(w.status == 0, w.err);
  CHECK_FALSE(fs::exists(d / "from_file"));  // --write-config writes the file and trains nothing
  const std::string file = slurp(toml);
  for (const char* line : {"epochs = 3", "batch = 6", "lr = 0.003", "flip = false", "balanced-loss = true", "select = \"last\"",
                           "model-config = \"size=8;", "out = \"", "# epochs per fold", "translate = 0.1", "mixup = 0.4",
                           "swa-epochs = 2", "cutmix = 0.0"})
    CHECK_MESSAGE(file.find(line) != std::string::npos, line);
  Result f = run_tool({"train", "--config", toml.string()});
  REQUIRE_MESSAGE(f.status == 0, f.err);
  CHECK(slurp(d / "from_file" / "metrics.json") == slurp(d / "direct" / "metrics.json"));
  const std::string cfg_a = slurp(d / "direct" / "config.json"), cfg_b = slurp(d / "from_file" / "config.json");
  CHECK(cfg_a.substr(0, cfg_a.find("\"command\"")) == cfg_b.substr(0, cfg_b.find("\"command\"")));  // same signature
  // A command-line option beats the file; a setting the run file misspells is refused with a suggestion.
  Result over = run_tool({"train", "--config", toml.string(), "--out", (d / "over").string(), "--epochs", "2"});
  CHECK(over.status == 0);
  CHECK(slurp(d / "over" / "config.json").find("\"epochs\": 2") != std::string::npos);
  std::ofstream(d / "bad.toml") << "cache = \"" << cache.string() << "\"\nout = \"" << (d / "bad").string() << "\"\nepoch = 3\n";
  Result bad = run_tool({"train", "--config", (d / "bad.toml").string()});
  CHECK(bad.status == 2);
  CHECK_MESSAGE(bad.err.find("run file: unknown setting 'epoch' (did you mean 'epochs'?)") != std::string::npos, bad.err);
  CHECK_FALSE(fs::exists(d / "bad"));
  std::ofstream(d / "bad2.toml") << "cache = \"" << cache.string() << "\"\nout = \"" << (d / "bad").string() << "\"\nschedule = \"linear\"\n";
  Result bad2 = run_tool({"train", "--config", (d / "bad2.toml").string()});
  CHECK(bad2.status == 2);
  CHECK_MESSAGE(bad2.err.find("--schedule: 'linear' is not one of cosine, constant, onecycle") != std::string::npos, bad2.err);
  CHECK_FALSE(fs::exists(d / "bad"));
  fs::remove_all(d);
}

// Waits until `p` exists (the command got past its checks and is working), at most `seconds`.
static bool wait_for(const fs::path& p, double seconds) {
  for (auto t0 = std::chrono::steady_clock::now();
       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds;
       std::this_thread::sleep_for(std::chrono::milliseconds(20)))
    if (fs::exists(p)) return true;
  return false;
}

TEST_CASE("SIGINT / SIGTERM during train: the fold in progress is abandoned, a line says how to resume, exit 130 / 143") {
  const fs::path d = temp_dir("signal_train"), cache = tiny_cache(d / "cache");
  for (int sig : {SIGINT, SIGTERM}) {
    CAPTURE(sig);
    const fs::path out = d / ("run" + std::to_string(sig));
    std::vector<std::string> args = cat({"train", "--cache", cache.string(), "--out", out.string()}, kTiny);
    args[std::find(args.begin(), args.end(), "--epochs") - args.begin() + 1] = "400";  // long enough to be interrupted in fold 1
    const pid_t pid = spawn(args, d / "out.txt", d / "err.txt");
    REQUIRE(wait_for(out / "config.json", 60));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(pid, sig);
    const int status = wait_status(pid);
    const std::string err = slurp(d / "err.txt");
    CHECK_MESSAGE(status == 128 + sig, err);
    CHECK(err.find(sig == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM") != std::string::npos);
    CHECK(err.find("that fold was abandoned") != std::string::npos);
    CHECK(err.find("rerun the same command to resume") != std::string::npos);
    CHECK_FALSE(fs::exists(out / "fold_01" / "done.json"));
    CHECK_FALSE(fs::exists(out / "metrics.json"));
  }
  fs::remove_all(d);
}

TEST_CASE("SIGTERM during prepare: no clip is left half-recorded, exit 143; the rerun from a run file completes the cache") {
  const fs::path d = temp_dir("signal_prepare"), corpus = d / "synth", cache = d / "cache";
  Result s = run_tool({"synth", "--out", corpus.string(), "--subjects", "4", "--clips-per-class", "3", "--seed", "2", "--threads", "2"});
  REQUIRE_MESSAGE(s.status == 0, s.err);
  const std::vector<std::string> args = {"prepare", "--dataset", "casme2", "--root", corpus.string(), "--annotations",
                                         (corpus / "CASME2-coding-synthetic.csv").string(), "--out", cache.string(), "--threads", "1",
                                         "--quiet"};
  const pid_t pid = spawn(args, d / "out.txt", d / "err.txt");
  REQUIRE(wait_for(cache / "manifest.json", 60));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(pid, SIGTERM);
  const int status = wait_status(pid);
  const std::string err = slurp(d / "err.txt");
  REQUIRE_MESSAGE(status == 143, err);
  CHECK(err.find("interrupted by SIGTERM") != std::string::npos);
  CHECK(err.find("rerun the same command to resume") != std::string::npos);
  // The rerun from a run file holding the same options (prepare --write-config / --config).
  Result w = run_tool(cat(args, {"--write-config", (d / "prepare.toml").string()}));
  REQUIRE_MESSAGE(w.status == 0, w.err);
  CHECK(slurp(d / "prepare.toml").find("dataset=\"casme2\"") != std::string::npos);
  Result again = run_tool({"prepare", "--config", (d / "prepare.toml").string()});
  REQUIRE_MESSAGE(again.status == 0, again.err);
  CHECK(again.out.find("already in the cache") != std::string::npos);
  CHECK(again.out.find(", 0 failed") != std::string::npos);
  std::ifstream m(cache / "manifest.csv");
  int rows = -1;
  for (std::string line; std::getline(m, line);) ++rows;
  CHECK(rows == 4 * 3 * 3);  // every clip once
  fs::remove_all(d);
}

TEST_CASE("model init: a seed gives one file (the tiny fixture is the documented command's), another seed another") {
  const fs::path d = temp_dir("model_init");
  auto init = [&](const std::string& seed, const fs::path& out) {
    return run_tool({"model", "init", "-o", out.string(), "--model-config", "size=28;stem=8;channels=8,16;head_dim=8;reduction=4;kernels=3,5",
                     "--seed", seed, "--class-names", "negative,positive,surprise"});
  };
  Result a = init("16", d / "a.safetensors");
  REQUIRE(a.status == 0);
  CHECK(a.out.find("7605 parameters, seed 16") != std::string::npos);
  REQUIRE(init("16", d / "b.safetensors").status == 0);
  REQUIRE(init("17", d / "c.safetensors").status == 0);
  const std::string bytes = slurp(d / "a.safetensors");
  CHECK(bytes.size() > 30000);
  CHECK(bytes == slurp(d / "b.safetensors"));
  CHECK(bytes != slurp(d / "c.safetensors"));
  CHECK(bytes == slurp(AHMSA_SOURCE_DIR "/tests/fixtures/tiny_model.safetensors"));  // docs/EMBEDDING.md §2
  fs::remove_all(d);
}
