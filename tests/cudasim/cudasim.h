// cudasim: a small SIMT simulator that runs the project's CUDA source on the CPU.
//
// A .cu file compiled with g++ and this folder first on the include path finds this simulator behind
// <cuda_runtime.h> and <cublas_v2.h>, and runs unchanged: kernels launched with AHMSA_LAUNCH
// (tensor/cuda_launch.h) run block after block, the threads of a block as fibers (fiber.h) that the
// block's scheduler interleaves at every barrier and warp collective. It is test infrastructure, not
// part of the product; what it proves and what only a GPU can is in docs/ARCHITECTURE.md.
//
// What it checks that a GPU would show only as a hang or wrong numbers:
//   - __syncthreads() reached by some threads of a block while others exited (strict mode) or wait at
//     another __syncthreads(); deadlock (threads waiting at collectives that can never complete);
//   - warp collectives (__syncwarp, __shfl*_sync, __ballot_sync, __any/__all_sync) whose mask names
//     lanes that exited, that do not exist, or that wait elsewhere; a shuffle reading a lane outside
//     its mask; a calling lane outside its own mask;
//   - static __shared__ memory is filled with NaN bytes (0xFF) at the start of every block, dynamic
//     shared memory too, and fresh cudaMalloc memory: a kernel reading what it did not write sees NaN;
//   - launch configuration as on the GPU (<= 1024 threads a block, 1024 x 1024 x 64, grid y/z <= 65535,
//     dynamic shared memory <= 48 KiB unless raised with cudaFuncSetAttribute);
//   - a kernel given a pointer argument that is not device memory; cudaMemcpy directions that do not
//     match where the pointers live; and (protect mode) host code touching device memory: outside
//     kernels and copies, device memory is mapped PROT_NONE and a host access stops the program with
//     a message naming the address.
// Thread order is a setting (forward, reverse, random with a seed; env CUDASIM_ORDER, CUDASIM_SEED):
// a missing barrier gives wrong results in some order. Faults set a sticky error, as a GPU fault
// does: every later runtime call returns it, and cudasim::last_fault() says what happened.
#pragma once
#define CUDASIM 1

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "fiber.h"

#ifndef _GNU_SOURCE
#error "cudasim needs _GNU_SOURCE (g++ defines it) for pkey_alloc"
#endif

// ---- the language: qualifiers and built-in types ------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Static shared memory: one copy per kernel (blocks run one at a time), kept in a section of its own
// so the simulator can poison all of it at the start of each block.
#define __shared__ static __attribute__((section("cudasim_shared")))
#define __constant__
#define __managed__

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 u) : x(u.x), y(u.y), z(u.z) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1,
                             cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1,
                               cudaStreamCaptureStatusInvalidated = 2 };

namespace cudasim {
struct Stream;
struct Event {
  bool recorded = false;
};
struct Graph;
}  // namespace cudasim
using cudaStream_t = cudasim::Stream*;
using cudaEvent_t = cudasim::Event*;
using cudaGraph_t = cudasim::Graph*;
using cudaGraphExec_t = cudasim::Graph*;
#define cudaStreamNonBlocking 0x01
#define cudaStreamDefault 0x00

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int maxThreadsPerBlock;
  int multiProcessorCount;
  int major, minor;
  int warpSize;
};

