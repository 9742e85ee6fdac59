// cudasim: fibers, the threads of a simulated CUDA block.
//
// Each GPU thread of a block runs on a fiber of its own, a stack and a saved register set, and the
// block's scheduler switches between them cooperatively: a thread runs until it reaches a barrier or a
// warp collective, then hands back. On x86-64 the switch is a few instructions written here (callee-
// saved registers; the fibers share the host thread's floating-point environment, so MXCSR and the x87
// control word are not switched); elsewhere glibc's ucontext, which is about ten
// times slower because swapcontext makes a signal-mask system call on every switch.
//
// Stacks are mmap'd with a guard page below them, so a kernel that overflows its stack faults at once.
// Under AddressSanitizer and ThreadSanitizer every switch is announced to the sanitizer, so ASan knows
// which stack is live and TSan treats each fiber as a thread of its own (races between fibers are
// reported; happens-before comes only from the barriers, see cudasim.h).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDASIM_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CUDASIM_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(CUDASIM_ASAN)
#define CUDASIM_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(CUDASIM_TSAN)
#define CUDASIM_TSAN 1
#endif
#ifdef CUDASIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CUDASIM_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if defined(__x86_64__) && !defined(CUDASIM_UCONTEXT)
#define CUDASIM_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace cudasim::detail {

// The simulator's own bookkeeping (who waits where, the saved stack pointers) is touched by the fibers
// and the scheduler with no happens-before between them, on purpose: the only happens-before TSan
// sees is what a GPU guarantees (barriers, the start and end of a block). Those accesses are hidden
// from TSan by this scope, so that what it reports are the kernels' races.
#ifdef CUDASIM_TSAN
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
struct TsanIgnore {
  TsanIgnore() {
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  }
  ~TsanIgnore() {
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
  }
};
#else
struct TsanIgnore {
  TsanIgnore() {}  // user-provided: no unused-variable warning where it is a no-op
};
#endif

#ifdef CUDASIM_ASM_SWITCH
// cudasim_switch(&save_sp, new_sp): pushes the callee-saved registers on the current stack, stores the
// stack pointer in *save_sp, loads new_sp and pops the state saved there. A new fiber's stack is laid
// out by Fiber::reset so that the pops land in cudasim_fiber_start with the entry function in r13
// and its argument in r12. Weak, so every translation unit may include this header.
extern "C" void cudasim_switch(void** save_sp, void* new_sp);
asm(R"(
  .text
  .weak cudasim_switch
  .type cudasim_switch, @function
cudasim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cudasim_switch, .-cudasim_switch

  .weak cudasim_fiber_start
  .type cudasim_fiber_start, @function
cudasim_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size cudasim_fiber_start, .-cudasim_fiber_start
)");
extern "C" void cudasim_fiber_start();
#endif

struct Fiber {
  static constexpr size_t kStack = size_t(256) << 10;  // kernels keep small frames; 256 KiB is ample
  char* map = nullptr;                                 // guard page + stack
  size_t map_size = 0;
#ifdef CUDASIM_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
#ifdef CUDASIM_TSAN
  void* tsan = nullptr;
#endif

  char* stack_bottom() const { return map + page(); }
  static size_t stack_size() { return kStack; }
  static size_t page() {
    static const size_t p = size_t(sysconf(_SC_PAGESIZE));
    return p;
  }

  void create() {
    map_size = kStack + page();
    void* m = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "cudasim: cannot map a fiber stack\n");
      std::abort();
    }
    map = static_cast<char*>(m);
    mprotect(map, page(), PROT_NONE);  // guard page: a stack overflow faults here
#ifdef CUDASIM_TSAN
    tsan = __tsan_create_fiber(0);
