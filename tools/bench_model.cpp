// `ahmsa bench model`: AHMSA-Net training steps (forward, cross-entropy, backward, AdamW) per
// second at batch 64 and 256, and batch-1 inference latency, on the CPU or (--device) the GPU. On a
// GPU each is also timed as a replayed CUDA graph (train-graph, infer-graph: train/step_graph.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>

#include "model/ahmsa_net.h"
#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include "tools/command.h"
#include "tensor/device_graph.h"
#include "train/optim/optim.h"
#include "train/step_graph.h"

namespace ahmsa::cli {

static double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct ModelBenchArgs {
  std::vector<int> batches = {64, 256};
  int steps = 10, threads = 0;
  std::string config_text;
  DeviceChoice device = DeviceChoice::Auto;
  bool graphs = true;
};

// The training step at batch B as a replayed CUDA graph: one eager step, the capture, then replays.
static void bench_train_graph(const AhmsaConfig& cfg, int B, int steps, Generator& gen) {
  AhmsaNet net(cfg, gen);
  net.to(Device::CUDA);
  net.train();
  AdamW opt(net.parameters(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f);
  Tensor x = Tensor::empty({B, 3, cfg.input_size, cfg.input_size});
  uniform_(x, 0.f, 1.f, gen);
  std::vector<int> y(static_cast<size_t>(B));
  for (int i = 0; i < B; ++i) y[size_t(i)] = i % int(cfg.classes);
  opt.zero_grad();
  cross_entropy(net.forward(x.to(Device::CUDA), gen), y).backward();
  opt.step();
  train::StepGraph graph(net, opt, gen, Tensor(), 0.f);
  std::vector<double> t;
  for (int s = 0; s < steps + 2; ++s) {
    double t0 = now_ms();
    (void)graph.run(x, y, 1e-3f);  // uploads the batch, replays, reads the loss and logits back
    if (s >= 2) t.push_back(now_ms() - t0);  // the capture and one replay as warm-up
  }
  double ms = median(t);
  std::printf("ahmsa cuda threads=%d train-graph batch=%d ms=%.2f samples_per_s=%.1f\n", num_threads(), B, ms,
              1000.0 * B / ms);
}

static int bench_model(const ModelBenchArgs& a) {
  const Device dev = resolve_device(a.device);
  const char* where = device_name(dev);
  if (a.threads > 0) set_num_threads(a.threads);
  const int steps = a.steps;
  const std::vector<int>& batches = a.batches;
  AhmsaConfig cfg = AhmsaConfig::parse(a.config_text);
  Generator gen(0);
  std::printf("AHMSA-Net %s, %lld parameters, %d threads, GEMM kernel %s\n", cfg.to_string().c_str(),
              (long long)AhmsaNet(cfg, gen).num_parameters(), num_threads(), sgemm_kernel_name());
  for (int B : batches) {
    AhmsaNet net(cfg, gen);
    net.to(dev);
    net.train();
    AdamW opt(net.parameters(), 1e-3f, 0.9f, 0.999f, 1e-8f, 0.05f);
    Tensor x = Tensor::empty({B, 3, cfg.input_size, cfg.input_size});
    uniform_(x, 0.f, 1.f, gen);
    x = x.to(dev);
    std::vector<int> y(static_cast<size_t>(B));
    for (int i = 0; i < B; ++i) y[size_t(i)] = i % int(cfg.classes);
    std::vector<double> t;
    for (int s = 0; s < steps + 2; ++s) {
      double t0 = now_ms();
      opt.zero_grad();
      Tensor loss = cross_entropy(net.forward(x, gen), y);
      loss.backward();
      opt.step();
      (void)loss.item();  // waits for the step (kernels on a GPU run asynchronously)
      if (s >= 2) t.push_back(now_ms() - t0);  // two warm-up steps
    }
    double ms = median(t);
    std::printf("ahmsa %s threads=%d train batch=%d ms=%.2f samples_per_s=%.1f\n", where, num_threads(), B, ms,
                1000.0 * B / ms);
    if (dev != Device::CPU && a.graphs) bench_train_graph(cfg, B, steps, gen);
  }
  {
    AhmsaNet net(cfg, gen);
    net.to(dev);
    net.eval();
    NoGradGuard ng;
    Tensor x = Tensor::empty({1, 3, cfg.input_size, cfg.input_size});
    uniform_(x, 0.f, 1.f, gen);
    x = x.to(dev);
    std::vector<double> t;
    for (int s = 0; s < 50; ++s) {
      double t0 = now_ms();
      (void)net.forward(x).to_vector();  // the logits back on the host: waits for the forward
      if (s >= 5) t.push_back(now_ms() - t0);
    }
    std::printf("ahmsa %s threads=%d infer batch=1 ms=%.3f\n", where, num_threads(), median(t));
    if (dev != Device::CPU && a.graphs) {
      DeviceGraph graph;
      Tensor out;
      graph.capture([&] { out = net.forward(x); });
      t.clear();
      for (int s = 0; s < 50; ++s) {
        double t0 = now_ms();
        graph.replay();
        (void)out.to_vector();
        if (s >= 5) t.push_back(now_ms() - t0);
      }
      std::printf("ahmsa %s threads=%d infer-graph batch=1 ms=%.3f\n", where, num_threads(), median(t));
    }
  }
  return 0;
}

static std::function<int()> setup_bench_model(CLI::App& app) {
  auto a = std::make_shared<ModelBenchArgs>();
  app.add_option("--batches", a->batches, "training batch sizes")->delimiter(',')->type_name("N,N,...")->default_str("64,256")
      ->check(CLI::Range(1, 100000));
  app.add_option("--steps", a->steps, "timed steps per batch size (after two warm-up steps)")->capture_default_str()->check(CLI::Range(1, 100000));
  add_threads_option(app, a->threads);
  add_model_config_option(app, a->config_text, "model architecture, KEY=V;... (default: the full AHMSA-Net)");
  add_device_option(app, a->device);
  app.add_flag("!--no-graphs", a->graphs, "on a GPU, skip the CUDA-graph rows (train-graph, infer-graph)");
  return [a] { return bench_model(*a); };
}

AHMSA_BENCH("model", "AHMSA-Net training step and inference latency (--batches, --steps, --threads, --device)", setup_bench_model);

}  // namespace ahmsa::cli