namespace cudasim {

// ---- settings ----------------------------------------------------------------------------------
enum class Order { Forward, Reverse, Random };
struct Config {
  Order order = Order::Forward;
  uint64_t seed = 1;
  bool strict = true;   // exited threads may not be waited for at a barrier
  bool protect = true;  // device memory unreadable from host code (off under ASan/TSan)
  bool quiet = false;   // do not print faults to stderr (tests of the simulator itself)
};

namespace detail {

inline Config read_env() {
  Config c;
  if (const char* o = std::getenv("CUDASIM_ORDER")) {
    std::string s = o;
    if (s == "forward") c.order = Order::Forward;
    else if (s == "reverse") c.order = Order::Reverse;
    else if (s == "random") c.order = Order::Random;
    else {
      std::fprintf(stderr, "cudasim: CUDASIM_ORDER=%s is not forward, reverse or random\n", o);
      std::exit(2);
    }
  }
  if (const char* s = std::getenv("CUDASIM_SEED")) c.seed = std::strtoull(s, nullptr, 10);
  if (const char* s = std::getenv("CUDASIM_STRICT")) c.strict = std::string(s) != "0";
  if (const char* s = std::getenv("CUDASIM_PROTECT")) c.protect = std::string(s) != "0";
#if defined(CUDASIM_ASAN) || defined(CUDASIM_TSAN)
  c.protect = false;  // the sanitizers track device memory as ordinary heap blocks instead
#endif
  return c;
}

inline std::recursive_mutex& big_lock() {
  static std::recursive_mutex m;
  return m;
}

}  // namespace detail

inline Config& config() {
  static Config c = detail::read_env();
  return c;
}
inline const char* order_name(Order o) {
  return o == Order::Forward ? "forward" : o == Order::Reverse ? "reverse" : "random";
}

// ---- errors: the last launch error and the sticky fault ----------------------------------------
namespace detail {
struct ErrorState {
  cudaError_t last = cudaSuccess;    // cleared by cudaGetLastError
  cudaError_t sticky = cudaSuccess;  // a fault: stays until cudasim::reset()
  std::string fault;                 // what the fault was
};
inline ErrorState& errors() {
  static ErrorState e;
  return e;
}
inline cudaError_t set_error(cudaError_t e) {
  errors().last = e;
  return e;
}
}  // namespace detail

// Records a fault (a GPU would have reported a launch failure or an illegal address).
inline void fault(cudaError_t code, const std::string& what) {
  auto& e = detail::errors();
  if (e.sticky == cudaSuccess) {
    e.sticky = code;
    e.fault = what;
  }
  e.last = code;
  if (!config().quiet) std::fprintf(stderr, "cudasim fault: %s\n", what.c_str());
}
inline const std::string& last_fault() { return detail::errors().fault; }
inline cudaError_t sticky_error() { return detail::errors().sticky; }
// Forgets faults and launch errors (a test of the simulator itself moves on to its next case).
inline void reset() { detail::errors() = {}; }

// ---- device memory -----------------------------------------------------------------------------
// In protect mode, allocations come from one reserved arena that is PROT_NONE while host code runs;
// otherwise (and under the sanitizers) from the heap, so ASan reports out-of-bounds kernel accesses.
namespace detail {
struct Memory {
  std::map<uintptr_t, size_t> blocks;  // base -> size (device allocations alive)
  char* arena = nullptr;
  size_t arena_size = size_t(64) << 30;  // reserved address space, not memory
  size_t arena_top = 0;                  // bytes handed out so far
  std::multimap<size_t, char*> arena_free;
  int open_depth = 0;                    // nested kernel/copy sections with the arena readable
  int pkey = -1;                         // a memory protection key for the arena, where the CPU has them
  size_t bytes_in_use = 0;
  uint64_t malloc_calls = 0;             // cudaMalloc calls so far (a training step after the first makes none)
};
inline Memory& memory() {
  static Memory m;
  return m;
}

inline void segv_handler(int sig, siginfo_t* info, void* ctx);
inline struct sigaction& previous_segv() {
  static struct sigaction a;
  return a;
}
// Installed whenever device memory is closed to the host, so that a handler a test framework put in
// place since (doctest installs its own per test case) comes after ours in the chain.
inline void install_segv_handler() {
  struct sigaction now {};
  sigaction(SIGSEGV, nullptr, &now);
  if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == segv_handler) return;
  struct sigaction a {};
  a.sa_sigaction = segv_handler;
  a.sa_flags = SA_SIGINFO;
  sigemptyset(&a.sa_mask);
  sigaction(SIGSEGV, &a, &previous_segv());
}

// Opening and closing the arena: with a protection key (x86 PKU) one register write of this thread's
// rights, without a system call; otherwise mprotect of the whole used arena (slow for large arenas).
inline void protect_arena(bool open) {
  auto& m = memory();
  if (!m.arena) return;
  if (!open) install_segv_handler();
  if (m.pkey >= 0) {
    pkey_set(m.pkey, open ? 0 : PKEY_DISABLE_ACCESS);
    return;
  }
  if (m.arena_top) mprotect(m.arena, m.arena_top, open ? PROT_READ | PROT_WRITE : PROT_NONE);
}

// A scope in which simulator code (kernels, copies, the cuBLAS double) may touch device memory.
struct DeviceAccess {
  DeviceAccess() {
    if (memory().open_depth++ == 0 && config().protect) protect_arena(true);
  }
  ~DeviceAccess() {
    if (--memory().open_depth == 0 && config().protect) protect_arena(false);
  }
};

// The device block holding [p, p + bytes), or blocks.end().
inline std::map<uintptr_t, size_t>::const_iterator find_block(const void* p, size_t bytes = 1) {
  const auto& b = memory().blocks;
  uintptr_t a = uintptr_t(p);
  auto it = b.upper_bound(a);
  if (it == b.begin()) return b.end();
  --it;
  if (a >= it->first && a + bytes <= it->first + std::max<size_t>(it->second, 1)) return it;
  return b.end();
}

inline void segv_handler(int sig, siginfo_t* info, void* ctx) {
  auto& m = memory();
  char* a = static_cast<char*>(info->si_addr);
  if (m.arena && a >= m.arena && a < m.arena + m.arena_size) {
    char msg[256];
    int n = std::snprintf(msg, sizeof msg,
                          "cudasim: host code touched device memory at %p (a device pointer was dereferenced "
                          "outside a kernel: use cudaMemcpy)\n",
                          info->si_addr);
    if (n > 0) (void)!write(2, msg, size_t(n));
    std::abort();
  }
  sigaction(SIGSEGV, &previous_segv(), nullptr);  // not ours: let the previous handler see it
  (void)sig;
  (void)ctx;
}

inline void* device_malloc(size_t bytes) {
  auto& m = memory();
  const size_t size = std::max<size_t>((bytes + 255) / 256 * 256, 256);
  char* p = nullptr;
  if (config().protect) {
    if (!m.arena) {
      void* r = mmap(nullptr, m.arena_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (r == MAP_FAILED) return nullptr;
      m.arena = static_cast<char*>(r);
      m.pkey = pkey_alloc(0, PKEY_DISABLE_ACCESS);
      if (m.pkey >= 0 && pkey_mprotect(m.arena, m.arena_size, PROT_READ | PROT_WRITE, m.pkey) != 0) {
        pkey_free(m.pkey);
        m.pkey = -1;
      }
    }
    auto it = m.arena_free.find(size);
    if (it != m.arena_free.end()) {
      p = it->second;
      m.arena_free.erase(it);
    } else {
      if (m.arena_top + size > m.arena_size) return nullptr;
      p = m.arena + m.arena_top;
      m.arena_top += size;
    }
  } else {
    // exactly `bytes` (not rounded up), so that ASan sees a read one past the end
    void* q = nullptr;
    if (posix_memalign(&q, 256, std::max<size_t>(bytes, 1)) != 0) return nullptr;
    p = static_cast<char*>(q);
  }
  m.blocks[uintptr_t(p)] = bytes;
  m.bytes_in_use += bytes;
  ++m.malloc_calls;
  DeviceAccess open;
  std::memset(p, 0xFF, bytes);  // NaN: uninitialised device memory is not zero on a GPU either
  return p;
}

inline bool device_free(void* p) {
  auto& m = memory();
  auto it = m.blocks.find(uintptr_t(p));
  if (it == m.blocks.end()) return false;
  const size_t size = std::max<size_t>((it->second + 255) / 256 * 256, 256);
  m.bytes_in_use -= it->second;
  m.blocks.erase(it);
  if (m.arena && static_cast<char*>(p) >= m.arena && static_cast<char*>(p) < m.arena + m.arena_size)
    m.arena_free.emplace(size, static_cast<char*>(p));
  else
    std::free(p);
  return true;
}
}  // namespace detail

inline bool is_device_pointer(const void* p, size_t bytes = 1) {
  return detail::find_block(p, bytes) != detail::memory().blocks.end();
}
inline size_t device_bytes_in_use() { return detail::memory().bytes_in_use; }
inline uint64_t malloc_calls() { return detail::memory().malloc_calls; }

// ---- the SIMT machine: one block at a time, its threads as fibers -------------------------------
namespace detail {

enum class Wait { Running, Block, Warp, Exited };
enum class WarpOp { Sync, Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All };
inline const char* warp_op_name(WarpOp o) {
  switch (o) {
    case WarpOp::Sync: return "__syncwarp";
    case WarpOp::Shfl: return "__shfl_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::All: return "__all_sync";
  }
  return "?";
}

struct Block;

struct Thread {
  uint3 idx;
  int linear = 0, lane = 0, warp = 0;
  Wait wait = Wait::Running;
  bool started = false;
  const char* file = "";
  int line = 0;
  // the warp collective this thread waits in
  WarpOp op = WarpOp::Sync;
  unsigned mask = 0;
  uint64_t value = 0;  // its contribution (bits of the shuffled value, or the predicate)
  int arg = 0;         // source lane, delta or lane mask
  int width = 32;
  uint64_t result = 0;
  Fiber* fiber = nullptr;
  Block* block = nullptr;
};

struct Launch;

struct Block {
  uint3 idx;
  std::vector<Thread> threads;
  HostContext host;
  Thread* current = nullptr;
  bool abandoned = false;  // a fault: stop running this launch
  unsigned barrier_generation = 0;
  char barrier_tokens[2] = {0, 0};  // TSan happens-before addresses, alternating per generation
  char* dynamic_shared = nullptr;
  Launch* launch = nullptr;
  std::vector<int> start_order;  // the first round's order, in which threads are started
  size_t next_start = 0;
  Fiber* starting_fiber = nullptr;
};

struct Launch {
  const char* name = "";
  dim3 grid, block;
  std::function<void()> body;  // runs the kernel for the current thread
  char block_start = 0, block_end = 0;  // TSan: the host's work before a block, the block's before the host's next
};

inline thread_local Block* tl_block = nullptr;

inline Block& block() { return *tl_block; }
inline Thread& me() { return *tl_block->current; }

inline std::string where(const Thread& t) {
  char s[160];
  std::snprintf(s, sizeof s, "thread (%u,%u,%u) of block (%u,%u,%u)", t.idx.x, t.idx.y, t.idx.z, t.block->idx.x,
                t.block->idx.y, t.block->idx.z);
  return s;
}
inline std::string site(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

// The thread gives the processor back to the block's scheduler (it waits or has exited).
// (The TSan-ignored scope ends before the switch: a fiber that is never resumed, because it exited or
// its block faulted, must not stay ignored when the pool hands it to the next launch.)
inline void yield_to_scheduler(bool finished = false) {
  HostContext* host;
  Fiber* f;
  {
    TsanIgnore ignore;
    Thread& t = me();
    host = &t.block->host;
    f = t.fiber;
  }
  to_host(*host, *f, finished);  // returns when the barrier or collective has completed
}

// A fiber runs threads of its block one after another, in the round's order, for as long as they
// finish without waiting: a kernel with no barrier runs its whole block on one fiber, with two
// switches instead of two per thread. A thread that waits keeps the fiber; the scheduler starts the
// next thread on a fresh one. (Under TSan every thread gets a fiber of its own, which TSan needs to
// tell the threads apart.)
inline Thread* next_unstarted(Block& b) {
  while (b.next_start < b.start_order.size()) {
    Thread& t = b.threads[size_t(b.start_order[b.next_start++])];
    if (!t.started) return &t;
  }
  return nullptr;
}

inline void fiber_main(void* arg) {
  Block* b = static_cast<Block*>(arg);
  Fiber* self;
  Launch* L;
  Thread* t;
  {
    TsanIgnore ignore;
    fiber_entered(b->host);
    self = b->starting_fiber;
    L = b->launch;
    t = b->current;
  }
  for (;;) {
    {
      TsanIgnore ignore;
      t->started = true;
      t->fiber = self;
      b->current = t;
    }
#ifdef CUDASIM_TSAN
    __tsan_acquire(&L->block_start);
#endif
    L->body();
#ifdef CUDASIM_TSAN
    __tsan_release(&L->block_end);
#endif
    bool more;
    {
      TsanIgnore ignore;
      t->wait = Wait::Exited;
#ifdef CUDASIM_TSAN
      more = false;
#else
      t = b->abandoned ? nullptr : next_unstarted(*b);
      more = t != nullptr;
#endif
    }
    if (!more) break;
  }
  {
    TsanIgnore ignore;
    b->current = nullptr;
  }
  to_host(b->host, *self, true);
  std::abort();  // never resumed
}

inline std::vector<Fiber>& fiber_pool() {
  static std::vector<Fiber> pool;
  return pool;
}

// ---- resolving barriers and collectives when no thread can run ----
inline bool fail_block(Block& b, const std::string& what) {
  fault(cudaErrorLaunchFailure, std::string("kernel ") + b.launch->name + ": " + what);
  b.abandoned = true;
  return false;
}

inline void complete_warp_op(Block& b, const std::vector<Thread*>& lanes) {
  // lanes: the members of the mask, all waiting in the same collective
  const Thread& first = *lanes.front();
  uint64_t bits = 0;
  for (Thread* t : lanes) {
    if ((first.op == WarpOp::Ballot || first.op == WarpOp::Any || first.op == WarpOp::All) && t->value)
      bits |= 1ull << t->lane;
  }
  auto lane_value = [&](int lane) -> const Thread* {
    for (Thread* t : lanes)
      if (t->lane == lane) return t;
    return nullptr;
  };
  for (Thread* t : lanes) {
    switch (first.op) {
      case WarpOp::Sync: t->result = 0; break;
      case WarpOp::Ballot: t->result = bits; break;
      case WarpOp::Any: t->result = bits != 0; break;
      case WarpOp::All: t->result = bits == (uint64_t(t->mask) & 0xffffffffull); break;
      default: {
        const int w = t->width, seg = t->lane / w * w, in = t->lane % w;
        int src = t->lane;
        if (t->op == WarpOp::Shfl) src = seg + (t->arg % w + w) % w;
        else if (t->op == WarpOp::ShflUp) src = in >= t->arg ? t->lane - t->arg : t->lane;
        else if (t->op == WarpOp::ShflDown) src = in + t->arg < w ? t->lane + t->arg : t->lane;
        else if (t->op == WarpOp::ShflXor) {
          src = t->lane ^ t->arg;
          if (src >= seg + w) src = t->lane;  // later groups give the caller's own value
        }
        const Thread* s = lane_value(src);
        if (!s) {
          fail_block(b, where(*t) + " " + warp_op_name(t->op) + " at " + site(t->file, t->line) + " reads lane " +
                            std::to_string(src) + ", which is outside its mask 0x" + [&] {
                              char h[16];
                              std::snprintf(h, sizeof h, "%08x", t->mask);
                              return std::string(h);
                            }());
          return;
        }
        t->result = s->value;
      }
    }
  }
  for (Thread* t : lanes) t->wait = Wait::Running;
}

// Completes every warp collective whose whole mask has arrived. Returns whether one completed;
// a collective that can never complete is a fault.
inline bool resolve_warps(Block& b) {
  bool any = false;
  const int nthreads = int(b.threads.size());
  for (Thread& t : b.threads) {
    if (t.wait != Wait::Warp || b.abandoned) continue;
    std::vector<Thread*> lanes;
    for (int lane = 0; lane < 32; ++lane) {
      if (!(t.mask >> lane & 1u)) continue;
      const int id = t.warp * 32 + lane;
      char mk[16];
      std::snprintf(mk, sizeof mk, "0x%08x", t.mask);
      const std::string head = where(t) + " " + warp_op_name(t.op) + "(mask " + mk + ") at " + site(t.file, t.line);
      if (id >= nthreads) return fail_block(b, head + " names lane " + std::to_string(lane) + ", which does not exist (the block has " + std::to_string(nthreads) + " threads)");
      Thread& u = b.threads[size_t(id)];
      if (u.wait == Wait::Exited) return fail_block(b, head + " waits for lane " + std::to_string(lane) + ", which has exited");
      if (u.wait == Wait::Block)
        return fail_block(b, head + " waits for lane " + std::to_string(lane) + ", which waits at __syncthreads() at " + site(u.file, u.line) + " (deadlock)");
      if (u.wait != Wait::Warp || u.op != t.op || u.mask != t.mask || (config().strict && (u.file != t.file || u.line != t.line)))
        return fail_block(b, head + ": lane " + std::to_string(lane) + " is in " + warp_op_name(u.op) + " at " + site(u.file, u.line) + " instead (divergent warp collective)");
      lanes.push_back(&u);
    }
    if (!(t.mask >> t.lane & 1u)) return fail_block(b, where(t) + " calls " + std::string(warp_op_name(t.op)) + " at " + site(t.file, t.line) + " with a mask that leaves out its own lane");
    complete_warp_op(b, lanes);
    if (b.abandoned) return false;
    any = true;
  }
  return any;
}

// Releases __syncthreads() when every thread still alive waits there.
inline bool resolve_block_barrier(Block& b) {
  int waiting = 0, exited = 0, in_warp = 0;
  const Thread* w0 = nullptr;
  for (const Thread& t : b.threads) {
    if (t.wait == Wait::Block) {
      ++waiting;
      if (!w0) w0 = &t;
      else if (t.file != w0->file || t.line != w0->line)
        return fail_block(b, "threads wait at different __syncthreads(): " + where(*w0) + " at " + site(w0->file, w0->line) + ", " + where(t) + " at " + site(t.file, t.line));
    } else if (t.wait == Wait::Exited) {
      ++exited;
    } else if (t.wait == Wait::Warp) {
      ++in_warp;
    }
  }
  if (waiting == 0) return false;
  if (in_warp) return false;  // resolve_warps reports it
  if (exited && config().strict)
    return fail_block(b, std::to_string(exited) + " threads exited while " + std::to_string(waiting) +
                             " wait at __syncthreads() at " + site(w0->file, w0->line) +
                             " (a barrier inside a branch that not every thread takes)");
  ++b.barrier_generation;
  for (Thread& t : b.threads)
    if (t.wait == Wait::Block) t.wait = Wait::Running;
  return true;
}

inline std::vector<int> thread_order(size_t n, uint64_t salt) {
  std::vector<int> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = int(i);
  if (config().order == Order::Reverse) std::reverse(order.begin(), order.end());
  if (config().order == Order::Random) {
    std::mt19937_64 rng(config().seed * 0x9E3779B97F4A7C15ull + salt);
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

inline char* shared_begin();
inline char* shared_end();

inline void run_block(Launch& L, Block& b, uint64_t block_linear) {
#ifdef CUDASIM_TSAN
  __tsan_acquire(&L.block_end);  // blocks run in turn: the last block's shared memory use is over
#endif
  auto& pool = fiber_pool();
  const size_t n = b.threads.size();
  while (pool.size() < n) {
    pool.emplace_back();
    pool.back().create();
  }
  if (char* s = shared_begin()) std::memset(s, 0xFF, size_t(shared_end() - s));  // NaN-poison static shared
  for (size_t i = 0; i < n; ++i) {
    Thread& t = b.threads[i];
    t.wait = Wait::Running;
    t.started = false;
    t.fiber = nullptr;
    t.block = &b;
  }
  size_t fibers_used = 0;
#ifdef CUDASIM_TSAN
  __tsan_release(&L.block_start);
#endif
  TsanIgnore ignore;
  uint64_t round = 0;
  for (;;) {
    std::vector<int> order = thread_order(n, block_linear * 1315423911ull + round++);
    if (round == 1) {
      b.start_order = order;
      b.next_start = 0;
    }
    for (int i : order) {
      Thread& t = b.threads[size_t(i)];
      if (t.wait != Wait::Running) continue;
      if (!t.started) {  // a fresh fiber starts it (and the threads after it that do not wait)
        Fiber& f = pool[fibers_used++];
        f.reset(&fiber_main, &b);
        b.starting_fiber = &f;
        b.current = &t;
        to_fiber(b.host, f);
      } else {
        b.current = &t;
        to_fiber(b.host, *t.fiber);
      }
      b.current = nullptr;
      if (b.abandoned) return;
    }
    bool all_exited = true;
    for (const Thread& t : b.threads) all_exited = all_exited && t.wait == Wait::Exited;
    if (all_exited) return;
    if (resolve_warps(b)) continue;
    if (b.abandoned) return;
    if (resolve_block_barrier(b)) continue;
    if (b.abandoned) return;
    // Nothing can move: describe who waits where.
    std::string who;
    int shown = 0;
    for (const Thread& t : b.threads) {
      if (t.wait == Wait::Running || t.wait == Wait::Exited || shown >= 4) continue;
      who += (shown++ ? "; " : "") + where(t) + " waits in " +
             (t.wait == Wait::Block ? std::string("__syncthreads()") : std::string(warp_op_name(t.op))) + " at " +
             site(t.file, t.line);
    }
    fail_block(b, "deadlock: " + who);
    return;
  }
}

}  // namespace detail

// Weak section bounds: present only when some kernel declares static shared memory.
extern "C" char __start_cudasim_shared[] __attribute__((weak));
extern "C" char __stop_cudasim_shared[] __attribute__((weak));
inline char* detail::shared_begin() { return __start_cudasim_shared; }
inline char* detail::shared_end() { return __stop_cudasim_shared; }

// ---- CUDA graphs: capture records the work of a stream, a launch replays it ---------------------
struct Stream {
  bool blocking = true;  // synchronises with the legacy stream (cudaStreamCreate); false: cudaStreamNonBlocking
  bool capturing = false;
  bool invalidated = false;  // work that would have joined the capture implicitly was submitted
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::vector<std::function<void()>> captured;
};
struct Graph {
  std::vector<std::function<void()>> work;
};
namespace detail {
inline Stream& legacy_stream() {
  static Stream s;
  return s;
}
inline Stream& stream_of(cudaStream_t s) { return s ? *s : legacy_stream(); }
// The streams being captured now.
inline std::vector<Stream*>& captures() {
  static std::vector<Stream*> v;
  return v;
}
// Work for a stream: recorded while the stream is captured, else run now. Work for the legacy stream
// while a blocking stream is captured would make the capture wait for it (an implicit dependency): as on a
// GPU it is refused with cudaErrorStreamCaptureImplicit and the capture is invalidated, so a kernel
// left on the legacy stream by mistake fails here rather than running outside the graph.
inline cudaError_t submit(cudaStream_t stream, std::function<void()> work) {
  Stream& s = stream_of(stream);
  if (s.capturing) {
    s.captured.push_back(std::move(work));
    return cudaSuccess;
  }
  if (!stream)
    for (Stream* c : captures())
      if (c->blocking) {
        c->invalidated = true;
        return set_error(cudaErrorStreamCaptureImplicit);
      }
  work();
  return cudaSuccess;
}
// An allocation while a capture that is not relaxed runs is one of the "potentially unsafe" calls.
inline bool strict_capture_running() {
  for (Stream* c : captures())
    if (c->mode != cudaStreamCaptureModeRelaxed) return true;
  return false;
}
}  // namespace detail

// ---- launches -----------------------------------------------------------------------------------
namespace detail {
struct FuncAttributes {
  size_t max_dynamic_shared = 48 << 10;
};
inline std::map<const void*, FuncAttributes>& func_attributes() {
  static std::map<const void*, FuncAttributes> m;
  return m;
}

inline cudaError_t check_config(const char* name, dim3 g, dim3 b, size_t shmem, const void* fn) {
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  std::string why;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0) why = "a zero grid or block dimension";
  else if (threads > 1024) why = std::to_string(threads) + " threads per block (at most 1024)";
  else if (b.x > 1024 || b.y > 1024 || b.z > 64) why = "block dimensions above 1024 x 1024 x 64";
  else if (g.x > 2147483647u || g.y > 65535 || g.z > 65535) why = "grid dimensions above 2^31-1 x 65535 x 65535";
  else {
    auto it = func_attributes().find(fn);
    const size_t limit = it == func_attributes().end() ? size_t(48 << 10) : it->second.max_dynamic_shared;
    if (shmem > limit)
      why = std::to_string(shmem) + " bytes of dynamic shared memory (the limit is " + std::to_string(limit) +
            " without cudaFuncSetAttribute)";
  }
  if (why.empty()) return cudaSuccess;
  if (!config().quiet) std::fprintf(stderr, "cudasim: launch of %s refused: %s\n", name, why.c_str());
  return cudaErrorInvalidConfiguration;
}

template <class T>
bool pointer_argument_ok(const char* name, int i, const T& v) {
  if constexpr (std::is_pointer_v<T>) {
    if (v != nullptr && !is_device_pointer(v)) {
      char s[64];
      std::snprintf(s, sizeof s, "%p", static_cast<const void*>(v));
      fault(cudaErrorIllegalAddress, std::string("kernel ") + name + ": argument " + std::to_string(i) + " (" + s +
                                         ") is not device memory (a host pointer, or freed)");
      return false;
    }
  }
  return true;
}

// After a fault the block's waiting fibers are never resumed. TSan is told that the host has seen
// their work (a synchronising switch there and back, without running them), so that freeing what
// they had read is not reported as a race.
inline void settle_abandoned(Block& b) {
#ifdef CUDASIM_TSAN
  for (Thread& t : b.threads)
    if (t.wait != Wait::Exited && t.fiber && b.host.tsan) {
      __tsan_switch_to_fiber(t.fiber->tsan, 0);
      __tsan_switch_to_fiber(b.host.tsan, 0);
    }
#else
  (void)b;
#endif
}

inline void run_grid(Launch& L, size_t shmem) {
  std::lock_guard<std::recursive_mutex> lock(big_lock());
  DeviceAccess open;
  std::vector<char> dynamic(shmem);
  Block b;
  b.launch = &L;
  const size_t n = size_t(L.block.x) * L.block.y * L.block.z;
  b.threads.resize(n);
  for (unsigned z = 0, i = 0; z < L.block.z; ++z)
    for (unsigned y = 0; y < L.block.y; ++y)
      for (unsigned x = 0; x < L.block.x; ++x, ++i) {
        Thread& t = b.threads[i];
        t.idx = {x, y, z};
        t.linear = int(i);
        t.lane = int(i % 32);
        t.warp = int(i / 32);
      }
  Block* saved = tl_block;
  tl_block = &b;
  uint64_t linear = 0;
  for (unsigned z = 0; z < L.grid.z && !b.abandoned; ++z)
    for (unsigned y = 0; y < L.grid.y && !b.abandoned; ++y)
      for (unsigned x = 0; x < L.grid.x && !b.abandoned; ++x) {
        b.idx = {x, y, z};
        b.barrier_generation = 0;
        if (shmem) std::memset(dynamic.data(), 0xFF, shmem);
        b.dynamic_shared = dynamic.data();
        run_block(L, b, linear++);
        if (b.abandoned) settle_abandoned(b);
      }
#ifdef CUDASIM_TSAN
  __tsan_acquire(&L.block_end);
#endif
  tl_block = saved;
}

template <class... P>
struct Launcher {
  const char* name;
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;
  void (*kernel)(P...);

  template <class... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
    std::lock_guard<std::recursive_mutex> lock(big_lock());
    if (sticky_error() != cudaSuccess) {
      set_error(sticky_error());
      return;
    }
    if (cudaError_t e = check_config(name, grid, block, shmem, reinterpret_cast<const void*>(kernel))) {
      set_error(e);
      return;
    }
    // The arguments as the kernel's parameter types, checked once, copied to every thread.
    auto args = std::make_shared<std::tuple<std::decay_t<P>...>>(std::forward<A>(a)...);
    bool ok = true;
    int i = 0;
    std::apply([&](const auto&... v) { ((ok = ok && pointer_argument_ok(name, i++, v)), ...); }, *args);
    if (!ok) return;
    auto fn = kernel;
    auto work = [name = name, grid = grid, block = block, shmem = shmem, fn, args] {
      if (sticky_error() != cudaSuccess) return;
      Launch L;
      L.name = name;
      L.grid = grid;
      L.block = block;
      L.body = [fn, args] { std::apply(fn, *args); };
      run_grid(L, shmem);
    };
    submit(stream, work);
  }
};

}  // namespace detail

template <class... P>
detail::Launcher<P...> launch(const char* name, dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
                              void (*kernel)(P...)) {
  return {name, grid, block, shmem, stream, kernel};
}

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(detail::block().dynamic_shared);
}

// ---- the thread's view: built-in variables ------------------------------------------------------
namespace detail {
inline uint3 thread_idx() {
  TsanIgnore ignore;
  return me().idx;
}
inline uint3 block_idx() {
  TsanIgnore ignore;
  return block().idx;
}
inline dim3 block_dim() {
  TsanIgnore ignore;
  return block().launch->block;
}
inline dim3 grid_dim() {
  TsanIgnore ignore;
  return block().launch->grid;
}
}  // namespace detail

// ---- barriers and warp collectives --------------------------------------------------------------
namespace detail {
inline void syncthreads(const char* file, int line) {
  char* token;
  {
    TsanIgnore ignore;
    Thread& t = me();
    Block& b = *t.block;
    t.wait = Wait::Block;
    t.file = file;
    t.line = line;
    token = &b.barrier_tokens[b.barrier_generation & 1];
  }
#ifdef CUDASIM_TSAN
  __tsan_release(token);
#endif
  yield_to_scheduler();
#ifdef CUDASIM_TSAN
  __tsan_acquire(token);
#endif
  (void)token;
}

template <class T>
uint64_t bits_of(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp collectives move values up to 8 bytes");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}

inline uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const char* file,
                                int line) {
  void* token;
  {
    TsanIgnore ignore;
    Thread& t = me();
    if (width <= 0 || width > 32 || (width & (width - 1))) {
      fail_block(*t.block, where(t) + " " + warp_op_name(op) + " at " + site(file, line) + ": width " +
                               std::to_string(width) + " is not a power of two up to 32");
      yield_to_scheduler();
      return 0;
    }
    t.wait = Wait::Warp;
    t.op = op;
    t.mask = mask;
    t.value = value;
    t.arg = arg;
    t.width = width;
    t.file = file;
    t.line = line;
    token = &t.block->threads[size_t(t.warp) * 32];  // one happens-before address per warp
  }
#ifdef CUDASIM_TSAN
  __tsan_release(token);
#endif
  yield_to_scheduler();
#ifdef CUDASIM_TSAN
  __tsan_acquire(token);
#endif
  (void)token;
  TsanIgnore ignore;
  return me().result;
}

inline unsigned active_mask() {
  TsanIgnore ignore;
  Thread& t = me();
  unsigned m = 0;
  for (int lane = 0; lane < 32; ++lane) {
    size_t id = size_t(t.warp) * 32 + size_t(lane);
    if (id < t.block->threads.size() && t.block->threads[id].wait != Wait::Exited) m |= 1u << lane;
  }
  return m;
}
}  // namespace detail

}  // namespace cudasim

