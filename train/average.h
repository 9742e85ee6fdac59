// Weight averaging for the end of training: an exponential moving average of the weights updated after
// every step (--ema DECAY), or the plain average of the weights after each of the last N epochs
// (stochastic weight averaging, --swa-epochs N; Izmailov et al. 2018). The average lives on the
// parameters' device; nothing here reads tensor memory on the host. The trainer copies the average into
// the model at the end and recomputes the BatchNorm statistics for it (recompute_batch_norm in
// train/trainer.h), and that model is the one saved and scored.
#pragma once
#include <vector>

#include "tensor/tensor.h"

namespace ahmsa::train {

class WeightAverage {
 public:
  // EMA: avg ← decay·avg + (1 − decay)·p. Before the first update the average is a copy of p, so after
  // k updates with weights p_1..p_k from the start p_0: avg = decay^k p_0 + (1 − decay) Σ_i decay^(k−i) p_i.
  void start(const std::vector<Tensor>& params);
  void ema_update(const std::vector<Tensor>& params, float decay);
  // SWA: the running mean of the snapshots added so far (avg ← avg + (p − avg)/(n + 1)).
  void add_snapshot(const std::vector<Tensor>& params);
  int count() const { return count_; }  // snapshots or EMA updates so far
  bool empty() const { return avg_.empty(); }
  const std::vector<Tensor>& values() const { return avg_; }
  // The average into the given tensors (the model's parameters, same order and shapes).
  void copy_to(const std::vector<Tensor>& params) const;

 private:
  std::vector<Tensor> avg_;
  int count_ = 0;
};

}  // namespace ahmsa::train
