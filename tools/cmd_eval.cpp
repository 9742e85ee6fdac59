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
#include "train/data/run_folder.h"
#include "train/data/flow_dataset.h"
#include "train/report.h"
#include "train/trainer.h"

namespace {

using namespace ahmsa;

int cmd_eval(const cli::Args& a) {
  CLI::App app{"Scores a checkpoint on a flow cache or a pre-computed flow folder: pooled, per dataset, per class, as "
               "`ahmsa train` does.",
               "ahmsa eval"};
  std::string model_path, cache, folder, csv, out;
  std::vector<std::string> subjects;
  int batch = 128, threads = 0;
  cli::DeviceChoice device = cli::DeviceChoice::Auto;
  app.add_option("--model", model_path, "checkpoint (ahmsa train writes one per fold: OUT/fold_NN/model.safetensors)")
      ->required()
      ->type_name("FILE");
  app.add_option("--cache", cache, "flow cache from `ahmsa prepare`")->type_name("DIR");
  app.add_option("--flow-folder", folder, "pre-computed (u, v, os) PNGs, with --csv FILE (MEGC2019 composite CSV)")->type_name("DIR");
  app.add_option("--csv", csv, "with --flow-folder: the composite CSV")->type_name("FILE");
  app.add_option("--subjects", subjects,
                 "only these subjects (ids as in the cache, e.g. casme2/sub01); by default all clips, including those the "
                 "checkpoint was trained on: score only held-out subjects")
      ->delimiter(',')
      ->type_name("LIST");
  app.add_option("--out", out, "also write DIR/metrics.json, DIR/predictions.csv, DIR/confusion.png")->type_name("DIR");
  app.add_option("--batch", batch, "evaluation batch size")->capture_default_str()->check(CLI::Range(1, 1000000));
  cli::add_threads_option(app, threads);
  cli::add_device_option(app, device);
  cli::parse(app, a);
  if (cache.empty() == folder.empty()) throw cli::UsageError("give exactly one of --cache DIR or --flow-folder DIR --csv FILE");
  if (!folder.empty() && csv.empty()) throw cli::UsageError("--flow-folder needs --csv FILE");
  const Device dev = cli::resolve_device(device);
  cli::apply_threads(threads);
  data::FlowDataset ds = cache.empty() ? data::load_flow_folder(folder, csv) : data::load_flow_cache(cache);
  SafetensorsFile st = read_safetensors(model_path);
  AhmsaConfig cfg = AhmsaNet::config_of(st);
  Generator init(0);
  AhmsaNet net(cfg, init);
  net.load(st, dev);
  const int K = int(cfg.classes);
  if (int(ds.class_names.size()) != K)
    throw std::invalid_argument("model '" + model_path + "' has " + std::to_string(K) + " classes, the data " +
                                std::to_string(ds.class_names.size()));
  if (!ds.samples.empty() && ds.samples[0].size != cfg.input_size)
    throw std::invalid_argument("model '" + model_path + "' takes " + std::to_string(cfg.input_size) + " px inputs, the data is " +
                                std::to_string(ds.samples[0].size) + " px");
  const std::set<std::string> only(subjects.begin(), subjects.end());
  std::vector<int> idx;
  for (size_t i = 0; i < ds.samples.size(); ++i)
    if (only.empty() || only.count(ds.samples[i].subject)) idx.push_back(int(i));
  if (idx.empty()) throw std::invalid_argument("no clip left to evaluate (check --subjects against the cache's subject ids)");
  auto prob = train::predict_proba(net, ds, idx, batch);
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
    nlohmann::ordered_json j;
    j["model"] = model_path;
    j["data"] = ds.source;
    j["clips"] = idx.size();
    j["subjects"] = only.empty() ? nlohmann::ordered_json("all") : nlohmann::ordered_json(subjects);
    j["pooled"] = train::metrics_block_json(m, ds.class_names);
    data::write_file_atomic(fs::path(out) / "metrics.json", j.dump(2) + "\n");
    std::ostringstream p;
    p << "sample,dataset,subject,clip,label,pred";
    for (auto& n : ds.class_names) p << ",p_" << n;
    p << "\n";
    for (size_t i = 0; i < idx.size(); ++i) {
      const auto& s = ds.samples[size_t(idx[i])];
      p << idx[i] << "," << s.dataset << "," << s.subject << "," << s.clip << "," << s.label << "," << pred[i];
      for (float v : prob[i]) p << "," << v;
      p << "\n";
    }
    data::write_file_atomic(fs::path(out) / "predictions.csv", p.str());
    char title[128];
    std::snprintf(title, sizeof title, "eval: UF1 %.3f  UAR %.3f  acc %.3f", m.pooled.uf1, m.pooled.uar, m.pooled.accuracy);
    train::write_confusion_png((fs::path(out) / "confusion.png").string(), m.confusion, ds.class_names, title);
    std::printf("report: %s/{metrics.json, predictions.csv, confusion.png}\n", out.c_str());
  }
  return 0;
}

}  // namespace

AHMSA_COMMAND("eval", "score a checkpoint on a flow cache or flow folder (pooled, per dataset, per class)", cmd_eval);
