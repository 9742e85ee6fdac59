#include "tensor/parallel.h"

#include <algorithm>
#include <cstdlib>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ahmsa {

#ifdef _OPENMP
static int initial_threads() {
  if (const char* s = std::getenv("AHMSA_THREADS")) {
    int n = std::atoi(s);
    if (n > 0) omp_set_num_threads(n);
  }
  return omp_get_max_threads();
}
static int g_threads = initial_threads();

void set_num_threads(int n) {
  g_threads = std::max(1, n);
  omp_set_num_threads(g_threads);
}
int num_threads() { return g_threads; }
bool in_parallel_region() { return omp_in_parallel(); }

void parallel_region(const std::function<void(int, int)>& fn) {
  if (g_threads <= 1 || omp_in_parallel()) return fn(0, 1);
#pragma omp parallel num_threads(g_threads)
  fn(omp_get_thread_num(), omp_get_num_threads());
}

void parallel_barrier() {
#pragma omp barrier
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(g_threads, (n + grain - 1) / grain);
  if (chunks <= 1 || omp_in_parallel()) return fn(begin, end);
#pragma omp parallel for num_threads(int(chunks)) schedule(static, 1)
  for (int64_t c = 0; c < chunks; ++c) fn(begin + n * c / chunks, begin + n * (c + 1) / chunks);
}
#else
void set_num_threads(int) {}
int num_threads() { return 1; }
bool in_parallel_region() { return false; }
void parallel_region(const std::function<void(int, int)>& fn) { fn(0, 1); }
void parallel_barrier() {}
void parallel_for(int64_t begin, int64_t end, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
  if (end > begin) fn(begin, end);
}
#endif

}  // namespace ahmsa
