// `ahmsa bench ops`: conv2d forward and forward+backward at AHMSA-Net's layer shapes, and the
// sgemm, in GFLOP/s beside an estimate of the machine's fp32 peak.
//
// FLOP counts (a multiply-add is 2 FLOP), the same as tools/reference/bench_torch_ops.py so the
// two outputs compare line by line:
//   conv forward   2 · N · C_out · H_out · W_out · C_in · k · k
//   conv fwd+bwd   3 × forward (forward, input gradient, weight gradient; bias ignored)
//   sgemm          2 · M · N · K
// Peak estimate with AVX2+FMA: 2 FMA units × 8 floats × 2 FLOP = 32 FLOP per cycle per core,
// times the cores and the clock (the cpufreq maximum when the kernel exposes it, else the
// "cpu MHz" of /proc/cpuinfo); without FMA, 2 × 8 (AVX) or 2 × 4 (SSE) FLOP per cycle per unit.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "autograd/ops.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include "tensor/rng.h"
#include "tools/command.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ahmsa::cli {

namespace {

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Median wall time of `reps` calls after `warmup` untimed ones.
template <class F>
double median_ms(F&& fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    double t0 = now_ms();
    fn();
    t.push_back(now_ms() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Machine {
  std::string model = "unknown CPU";
  int cores = 1;
  double mhz = 0;
  std::string mhz_source = "unknown";
  bool avx = false, avx2 = false, fma = false;
  double flop_per_cycle = 0;  // per core
  std::string flop_rule;
  double peak_per_core() const { return flop_per_cycle * mhz * 1e-3; }  // GFLOP/s
};

Machine detect_machine() {
  Machine m;
  m.cores = int(std::max(1u, std::thread::hardware_concurrency()));
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  double max_mhz = 0;
  while (std::getline(cpuinfo, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1), value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (key == "model name") m.model = value;
    if (key == "cpu MHz") max_mhz = std::max(max_mhz, std::atof(value.c_str()));
  }
  std::ifstream maxfreq("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");  // kHz
  double khz = 0;
  if (maxfreq >> khz && khz > 0) {
    m.mhz = khz / 1000.0;
    m.mhz_source = "cpufreq cpuinfo_max_freq";
  } else if (max_mhz > 0) {
    m.mhz = max_mhz;
    m.mhz_source = "/proc/cpuinfo \"cpu MHz\" (no cpufreq maximum exposed; turbo not counted)";
  }
#if defined(__x86_64__)
  __builtin_cpu_init();
  m.avx = __builtin_cpu_supports("avx");
  m.avx2 = __builtin_cpu_supports("avx2");
  m.fma = __builtin_cpu_supports("fma");
#endif
  if (m.fma && m.avx2) {
    m.flop_per_cycle = 32;
    m.flop_rule = "AVX2+FMA: 2 FMA units x 8 floats x 2 FLOP = 32 FLOP/cycle/core";
  } else if (m.avx) {
    m.flop_per_cycle = 16;
    m.flop_rule = "AVX, no FMA: 1 add + 1 mul unit x 8 floats = 16 FLOP/cycle/core";
  } else {
    m.flop_per_cycle = 8;
    m.flop_rule = "SSE: 1 add + 1 mul unit x 4 floats = 8 FLOP/cycle/core";
  }
  return m;
}

// What the FMA units really deliver: each thread runs 12 independent chains of 8-wide FMAs (more
// than latency × units in flight), so the loop runs at the core's FMA throughput at whatever clock
// the core actually has (boost included, which the nominal estimate cannot see). GFLOP/s summed
// over `threads` threads.
#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float fma_chains(int64_t iters, float m, float a) {
  // Distinct starting values: identical chains would be merged by the compiler into one.
  __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(a);
  __m256 c0 = _mm256_set1_ps(a * 1.01f), c1 = _mm256_set1_ps(a * 1.02f), c2 = _mm256_set1_ps(a * 1.03f),
         c3 = _mm256_set1_ps(a * 1.04f), c4 = _mm256_set1_ps(a * 1.05f), c5 = _mm256_set1_ps(a * 1.06f),
         c6 = _mm256_set1_ps(a * 1.07f), c7 = _mm256_set1_ps(a * 1.08f), c8 = _mm256_set1_ps(a * 1.09f),
         c9 = _mm256_set1_ps(a * 1.10f), c10 = _mm256_set1_ps(a * 1.11f), c11 = _mm256_set1_ps(a * 1.12f);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm256_fmadd_ps(c0, vm, va), c1 = _mm256_fmadd_ps(c1, vm, va), c2 = _mm256_fmadd_ps(c2, vm, va);
    c3 = _mm256_fmadd_ps(c3, vm, va), c4 = _mm256_fmadd_ps(c4, vm, va), c5 = _mm256_fmadd_ps(c5, vm, va);
    c6 = _mm256_fmadd_ps(c6, vm, va), c7 = _mm256_fmadd_ps(c7, vm, va), c8 = _mm256_fmadd_ps(c8, vm, va);
    c9 = _mm256_fmadd_ps(c9, vm, va), c10 = _mm256_fmadd_ps(c10, vm, va), c11 = _mm256_fmadd_ps(c11, vm, va);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0];
}
#endif

double measured_fma_gflops(int threads) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  const int64_t iters = 20000000;
  volatile float m = 0.9999f, a = 1e-3f;  // volatile: the compiler cannot fold the chains
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<float> sink(static_cast<size_t>(threads));
    int saved = num_threads();
    set_num_threads(threads);
    double t0 = now_ms();
    parallel_for(0, threads, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) sink[size_t(t)] = fma_chains(iters, m, a);
    });
    double ms = now_ms() - t0;
    set_num_threads(saved);
    best = std::max(best, double(threads) * double(iters) * 12 * 8 * 2 / ms / 1e6);
  }
  return best;