// The built-in variables and functions, as kernels spell them.
#define threadIdx (::cudasim::detail::thread_idx())
#define blockIdx (::cudasim::detail::block_idx())
#define blockDim (::cudasim::detail::block_dim())
#define gridDim (::cudasim::detail::grid_dim())
#define __syncthreads() ::cudasim::detail::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::cudasim::detail::syncwarp_at(__FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__)
#define __shfl_sync(...) ::cudasim::detail::shfl_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::Shfl, __VA_ARGS__)
#define __shfl_up_sync(...) ::cudasim::detail::shfl_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::ShflUp, __VA_ARGS__)
#define __shfl_down_sync(...) ::cudasim::detail::shfl_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::ShflDown, __VA_ARGS__)
#define __shfl_xor_sync(...) ::cudasim::detail::shfl_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::ShflXor, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::cudasim::detail::vote_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::Ballot, mask, pred)
#define __any_sync(mask, pred) (::cudasim::detail::vote_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::Any, mask, pred) != 0)
#define __all_sync(mask, pred) (::cudasim::detail::vote_at(__FILE__, __LINE__, ::cudasim::detail::WarpOp::All, mask, pred) != 0)

namespace cudasim::detail {
inline void syncwarp_at(const char* file, int line, unsigned mask = 0xffffffffu) {
  warp_collective(WarpOp::Sync, mask, 0, 0, 32, file, line);
}
template <class T>
T shfl_at(const char* file, int line, WarpOp op, unsigned mask, T v, int arg, int width = 32) {
  return from_bits<T>(warp_collective(op, mask, bits_of(v), arg, width, file, line));
}
inline unsigned vote_at(const char* file, int line, WarpOp op, unsigned mask, int pred) {
  return unsigned(warp_collective(op, mask, pred != 0, 0, 32, file, line));
}
}  // namespace cudasim::detail

