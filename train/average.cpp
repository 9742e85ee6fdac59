#include "train/average.h"

#include <stdexcept>
#include <string>

#include "autograd/autograd.h"
#include "autograd/ops.h"

namespace ahmsa::train {

static void check_same(const std::vector<Tensor>& avg, const std::vector<Tensor>& p, const char* what) {
  if (avg.size() != p.size())
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(p.size()) + " tensors for an average of " +
                                std::to_string(avg.size()));
  for (size_t i = 0; i < p.size(); ++i)
    if (avg[i].shape() != p[i].shape())
      throw std::invalid_argument(std::string(what) + ": tensor " + std::to_string(i) + " is " + p[i].str() + ", the average " +
                                  avg[i].str());
}

void WeightAverage::start(const std::vector<Tensor>& params) {
  NoGradGuard g;
  avg_.clear();
  for (const Tensor& p : params) avg_.push_back(p.detach().clone());
  count_ = 0;
}

void WeightAverage::ema_update(const std::vector<Tensor>& params, float decay) {
  if (avg_.empty()) return start(params);
  check_same(avg_, params, "ema_update");
  NoGradGuard g;
  for (size_t i = 0; i < avg_.size(); ++i) avg_[i].copy_(avg_[i] * decay + params[i].detach() * (1.f - decay));
  ++count_;
}

void WeightAverage::add_snapshot(const std::vector<Tensor>& params) {
  if (count_ == 0) {
    start(params);
    count_ = 1;
    return;
  }
  check_same(avg_, params, "add_snapshot");
  NoGradGuard g;
  const float w = 1.f / float(count_ + 1);
  for (size_t i = 0; i < avg_.size(); ++i) avg_[i].copy_(avg_[i] + (params[i].detach() - avg_[i]) * w);
  ++count_;
}

void WeightAverage::copy_to(const std::vector<Tensor>& params) const {
  check_same(avg_, params, "copy_to");
  NoGradGuard g;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    p.copy_(avg_[i]);
  }
}

}  // namespace ahmsa::train
