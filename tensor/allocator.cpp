#include "tensor/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace ahmsa {

namespace {

// Sizes are rounded so that near-equal requests share a list: to 64 bytes below 64 KiB, else to
// 1/16 of the next power of two (at most ~6 % waste).
size_t round_size(size_t b) {
  if (b <= 65536) return (b + 63) / 64 * 64;
  size_t p = 1;
  while (p < b) p <<= 1;
  size_t step = p / 16;
  return (b + step - 1) / step * step;
}

// Cached bytes above this are returned to the system instead of kept.
constexpr size_t kMaxCached = size_t(4) << 30;

struct HostCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> sizes;  // every live or cached block
  size_t cached = 0;
};

HostCache& cache() {
  static HostCache* c = new HostCache;  // never destroyed: tensors may be freed during exit
  return *c;
}

}  // namespace

void* host_alloc(size_t bytes) {
  size_t r = round_size(bytes ? bytes : 1);
  auto& c = cache();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    auto it = c.free_blocks.find(r);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= r;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, r);
  if (!p) {
    host_release_cache();  // try again with the cache given back
    p = std::aligned_alloc(64, r);
    if (!p) throw std::bad_alloc();
  }
  std::lock_guard<std::mutex> lk(c.mu);
  c.sizes[p] = r;
  return p;
}

void host_free(void* p) {
  if (!p) return;
  auto& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  size_t r = c.sizes.at(p);
  if (c.cached + r > kMaxCached) {
    c.sizes.erase(p);
    std::free(p);
    return;
  }
  c.free_blocks.emplace(r, p);
  c.cached += r;
}

size_t host_cached_bytes() {
  std::lock_guard<std::mutex> lk(cache().mu);
  return cache().cached;
}

void host_release_cache() {
  auto& c = cache();
  std::lock_guard<std::mutex> lk(c.mu);
  for (auto& [r, p] : c.free_blocks) {
    c.sizes.erase(p);
    std::free(p);
  }
  c.free_blocks.clear();
  c.cached = 0;
}

}  // namespace ahmsa
