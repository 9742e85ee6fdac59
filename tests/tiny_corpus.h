// A tiny in-memory flow corpus for the training tests: `subjects` subjects x 3 classes x 2 clips of
// 8x8 flow images, where class c has a bright square in channel c (plus noise): an easy, learnable
// signal.
#pragma once
#include <string>

#include "tensor/rng.h"
#include "train/data/flow_dataset.h"

namespace ahmsa::testing {

inline data::FlowDataset tiny_corpus(int subjects, uint64_t seed) {
  data::FlowDataset ds;
  ds.class_names = {"negative", "positive", "surprise"};
  ds.source = "test corpus";
  Generator g(seed);
  const int S = 8;
  for (int subj = 0; subj < subjects; ++subj)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 2; ++k) {
        data::FlowSample s;
        s.dataset = "casme2", s.subject = "casme2/sub0" + std::to_string(subj + 1);
        s.clip = "EP0" + std::to_string(c) + "_0" + std::to_string(k);
        s.label = c, s.size = S;
        s.x.assign(size_t(3 * S * S), 0.f);
        for (auto& v : s.x) v = 0.3f * g.uniform();
        for (int y = 2; y < 6; ++y)
          for (int x = 2; x < 6; ++x) s.x[size_t(c * S * S + y * S + x)] = 0.8f + 0.2f * g.uniform();
        ds.samples.push_back(s);
      }
  return ds;
}

}  // namespace ahmsa::testing
