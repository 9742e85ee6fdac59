// Threads for the CPU kernels, on OpenMP. The thread count is a setting (set_num_threads, or
// the OMP_NUM_THREADS / AHMSA_THREADS environment variables); without OpenMP everything is serial.
#pragma once
#include <cstdint>
#include <functional>

namespace ahmsa {

void set_num_threads(int n);
int num_threads();
bool in_parallel_region();

// Runs fn(tid, nthreads) on every thread of a team (one thread inside an existing region).
void parallel_region(const std::function<void(int, int)>& fn);
void parallel_barrier();  // inside parallel_region only

// Splits [begin, end) into contiguous chunks of at least `grain` items and runs fn(lo, hi) on each,
// in parallel when there is enough work and we are not already inside a parallel region.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ahmsa