constexpr int warpSize = 32;

inline unsigned __activemask() { return ::cudasim::detail::active_mask(); }
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- atomics: the simulator runs one thread at a time, but TSan must see them as atomic ---------
template <class T>
inline T cudasim_atomic_add(T* p, T v) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  } else {  // a compare-and-swap loop on the bits, as CUDA's own emulation of double atomicAdd does
    using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    U* q = reinterpret_cast<U*>(p);
    U expected = __atomic_load_n(q, __ATOMIC_RELAXED);
    for (;;) {
      T cur, next;
      std::memcpy(&cur, &expected, sizeof(T));
      next = cur + v;
      U desired;
      std::memcpy(&desired, &next, sizeof(T));
      if (__atomic_compare_exchange_n(q, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return cur;
    }
  }
}
inline int atomicAdd(int* p, int v) { return cudasim_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return cudasim_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return cudasim_atomic_add(p, v); }
inline float atomicAdd(float* p, float v) { return cudasim_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return cudasim_atomic_add(p, v); }
inline int atomicMax(int* p, int v) {
  int cur = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return cur;
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  unsigned cur = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (cur < v && !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return cur;
}
inline int atomicMin(int* p, int v) {
  int cur = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (cur > v && !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return cur;
}
inline int atomicCAS(int* p, int compare, int v) {
  __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned v) {
  __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare, unsigned long long v) {
  __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline float atomicExch(float* p, float v) {
  uint32_t u, old;
  std::memcpy(&u, &v, 4);
  old = __atomic_exchange_n(reinterpret_cast<uint32_t*>(p), u, __ATOMIC_RELAXED);
  float r;
  std::memcpy(&r, &old, 4);
  return r;
}

// ---- math intrinsics ------------------------------------------------------------------------------
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : x > 1.f ? 1.f : x; }
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline int __float2int_rn(float x) { return int(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline unsigned __float_as_uint(float x) {
  unsigned i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline float __int_as_float(int i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline float __uint_as_float(unsigned i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
// Device code calls min/max unqualified on ints and floats.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
// expf, erff, sqrtf, ... are the C library functions of <cmath>, as in device code.