#else
  return 0;
#endif
}

struct ConvCase {
  const char* name;
  int64_t cin, cout, size, k;  // stride 1, pad k/2: output size = input size
};

// AHMSA-Net's convolutions: the stem, the three level convolutions, the spatial-attention convs.
const ConvCase kConvs[] = {
    {"stem_3to32_28", 3, 32, 28, 3},          {"down_32to64_14", 32, 64, 14, 3},
    {"down_64to128_7", 64, 128, 7, 3},        {"down_128to256_4", 128, 256, 4, 3},
    {"spatial_2to1_k3_14", 2, 1, 14, 3},      {"spatial_2to1_k5_14", 2, 1, 14, 5},
    {"spatial_2to1_k7_14", 2, 1, 14, 7},
};

void bench_conv(const ConvCase& c, int64_t N, int reps, Generator& gen) {
  Tensor x = Tensor::empty({N, c.cin, c.size, c.size}), w = Tensor::empty({c.cout, c.cin, c.k, c.k}),
         b = Tensor::empty({c.cout}), gout = Tensor::empty({N, c.cout, c.size, c.size});
  normal_(x, 0.f, 1.f, gen);
  normal_(w, 0.f, 0.1f, gen);
  normal_(b, 0.f, 0.1f, gen);
  normal_(gout, 0.f, 1.f, gen);
  const int pad = int(c.k / 2);
  const double flop = 2.0 * double(N * c.cout * c.size * c.size * c.cin * c.k * c.k);
  double fwd = median_ms(
      [&] {
        NoGradGuard ng;
        conv2d(x, w, b, 1, pad);
      },
      2, reps);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  double fwd_bwd = median_ms(
      [&] {
        x.zero_grad();
        w.zero_grad();
        b.zero_grad();
        conv2d(x, w, b, 1, pad).backward(gout);
      },
      2, reps);
  x.set_requires_grad(false);
  std::printf("  %-20s %4lld %4lld %3lld %2lld  %9.3f %8.2f   %9.3f %8.2f\n", c.name, (long long)c.cin,
              (long long)c.cout, (long long)c.size, (long long)c.k, fwd, flop / fwd / 1e6, fwd_bwd,
              3 * flop / fwd_bwd / 1e6);
}

