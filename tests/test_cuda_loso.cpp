// A short LOSO run with the folds training on CUDA gives the predictions of the same run on the CPU:
// the same classes for every clip and class probabilities within 1e-3 (the devices sum in different
// orders; dropout masks are the same on both). The CUDA run replays its training steps as CUDA
// graphs (the default), which the simulator counts. Built for the simulator and with nvcc (a GPU, or it
// says why it skips). A second case trains one fold with the small-data recipe (augmentation,
// mixup/CutMix, EMA, drop-path) on both devices.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include "tensor/device.h"
#ifdef AHMSA_CUDA_SIM
#include <cuda_runtime.h>  // cudasim::graph_launches()
#endif
#include "tensor/parallel.h"
#include "train/data/table.h"
#include "tiny_corpus.h"
#include "train/loso.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace ahmsa;
using namespace ahmsa::train;

namespace {

RunOptions options(const fs::path& out, Device device) {
  RunOptions o;
  o.out_dir = out.string();
  o.progress = false;
  o.device = device;
  o.settings.protocol.seed = 5;
  o.settings.fold.model = AhmsaConfig::parse("size=8;stem=8;channels=32,32");
  o.settings.fold.epochs = 3;
  o.settings.fold.batch_size = 6;
  o.settings.fold.optim.lr = 3e-3f;
  o.settings.fold.optim.warmup_epochs = 1;
  return o;
}

// One folder per process: CTest runs the simulated thread orders of this test at the same time.
fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("ahmsa_test_cuda_loso_" + std::to_string(getpid()) + "_" + name);
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST_CASE("LOSO on CUDA predicts what LOSO on the CPU predicts") {
  if (!cuda_available()) {
    std::printf("test_cuda_loso: skipped, no usable GPU (this build has CUDA but the machine has no driver or device)\n");
    return;
  }
  set_num_threads(1);
  const data::FlowDataset ds = testing::tiny_corpus(3, 11);
  const fs::path cpu_dir = fresh_dir("cpu"), gpu_dir = fresh_dir("cuda");
  const RunResult cpu = run_training(ds, options(cpu_dir, Device::CPU));
#ifdef AHMSA_CUDA_SIM
  const uint64_t replays_before = cudasim::graph_launches();
#endif
  const RunResult gpu = run_training(ds, options(gpu_dir, Device::CUDA));
#ifdef AHMSA_CUDA_SIM
  // 12 training clips a fold in batches of 6: two steps an epoch. The first step runs eagerly, the
  // second is captured, and every step after it is a replay of the graph: 1 + 2 + 2 replays in each of
  // the 3 folds (--cuda-graphs is on by default).
  CHECK(cudasim::graph_launches() - replays_before == 15);
#endif
  REQUIRE(cpu.complete);
  REQUIRE(gpu.complete);
  CHECK(gpu.folds == 3);
  CHECK(gpu.failed == 0);
  int clips = 0;
  double worst = 0;
  for (int i = 1; i <= 3; ++i) {
    const std::string fold = "fold_0" + std::to_string(i);
    const data::Table a = data::read_csv((cpu_dir / fold / "predictions.csv").string());
    const data::Table b = data::read_csv((gpu_dir / fold / "predictions.csv").string());
    REQUIRE(a.size() == b.size());
    for (size_t row = 1; row < a.size(); ++row) {
      CAPTURE(fold);
      CAPTURE(row);
      CHECK(a[row][3] == b[row][3]);  // the clip
      CHECK(a[row][5] == b[row][5]);  // the predicted class
      for (size_t k = 6; k < a[row].size(); ++k) {
        const double d = std::abs(std::stod(a[row][k]) - std::stod(b[row][k]));
        worst = std::max(worst, d);
        CHECK(d <= 1e-3);
      }
      ++clips;
    }
  }
  CHECK(clips == 18);
  CHECK(gpu.report.pooled.uf1 == doctest::Approx(cpu.report.pooled.uf1));
  fs::remove_all(cpu_dir);
  fs::remove_all(gpu_dir);
  MESSAGE("18 clips: same classes; largest probability difference CUDA vs CPU " << worst << "; pooled UF1 "
                                                                               << gpu.report.pooled.uf1);
}

TEST_CASE("one fold with the small-data recipe on CUDA (augmentation, mixup/CutMix soft targets, EMA, drop-path) predicts what it predicts on the CPU") {
  if (!cuda_available()) {
    std::printf("test_cuda_loso: skipped, no usable GPU (this build has CUDA but the machine has no driver or device)\n");
    return;
  }
  set_num_threads(1);
  const data::FlowDataset ds = testing::tiny_corpus(3, 12);
  Fold fold;
  fold.name = "casme2/sub03";
  for (size_t i = 0; i < ds.samples.size(); ++i) (ds.samples[i].subject == fold.name ? fold.test : fold.train).push_back(int(i));
  FoldSettings o = options("unused", Device::CPU).settings.fold;
  o.epochs = 2;
  o.model.drop_path = 0.2f;
  o.augment.translate = 0.2f, o.augment.rotate = 10, o.augment.erase = 0.2f;
  o.mix.mixup_alpha = 0.4f, o.mix.cutmix_alpha = 1.f;
  o.ema = 0.9f;
  const FoldOutcome cpu = train_fold(ds, fold, o, 77);
  o.device = Device::CUDA;
  const FoldOutcome gpu = train_fold(ds, fold, o, 77);
  REQUIRE(cpu.prob.size() == 6);
  REQUIRE(gpu.prob.size() == 6);
  double worst = 0;
  for (size_t i = 0; i < cpu.prob.size(); ++i)
    for (size_t k = 0; k < cpu.prob[i].size(); ++k) worst = std::max(worst, double(std::abs(cpu.prob[i][k] - gpu.prob[i][k])));
  CHECK(worst <= 1e-3);
  CHECK(gpu.pred == cpu.pred);
  MESSAGE("recipe fold: largest probability difference CUDA vs CPU " << worst);
}
