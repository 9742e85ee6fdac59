// A small fork-join thread pool. Workers spin briefly for the next job and then sleep on a
// condition variable, so a busy machine (other processes on the cores) does not turn waiting
// into burnt time slices, which is what OpenMP's default spinning does under oversubscription.
#include "tensor/parallel.h"

#ifdef AHMSA_SINGLE_THREAD
// ---- the single-thread build (AHMSA_THREADS=OFF): no pool, no threads started ----------------------
namespace ahmsa {
void set_num_threads(int) {}
int num_threads() { return 1; }
int default_num_threads() { return 1; }
bool in_parallel_region() { return false; }
void parallel_region(const std::function<void(int, int)>& fn) { fn(0, 1); }
void parallel_barrier() {}
void parallel_for(int64_t begin, int64_t end, int64_t, const std::function<void(int64_t, int64_t)>& fn) {
  if (end > begin) fn(begin, end);
}
}  // namespace ahmsa
#else

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#define AHMSA_PAUSE() _mm_pause()
#else
#define AHMSA_PAUSE() ((void)0)
#endif

namespace ahmsa {

namespace {

thread_local bool tl_in_region = false;
thread_local int tl_team = 1;  // threads in the job this thread is running (1: none)

// Spin for a little while (the next op usually follows within microseconds), then yield or sleep.
constexpr int kSpin = 4000;

class Pool {
 public:
  explicit Pool(int n) : n_(n) {
    for (int t = 1; t < n_; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return n_; }

  // Runs fn(tid, n) on all n threads (the caller is thread 0) and returns when all are done.
  void run(const std::function<void(int, int)>& fn) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return fn(0, 1);  // another caller holds the pool: run serially
    job_ = &fn;
    remaining_.store(n_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    tl_in_region = true;
    tl_team = n_;
    fn(0, n_);
    tl_in_region = false;
    tl_team = 1;
    for (int i = 0; remaining_.load(std::memory_order_acquire) != 0; ++i)
      if (i < kSpin) AHMSA_PAUSE(); else std::this_thread::yield();
  }

  // Sense-reversing barrier over the n threads of the current job.
  void barrier() {
    int gen = bar_gen_.load(std::memory_order_acquire);
    if (bar_count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      bar_count_.store(0, std::memory_order_relaxed);
      bar_gen_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int i = 0; bar_gen_.load(std::memory_order_acquire) == gen; ++i)
      if (i < kSpin) AHMSA_PAUSE(); else std::this_thread::yield();
  }

 private:
  void loop(int tid) {
    uint64_t seen = 0;
    while (true) {
      for (int i = 0; i < kSpin && generation_.load(std::memory_order_acquire) == seen; ++i) AHMSA_PAUSE();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      tl_in_region = true;
      tl_team = n_;
      (*job_)(tid, n_);
      tl_in_region = false;
      tl_team = 1;
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  int n_;
  std::vector<std::thread> workers_;
  std::mutex m_, run_mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0};
  std::atomic<int> bar_count_{0}, bar_gen_{0};
  const std::function<void(int, int)>* job_ = nullptr;
  bool stop_ = false;
};

int default_threads() {
  for (const char* var : {"AHMSA_THREADS", "OMP_NUM_THREADS"})
    if (const char* s = std::getenv(var)) {
      int n = std::atoi(s);
      if (n > 0) return n;
    }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::unique_ptr<Pool>& pool_slot() {
  static std::unique_ptr<Pool> pool;
  return pool;
}
int g_threads = default_threads();
std::mutex g_pool_mu;

Pool* pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  auto& p = pool_slot();
  if (!p || p->size() != g_threads) p = std::make_unique<Pool>(g_threads);
  return p.get();
}

}  // namespace

void set_num_threads(int n) { g_threads = std::max(1, n); }
int num_threads() { return g_threads; }
int default_num_threads() { return default_threads(); }
bool in_parallel_region() { return tl_in_region; }

void parallel_region(const std::function<void(int, int)>& fn) {
  if (g_threads <= 1 || tl_in_region) {
    int saved = tl_team;
    tl_team = 1;
    fn(0, 1);
    tl_team = saved;
    return;
  }
  pool()->run(fn);
}

void parallel_barrier() {
  if (tl_team <= 1) return;  // a job run on one thread (nested, or the pool was busy)
  pool()->barrier();
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(g_threads, (n + grain - 1) / grain);
  if (chunks <= 1 || tl_in_region) return fn(begin, end);
  pool()->run([&](int tid, int nt) {
    // nt threads share `chunks` ranges; threads beyond the chunk count idle this time.
    for (int64_t c = tid; c < chunks; c += nt) fn(begin + n * c / chunks, begin + n * (c + 1) / chunks);
  });
}

}  // namespace ahmsa
#endif  // AHMSA_SINGLE_THREAD
