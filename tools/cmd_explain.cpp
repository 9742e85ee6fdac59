// `ahmsa explain`: what AHMSA-Net looks at for one clip. One picture read at a glance: the input
// (onset and apex crops when given, the flow as a colour wheel, the three channels the network sees),
// where it looks (a gradient saliency map of the predicted class and each level's spatial-attention
// mask m over the face), how it weighs its features (each level's channel-attention weights ca and
// AdaptiveDown's average/max mix a), and the class probabilities. --json writes the same numbers.
// The intermediates come from the model's own forward (AhmsaTrace, model/ahmsa_net.h); the saliency
// |∂logit/∂x| summed over channels from our autograd.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "flow/flow.h"
#include "infer/classifier.h"
#include "model/ahmsa_net.h"
#include "tools/command.h"
#include "tools/pair_input.h"
#include "train/canvas.h"
#include "train/data/flow_dataset.h"
#include "train/data/run_folder.h"
#include "train/data/table.h"
#include "train/report.h"

namespace {

using namespace ahmsa;
using train::Canvas;
using train::kBlack;
using train::kGrey;
using train::kLight;

// What is explained: the network's input and, where known, the face and the truth.
struct Clip {
  std::string what;
  std::vector<float> x;          // 3 x S x S, CHW in [0, 1]
  img::Image onset, apex;        // grey face crops (empty for a cache entry or flow PNG)
  flow::FlowField flow;          // in px of the crop when computed here; else from the normalised u, v
  bool flow_from_png = false;
  std::string truth;             // class name, "" when unknown
};

// The u and v channels of a stored (u, v, os) image are min-max normalised, so zero motion is lost;
// the median of each channel (most of a face does not move) stands in for it.
flow::FlowField flow_from_uv(const std::vector<float>& x, int S) {
  flow::FlowField f(S, S);
  for (int c = 0; c < 2; ++c) {
    std::vector<float> ch(x.begin() + size_t(c) * S * S, x.begin() + size_t(c + 1) * S * S), sorted = ch;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    const float med = sorted[sorted.size() / 2];
    for (size_t i = 0; i < ch.size(); ++i) (c == 0 ? f.u : f.v)[i] = ch[i] - med;
  }
  return f;
}

// u_min, u_max, v_min, v_max of a cache entry (manifest.csv columns written by `ahmsa prepare`), or
// nothing when the manifest lacks them.
std::vector<float> manifest_flow_range(const std::string& cache, const data::FlowSample& s) {
  const data::Table t = data::read_csv((std::filesystem::path(cache) / "manifest.csv").string());
  if (t.empty()) return {};
  auto col = [&](const char* name) { return int(std::find(t[0].begin(), t[0].end(), name) - t[0].begin()); };
  const int subject = col("subject"), clip = col("clip"), u0 = col("u_min"), u1 = col("u_max"), v0 = col("v_min"), v1 = col("v_max");
  const int n = int(t[0].size());
  if (subject >= n || clip >= n || u0 >= n || u1 >= n || v0 >= n || v1 >= n) return {};
  for (size_t r = 1; r < t.size(); ++r)
    if (int(t[r].size()) == n && t[r][size_t(subject)] == s.subject && t[r][size_t(clip)] == s.clip) try {
        return {std::stof(t[r][size_t(u0)]), std::stof(t[r][size_t(u1)]), std::stof(t[r][size_t(v0)]), std::stof(t[r][size_t(v1)])};
      } catch (const std::exception&) {
        return {};  // not numbers: fall back to the centred channels
      }
  return {};
}

img::Image channel_image(const std::vector<float>& x, int S, int c) {
  img::Image g(S, S, 1);
  for (int i = 0; i < S * S; ++i) g.data[size_t(i)] = 255.f * x[size_t(c) * S * S + i];
  return g;
}

// A map (any range) as a heat colour over a grey background: the map is stretched to [0, 1] between
// lo and hi, coloured black-red-yellow-white, and blended with the background (both at `out` px).
img::Image heat_over(const std::vector<float>& map, int mw, int mh, float lo, float hi, const img::Image& background, int out) {
  img::Image m(mw, mh, 1);
  for (size_t i = 0; i < map.size(); ++i) m.data[i] = map[i];
  img::Image up = img::resize_bilinear(m, out, out);
  img::Image bg = background.empty() ? img::Image(out, out, 1, 128.f) : img::resize_bilinear(img::to_grey(background), out, out);
  img::Image o(out, out, 3);
  for (int y = 0; y < out; ++y)
    for (int x = 0; x < out; ++x) {
      const float t = std::clamp((up.at(x, y) - lo) / std::max(hi - lo, 1e-12f), 0.f, 1.f);
      const float r = std::min(1.f, 3 * t), g = std::clamp(3 * t - 1, 0.f, 1.f), b = std::clamp(3 * t - 2, 0.f, 1.f);
      const float grey = bg.at(x, y), w = 0.35f + 0.45f * t;  // strong values cover more of the face
      const float heat[3] = {255 * r, 255 * g, 255 * b};
      for (int k = 0; k < 3; ++k) o.at(x, y, k) = (1 - w) * grey + w * heat[k];
    }
  return o;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string range_text(const std::vector<float>& v) {
  float lo = v[0], hi = v[0], mean = 0;
  for (float x : v) lo = std::min(lo, x), hi = std::max(hi, x), mean += x / float(v.size());
  return fmt("%.3f", lo) + " .. " + fmt("%.3f", hi) + ", mean " + fmt("%.3f", mean);
}

// Vertical bars, one per value in [0, 1], in a w x h box; a dashed reference line at `ref` (< 0: none).
void bar_strip(Canvas& cv, int x, int y, int w, int h, const std::vector<float>& v, const unsigned char* col, float ref) {
  cv.rect(x, y, x + w, y + h, kLight);
  const int n = int(v.size());
  for (int i = 0; i < n; ++i) {
    const int x0 = x + i * w / n, x1 = std::max(x0 + 1, x + (i + 1) * w / n - (w / n >= 3 ? 1 : 0));
    const int bh = int(std::lround(std::clamp(v[size_t(i)], 0.f, 1.f) * h));
    cv.rect(x0, y + h - bh, x1, y + h, col);
  }
  if (ref >= 0) {
    const int ry = y + h - int(std::lround(ref * h));
    for (int xx = x; xx < x + w; xx += 6) cv.rect(xx, ry, std::min(xx + 3, x + w), ry + 1, kBlack);
  }
  cv.frame(x - 1, y - 1, x + w + 1, y + h + 1, kGrey);
}

nlohmann::ordered_json numbers(const std::vector<float>& v) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (float f : v) a.push_back(train::json_number(f));
  return a;
}
nlohmann::ordered_json grid(const std::vector<float>& v, int w) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (size_t r = 0; r * w < v.size(); ++r) a.push_back(numbers(std::vector<float>(v.begin() + r * w, v.begin() + (r + 1) * w)));
  return a;
}

