#include "tensor/rng.h"

#include <cmath>

namespace ahmsa {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void Generator::manual_seed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
  have_spare_ = false;
  seed_ = seed;
  counter_offset_ = 0;
}

Generator::CounterBlock Generator::counter_block(uint64_t n) {
  CounterBlock b{seed_, counter_offset_, counter_shift_};
  counter_offset_ += n;
  return b;
}

uint64_t Generator::next_u64() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Generator::uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }

uint32_t Generator::below(uint32_t n) { return uint32_t((next_u64() >> 32) * uint64_t(n) >> 32); }

float Generator::normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  double u1 = (double(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0, 1]
  double u2 = double(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * M_PI * u2;
  spare_ = float(r * std::sin(th));
  have_spare_ = true;
  return float(r * std::cos(th));
}

static void require_cpu(const Tensor& t, const char* what) {
  if (t.device() != Device::CPU || !t.is_contiguous())
    throw ShapeError(std::string(what) + " needs a contiguous CPU tensor, got " + t.str());
}

void uniform_(Tensor& t, float lo, float hi, Generator& g) {
  require_cpu(t, "uniform_");
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = g.uniform(lo, hi);
}

void normal_(Tensor& t, float mean, float std, Generator& g) {
  require_cpu(t, "normal_");
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = mean + std * g.normal();
}

void trunc_normal_(Tensor& t, float mean, float std, float a, float b, Generator& g) {
  require_cpu(t, "trunc_normal_");
  float* p = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v;
    do v = mean + std * g.normal();
    while (v < a || v > b);
    p[i] = v;
  }
}

int64_t fan_in(const Tensor& w) {
  if (w.dim() < 2) throw ShapeError("fan_in of a tensor with fewer than 2 dims: " + w.str());
  return w.numel() / w.size(0);
}
int64_t fan_out(const Tensor& w) { return w.numel() / w.size(1); }

void kaiming_uniform_default_(Tensor& w, Generator& g) {
  // gain = sqrt(2 / (1 + a^2)) with a = sqrt(5); bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
  float bound = 1.0f / std::sqrt(float(fan_in(w)));
  uniform_(w, -bound, bound, g);
}

void kaiming_normal_(Tensor& w, Generator& g) { normal_(w, 0.f, std::sqrt(2.0f / float(fan_in(w))), g); }

void xavier_uniform_(Tensor& w, Generator& g) {
  float a = std::sqrt(6.0f / float(fan_in(w) + fan_out(w)));
  uniform_(w, -a, a, g);
}

}  // namespace ahmsa
