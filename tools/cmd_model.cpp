// `ahmsa model summary|forward`: inspect AHMSA-Net and run inference on a tensor file.
#include <algorithm>
#include <cstdio>

#include "model/ahmsa_net.h"
#include "tools/command.h"

namespace ahmsa::cli {

static const char* kModelHelp =
    "usage:\n"
    "  ahmsa model summary [--config KEY=V;...]\n"
    "      Table of layers, per-sample output shapes, parameters and forward FLOPs.\n"
    "  ahmsa model forward --weights W.safetensors --input X.safetensors --output Y.safetensors [--config ...]\n"
    "      Eval-mode inference: reads the N×3×S×S tensor under the key 'input', writes 'logits' (N×K).\n"
    "      The model's config comes from the checkpoint's metadata, or its shapes for PyTorch files.\n"
    "\n"
    "--config keys (defaults = the spec's model): size=28 stem=32 channels=64,128,256 classes=3 dropout=0.3\n"
    "  head_dim=32 reduction=8 kernels=3,5,7 adaptive_down=1 window_attention=1 channel_attention=1\n"
    "  spatial_attention=1, e.g. --config 'channels=64,128;kernels=7;adaptive_down=0'\n";

static int model_summary(const Args& a) {
  AhmsaConfig cfg = AhmsaConfig::parse(option(a, "--config", ""));
  Generator gen(0);
  AhmsaNet net(cfg, gen);
  std::printf("AHMSA-Net  %s\n\n", cfg.to_string().c_str());
  std::printf("%-16s %-16s %12s %14s\n", "layer", "output", "parameters", "MFLOPs/sample");
  int64_t params = 0, flops = 0;
  for (auto& r : net.summary()) {
    std::printf("%-16s %-16s %12lld %14.2f\n", r.name.c_str(), shape_str(r.out_shape).c_str(), (long long)r.params,
                r.flops / 1e6);
    params += r.params;
    flops += r.flops;
  }
  std::printf("%-16s %-16s %12lld %14.2f\n", "total", "", (long long)params, flops / 1e6);
  std::printf("\nparameters (BatchNorm running statistics excluded): %lld\n", (long long)net.num_parameters());
  return 0;
}

static int model_forward(const Args& a) {
  std::string w = option(a, "--weights"), in = option(a, "--input"), out = option(a, "--output");
  if (w.empty() || in.empty() || out.empty()) throw std::invalid_argument("forward needs --weights, --input and --output");
  auto wf = read_safetensors(w);
  AhmsaConfig cfg = a.end() != std::find(a.begin(), a.end(), "--config") ? AhmsaConfig::parse(option(a, "--config"))
                                                                          : AhmsaNet::config_of(wf);
  Generator gen(0);
  AhmsaNet net(cfg, gen);
  net.load(wf);
  net.eval();
  auto xf = read_safetensors(in);
  if (!xf.has("input")) throw std::invalid_argument("'" + in + "' has no tensor named 'input'");
  NoGradGuard ng;
  Tensor logits = net.forward(xf.tensor("input"));
  write_safetensors(out, {{"logits", logits}}, {{"ahmsa.config", cfg.to_string()}});
  std::printf("wrote logits %s to %s\n", logits.str().c_str(), out.c_str());
  return 0;
}

static int model_main(const Args& a) {
  if (a.empty() || a[0] == "--help" || a[0] == "-h") {
    std::printf("%s", kModelHelp);
    return a.empty() ? 2 : 0;
  }
  Args rest(a.begin() + 1, a.end());
  if (has_flag(rest, "--help")) {
    std::printf("%s", kModelHelp);
    return 0;
  }
  if (a[0] == "summary") return model_summary(rest);
  if (a[0] == "forward") return model_forward(rest);
  throw std::invalid_argument("unknown model subcommand '" + a[0] + "' (summary, forward)");
}

AHMSA_COMMAND("model", "AHMSA-Net summary (layers, parameters, FLOPs) and inference on a tensor file", model_main);

}  // namespace ahmsa::cli