int cmd_explain(const cli::Args& a) {
  CLI::App app{"What AHMSA-Net looks at for one clip: one picture with the input (onset/apex crops, flow colour wheel, u, v,\n"
               "optical strain), a gradient saliency map of the predicted class, each level's spatial-attention mask m,\n"
               "channel-attention weights and down-sampling mix a, and the class probabilities. The clip is an onset/apex\n"
               "pair (preprocessed as `ahmsa predict` does), a flow-cache entry (--cache DIR --clip ID) or a (u, v, os) PNG.",
               "ahmsa explain"};
  std::string model_path, cache, clip_id, flow_png, out = "explain.png", json_path, target_name;
  cli::PairOptions pair;
  int threads = 0;
  app.add_option("--model", model_path, "checkpoint written by `ahmsa train` (fold_NN/model.safetensors)")->required()->type_name("FILE");
  cli::add_pair_options(app, pair);
  app.add_option("--cache", cache, "flow cache from `ahmsa prepare`, with --clip")->type_name("DIR");
  app.add_option("--clip", clip_id, "the cache entry: SUBJECT/CLIP as in the cache (e.g. casme2/sub01/EP01_01) or a clip name "
                                    "that is unique in the cache")
      ->type_name("ID");
  app.add_option("--flow", flow_png, "a (u, v, os) PNG as the cache and the MEGC flow folders store it")->type_name("FILE.png");
  app.add_option("-o,--out", out, "the picture")->capture_default_str()->type_name("FILE.png");
  app.add_option("--json", json_path, "also write the numbers of the picture (probabilities, a, ca, m per level, saliency)")
      ->type_name("FILE.json");
  app.add_option("--target", target_name, "class whose logit the saliency map differentiates (default: the predicted class)")
      ->type_name("CLASS");
  cli::add_threads_option(app, threads);
  cli::parse(app, a);
  cli::check_pair_options(pair);
  const int sources = int(pair.given()) + int(!cache.empty()) + int(!flow_png.empty());
  if (sources != 1) throw cli::UsageError("give one clip: ONSET APEX images, --video V --onset I --apex J, --cache DIR --clip ID, or --flow FILE.png");
  if (!cache.empty() && clip_id.empty()) throw cli::UsageError("--cache needs --clip ID (SUBJECT/CLIP as in the cache's manifest.csv)");
  if (cache.empty() && !clip_id.empty()) throw cli::UsageError("--clip names an entry of --cache DIR");
  cli::apply_threads(threads);

  SafetensorsFile st = read_safetensors(model_path);
  AhmsaConfig cfg = AhmsaNet::config_of(st);
  Generator init(0);
  AhmsaNet net(cfg, init);
  net.load(st, Device::CPU);
  net.eval();
  const int S = int(cfg.input_size), K = int(cfg.classes);
  const std::vector<std::string> names = infer::class_names_of(st, K);

  Clip clip;
  if (pair.given()) {
    cli::PairInput in = cli::load_pair(pair, S);
    clip.what = in.what, clip.x = in.x, clip.onset = in.onset, clip.apex = in.apex, clip.flow = in.flow;
  } else {
    int size = 0;
    std::vector<float> flow_range;  // u_min, u_max, v_min, v_max in px, when the cache's manifest has them
    if (!flow_png.empty()) {
      clip.x = data::load_uvos_png(flow_png, size);
      clip.what = flow_png;
    } else {
      data::FlowDataset ds = data::load_flow_cache(cache);
      std::vector<const data::FlowSample*> hits;
      for (auto& s : ds.samples)
        if (s.subject + "/" + s.clip == clip_id || s.clip == clip_id) hits.push_back(&s);
      if (hits.empty()) {
        std::string some;
        for (size_t i = 0; i < ds.samples.size() && i < 3; ++i) some += (i ? ", " : "") + ds.samples[i].subject + "/" + ds.samples[i].clip;
        throw std::invalid_argument("no clip '" + clip_id + "' in the cache '" + cache + "' (" + std::to_string(ds.samples.size()) +
                                    " clips, e.g. " + some + ")");
      }
      if (hits.size() > 1)
        throw std::invalid_argument("clip '" + clip_id + "' is in the cache " + std::to_string(hits.size()) + " times (e.g. " + hits[0]->subject +
                                    "/" + hits[0]->clip + ", " + hits[1]->subject + "/" + hits[1]->clip + "): give SUBJECT/CLIP");
      clip.x = hits[0]->x, size = hits[0]->size;
      clip.what = cache + ": " + hits[0]->subject + "/" + hits[0]->clip;
      flow_range = manifest_flow_range(cache, *hits[0]);
      if (hits[0]->label >= 0 && hits[0]->label < int(ds.class_names.size())) clip.truth = ds.class_names[size_t(hits[0]->label)];
    }
    if (size != S)
      throw std::invalid_argument("model '" + model_path + "' takes " + std::to_string(S) + " px inputs, '" + clip.what + "' is " + std::to_string(size) +
                                  " px");
    if (flow_range.size() == 4) {  // the cache recorded u, v in px: undo the min-max normalisation
      clip.flow = flow::FlowField(S, S);
      for (int i = 0; i < S * S; ++i) {
        clip.flow.u[size_t(i)] = flow_range[0] + clip.x[size_t(i)] * (flow_range[1] - flow_range[0]);
        clip.flow.v[size_t(i)] = flow_range[2] + clip.x[size_t(S * S + i)] * (flow_range[3] - flow_range[2]);
      }
    } else {
      clip.flow = flow_from_uv(clip.x, S);
      clip.flow_from_png = true;
    }
  }

  // One forward with the trace, then the gradient of the chosen logit with respect to the input.
  Tensor x = Tensor::from_vector({1, 3, S, S}, clip.x);
  x.set_requires_grad(true);
  AhmsaTrace trace;
  Tensor logits = net.forward(x, &trace);
  const std::vector<float> lg = logits.to_vector();
  std::vector<float> prob;
  {
    NoGradGuard ng;
    prob = softmax(logits.detach(), 1).to_vector();
  }
  const int pred = int(std::max_element(prob.begin(), prob.end()) - prob.begin());
  int target = pred;
  if (!target_name.empty()) {
    auto it = std::find(names.begin(), names.end(), target_name);
    if (it == names.end()) throw cli::UsageError("--target: '" + target_name + "' is not one of this model's classes");
    target = int(it - names.begin());
  }
  sum(logits.narrow(1, target, 1)).backward();
  const std::vector<float> g = x.grad().to_vector();
  std::vector<float> sal(size_t(S) * S, 0.f);
  double share[3] = {0, 0, 0}, total = 0;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < S * S; ++i) {
      const float v = std::fabs(g[size_t(c) * S * S + i]);
      sal[size_t(i)] += v, share[c] += v, total += v;
    }
  const float sal_max = *std::max_element(sal.begin(), sal.end());

  // ---- the picture ----
  const int T = 150, gap = 14, left = 16, cap = 40;  // tile side, spacing, caption height
  const int L = int(cfg.levels());
  const img::Image& face = clip.onset.empty() ? img::Image() : clip.onset;
  const img::Image background = face.empty() ? channel_image(clip.x, S, 2) : face;
  const int row_w = left + 6 * (T + gap);
  const int level_w = 300;
  const int W = std::max({row_w, left + L * (level_w + gap) + 10, left + (L + 1) * (T + gap) + 400});
  const int title_h = 64, H = title_h + 2 * (T + cap + 30) + 30 + 180 + 10;
  Canvas cv(W, H);
  const unsigned char kBlue[3] = {31, 119, 180}, kOrange[3] = {230, 120, 20}, kRed[3] = {200, 30, 30}, kDark[3] = {70, 70, 70};
  cv.text(left, 10, "ahmsa explain: " + clip.what, kBlack, 2);
  std::string verdict = "predicted " + names[size_t(pred)] + " (p " + fmt("%.2f", prob[size_t(pred)]) + ")";
  if (!clip.truth.empty()) verdict += ", truth " + clip.truth;
  cv.text(left, 34, verdict, clip.truth.empty() || clip.truth == names[size_t(pred)] ? kBlue : kRed, 2);

  auto tile = [&](int col, int row_y, const img::Image& im, bool smooth, const std::string& l1, const std::string& l2,
                  const std::string& l3 = "") {
    const int x0 = left + col * (T + gap);
    cv.image(x0, row_y, im, T, T, smooth);
    cv.frame(x0 - 1, row_y - 1, x0 + T + 1, row_y + T + 1, kGrey);
    cv.text(x0, row_y + T + 6, l1, kBlack, 2);
    if (!l2.empty()) cv.text(x0, row_y + T + 24, l2, kDark, 1);
    if (!l3.empty()) cv.text(x0, row_y + T + 34, l3, kDark, 1);
  };
  // Row 1: the input.
  int y = title_h + 22;
  cv.text(left, y - 18, "INPUT: what the network is given (" + std::to_string(S) + "x" + std::to_string(S) + ", one pixel per square)", kDark, 2);
  int col = 0;
  if (!clip.onset.empty()) {
    tile(col++, y, clip.onset, true, "onset", "the neutral face");
    tile(col++, y, clip.apex, true, "apex", "the expression's peak");
  }
  tile(col++, y, flow::flow_to_color(clip.flow), !clip.flow_from_png, "flow",
       clip.flow_from_png ? "hue = direction (u, v centred)" : "hue = direction, pale = slow");
  const char* ch_name[3] = {"u", "v", "strain"};
  const char* ch_note[3] = {"horizontal motion", "vertical motion", "deformation"};
  for (int c = 0; c < 3; ++c)
    tile(col++, y, channel_image(clip.x, S, c), false, ch_name[c],
         ch_note[c], fmt("%.0f%%", total > 0 ? 100 * share[c] / total : 0) + " of the saliency");

  // Row 2: where it looks.
  y += T + cap + 30;
  cv.text(left, y - 18, std::string("WHERE IT LOOKS: saliency of '") + names[size_t(target)] + "' and each level's spatial mask m, over the " +
                            (face.empty() ? "strain" : "face"), kDark, 2);
  tile(0, y, heat_over(sal, S, S, 0.f, sal_max, background, T), true, "saliency", "|dlogit/dx|, max " + fmt("%.3g", sal_max));
  for (int l = 0; l < L; ++l) {
    const Tensor& m = trace.levels[size_t(l)].spatial;
    const int s = int(cfg.level_size(l + 1));
    if (!m.defined()) {
      tile(l + 1, y, img::Image(s, s, 1, 230.f), false, "level " + std::to_string(l + 1), "no spatial attention");
      continue;
    }
    std::vector<float> mv = m.to_vector();
    const float lo = *std::min_element(mv.begin(), mv.end()), hi = *std::max_element(mv.begin(), mv.end());
    tile(l + 1, y, heat_over(mv, s, s, lo, hi, background, T), true, "m, level " + std::to_string(l + 1),
         std::to_string(s) + "x" + std::to_string(s) + ", " + fmt("%.2f", lo) + " .. " + fmt("%.2f", hi));
  }
  // Class probabilities beside the maps.
  {
    const int px = left + (L + 1) * (T + gap) + 16, bw = 190;
    cv.text(px, y, "class probabilities", kBlack, 2);
    for (int k = 0; k < K && k < 6; ++k) {
      const int by = y + 30 + k * 28;
      cv.text(px, by + 2, names[size_t(k)].substr(0, 10), k == pred ? kBlue : kBlack, 2);
      cv.rect(px + 110, by, px + 110 + bw, by + 18, kLight);
      cv.rect(px + 110, by, px + 110 + int(std::lround(bw * prob[size_t(k)])), by + 18, k == pred ? kBlue : kGrey);
      cv.text(px + 110 + bw + 6, by + 2, fmt("%.2f", prob[size_t(k)]), kBlack, 2);
    }
    // The heat scale of the maps on the left.
    const int ky = y + T + 14;
    cv.text(px, ky - 22, "maps: each stretched over its range", kDark, 1);
    for (int i = 0; i < 200; ++i) {
      const float t = i / 199.f;
      const unsigned char c[3] = {(unsigned char)(255 * std::min(1.f, 3 * t)), (unsigned char)(255 * std::clamp(3 * t - 1, 0.f, 1.f)),
                                  (unsigned char)(255 * std::clamp(3 * t - 2, 0.f, 1.f))};
      cv.rect(px + i, ky - 10, px + i + 1, ky + 4, c);
    }
    cv.text(px, ky + 8, "low", kDark, 1);
    cv.text(px + 200 - Canvas::text_width("high", 1), ky + 8, "high", kDark, 1);
  }

  // Row 3: how it weighs its features, one block per level.
  y += T + cap + 30;
  cv.text(left, y - 18, "HOW IT WEIGHS FEATURES, per level: channel attention ca and the pooling mix a", kDark, 2);
  for (int l = 0; l < L; ++l) {
    const auto& tl = trace.levels[size_t(l)];
    const int bx = left + l * (level_w + gap), bw = level_w - 20;
    const int s = int(cfg.level_size(l + 1)), C = int(cfg.channels[size_t(l)]);
    cv.text(bx, y, "level " + std::to_string(l + 1) + ": " + std::to_string(s) + "x" + std::to_string(s) + ", " + std::to_string(C) + " ch", kBlack, 2);
    if (tl.channel.defined()) {
      std::vector<float> ca = tl.channel.to_vector();
      bar_strip(cv, bx, y + 24, bw, 50, ca, kBlue, -1);
      cv.text(bx, y + 80, "ca per channel (1 = kept): " + range_text(ca), kDark, 1);
    } else {
      cv.text(bx, y + 40, "no channel attention", kGrey, 2);
    }
    if (tl.mix_a.defined()) {
      std::vector<float> av = tl.mix_a.to_vector();
      bar_strip(cv, bx, y + 100, bw, 50, av, kOrange, 0.5f);
      cv.text(bx, y + 156, "a per input channel (1 = average, 0 = max pool)", kDark, 1);
      cv.text(bx, y + 166, range_text(av) + "; dashes: 0.5, the initial value", kDark, 1);
    } else {
      cv.text(bx, y + 116, "fixed 2x2 max pool (no a)", kGrey, 2);
    }
  }
  cv.save(out);
  std::printf("%s\n", clip.what.c_str());
  for (int k = 0; k < K; ++k) std::printf("  %-12s %.4f%s\n", names[size_t(k)].c_str(), prob[size_t(k)], k == pred ? "  <-" : "");
  std::printf("prediction: %s%s\n", names[size_t(pred)].c_str(), clip.truth.empty() ? "" : (" (truth " + clip.truth + ")").c_str());
  std::printf("picture: %s\n", out.c_str());

  if (!json_path.empty()) {
    nlohmann::ordered_json j;
    j["model"] = model_path;
    j["input"] = clip.what;
    j["config"] = cfg.to_string();
    j["classes"] = names;
    j["truth"] = clip.truth.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(clip.truth);
    j["logits"] = numbers(lg);
    j["probabilities"] = numbers(prob);
    j["prediction"] = names[size_t(pred)];
    nlohmann::ordered_json levels = nlohmann::ordered_json::array();
    for (int l = 0; l < L; ++l) {
      const auto& tl = trace.levels[size_t(l)];
      const int s = int(cfg.level_size(l + 1));
      nlohmann::ordered_json lv;
      lv["level"] = l + 1;
      lv["size"] = s;
      lv["channels"] = cfg.channels[size_t(l)];
      lv["mix_a"] = tl.mix_a.defined() ? numbers(tl.mix_a.to_vector()) : nlohmann::ordered_json(nullptr);
      lv["channel_attention"] = tl.channel.defined() ? numbers(tl.channel.to_vector()) : nlohmann::ordered_json(nullptr);
      lv["spatial_attention"] = tl.spatial.defined() ? grid(tl.spatial.to_vector(), s) : nlohmann::ordered_json(nullptr);
      levels.push_back(lv);
    }
    j["levels"] = levels;
    j["saliency"] = {{"target", names[size_t(target)]},
                     {"definition", "sum over the 3 input channels of |d logit[target] / d x|"},
                     {"channel_share", {{"u", train::json_number(total > 0 ? share[0] / total : 0)},
                                        {"v", train::json_number(total > 0 ? share[1] / total : 0)},
                                        {"strain", train::json_number(total > 0 ? share[2] / total : 0)}}},
                     {"map", grid(sal, S)}};
    data::write_file_atomic(json_path, j.dump(1) + "\n");
    std::printf("numbers: %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace

AHMSA_COMMAND("explain", "what the network looks at for one clip: attention maps, saliency, probabilities (one picture)", cmd_explain);
