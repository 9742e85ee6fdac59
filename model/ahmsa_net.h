// AHMSA-Net: adaptive hierarchical multi-scale attention network for micro-expression
// recognition, exactly as ../shared/spec/AHMSA-NET.md defines it. Read ahmsa_net.cpp top to
// bottom: stem, then for each level AdaptiveDown → window attention → multi-scale attention,
// then the head on the pooled levels.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"
#include "model/safetensors.h"

namespace ahmsa {

struct AhmsaConfig {
  int64_t input_size = 28;                 // S: input is N×3×S×S (u, v, optical strain)
  int64_t stem = 32;
  std::vector<int64_t> channels{64, 128, 256};  // one per level; L = channels.size()
  int64_t classes = 3;                     // K
  float dropout = 0.3f;
  // Stochastic depth on the residual branches of the attention blocks (window attention: both; multi-scale
  // attention: its one), per sample; the rate rises linearly with depth, drop_path · l / L at level l.
  // Not in the spec: 0 (the default) is the spec's network, and then to_string() leaves the key out.
  float drop_path = 0.f;
  int64_t head_dim = 32;
  int64_t reduction = 8;                   // channel-attention MLP reduction r
  std::vector<int64_t> kernels{3, 5, 7};   // spatial-attention kernels
  // Ablation switches.
  bool adaptive_down = true;               // false: a fixed 2×2 max pool (ceil mode) instead of AdaptiveDown's pooling
  bool window_attention = true;
  bool channel_attention = true;
  bool spatial_attention = true;

  int64_t levels() const { return int64_t(channels.size()); }
  int64_t level_size(int64_t l) const;     // s_l = ceil(S / 2^l), l = 1..L
  int64_t window_grid(int64_t l) const;    // g_l = max(1, 2^(L-2-(l-1)))
  // "size=28;stem=32;channels=64,128,256;classes=3;..." — the form stored in checkpoints.
  std::string to_string() const;
  static AhmsaConfig parse(const std::string& s);  // keys not given keep their defaults
  void validate() const;                   // throws std::invalid_argument naming the level and why
};

// What one forward computed inside the network, for looking at a prediction (`ahmsa explain`). Pass
// a pointer to forward() and it is filled; with nullptr (the default) nothing is recorded. The
// tensors are the forward's own values, detached (no copy, no autograd history).
struct AhmsaTrace {
  struct Level {
    Tensor mix_a;    // a = sigmoid(mix) [C_in]: the average-pooling share of AdaptiveDown (empty: fixed max pool)
    Tensor channel;  // ca [N, C]: channel-attention weights (empty when channel attention is off)
    Tensor spatial;  // m [N, 1, s, s]: spatial-attention mask (empty when spatial attention is off)
    Tensor output;   // the level's output [N, C, s, s]
  };
  std::vector<Level> levels;  // one per level, in order
  Tensor logits;              // [N, K]
};

class AdaptiveDown : public Module {
 public:
  AdaptiveDown(int64_t c_in, int64_t c_out, int64_t out_size, bool adaptive, Generator& gen);
  Tensor forward(const Tensor& x, AhmsaTrace::Level* trace = nullptr);
  Tensor mix;  // [C_in], a = sigmoid(mix) blends average (a) and max (1 − a) pooling
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  int64_t out_size;
  bool adaptive;
};

// Stochastic depth of a residual branch x (first dimension: samples): in training with p > 0 each
// sample's branch is zeroed with probability p and the kept ones scaled by 1/(1 − p) (dropout's mask on
// an [N, 1, ..., 1] tensor of ones, drawn from gen); otherwise x itself.
Tensor drop_path(const Tensor& x, float p, bool training, Generator& gen);

class WindowAttention : public Module {
 public:
  WindowAttention(int64_t channels, int64_t size, int64_t grid, int64_t head_dim, Generator& gen);
  Tensor forward(const Tensor& y);  // no drop-path
  Tensor forward(const Tensor& y, float drop_path_rate, Generator& gen);
  Tensor pos;  // [C, s, s]
  std::shared_ptr<ChannelNorm> norm1, norm2;
  std::shared_ptr<Linear> qkv, proj, ffn1, ffn2;
  int64_t channels, size, grid, head_dim;

 private:
  Tensor to_windows(const Tensor& z) const;                // [N,C,s,s] → [N·g·g, w·w, C]
  Tensor from_windows(const Tensor& t, int64_t n) const;   // inverse
};

class MultiScaleAttention : public Module {
 public:
  MultiScaleAttention(int64_t channels, int64_t reduction, const std::vector<int64_t>& kernels, bool channel_att,
                      bool spatial_att, Generator& gen);
  Tensor forward(const Tensor& z, AhmsaTrace::Level* trace = nullptr);  // no drop-path
  Tensor forward(const Tensor& z, float drop_path_rate, Generator& gen, AhmsaTrace::Level* trace = nullptr);
  std::shared_ptr<Linear> fc1, fc2;
  std::vector<std::shared_ptr<Conv2d>> spatial;
  bool channel_att, spatial_att;
};

class AhmsaNet : public Module {
 public:
  AhmsaNet(const AhmsaConfig& cfg, Generator& init);
  // Logits [N, K]. Training mode uses batch statistics and dropout (drawn from `gen`). A non-null
  // `trace` receives the attention weights and level outputs of this forward (AhmsaTrace).
  Tensor forward(const Tensor& x, Generator& gen, AhmsaTrace* trace = nullptr);
  Tensor forward(const Tensor& x, AhmsaTrace* trace = nullptr);  // for eval mode (no randomness needed)
  const AhmsaConfig& config() const { return cfg_; }
  // The BatchNorm layers (stem, then each level's AdaptiveDown), e.g. to recompute their statistics.
  std::vector<BatchNorm2d*> batch_norms() const;

  // One row of `ahmsa model summary`.
  struct LayerInfo {
    std::string name;
    Shape out_shape;  // per sample (no batch dimension)
    int64_t params;
    int64_t flops;    // forward multiply-adds × 2, per sample
  };
  std::vector<LayerInfo> summary() const;

  // Checkpoints: safetensors with the spec's names; the config is stored in the metadata.
  void save(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;
  // Loads every parameter and running statistic or nothing: missing, unexpected (other than
  // num_batches_tracked) and mis-shaped keys are all listed by name in the error. The values are
  // converted on the CPU, copied in, and the model then moved to `device` (Module::to).
  void load(const SafetensorsFile& f, Device device = Device::CPU);
  // The config a checkpoint was written with (metadata), or inferred from its shapes (PyTorch files).
  static AhmsaConfig config_of(const SafetensorsFile& f);

 private:
  struct Level {
    std::shared_ptr<AdaptiveDown> down;
    std::shared_ptr<WindowAttention> attn;      // null when window attention is off
    std::shared_ptr<MultiScaleAttention> msa;   // null when both attentions are off
  };
  AhmsaConfig cfg_;
  std::shared_ptr<Conv2d> stem_conv_;
  std::shared_ptr<BatchNorm2d> stem_bn_;
  std::vector<Level> levels_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<Linear> head_;
};

}  // namespace ahmsa
