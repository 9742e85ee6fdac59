// Explicit, deterministic random numbers: every random op takes a Generator, there is no
// global seed. xoshiro256** seeded through splitmix64; normals by Box-Muller. The same seed
// gives the same stream on every machine and compiler (no std:: distributions involved).
#pragma once
#include <cstdint>

#include "tensor/tensor.h"

namespace ahmsa {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t next_u64();
  float uniform();  // [0, 1)
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  float normal();   // N(0, 1)
  uint32_t below(uint32_t n);  // uniform integer in [0, n)

  // The next n numbers of this generator's counter-based stream (tensor/counter_rng.h), for kernels
  // that draw on a device: number i of the block is counter_uniform(seed, offset + i). The seed is the
  // one given to manual_seed; each call advances the offset by n. Independent of the xoshiro stream.
  // While a CUDA graph is captured, `shift` points at device memory holding what the replay adds to
  // every offset of the step (so one captured launch draws a new block at each replay); null otherwise.
  struct CounterBlock {
    uint64_t seed, offset;
    const uint64_t* shift;
  };
  CounterBlock counter_block(uint64_t n);
  uint64_t counter_offset() const { return counter_offset_; }
  void set_counter_shift(const uint64_t* device_shift) { counter_shift_ = device_shift; }

 private:
  uint64_t s_[4];
  uint64_t seed_ = 0, counter_offset_ = 0;
  const uint64_t* counter_shift_ = nullptr;
  bool have_spare_ = false;
  float spare_ = 0.f;
};

// In-place initialisers (CPU tensors, no autograd).
void uniform_(Tensor& t, float lo, float hi, Generator& g);
void normal_(Tensor& t, float mean, float std, Generator& g);
// Normal(mean, std) redrawn until inside [a, b] (PyTorch's trunc_normal_ bounds are absolute).
void trunc_normal_(Tensor& t, float mean, float std, float a, float b, Generator& g);
// fan_in of a weight [out, in, kh, kw] or [out, in] = in * kh * kw.
int64_t fan_in(const Tensor& w);
int64_t fan_out(const Tensor& w);
// PyTorch's default for Conv2d/Linear weights: kaiming_uniform_(a = sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void kaiming_uniform_default_(Tensor& w, Generator& g);
void kaiming_normal_(Tensor& w, Generator& g);  // std = sqrt(2 / fan_in), ReLU gain
void xavier_uniform_(Tensor& w, Generator& g);  // U(-a, a), a = sqrt(6 / (fan_in + fan_out))

}  // namespace ahmsa
