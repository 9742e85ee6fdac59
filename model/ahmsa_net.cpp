#include "model/ahmsa_net.h"

#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

namespace ahmsa {

// ============================ configuration ============================

int64_t AhmsaConfig::level_size(int64_t l) const { return (input_size + (int64_t(1) << l) - 1) >> l; }

int64_t AhmsaConfig::window_grid(int64_t l) const {
  int64_t e = levels() - 2 - (l - 1);
  return e < 0 ? 1 : std::max<int64_t>(1, int64_t(1) << e);
}

static std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::string AhmsaConfig::to_string() const {
  std::ostringstream o;
  o << "size=" << input_size << ";stem=" << stem << ";channels=" << join(channels) << ";classes=" << classes
    << ";dropout=" << dropout << ";head_dim=" << head_dim << ";reduction=" << reduction
    << ";kernels=" << join(kernels) << ";adaptive_down=" << adaptive_down << ";window_attention=" << window_attention
    << ";channel_attention=" << channel_attention << ";spatial_attention=" << spatial_attention;
  if (drop_path != 0.f) o << ";drop_path=" << drop_path;  // absent at 0: the spec's strings stay as they were
  return o.str();
}

AhmsaConfig AhmsaConfig::parse(const std::string& s) {
  AhmsaConfig c;
  std::stringstream ss(s);
  std::string kv;
  auto ints = [](const std::string& v) {
    std::vector<int64_t> out;
    std::stringstream vs(v);
    std::string x;
    while (std::getline(vs, x, ',')) out.push_back(std::stoll(x));
    return out;
  };
  while (std::getline(ss, kv, ';')) {
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("model config: '" + kv + "' is not key=value");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    try {
      if (k == "size") c.input_size = std::stoll(v);
      else if (k == "stem") c.stem = std::stoll(v);
      else if (k == "channels") c.channels = ints(v);
      else if (k == "classes") c.classes = std::stoll(v);
      else if (k == "dropout") c.dropout = std::stof(v);
      else if (k == "drop_path") c.drop_path = std::stof(v);
      else if (k == "head_dim") c.head_dim = std::stoll(v);
      else if (k == "reduction") c.reduction = std::stoll(v);
      else if (k == "kernels") c.kernels = ints(v);
      else if (k == "adaptive_down") c.adaptive_down = std::stoi(v) != 0;
      else if (k == "window_attention") c.window_attention = std::stoi(v) != 0;
      else if (k == "channel_attention") c.channel_attention = std::stoi(v) != 0;
      else if (k == "spatial_attention") c.spatial_attention = std::stoi(v) != 0;
      else throw std::invalid_argument("unknown key");
    } catch (const std::exception& e) {
      throw std::invalid_argument("model config: bad entry '" + kv + "' (" + e.what() + ")");
    }
  }
  return c;
}

void AhmsaConfig::validate() const {
  auto fail = [](const std::string& why) { throw std::invalid_argument("AHMSA-Net config: " + why); };
  if (input_size < 2) fail("input size " + std::to_string(input_size) + " must be at least 2");
  if (channels.empty()) fail("at least one level is needed");
  if (classes < 2) fail("at least 2 classes are needed, got " + std::to_string(classes));
  if (stem < 1) fail("stem width must be positive");
  if (dropout < 0.f || dropout >= 1.f) fail("dropout " + std::to_string(dropout) + " outside [0, 1)");
  if (drop_path < 0.f || drop_path >= 1.f) fail("drop_path " + std::to_string(drop_path) + " outside [0, 1)");
  if (spatial_attention && kernels.empty()) fail("spatial attention needs at least one kernel");
  for (auto k : kernels)
    if (k < 1 || k % 2 == 0) fail("spatial-attention kernel " + std::to_string(k) + " must be odd and positive");
  for (int64_t l = 1; l <= levels(); ++l) {
    int64_t s = level_size(l), g = window_grid(l), c = channels[size_t(l - 1)];
    std::string lv = "level " + std::to_string(l - 1) + " (size " + std::to_string(s) + ", " + std::to_string(c) +
                     " channels)";
    if (c < 1) fail(lv + ": channel count must be positive");
    if (window_attention && s % g != 0)
      fail(lv + ": size not divisible by its window grid " + std::to_string(g) + " (input size " +
           std::to_string(input_size) + ")");
    if (window_attention && c % head_dim != 0)
      fail(lv + ": channels not divisible by the head dimension " + std::to_string(head_dim));
    if (channel_attention && (c % reduction != 0 || c / reduction < 1))
      fail(lv + ": channels not divisible by the channel-attention reduction " + std::to_string(reduction));
  }
}

// ============================ AdaptiveDown ============================
// a = sigmoid(mix);  p = a ⊙ AdaptiveAvgPool(x, s) + (1 − a) ⊙ AdaptiveMaxPool(x, s);
// y = ReLU(BN(Conv3×3(p))).  Ablation: p = MaxPool2×2(x) (ceil mode, so sizes match s_l).

AdaptiveDown::AdaptiveDown(int64_t c_in, int64_t c_out, int64_t out_size, bool adaptive, Generator& gen)
    : out_size(out_size), adaptive(adaptive) {
  if (adaptive) mix = param("mix", Tensor::zeros({c_in}));
  conv = child<Conv2d>("conv", c_in, c_out, 3, 1, 1, false, gen);
  bn = child<BatchNorm2d>("bn", c_out);
}

Tensor AdaptiveDown::forward(const Tensor& x, AhmsaTrace::Level* trace) {
  Tensor p;
  if (adaptive) {
    Tensor a = sigmoid(mix).reshape({1, mix.size(0), 1, 1});
    if (trace) trace->mix_a = a.detach().reshape({mix.size(0)});
    int s = int(out_size);
    p = a * adaptive_avg_pool2d(x, s, s) + (-a + 1.f) * adaptive_max_pool2d(x, s, s);
  } else {
    p = max_pool2d(x, 2, 2, int(x.size(2) % 2));
  }
  return relu(bn->forward(conv->forward(p)));
}

// ============================ window attention ============================
// z = y + pos; tokens = windows of z; tokens += proj(MHSA(norm1(tokens)));
// tokens += ffn2(GELU(ffn1(norm2(tokens)))); back to the map.

WindowAttention::WindowAttention(int64_t c, int64_t s, int64_t g, int64_t hd, Generator& gen)
    : channels(c), size(s), grid(g), head_dim(hd) {
  Tensor p = Tensor::empty({c, s, s});
  trunc_normal_(p, 0.f, 0.02f, -0.04f, 0.04f, gen);
  pos = param("pos", p);
  norm1 = child<ChannelNorm>("norm1", c);
  qkv = child<Linear>("qkv", c, 3 * c, true, gen);
  proj = child<Linear>("proj", c, c, true, gen);
  norm2 = child<ChannelNorm>("norm2", c);
  ffn1 = child<Linear>("ffn1", c, 2 * c, true, gen);
  ffn2 = child<Linear>("ffn2", 2 * c, c, true, gen);
}

Tensor WindowAttention::to_windows(const Tensor& z) const {
  int64_t n = z.size(0), g = grid, w = size / grid;
  return z.reshape({n, channels, g, w, g, w}).permute({0, 2, 4, 3, 5, 1}).reshape({n * g * g, w * w, channels});
}

Tensor WindowAttention::from_windows(const Tensor& t, int64_t n) const {
  int64_t g = grid, w = size / grid;
  return t.reshape({n, g, g, w, w, channels}).permute({0, 5, 1, 3, 2, 4}).reshape({n, channels, size, size});
}

Tensor drop_path(const Tensor& x, float p, bool training, Generator& gen) {
  if (!training || p == 0.f) return x;
  Shape per_sample(size_t(x.dim()), 1);
  per_sample[0] = x.size(0);
  return x * dropout(Tensor::ones(per_sample, x.device()), p, true, gen);
}

Tensor WindowAttention::forward(const Tensor& y) {
  Generator unused(0);
  return forward(y, 0.f, unused);
}

Tensor WindowAttention::forward(const Tensor& y, float dp, Generator& gen) {
  const int64_t n = y.size(0), heads = channels / head_dim;
  // Drop-path acts per sample: the branch [N·g·g, T, C] is seen as [N, g·g·T, C] for the mask.
  auto branch = [&](const Tensor& b) {
    return dp == 0.f ? b : drop_path(b.reshape({n, -1, channels}), dp, is_training(), gen).reshape(b.shape());
  };
  Tensor tokens = to_windows(y + pos.unsqueeze(0));  // [B, T, C] with B = N·g·g windows, T = w·w tokens
  // qkv columns are [q | k | v], each split into h heads of head_dim contiguous dims;
  // per window and head: softmax(q kᵀ / sqrt(head_dim)) v, heads concatenated back in order.
  Tensor o = multi_head_attention(qkv->forward(norm1->forward_tokens(tokens)), heads);  // [B, T, C]
  tokens = tokens + branch(proj->forward(o));
  tokens = tokens + branch(ffn2->forward(gelu(ffn1->forward(norm2->forward_tokens(tokens)))));
  return from_windows(tokens, n);
}

// ============================ multi-scale attention ============================
// ca = sigmoid(MLP(GAP(z)) + MLP(GMP(z)));  zc = z ⊙ ca;
// m = sigmoid(Σ_k Conv_k×k([mean_c(zc), max_c(zc)]));  out = z + zc ⊙ m.

MultiScaleAttention::MultiScaleAttention(int64_t c, int64_t r, const std::vector<int64_t>& kernels, bool ca, bool sa,
                                         Generator& gen)
    : channel_att(ca), spatial_att(sa) {
  if (ca) {
    fc1 = child<Linear>("fc1", c, c / r, true, gen);
    fc2 = child<Linear>("fc2", c / r, c, true, gen);
  }
  if (sa)
    for (auto k : kernels) spatial.push_back(child<Conv2d>("spatial" + std::to_string(k), 2, 1, k, 1, int(k / 2), true, gen));
}

Tensor MultiScaleAttention::forward(const Tensor& z, AhmsaTrace::Level* trace) {
  Generator unused(0);
  return forward(z, 0.f, unused, trace);
}

Tensor MultiScaleAttention::forward(const Tensor& z, float dp, Generator& gen, AhmsaTrace::Level* trace) {
  const int64_t n = z.size(0), c = z.size(1);
  Tensor zc = z;
  if (channel_att) {
    auto mlp = [&](const Tensor& v) { return fc2->forward(relu(fc1->forward(v))); };
    Tensor gap = mean(z, {2, 3});
    Tensor gmp = max(z.reshape({n, c, -1}), 2);
    Tensor ca = sigmoid(mlp(gap) + mlp(gmp));  // [N, C]
    if (trace) trace->channel = ca.detach();
    zc = z * ca.reshape({n, c, 1, 1});
  }
  if (!spatial_att) return z + drop_path(zc, dp, is_training(), gen);
  Tensor d = cat({mean(zc, {1}, true), max(zc, 1, true)}, 1);  // [N, 2, s, s]
  Tensor logit = spatial[0]->forward(d);
  for (size_t i = 1; i < spatial.size(); ++i) logit = logit + spatial[i]->forward(d);
  Tensor m = sigmoid(logit);  // [N, 1, s, s]
  if (trace) trace->spatial = m.detach();
  return z + drop_path(zc * m, dp, is_training(), gen);
}

// ============================ the network ============================

AhmsaNet::AhmsaNet(const AhmsaConfig& cfg, Generator& gen) : cfg_(cfg) {
  cfg_.validate();
  stem_conv_ = child<Conv2d>("stem.conv", 3, cfg_.stem, 3, 1, 1, false, gen);
  stem_bn_ = child<BatchNorm2d>("stem.bn", cfg_.stem);
  int64_t c_in = cfg_.stem;
  for (int64_t l = 1; l <= cfg_.levels(); ++l) {
    int64_t c = cfg_.channels[size_t(l - 1)], s = cfg_.level_size(l);
    std::string p = "levels." + std::to_string(l - 1) + ".";
    Level lv;
    lv.down = child<AdaptiveDown>(p + "down", c_in, c, s, cfg_.adaptive_down, gen);
    if (cfg_.window_attention)
      lv.attn = child<WindowAttention>(p + "attn", c, s, cfg_.window_grid(l), cfg_.head_dim, gen);
    if (cfg_.channel_attention || cfg_.spatial_attention)
      lv.msa = child<MultiScaleAttention>(p + "msa", c, cfg_.reduction, cfg_.kernels, cfg_.channel_attention,
                                          cfg_.spatial_attention, gen);
    levels_.push_back(lv);
    c_in = c;
  }
  int64_t total = 0;
  for (auto c : cfg_.channels) total += c;
  dropout_ = child<Dropout>("dropout", cfg_.dropout);
  head_ = child<Linear>("head", total, cfg_.classes, true, gen);
}

Tensor AhmsaNet::forward(const Tensor& x, Generator& gen, AhmsaTrace* trace) {
  const int64_t S = cfg_.input_size;
  if (x.dim() != 4 || x.size(1) != 3 || x.size(2) != S || x.size(3) != S)
    throw ShapeError("AHMSA-Net: expected input [N, 3, " + std::to_string(S) + ", " + std::to_string(S) + "], got " +
                     x.str());
  Tensor h = relu(stem_bn_->forward(stem_conv_->forward(x)));
  std::vector<Tensor> pooled;
  if (trace) *trace = AhmsaTrace{std::vector<AhmsaTrace::Level>(levels_.size()), Tensor()};
  for (size_t i = 0; i < levels_.size(); ++i) {
    const Level& lv = levels_[i];
    AhmsaTrace::Level* t = trace ? &trace->levels[i] : nullptr;
    const float dp = cfg_.drop_path * float(i + 1) / float(levels_.size());  // stochastic depth, deeper = more
    h = lv.down->forward(h, t);
    if (lv.attn) h = lv.attn->forward(h, dp, gen);
    if (lv.msa) h = lv.msa->forward(h, dp, gen, t);
    if (t) t->output = h.detach();
    pooled.push_back(mean(h, {2, 3}));
  }
  Tensor logits = head_->forward(dropout_->forward(cat(pooled, 1), gen));
  if (trace) trace->logits = logits.detach();
  return logits;
}

std::vector<BatchNorm2d*> AhmsaNet::batch_norms() const {
  std::vector<BatchNorm2d*> out{stem_bn_.get()};
  for (auto& lv : levels_) out.push_back(lv.down->bn.get());
  return out;
}

Tensor AhmsaNet::forward(const Tensor& x, AhmsaTrace* trace) {
  if (is_training() && (cfg_.dropout > 0.f || cfg_.drop_path > 0.f))
    throw std::logic_error("AHMSA-Net: training-mode forward with dropout or drop_path needs a Generator");
  Generator unused(0);
  return forward(x, unused, trace);
}

std::vector<AhmsaNet::LayerInfo> AhmsaNet::summary() const {
  std::vector<LayerInfo> rows;
  auto count = [](const Module& m) { return m.num_parameters(); };
  const int64_t S = cfg_.input_size;
  auto conv_flops = [](int64_t cin, int64_t cout, int64_t k, int64_t s) { return 2 * cin * cout * k * k * s * s; };
  rows.push_back({"stem", {cfg_.stem, S, S}, count(*stem_conv_) + count(*stem_bn_), conv_flops(3, cfg_.stem, 3, S)});
  int64_t c_in = cfg_.stem;
  for (size_t i = 0; i < levels_.size(); ++i) {
    const auto& lv = levels_[i];
    int64_t c = cfg_.channels[i], s = cfg_.level_size(int64_t(i) + 1), T = s * s;
    std::string p = "levels." + std::to_string(i);
    rows.push_back({p + ".down", {c, s, s}, count(*lv.down), conv_flops(c_in, c, 3, s)});
    if (lv.attn) {
      int64_t w = s / lv.attn->grid, tw = w * w;  // tokens per window
      // qkv + proj + ffn (2·T·(3C² + C² + 4C²)) + scores and weighted sum (2·2·T·tw·C)
      int64_t f = 2 * T * (8 * c * c) + 4 * T * tw * c;
      rows.push_back({p + ".attn", {c, s, s}, count(*lv.attn), f});
    }
    if (lv.msa) {
      int64_t f = 0;
      if (lv.msa->channel_att) f += 2 * 2 * (2 * c * (c / cfg_.reduction));
      for (auto k : cfg_.kernels)
        if (lv.msa->spatial_att) f += conv_flops(2, 1, k, s);
      rows.push_back({p + ".msa", {c, s, s}, count(*lv.msa), f});
    }
    c_in = c;
  }
  int64_t total = 0;
  for (auto c : cfg_.channels) total += c;
  rows.push_back({"head", {cfg_.classes}, count(*head_), 2 * total * cfg_.classes});
  return rows;
}

void AhmsaNet::save(const std::string& path, const std::map<std::string, std::string>& extra) const {
  auto meta = extra;
  meta["format"] = "pt";
  meta["ahmsa.config"] = cfg_.to_string();
  write_safetensors(path, state_dict(), meta);
}

void AhmsaNet::load(const SafetensorsFile& f, Device device) {
  std::vector<std::string> missing, unexpected, misshaped;
  std::set<std::string> known;
  auto state = state_dict();
  for (auto& [name, t] : state) {
    known.insert(name);
    auto it = f.entries.find(name);
    if (it == f.entries.end())
      missing.push_back(name);
    else if (it->second.shape != t.shape())
      misshaped.push_back(name + " (file " + shape_str(it->second.shape) + ", model " + t.str() + ")");
  }
  for (auto& [name, e] : f.entries)
    if (!known.count(name) && name.find("num_batches_tracked") == std::string::npos) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 12; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 12) s += ", … (" + std::to_string(v.size()) + " in all)";
      return s;
    };
    std::string msg = "'" + f.path + "' does not fit this AHMSA-Net (" + cfg_.to_string() + "); nothing was loaded.";
    if (!missing.empty()) msg += "\n  missing: " + list(missing);
    if (!unexpected.empty()) msg += "\n  unexpected: " + list(unexpected);
    if (!misshaped.empty()) msg += "\n  wrong shape: " + list(misshaped);
    throw SafetensorsError(msg);
  }
  // Convert everything first, then copy: a bad dtype leaves the model untouched.
  std::vector<Tensor> values;
  for (auto& [name, t] : state) values.push_back(f.tensor(name));
  for (size_t i = 0; i < state.size(); ++i) state[i].second.copy_(values[i]);
  to(device);
}

