// A finished tiny LOSO run (tests/tiny_corpus.h, 4 subjects) for the report tests: its folder holds
// every report file, report.html included.
#pragma once
#include <filesystem>
#include <string>

#include "tensor/parallel.h"
#include "tiny_corpus.h"
#include "train/loso.h"

namespace ahmsa::testing {

inline train::RunResult tiny_run(const std::filesystem::path& out) {
  std::filesystem::remove_all(out);
  set_num_threads(2);
  train::RunOptions o;
  o.out_dir = out.string();
  o.progress = false;
  o.settings.protocol.seed = 3;
  o.settings.fold.model = AhmsaConfig::parse("size=8;stem=8;channels=32,32");
  o.settings.fold.epochs = 6;
  o.settings.fold.batch_size = 6;
  o.settings.fold.optim.lr = 3e-3f;
  o.settings.fold.optim.warmup_epochs = 1;
  return train::run_training(tiny_corpus(4, 5), o);
}

}  // namespace ahmsa::testing