#endif
  }
  void destroy() {
#ifdef CUDASIM_TSAN
    if (tsan) __tsan_destroy_fiber(tsan);
#endif
    if (map) munmap(map, map_size);
    map = nullptr;
  }

  // Prepares the fiber to start entry(arg) at its next switch.
  void reset(void (*entry)(void*), void* arg) {
#ifdef CUDASIM_ASAN
    ASAN_UNPOISON_MEMORY_REGION(stack_bottom(), stack_size());  // an abandoned run may leave poison
#endif
#ifdef CUDASIM_ASM_SWITCH
    uintptr_t top = (uintptr_t(stack_bottom()) + stack_size()) & ~uintptr_t(15);
    // Six registers and the return address; after the pops and `ret`, rsp = top - 16 (16-aligned
    // before cudasim_fiber_start's call, as the ABI wants).
    auto* s = reinterpret_cast<uint64_t*>(top - 72);
    s[0] = 0;                               // r15
    s[1] = 0;                               // r14
    s[2] = uint64_t(uintptr_t(entry));      // r13
    s[3] = uint64_t(uintptr_t(arg));        // r12
    s[4] = 0;                               // rbx
    s[5] = 0;                               // rbp
    s[6] = uint64_t(uintptr_t(&cudasim_fiber_start));
    sp = s;
#else
    getcontext(&ctx);
    ctx.uc_stack.ss_sp = stack_bottom();
    ctx.uc_stack.ss_size = stack_size();
    ctx.uc_link = nullptr;
    // makecontext passes int arguments: the pointer travels in two halves.
    makecontext(&ctx, reinterpret_cast<void (*)()>(&ucontext_entry), 4, int(uintptr_t(entry) >> 32),
                int(uintptr_t(entry) & 0xffffffffu), int(uintptr_t(arg) >> 32), int(uintptr_t(arg) & 0xffffffffu));
#endif
  }

#ifndef CUDASIM_ASM_SWITCH
  static void ucontext_entry(int e_hi, int e_lo, int a_hi, int a_lo) {
    auto entry = reinterpret_cast<void (*)(void*)>((uintptr_t(unsigned(e_hi)) << 32) | uintptr_t(unsigned(e_lo)));
    void* arg = reinterpret_cast<void*>((uintptr_t(unsigned(a_hi)) << 32) | uintptr_t(unsigned(a_lo)));
    entry(arg);
  }
#endif
};

// The scheduler's own context (the host thread's stack).
struct HostContext {
#ifdef CUDASIM_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
#ifdef CUDASIM_TSAN
  void* tsan = nullptr;
#endif
#ifdef CUDASIM_ASAN
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
#endif
};

// Host -> fiber. Returns when the fiber switches back with to_host().
inline void to_fiber(HostContext& host, Fiber& f) {
#ifdef CUDASIM_ASM_SWITCH
  void* const target = f.sp;  // read while still the host, as far as TSan is concerned
#endif
#ifdef CUDASIM_TSAN
  if (!host.tsan) host.tsan = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef CUDASIM_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack_bottom(), f.stack_size());
#endif
#ifdef CUDASIM_ASM_SWITCH
  cudasim_switch(&host.sp, target);
#else
  swapcontext(&host.ctx, &f.ctx);
#endif
#ifdef CUDASIM_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// Fiber -> host. `finished`: the fiber will never be resumed (ASan may drop its fake stack). The host
// context's fields are read in a TSan-ignored scope: the host rewrites them between launches.
inline void to_host(HostContext& host, Fiber& f, bool finished) {
#ifdef CUDASIM_ASM_SWITCH
  void* target;
#endif
#ifdef CUDASIM_TSAN
  void* host_fiber;
#endif
#ifdef CUDASIM_ASAN
  const void* host_bottom;
  size_t host_size;
#endif
  {
    TsanIgnore ignore;
#ifdef CUDASIM_ASM_SWITCH
    target = host.sp;
#endif
#ifdef CUDASIM_TSAN
    host_fiber = host.tsan;
#endif
#ifdef CUDASIM_ASAN
    host_bottom = host.stack_bottom;
    host_size = host.stack_size;
#endif
  }
#ifdef CUDASIM_TSAN
  __tsan_switch_to_fiber(host_fiber, __tsan_switch_to_fiber_no_sync);
#endif
#ifdef CUDASIM_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(finished ? nullptr : &fake, host_bottom, host_size);
#endif
#ifdef CUDASIM_ASM_SWITCH
  cudasim_switch(&f.sp, target);
#else
  swapcontext(&f.ctx, &host.ctx);
#endif
#ifdef CUDASIM_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// First thing a new fiber does: tell ASan the switch has finished and learn the host stack's bounds.
inline void fiber_entered(HostContext& host) {
#ifdef CUDASIM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &host.stack_bottom, &host.stack_size);
#else
  (void)host;
#endif
}

}  // namespace cudasim::detail
