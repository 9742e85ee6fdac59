// `ahmsa eval`: a checkpoint on a flow cache or pre-computed flow folder, with the same metrics as
// `ahmsa train` (pooled, per dataset, per class) and optionally the same report files.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "model/ahmsa_net.h"
#include "tensor/parallel.h"
#include "tools/command.h"
#include "train/data/flow_dataset.h"
#include "train/report.h"
#include "train/trainer.h"

namespace {

using namespace ahmsa;

const char* kEvalHelp =
    "usage: ahmsa eval --model M.safetensors (--cache DIR | --flow-folder DIR --csv FILE) [options]\n"
    "  --model FILE        checkpoint (ahmsa train writes one per fold: OUT/fold_NN/model.safetensors)\n"
    "  --cache DIR         flow cache from `ahmsa prepare`\n"
    "  --flow-folder DIR   pre-computed (u, v, os) PNGs, with --csv FILE (MEGC2019 composite CSV)\n"
    "  --subjects LIST     only these subjects (comma-separated ids as in the cache, e.g. casme2/sub01); by default all\n"
    "                      clips, including those the checkpoint was trained on: score only held-out subjects\n"
    "  --out DIR           also write DIR/metrics.json, DIR/predictions.csv, DIR/confusion.png\n"
    "  --batch 128         evaluation batch size\n"
    "  --threads N         CPU threads (default: all)\n";

int cmd_eval(const cli::Args& a) {
  using cli::has_flag;
  using cli::option;
  using cli::option_int;
  if (has_flag(a, "--help")) {
    std::printf("%s", kEvalHelp);
    return 0;
  }
  const std::string model_path = option(a, "--model"), cache = option(a, "--cache"), folder = option(a, "--flow-folder"),
                    csv = option(a, "--csv"), out = option(a, "--out");
  if (model_path.empty()) throw std::invalid_argument("--model FILE is required (ahmsa eval --help)");
  if (cache.empty() == folder.empty()) throw std::invalid_argument("give exactly one of --cache DIR or --flow-folder DIR --csv FILE");
  if (!folder.empty() && csv.empty()) throw std::invalid_argument("--flow-folder needs --csv FILE");
  if (int t = option_int(a, "--threads", 0); t > 0) set_num_threads(t);
  data::FlowDataset ds = cache.empty() ? data::load_flow_folder(folder, csv) : data::load_flow_cache(cache);
  SafetensorsFile st = read_safetensors(model_path);
  AhmsaConfig cfg = AhmsaNet::config_of(st);
  Generator init(0);
  AhmsaNet net(cfg, init);
  net.load(st);
  const int K = int(cfg.classes);
  if (int(ds.class_names.size()) != K)
    throw std::invalid_argument("model '" + model_path + "' has " + std::to_string(K) + " classes, the data " +
                                std::to_string(ds.class_names.size()));
  if (!ds.samples.empty() && ds.samples[0].size != cfg.input_size)
    throw std::invalid_argument("model '" + model_path + "' takes " + std::to_string(cfg.input_size) + " px inputs, the data is " +
                                std::to_string(ds.samples[0].size) + " px");
  std::set<std::string> only;
  {
    std::stringstream ss(option(a, "--subjects", ""));
    std::string w;
    while (std::getline(ss, w, ','))
      if (!w.empty()) only.insert(w);
  }
  std::vector<int> idx;
  for (size_t i = 0; i < ds.samples.size(); ++i)
    if (only.empty() || only.count(ds.samples[i].subject)) idx.push_back(int(i));
  if (idx.empty()) throw std::invalid_argument("no clip left to evaluate (check --subjects against the cache's subject ids)");
  auto prob = train::predict_proba(net, ds, idx, option_int(a, "--batch", 128));
  std::vector<int> pred;
  for (auto& p : prob) pred.push_back(train::argmax(p));
  train::MetricsBlock m = train::compute_metrics(ds, idx, pred, K);
  std::printf("eval %s on %s: %zu clips%s\n", model_path.c_str(), ds.source.c_str(), idx.size(),
              only.empty() ? " (all subjects, including any the model was trained on)" : "");
  std::printf("pooled: UF1 %.4f  UAR %.4f  accuracy %.4f\n", m.pooled.uf1, m.pooled.uar, m.pooled.accuracy);
  for (auto& [name, s] : m.per_dataset)
    std::printf("  %-12s UF1 %.4f  UAR %.4f  accuracy %.4f  (n %lld)\n", name.c_str(), s.uf1, s.uar, s.accuracy, (long long)s.n);
  for (int k = 0; k < K; ++k)
    std::printf("  %-12s F1 %.3f  recall %.3f  (n %lld)\n", ds.class_names[size_t(k)].c_str(), m.pooled.per_class[size_t(k)].f1,
                m.pooled.per_class[size_t(k)].recall, (long long)m.pooled.per_class[size_t(k)].support);
  if (!out.empty()) {
    namespace fs = std::filesystem;
    fs::create_directories(out);
    std::ofstream(fs::path(out) / "metrics.json") << "{\n  \"model\": \"" << train::json_escape(model_path) << "\",\n  \"data\": \""
                                                  << train::json_escape(ds.source) << "\",\n  \"pooled\": "
                                                  << train::metrics_block_json(m, ds.class_names, 2) << "\n}\n";
    std::ofstream p(fs::path(out) / "predictions.csv");
    p << "sample,dataset,subject,clip,label,pred";
    for (auto& n : ds.class_names) p << ",p_" << n;
    p << "\n";
    for (size_t i = 0; i < idx.size(); ++i) {
      const auto& s = ds.samples[size_t(idx[i])];
      p << idx[i] << "," << s.dataset << "," << s.subject << "," << s.clip << "," << s.label << "," << pred[i];
      for (float v : prob[i]) p << "," << v;
      p << "\n";
    }
    char title[128];
    std::snprintf(title, sizeof title, "eval: UF1 %.3f  UAR %.3f  acc %.3f", m.pooled.uf1, m.pooled.uar, m.pooled.accuracy);
    train::write_confusion_png((fs::path(out) / "confusion.png").string(), m.confusion, ds.class_names, title);
    std::printf("report: %s/{metrics.json, predictions.csv, confusion.png}\n", out.c_str());
  }
  return 0;
}

}  // namespace

AHMSA_COMMAND("eval", "score a checkpoint on a flow cache or flow folder (pooled, per dataset, per class)", cmd_eval);
