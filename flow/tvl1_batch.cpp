// Batched TV-L1 on the CPU: the production path (flow::tvl1 per pair, pairs over threads) and the
// emulation of the GPU solver (flow/tvl1_schedule.h run by plain loops) that tests it without a GPU.
#include <algorithm>
#include <memory>
#include <string>

#include "flow/flow.h"
#include "flow/internal.h"
#include "flow/tvl1_schedule.h"

namespace ahmsa::flow {

namespace detail {
void batch_check(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1, const TVL1Params& p,
                 const char* who) {
  tvl1_check_params(p, who);
  if (I0.size() != I1.size())
    throw FlowError(std::string(who) + ": " + std::to_string(I0.size()) + " first frames but " +
                    std::to_string(I1.size()) + " second frames");
  for (size_t b = 0; b < I0.size(); ++b) {
    const std::string pair = std::string(who) + " pair " + std::to_string(b);
    check_pair(I0[b], I1[b], pair.c_str());
    if (I0[b].width != I0[0].width || I0[b].height != I0[0].height)
      throw FlowError(pair + ": " + std::to_string(I0[b].width) + "x" + std::to_string(I0[b].height) +
                      " frames in a batch of " + std::to_string(I0[0].width) + "x" + std::to_string(I0[0].height));
  }
}

void batch_frames(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1, const TVL1Params& p,
                  std::vector<Plane>& P0, std::vector<Plane>& P1, const char* who) {
  batch_check(I0, I1, p, who);
  P0.resize(I0.size()), P1.resize(I0.size());
  for (size_t b = 0; b < I0.size(); ++b) {
    const std::string pair = std::string(who) + " pair " + std::to_string(b);
    tvl1_frames(I0[b], I1[b], p, P0[b], P1[b], pair.c_str());
  }
}
}  // namespace detail

std::vector<FlowField> tvl1_batch(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1,
                                  const TVL1Params& p) {
  detail::batch_check(I0, I1, p, "tvl1_batch");  // all errors before any work; flow::tvl1 makes the planes
  std::vector<FlowField> out(I0.size());
  TVL1Params one = p;
  one.threads = 1;
  [[maybe_unused]] const int nt = detail::thread_count(p.threads);  // unused in a build without OpenMP
  std::string error;
#pragma omp parallel for num_threads(nt) schedule(dynamic)
  for (long b = 0; b < long(I0.size()); ++b) {
    try {
      out[b] = tvl1(I0[b], I1[b], one);
    } catch (const std::exception& e) {
#pragma omp critical
      error = "tvl1_batch pair " + std::to_string(b) + ": " + e.what();
    }
  }
  if (!error.empty()) throw FlowError(error);
  return out;
}

namespace {
// The executor of flow/tvl1_schedule.h for plain CPU loops. Sums run row by row in float, rows added
// in double, as flow/tvl1.cpp does, so the emulation follows flow::tvl1's stopping decisions exactly.
struct CpuExecutor {
  std::vector<std::unique_ptr<char[]>> owned;
  template <class T>
  T* alloc(size_t n, const char*) {
    owned.emplace_back(new char[sizeof(T) * std::max<size_t>(n, 1)]());
    return reinterpret_cast<T*>(owned.back().get());
  }
  void upload(float* dst, const float* src, size_t n) { std::copy_n(src, n, dst); }
  void download(float* dst, const float* src, size_t n) { std::copy_n(src, n, dst); }
  void zero(float* d, size_t n) { std::fill_n(d, n, 0.f); }
  void set_flags(int* d, int n, int v) { std::fill_n(d, n, v); }
  template <class F>
  void pixels(int B, int w, int h, const F& f, const char*) {
    for (int b = 0; b < B; ++b)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) f(b, x, y);
  }
  template <class F>
  void lines(int B, int n, const F& f, const char*) {
    for (int b = 0; b < B; ++b)
      for (int i = 0; i < n; ++i) f(b, i);
  }
  template <class F>
  void pixel_sums(int B, int w, int h, const F& f, double* out, const char*) {
    for (int b = 0; b < B; ++b) {
      double total = 0;
      for (int y = 0; y < h; ++y) {
        float row = 0;
        for (int x = 0; x < w; ++x) row += f(b, x, y);
        total += row;
      }
      out[b] = total;
    }
  }
  template <class F>
  void pairs(int B, const F& f, const char*) {
    for (int b = 0; b < B; ++b) f(b);
  }
  bool any_set(const int* flags, int B) { return std::any_of(flags, flags + B, [](int v) { return v != 0; }); }
};
}  // namespace

std::vector<FlowField> tvl1_batch_emulated(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1,
                                           const TVL1Params& p) {
  std::vector<detail::Plane> P0, P1;
  detail::batch_frames(I0, I1, p, P0, P1, "tvl1_batch_emulated");
  CpuExecutor ex;
  return batch::run_tvl1(ex, P0, P1, p);
}

#ifndef AHMSA_HAVE_CUDA
bool tvl1_cuda_available(std::string* why) {
  if (why) *why = "this build has no CUDA (nvcc was not found when it was configured)";
  return false;
}
std::vector<FlowField> tvl1_batch_cuda(const std::vector<img::Image>&, const std::vector<img::Image>&,
                                       const TVL1Params&) {
  throw FlowError("tvl1_batch_cuda: this build has no CUDA (nvcc was not found when it was configured)");
}
#endif

}  // namespace ahmsa::flow
