// `ahmsa model summary|forward|init`: inspect AHMSA-Net, run inference on a tensor file, write a
// seeded untrained checkpoint.
#include <algorithm>
#include <cstdio>

#include "model/ahmsa_net.h"
#include "tools/command.h"

namespace ahmsa::cli {

static const char* kModelConfigHelp =
    "model architecture, KEY=V;... (defaults = the spec's model): size=28 stem=32 channels=64,128,256 classes=3 dropout=0.3 "
    "head_dim=32 reduction=8 kernels=3,5,7 adaptive_down=1 window_attention=1 channel_attention=1 spatial_attention=1, "
    "e.g. 'channels=64,128;kernels=7;adaptive_down=0'";

static int model_summary(const std::string& config_text) {
  AhmsaConfig cfg = AhmsaConfig::parse(config_text);
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

struct ForwardArgs {
  std::string weights, input, output, config_text;
  DeviceChoice device = DeviceChoice::Auto;
};

static int model_forward(const ForwardArgs& f) {
  const Device dev = resolve_device(f.device);
  auto wf = read_safetensors(f.weights);
  AhmsaConfig cfg = !f.config_text.empty() ? AhmsaConfig::parse(f.config_text) : AhmsaNet::config_of(wf);
  Generator gen(0);
  AhmsaNet net(cfg, gen);
  net.load(wf, dev);
  net.eval();
  auto xf = read_safetensors(f.input);
  if (!xf.has("input")) throw std::invalid_argument("'" + f.input + "' has no tensor named 'input'");
  NoGradGuard ng;
  Tensor logits = net.forward(xf.tensor("input", dev)).to(Device::CPU);
  write_safetensors(f.output, {{"logits", logits}}, {{"ahmsa.config", cfg.to_string()}});
  std::printf("wrote logits %s to %s\n", logits.str().c_str(), f.output.c_str());
  return 0;
}

struct InitArgs {
  std::string output, config_text, class_names;
  uint64_t seed = 0;
};

// A checkpoint of freshly initialised weights (BatchNorm statistics 0 and 1): the same seed and
// config give the same file. For tests and the embedding examples (tests/fixtures/tiny_model.safetensors).
static int model_init(const InitArgs& f) {
  AhmsaConfig cfg = AhmsaConfig::parse(f.config_text);
  Generator gen(f.seed);
  AhmsaNet net(cfg, gen);
  std::map<std::string, std::string> meta{{"seed", std::to_string(f.seed)}};
  if (!f.class_names.empty()) meta["class_names"] = f.class_names;
  net.save(f.output, meta);
  std::printf("wrote %s (%s, %lld parameters, seed %llu)\n", f.output.c_str(), cfg.to_string().c_str(),
              (long long)net.num_parameters(), (unsigned long long)f.seed);
  return 0;
}

static int model_main(const Args& a) {
  CLI::App app{"AHMSA-Net: a table of layers, or eval-mode inference on a tensor file.", "ahmsa model"};
  app.require_subcommand(1);
  std::string summary_config;
  CLI::App* summary = app.add_subcommand("summary", "table of layers, per-sample output shapes, parameters and forward FLOPs");
  add_model_config_option(*summary, summary_config, kModelConfigHelp);
  ForwardArgs f;
  CLI::App* forward = app.add_subcommand("forward",
                                         "eval-mode inference: reads the Nx3xSxS tensor under the key 'input', writes 'logits' (NxK); "
                                         "the model's config comes from the checkpoint's metadata, or its shapes for PyTorch files");
  forward->add_option("--weights", f.weights, "checkpoint")->required()->type_name("W.safetensors");
  forward->add_option("--input", f.input, "tensor file with 'input'")->required()->type_name("X.safetensors");
  forward->add_option("--output", f.output, "where the logits go")->required()->type_name("Y.safetensors");
  add_model_config_option(*forward, f.config_text, "model architecture instead of the checkpoint's (KEY=V;...)");
  add_device_option(*forward, f.device);
  InitArgs init;
  CLI::App* init_cmd = app.add_subcommand("init", "write a checkpoint of seeded, untrained weights (for tests and examples)");
  init_cmd->add_option("-o,--output", init.output, "the checkpoint to write")->required()->type_name("W.safetensors");
  add_model_config_option(*init_cmd, init.config_text, kModelConfigHelp);
  init_cmd->add_option("--seed", init.seed, "seed of the weight initialisation")->capture_default_str();
  init_cmd->add_option("--class-names", init.class_names, "class names stored in the metadata, comma-separated (as `ahmsa train` stores them)")
      ->type_name("A,B,C");
  parse(app, a);
  if (summary->parsed()) return model_summary(summary_config);
  if (init_cmd->parsed()) return model_init(init);
  return model_forward(f);
}

AHMSA_COMMAND("model", "AHMSA-Net summary (layers, parameters, FLOPs), inference on a tensor file, seeded checkpoints", model_main);

}  // namespace ahmsa::cli