AhmsaConfig AhmsaNet::config_of(const SafetensorsFile& f) {
  auto it = f.metadata.find("ahmsa.config");
  if (it != f.metadata.end()) return AhmsaConfig::parse(it->second);
  // A file without our metadata (e.g. written by PyTorch): read the widths off the shapes.
  AhmsaConfig c;
  auto shape = [&](const std::string& k) -> Shape {
    auto e = f.entries.find(k);
    if (e == f.entries.end()) throw SafetensorsError("'" + f.path + "' has no '" + k + "': not an AHMSA-Net checkpoint");
    return e->second.shape;
  };
  c.stem = shape("stem.conv.weight")[0];
  c.channels.clear();
  for (int i = 0; f.has("levels." + std::to_string(i) + ".down.conv.weight"); ++i)
    c.channels.push_back(shape("levels." + std::to_string(i) + ".down.conv.weight")[0]);
  c.classes = shape("head.weight")[0];
  c.adaptive_down = f.has("levels.0.down.mix");
  c.window_attention = f.has("levels.0.attn.pos");
  c.channel_attention = f.has("levels.0.msa.fc1.weight");
  c.kernels.clear();
  for (int k = 1; k <= 15; k += 2)
    if (f.has("levels.0.msa.spatial" + std::to_string(k) + ".weight")) c.kernels.push_back(k);
  c.spatial_attention = !c.kernels.empty();
  if (c.kernels.empty()) c.kernels = {3, 5, 7};
  if (c.window_attention) c.input_size = 2 * shape("levels.0.attn.pos")[1];  // s_1 = ceil(S/2): assume even S
  if (c.channel_attention) c.reduction = c.channels[0] / shape("levels.0.msa.fc1.weight")[0];
  return c;
}

}  // namespace ahmsa
