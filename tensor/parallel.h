// Threads for the CPU kernels: a small fork-join pool (tensor/parallel.cpp). The thread count is
// a setting: set_num_threads(), or the AHMSA_THREADS / OMP_NUM_THREADS environment variables;
// the default is the number of cores. A build configured with AHMSA_THREADS=OFF has no pool: every
// call runs on the caller's thread and the count is always 1.
#pragma once
#include <cstdint>
#include <functional>

namespace ahmsa {

void set_num_threads(int n);
int num_threads();
int default_num_threads();  // what num_threads() is before any set_num_threads (the environment, else the cores)
bool in_parallel_region();

// Runs fn(tid, nthreads) on every thread of the pool (one thread inside an existing region, or
// when another thread is using the pool).
void parallel_region(const std::function<void(int, int)>& fn);
void parallel_barrier();  // inside parallel_region only

// Splits [begin, end) into contiguous chunks of at least `grain` items and runs fn(lo, hi) on each,
// in parallel when there is enough work and we are not already inside a parallel region.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ahmsa
