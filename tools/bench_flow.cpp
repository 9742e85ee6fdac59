// `ahmsa bench flow [--threads N] [--reps R] [--size S] [--only NAME] [--batch N]`: TV-L1 (both presets) and
// Farneback on the 128x128 face-crop cases of flow/synthetic.h (jesper_2.jpg face, sub-pixel local and
// small global motions, noise 1 grey level): ms per pair and AEE; with OpenCV also OpenCV's times, AEE
// and the ratio (ours and OpenCV alternate rep by rep, same thread count). --only keeps the methods
// whose name contains NAME.
// `--batch N`: instead, TV-L1 on N pairs at once (the face cases repeated): tvl1_batch on the CPU
// threads and, when a GPU is usable, tvl1_batch_cuda, with their difference; both presets.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <functional>
#include <string>
#include <vector>

#include "flow/flow.h"
#include "flow/opencv_reference.h"
#include "flow/synthetic.h"
#include "tools/command.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace ahmsa::cli {

namespace {
using FlowFn = std::function<flow::FlowField(const img::Image&, const img::Image&)>;

struct Result {
  double ms = 0;           // median over reps, averaged over the cases
  double aee_sub = 0;      // interior AEE (4 px border) averaged over the sub-pixel cases
  double moving_sub = 0;   // moving-region AEE averaged over the sub-pixel cases
  double aee_global = 0;   // AEE averaged over the global-motion cases
};

double time_ms(const FlowFn& fn, const flow::synth::Case& c, flow::FlowField& out) {
  const auto t0 = std::chrono::steady_clock::now();
  out = fn(c.pair.I0, c.pair.I1);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void add_errors(Result& r, const flow::synth::Case& c, const flow::FlowField& f) {
  if (c.subpixel) {
    r.aee_sub += flow::flow_errors(f, c.pair.truth, 4).aee;
    r.moving_sub += flow::flow_errors(f, c.pair.truth, 0, 0.05f).aee;
  } else {
    r.aee_global += flow::flow_errors(f, c.pair.truth, 4).aee;
  }
}

void finish(Result& r, size_t ncases, int nsub, int nglob) {
  r.ms /= double(ncases);
  if (nsub) r.aee_sub /= nsub, r.moving_sub /= nsub;
  if (nglob) r.aee_global /= nglob;
}

// Runs every case `reps` times with each implementation, alternating ours and theirs rep by rep so
// that both see the same background load (the machine is shared); ms = median per case, then the
// mean over the cases. `theirs` may be empty (no OpenCV).
void run_cases(const std::vector<flow::synth::Case>& cases, const FlowFn& ours, const FlowFn& theirs, int reps,
               Result& r_ours, Result& r_theirs) {
  int nsub = 0, nglob = 0;
  for (const auto& c : cases) {
    std::vector<double> t_ours, t_theirs;
    flow::FlowField f_ours, f_theirs;
    for (int i = 0; i < reps; ++i) {
      t_ours.push_back(time_ms(ours, c, f_ours));
      if (theirs) t_theirs.push_back(time_ms(theirs, c, f_theirs));
    }
    std::sort(t_ours.begin(), t_ours.end());
    r_ours.ms += t_ours[t_ours.size() / 2];
    add_errors(r_ours, c, f_ours);
    if (theirs) {
      std::sort(t_theirs.begin(), t_theirs.end());
      r_theirs.ms += t_theirs[t_theirs.size() / 2];
      add_errors(r_theirs, c, f_theirs);
    }
    c.subpixel ? ++nsub : ++nglob;
  }
  finish(r_ours, cases.size(), nsub, nglob);
  finish(r_theirs, cases.size(), nsub, nglob);
}

void print_row(const char* who, const char* what, const Result& r) {
  std::printf("%-7s %-24s %9.2f %12.4f %12.4f %12.4f\n", who, what, r.ms, r.aee_sub, r.moving_sub, r.aee_global);
}
// --batch N: whole-batch times (median of reps; the GPU gets one untimed warm-up run).
int bench_batch(const std::vector<flow::synth::Case>& cases, int n, int threads, int reps, const std::string& only) {
  std::vector<img::Image> I0, I1;
  std::vector<const flow::FlowField*> truth;
  for (int i = 0; i < n; ++i) {
    const auto& c = cases[size_t(i) % cases.size()];
    I0.push_back(c.pair.I0), I1.push_back(c.pair.I1), truth.push_back(&c.pair.truth);
  }
  auto median_ms = [&](auto&& run, std::vector<flow::FlowField>& out) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      out = run();
      t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  auto mean_aee = [&](const std::vector<flow::FlowField>& f) {
    double s = 0;
    for (size_t i = 0; i < f.size(); ++i) s += flow::flow_errors(f[i], *truth[i], 4).aee;
    return s / double(f.size());
  };
  std::string why;
  const bool gpu = flow::tvl1_cuda_available(&why);
  std::printf("flow batch bench: %d pairs %dx%d, CPU %d thread(s), median of %d runs; GPU: %s\n", n,
              I0[0].width, I0[0].height, threads, reps, gpu ? "yes" : why.c_str());
  for (const auto& [name, preset] : {std::pair{std::string("tvl1 ipol"), flow::TVL1Params::ipol()},
                                     std::pair{std::string("tvl1 opencv"), flow::TVL1Params::opencv()}}) {
    if (!only.empty() && name.find(only) == std::string::npos) continue;
    flow::TVL1Params p = preset;
    p.threads = threads;
    std::vector<flow::FlowField> cpu, cuda;
    const double cpu_ms = median_ms([&] { return flow::tvl1_batch(I0, I1, p); }, cpu);
    std::printf("cpu   %-12s %10.1f ms per batch %8.3f ms/pair  mean AEE %.4f\n", name.c_str(), cpu_ms,
                cpu_ms / n, mean_aee(cpu));
    if (!gpu) continue;
    cuda = flow::tvl1_batch_cuda(I0, I1, p);  // warm-up: context, module load
    const double gpu_ms = median_ms([&] { return flow::tvl1_batch_cuda(I0, I1, p); }, cuda);
    double diff = 0;
    for (size_t i = 0; i < cuda.size(); ++i) diff += flow::flow_errors(cuda[i], cpu[i]).aee;
    std::printf("cuda  %-12s %10.1f ms per batch %8.3f ms/pair  mean AEE %.4f  mean |gpu - cpu| %.2e px  "
                "speed-up %.1fx\n",
                name.c_str(), gpu_ms, gpu_ms / n, mean_aee(cuda), diff / double(n), cpu_ms / gpu_ms);
  }
  return 0;
}

}  // namespace

struct FlowBenchArgs {
  int threads = 0, reps = 3, size = 128, batch = 0;
  std::string only, shared;
};

static int bench_flow_main(const FlowBenchArgs& a) {
  int threads = a.threads;
#ifdef _OPENMP
  if (threads <= 0) threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  const int reps = a.reps, size = a.size;
  const std::string& only = a.only;  // e.g. "tvl1", "farneback", "tvl1 opencv"
  // shared/ sits beside the repository; `make bench` runs from the repository root.
  std::string shared = a.shared;
  if (shared.empty()) shared = std::getenv("AHMSA_SHARED") ? std::getenv("AHMSA_SHARED") : "../shared";
  const img::Image hr = flow::synth::face_crop(shared, 0);
  const auto cases = flow::synth::face_cases(hr, size, 1.0f);
  if (a.batch > 0) return bench_batch(cases, a.batch, threads, reps, only);
  std::printf("flow bench: %zu face-crop pairs %dx%d (jesper_2.jpg), noise 1.0, %d thread(s), median of %d runs\n",
              cases.size(), size, size, threads, reps);
  std::printf("AEE columns: sub-pixel cases (interior), sub-pixel moving region (|gt| >= 0.05), global cases\n");
  std::printf("%-7s %-24s %9s %12s %12s %12s\n", "impl", "method", "ms/pair", "AEE sub", "AEE moving", "AEE global");

  flow::TVL1Params ipol = flow::TVL1Params::ipol(), ocv = flow::TVL1Params::opencv();
  flow::FarnebackParams fb = flow::FarnebackParams::opencv_defaults(), fbs = flow::FarnebackParams::opencv_sample();
  ipol.threads = ocv.threads = fb.threads = fbs.threads = threads;
  struct Entry {
    const char* name;
    FlowFn ours;
#ifdef AHMSA_HAVE_OPENCV
    FlowFn theirs;
#endif
  };
  std::vector<Entry> entries = {
      {"tvl1 ipol", [&](auto& x, auto& y) { return flow::tvl1(x, y, ipol); }
#ifdef AHMSA_HAVE_OPENCV
       , [&](auto& x, auto& y) { return flow::opencv_reference::tvl1(x, y, ipol); }
#endif
      },
      {"tvl1 opencv", [&](auto& x, auto& y) { return flow::tvl1(x, y, ocv); }
#ifdef AHMSA_HAVE_OPENCV
       , [&](auto& x, auto& y) { return flow::opencv_reference::tvl1(x, y, ocv); }
#endif
      },
      {"farneback opencv", [&](auto& x, auto& y) { return flow::farneback(x, y, fb); }
#ifdef AHMSA_HAVE_OPENCV
       , [&](auto& x, auto& y) { return flow::opencv_reference::farneback(x, y, fb); }
#endif
      },
      {"farneback sample", [&](auto& x, auto& y) { return flow::farneback(x, y, fbs); }
#ifdef AHMSA_HAVE_OPENCV
       , [&](auto& x, auto& y) { return flow::opencv_reference::farneback(x, y, fbs); }
#endif
      },
  };
#ifdef AHMSA_HAVE_OPENCV
  flow::opencv_reference::set_threads(threads);
#endif
  for (const auto& e : entries) {
    if (!only.empty() && std::string(e.name).find(only) == std::string::npos) continue;
    Result ours, cv;
#ifdef AHMSA_HAVE_OPENCV
    run_cases(cases, e.ours, e.theirs, reps, ours, cv);
#else
    run_cases(cases, e.ours, FlowFn(), reps, ours, cv);
#endif
    print_row("ours", e.name, ours);
#ifdef AHMSA_HAVE_OPENCV
    print_row("opencv", e.name, cv);
    std::printf("        %-24s speed-up %.2fx\n", e.name, cv.ms / ours.ms);
#endif
  }
#ifndef AHMSA_HAVE_OPENCV
  std::printf("(built without OpenCV: no comparison)\n");
#endif
  return 0;
}

static std::function<int()> setup_bench_flow(CLI::App& app) {
  auto a = std::make_shared<FlowBenchArgs>();
  app.description(
      "TV-L1 (ipol and opencv presets) and Farneback on the 8 face-crop cases: ms per pair and AEE, and OpenCV's when built with it "
      "(alternating rep by rep). --batch N: TV-L1 on N pairs at once, tvl1_batch on the CPU and tvl1_batch_cuda when a GPU is usable.");
  add_threads_option(app, a->threads);
  app.add_option("--reps", a->reps, "repetitions (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--size", a->size, "side of the face crops")->capture_default_str()->check(CLI::Range(16, 4096));
  app.add_option("--only", a->only, "keep the methods whose name contains this (e.g. tvl1, farneback, 'tvl1 opencv')");
  app.add_option("--shared", a->shared, "the shared/ data folder (default: $AHMSA_SHARED or ../shared)")->type_name("DIR");
  app.add_option("--batch", a->batch, "TV-L1 on N pairs at once (0 = the per-pair table)")->capture_default_str()->check(CLI::NonNegativeNumber);
  return [a] { return bench_flow_main(*a); };
}

AHMSA_BENCH("flow", "TV-L1 / Farneback ms per 128x128 face pair and AEE (vs OpenCV when built with it)", setup_bench_flow);

}  // namespace ahmsa::cli