// GFLOP/s of C = A·B (row-major, no transposes) on `threads` threads.
double bench_sgemm(int64_t n, int threads, int reps, Generator& gen) {
  std::vector<float> A(size_t(n * n)), B(size_t(n * n)), C(size_t(n * n));
  for (auto& v : A) v = gen.uniform(-1.f, 1.f);
  for (auto& v : B) v = gen.uniform(-1.f, 1.f);
  int saved = num_threads();
  set_num_threads(threads);
  double ms = median_ms([&] { sgemm(false, false, n, n, n, 1.f, A.data(), n, B.data(), n, 0.f, C.data(), n); }, 1,
                        reps);
  set_num_threads(saved);
  return 2.0 * double(n) * double(n) * double(n) / ms / 1e6;
}

struct OpsBenchArgs {
  int threads = 0, batch = 64, reps = 10;
  std::vector<int64_t> sizes = {512, 1024, 2048};
};

int bench_ops(const OpsBenchArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  const int threads = num_threads();
  const int64_t batch = a.batch;
  const int reps = a.reps;
  const std::vector<int64_t>& sizes = a.sizes;
  Machine m = detect_machine();
  std::printf("ahmsa bench ops: %d threads, batch %lld, median of %d reps, sgemm kernel %s\n", threads,
              (long long)batch, reps, sgemm_kernel_name());
  std::printf("machine: %s, %d logical CPUs, AVX2 %s, FMA %s, clock %.0f MHz from %s\n", m.model.c_str(), m.cores,
              m.avx2 ? "yes" : "no", m.fma ? "yes" : "no", m.mhz, m.mhz_source.c_str());
  std::printf("peak estimate: %s x %.3f GHz = %.1f GFLOP/s per core, %.1f GFLOP/s for %d cores\n",
              m.flop_rule.c_str(), m.mhz * 1e-3, m.peak_per_core(), m.peak_per_core() * m.cores, m.cores);
  const double fma1 = measured_fma_gflops(1), fmaN = threads > 1 ? measured_fma_gflops(threads) : fma1;
  if (fma1 > 0)
    std::printf("measured FMA throughput (12 independent 8-wide chains per thread): %.1f GFLOP/s on 1 thread "
                "(an effective %.2f GHz at 32 FLOP/cycle), %.1f GFLOP/s on %d threads\n",
                fma1, fma1 / 32, fmaN, threads);
  std::printf("\n");

  Generator gen(0);
  std::printf("conv2d, stride 1, pad k/2, batch %lld          forward            forward+backward\n",
              (long long)batch);
  std::printf("  %-20s %4s %4s %3s %2s  %9s %8s   %9s %8s\n", "layer", "Cin", "Cout", "HW", "k", "ms", "GFLOP/s",
              "ms", "GFLOP/s");
  for (const ConvCase& c : kConvs) bench_conv(c, batch, reps, gen);

  const double peak1 = m.peak_per_core(), peakN = m.peak_per_core() * std::min(threads, m.cores);
  std::printf("\nsgemm C = A B, square, row-major\n");
  std::printf("  %6s  %-7s %8s  %-22s %s\n", "n", "threads", "GFLOP/s", "of the nominal peak", "of the measured FMA rate");
  for (int64_t n : sizes) {
    int r = n >= 2048 ? std::max(1, reps / 2) : reps;
    for (int t : {1, threads}) {
      double g = bench_sgemm(n, t, r, gen);
      double peak = t == 1 ? peak1 : peakN, fma = t == 1 ? fma1 : fmaN;
      std::printf("  %6lld  %-7d %8.1f  %5.1f %% of %-8.1f     %5.1f %% of %.1f\n", (long long)n, t, g,
                  peak > 0 ? 100.0 * g / peak : 0.0, peak, fma > 0 ? 100.0 * g / fma : 0.0, fma);
      if (threads == 1) break;
    }
  }
  return 0;
}

std::function<int()> setup_bench_ops(CLI::App& app) {
  auto a = std::make_shared<OpsBenchArgs>();
  add_threads_option(app, a->threads);
  app.add_option("--batch", a->batch, "conv2d batch")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--reps", a->reps, "repetitions (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--sizes", a->sizes, "square sgemm sizes")->delimiter(',')->type_name("N,N,...")->default_str("512,1024,2048")
      ->check(CLI::Range(1, 65536));
  return [a] { return bench_ops(*a); };
}

}  // namespace

AHMSA_BENCH("ops", "conv2d at AHMSA-Net's shapes and sgemm in GFLOP/s vs the machine's peak", setup_bench_ops);

}  // namespace ahmsa::cli
