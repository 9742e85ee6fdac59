// A hard synthetic benchmark for the training recipe (`ahmsa synth --preset small-data`): normalised
// (u, v, os) flow images written straight into a flow cache (manifest.json, manifest.csv, flows/*.png,
// the layout `ahmsa prepare` writes), shaped like the MEGC2019 composite as this network sees it:
// few clips per subject, subject-specific motion that carries no class information, a weak class signal
// whose direction and strength vary by subject, the composite's class imbalance (250/109/83), and three
// "datasets" with different noise and resolution. It skips the video and TV-L1 stages on purpose (one
// LOSO run on it takes a minute or two on 2 shared cores), so it is a proxy for the small-data regime, not evidence about
// real data. The generative model is spelt out in docs/DATA.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ahmsa::data {

struct SmallDataOptions {
  std::string out_dir;
  int subjects = 14;         // split 5 : 5 : 4 over casme2, samm, smic (at least 3)
  int size = 16;             // flow image side
  float clips_per_subject = 6.5f;  // mean (the composite: 442 clips / 68 subjects)
  float signal = 1.0f;       // amplitude of the class-specific motion
  float style = 2.0f;        // amplitude of each subject's own motion (no class information)
  uint64_t seed = 1;
};

struct SmallDataReport {
  int clips = 0;
  int per_class[3] = {0, 0, 0};
  int per_dataset[3] = {0, 0, 0};  // casme2, samm, smic
};

// Writes the cache; throws std::invalid_argument for bad options, std::runtime_error naming the file for I/O.
SmallDataReport write_small_data_benchmark(const SmallDataOptions& o);

}  // namespace ahmsa::data
