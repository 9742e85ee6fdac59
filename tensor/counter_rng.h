// A counter-based uniform generator: the number for element `counter` of stream `seed` is a pure
// function of the two, so a kernel on any device, with any thread order, draws the same numbers.
// The mix is SplitMix64's finaliser applied to the seed and the Weyl-sequenced counter; the top 24 bits
// give a float in [0, 1) exactly (no rounding up to 1).
#pragma once
#include <cstdint>

#if defined(__CUDACC__) || defined(CUDASIM)
#define AHMSA_COUNTER_HD __host__ __device__
#else
#define AHMSA_COUNTER_HD
#endif

namespace ahmsa {

AHMSA_COUNTER_HD inline uint64_t counter_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

AHMSA_COUNTER_HD inline float counter_uniform(uint64_t seed, uint64_t counter) {
  const uint64_t z = counter_mix(counter_mix(seed) + (counter + 1) * 0x9E3779B97F4A7C15ull);
  return float(z >> 40) * (1.0f / 16777216.0f);
}

}  // namespace ahmsa
