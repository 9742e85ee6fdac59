// `ahmsa bench model`: AHMSA-Net training steps (forward, cross-entropy, backward, AdamW) per
// second at batch 64 and 256, and batch-1 inference latency, on the CPU.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "model/ahmsa_net.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include "tools/command.h"
#include "train/optim/optim.h"

namespace ahmsa::cli {

static double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

static int bench_model(const Args& args) {
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: ahmsa bench model [--batches 64,256] [--steps 10] [--threads N] [--config KEY=V;...]\n"
        "Times training steps (forward, cross-entropy, backward, AdamW) and batch-1 inference.\n");
    return 0;
  }
  if (int t = option_int(args, "--threads", 0); t > 0) set_num_threads(t);
  int steps = option_int(args, "--steps", 10);
  std::vector<int> batches;
  {
    std::stringstream ss(option(args, "--batches", "64,256"));
    std::string b;
    while (std::getline(ss, b, ',')) batches.push_back(std::stoi(b));
  }
  AhmsaConfig cfg = AhmsaConfig::parse(option(args, "--config", ""));
  Generator gen(0);
  std::printf("AHMSA-Net %s, %lld parameters, %d threads, GEMM kernel %s\n", cfg.to_string().c_str(),
              (long long)AhmsaNet(cfg, gen).num_parameters(), num_threads(), sgemm_kernel_name());
  for (int B : batches) {
    AhmsaNet net(cfg, gen);
    net.train();
    AdamW opt(net.parameters(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f);
    Tensor x = Tensor::empty({B, 3, cfg.input_size, cfg.input_size});
    uniform_(x, 0.f, 1.f, gen);
    std::vector<int> y(static_cast<size_t>(B));
    for (int i = 0; i < B; ++i) y[size_t(i)] = i % int(cfg.classes);
    std::vector<double> t;
    for (int s = 0; s < steps + 2; ++s) {
      double t0 = now_ms();
      opt.zero_grad();
      Tensor loss = cross_entropy(net.forward(x, gen), y);
      loss.backward();
      opt.step();
      if (s >= 2) t.push_back(now_ms() - t0);  // two warm-up steps
    }
    double ms = median(t);
    std::printf("ahmsa cpu threads=%d train batch=%d ms=%.2f samples_per_s=%.1f\n", num_threads(), B, ms,
                1000.0 * B / ms);
  }
  {
    AhmsaNet net(cfg, gen);
    net.eval();
    NoGradGuard ng;
    Tensor x = Tensor::empty({1, 3, cfg.input_size, cfg.input_size});
    uniform_(x, 0.f, 1.f, gen);
    std::vector<double> t;
    for (int s = 0; s < 50; ++s) {
      double t0 = now_ms();
      net.forward(x);
      if (s >= 5) t.push_back(now_ms() - t0);
    }
    std::printf("ahmsa cpu threads=%d infer batch=1 ms=%.3f\n", num_threads(), median(t));
  }
  return 0;
}

AHMSA_BENCH("model", "AHMSA-Net training step and inference latency (--batches, --steps, --threads)", bench_model);

}  // namespace ahmsa::cli
