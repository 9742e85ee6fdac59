#include "train/data/prepare.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "train/data/run_folder.h"

namespace fs = std::filesystem;

namespace ahmsa::data {

std::string cache_relative_path(const Sample& s) { return "flows/" + s.subject + "/" + s.clip + ".png"; }

static const std::vector<std::string> kManifestHeader = {
    "dataset", "subject", "clip",   "label",  "emotion", "onset", "apex",  "offset", "apex_estimated", "file",
    "crop_x",  "crop_y",  "crop_w", "crop_h", "u_min",   "u_max", "v_min", "v_max",  "os_max", "repairs"};

const char* crop_mode_name(CropMode m) { return m == CropMode::None ? "none" : m == CropMode::Detect ? "detect" : "boxes"; }

CropMode PrepareOptions::crop_for(const std::string& dataset) const {
  auto it = crop_by_dataset.find(dataset);
  return it == crop_by_dataset.end() ? crop : it->second;
}

bool frames_are_cropped(const SampleList& list, const std::string& dataset) {
  auto b = list.bases.find(dataset);
  if (b != list.bases.end()) {
    for (auto& part : fs::path(b->second))
      if (part == "Cropped") return true;
    std::error_code ec;
    if (fs::exists(fs::path(b->second) / "synth_parameters.json", ec)) return true;
  }
  for (auto& s : list.samples)
    if (s.dataset == dataset) return fs::path(s.onset_path).filename().string().rfind("reg_", 0) == 0;
  return false;
}

CropMode auto_crop_mode(const SampleList& list, const std::string& dataset, bool have_boxes, bool can_detect) {
  if (have_boxes) return CropMode::Boxes;
  return !frames_are_cropped(list, dataset) && can_detect ? CropMode::Detect : CropMode::None;
}

// The datasets of the list, each with the crop mode it gets.
static std::map<std::string, CropMode> crop_modes(const SampleList& list, const PrepareOptions& o) {
  std::map<std::string, CropMode> m;
  for (auto& s : list.samples) m.emplace(s.dataset, o.crop_for(s.dataset));
  return m;
}

static bool any_mode(const std::map<std::string, CropMode>& m, CropMode want) {
  for (auto& [d, c] : m)
    if (c == want) return true;
  return false;
}

// "none" when every dataset has the same mode (as caches made before per-dataset modes say), else
// "casme2:none,samm:detect,smic:detect".
static std::string crop_description(const std::map<std::string, CropMode>& m, CropMode fallback) {
  std::set<CropMode> modes;
  for (auto& [d, c] : m) modes.insert(c);
  if (modes.size() <= 1) return crop_mode_name(modes.empty() ? fallback : *modes.begin());
  std::string s;
  for (auto& [d, c] : m) s += (s.empty() ? "" : ",") + d + ":" + crop_mode_name(c);
  return s;
}

// Every parameter that changes the cached values, as one line; a cache made with another one is refused.
static std::string signature(const SampleList& list, const PrepareOptions& o) {
  auto modes = crop_modes(list, o);
  std::ostringstream s;
  s << "flow=" << o.flow.describe() << "; strain=" << (o.strain == flow::StrainScheme::Central ? "central" : "forward")
    << "; size=" << o.size << "; crop=" << crop_description(modes, o.crop) << "; crop_size=" << o.crop_size;
  if (any_mode(modes, CropMode::Detect) || any_mode(modes, CropMode::Boxes)) s << "; margin=" << o.margin;
  if (any_mode(modes, CropMode::Detect)) s << "; cascade=" << fs::path(o.cascade).filename().string();
  if (any_mode(modes, CropMode::Boxes)) s << "; boxes=" << o.boxes_file;
  // Which clips are kept and which apex they use (written only when not the default, so caches made
  // before these settings keep their signature).
  if (list.read.strict) s << "; annotations=strict";
  if (list.read.onset_apex != OnsetApexFix::None) s << "; fix_onset_apex=" << onset_apex_fix_name(list.read.onset_apex);
  s << "; classes=";
  for (size_t i = 0; i < list.class_names.size(); ++i) s << (i ? "," : "") << list.class_names[i];
  return s.str();
}

struct ClipResult {
  bool ok = false;
  std::string warning;
  std::vector<std::string> row;
};

static void save_png_atomic(const fs::path& p, const img::Image& im) {
  fs::path tmp = p;
  tmp += ".tmp";
  img::save_png(tmp.string(), im);
  commit_file(tmp, p);
}

static std::string fmt(float v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

static FaceBox clip_box(const Sample& s, const img::Image& onset, const PrepareOptions& o,
                        const std::map<std::string, FaceBox>& boxes, std::string& why) {
  const CropMode mode = o.crop_for(s.dataset);
  if (mode == CropMode::None) return {0, 0, onset.width, onset.height};
  FaceBox face;
  if (mode == CropMode::Boxes) {
    std::string tail = s.subject.substr(s.subject.find('/') + 1);
    auto it = boxes.find(s.subject);
    if (it == boxes.end()) it = boxes.find(tail);
    if (it == boxes.end()) {
      why = "no box for subject " + s.subject + " in " + o.boxes_file;
      return {};
    }
    face = it->second;
  } else {
    face = detect_face(onset, o.cascade);
    if (face.empty()) {
      why = "no face found by the cascade on the onset frame";
      return {};
    }
  }
  return square_box(face, o.margin, onset.width, onset.height);
}

static img::Image to_crop(const img::Image& im, const FaceBox& b, int size, CropMode mode) {
  if (mode == CropMode::None) {
    if (im.width == size && im.height == size) return im;
    return im.width > size ? img::resize_area(im, size, size) : img::resize_bilinear(im, size, size);
  }
  return crop_face(im, b, size);
}

static ClipResult process_clip(const Sample& s, const PrepareOptions& o, const std::map<std::string, FaceBox>& boxes) {
  ClipResult r;
  std::string name = s.dataset + " " + s.subject + "/" + s.clip;
  img::Image onset, apex;
  try {
    onset = img::to_grey(img::load(s.onset_path));
    apex = img::to_grey(img::load(s.apex_path));
  } catch (const std::exception& e) {
    r.warning = name + ": unreadable frame (" + e.what() + "): skipped";
    return r;
  }
  if (onset.width != apex.width || onset.height != apex.height) {
    r.warning = name + ": onset " + std::to_string(onset.width) + "x" + std::to_string(onset.height) + " and apex " +
                std::to_string(apex.width) + "x" + std::to_string(apex.height) + " differ in size: skipped";
    return r;
  }
  std::string why;
  FaceBox box;
  try {
    box = clip_box(s, onset, o, boxes, why);
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (box.empty()) {
    r.warning = name + ": " + why + ": skipped";
    return r;
  }
  const CropMode mode = o.crop_for(s.dataset);
  img::Image a = to_crop(onset, box, o.crop_size, mode), b = to_crop(apex, box, o.crop_size, mode);
  flow::FlowOptions fo = o.flow;
  flow::FlowField f;
  try {
    f = flow::compute_flow(a, b, fo);
  } catch (const std::exception& e) {
    r.warning = name + ": flow failed (" + e.what() + "): skipped";
    return r;
  }
  std::vector<float> os = flow::optical_strain(f, o.strain);
  img::Image uvos = flow::uvos_image(f, os, o.size);
  fs::path out = fs::path(o.out_dir) / cache_relative_path(s);
  fs::create_directories(out.parent_path());
  save_png_atomic(out, uvos);
  auto mm = [](const std::vector<float>& v, float& lo, float& hi) {
    auto [a1, b1] = std::minmax_element(v.begin(), v.end());
    lo = *a1, hi = *b1;
  };
  float u0, u1, v0, v1, o0, o1;
  mm(f.u, u0, u1), mm(f.v, v0, v1), mm(os, o0, o1);
  if (o.write_raw) {
    // The un-normalised (u, v, os) at the model's size: area means of the crop-resolution values.
    img::Image raw(f.width, f.height, 3);
    for (size_t i = 0; i < f.u.size(); ++i) raw.data[i * 3] = f.u[i], raw.data[i * 3 + 1] = f.v[i], raw.data[i * 3 + 2] = os[i];
    img::Image small = img::resize_area(raw, o.size, o.size);
    std::string bytes(sizeof(float) * 3 * o.size * o.size, '\0');
    float* dst = (float*)bytes.data();
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < o.size * o.size; ++i) dst[c * o.size * o.size + i] = small.data[size_t(i) * 3 + c];
    fs::path rp = out;
    rp.replace_extension(".f32");
    write_file_atomic(rp, bytes);
  }
  r.ok = true;
  r.row = {s.dataset, s.subject, s.clip, std::to_string(s.label), s.emotion, std::to_string(s.onset), std::to_string(s.apex),
           std::to_string(s.offset), s.apex_estimated ? "1" : "0", cache_relative_path(s), std::to_string(box.x),
           std::to_string(box.y), std::to_string(box.w), std::to_string(box.h), fmt(u0), fmt(u1), fmt(v0), fmt(v1), fmt(o1),
           s.repair_text()};
  return r;
}

static std::string csv_line(const std::vector<std::string>& row) {
  std::string line;
  for (size_t i = 0; i < row.size(); ++i) {
    if (i) line += ',';
    const std::string& c = row[i];
    if (c.find_first_of(",\"\n") != std::string::npos) {
      line += '"';
      for (char ch : c) line += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      line += '"';
    } else line += c;
  }
  return line + "\n";
}

static std::string hms(double s) {
  int t = int(s + 0.5);
  char b[32];
  std::snprintf(b, sizeof b, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  return b;
}

PrepareReport prepare_flow_cache(const SampleList& list, const PrepareOptions& o0) {
  auto t0 = std::chrono::steady_clock::now();
  PrepareOptions o = o0;
  if (o.out_dir.empty()) throw DataError("prepare: no cache folder given");
  if (o.size < 4 || o.crop_size < 16) throw DataError("prepare: --size must be >= 4 and --crop-size >= 16");
  int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  // Clips run in parallel; the flow itself then runs single-threaded to avoid oversubscription.
  if (threads > 1) o.flow.tvl1.threads = 1, o.flow.farneback.threads = 1;
  std::map<std::string, FaceBox> boxes;
  const auto modes = crop_modes(list, o);
  if (any_mode(modes, CropMode::Boxes)) {
    if (o.boxes_file.empty()) throw DataError("prepare: crop mode 'boxes' needs a box file (--boxes FILE)");
    boxes = read_boxes(o.boxes_file);
  }
  if (any_mode(modes, CropMode::Detect)) {
    if (!have_face_detector()) throw DataError("prepare: face detection needs OpenCV; use --crop none or --boxes FILE");
    o.cascade = find_cascade(o.cascade);
    if (o.cascade.empty()) throw DataError("prepare: no face cascade found; give --cascade FILE");
  }
  fs::create_directories(o.out_dir);
  PrepareReport rep;
  rep.manifest_csv = (fs::path(o.out_dir) / "manifest.csv").string();
  rep.manifest_json = (fs::path(o.out_dir) / "manifest.json").string();
  std::string sig = signature(list, o);

  // The parameters: refuse to mix caches made with different ones (the same guard as `ahmsa train`).
  try {
    check_resume(rep.manifest_json, sig, "--out");
  } catch (const RunMismatch& e) {
    throw DataError("cache '" + o.out_dir + "' was made with other parameters (see its manifest.json):\n" + e.what());
  }
  // Finished clips: a complete manifest row whose file exists. A torn last line (interrupted write)
  // is dropped, and the manifest rewritten with the good rows before appending.
  std::set<std::string> done;
  Table good = {kManifestHeader};
  if (fs::exists(rep.manifest_csv)) {
    // A torn last line that ends inside a quoted field is cut before parsing (a short one is skipped below).
    Table t = parse_csv(cut_torn_line(read_file_bytes(rep.manifest_csv)), rep.manifest_csv);
    // A manifest written before the `repairs` column has a prefix of today's header: its rows get "".
    const size_t cols = t.empty() ? 0 : t[0].size();
    const bool known = cols > 9 && cols <= kManifestHeader.size() &&
                       std::equal(t[0].begin(), t[0].end(), kManifestHeader.begin());
    for (size_t r = 1; known && r < t.size(); ++r) {
      auto row = t[r];
      if (blank_row(row) || row.size() != cols) continue;
      row.resize(kManifestHeader.size());
      if (!fs::exists(fs::path(o.out_dir) / row[9])) continue;
      if (done.insert(row[9]).second) good.push_back(row);
    }
  }
  {
    std::string text;
    for (auto& r : good) text += csv_line(r);
    write_file_atomic(rep.manifest_csv, text);
  }
  {
    std::time_t now = std::time(nullptr);
    char when[64];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    nlohmann::ordered_json j;
    j["tool"] = "ahmsa prepare";
    j["written"] = when;
    j["source"] = o.source_description;
    j["signature"] = sig;
    j["flow"] = o.flow.describe();
    j["flow_method"] = o.flow.method == flow::Method::TVL1 ? "tvl1" : "farneback";
    j["flow_preset"] = o.flow_preset;
    j["flow_direction"] = "onset -> apex, I_onset(x) ~ I_apex(x + (u, v)), pixels of the face crop";
    j["strain"] = std::string(o.strain == flow::StrainScheme::Central ? "central" : "forward") +
                  " differences, os = sqrt(u_x^2 + v_y^2 + (u_y + v_x)^2 / 2)";
    j["size"] = o.size;
    j["crop"] = crop_description(modes, o.crop);
    nlohmann::ordered_json by;
    for (auto& [d, c] : modes) by[d] = crop_mode_name(c);
    j["crop_by_dataset"] = by;
    j["crop_size"] = o.crop_size;
    j["margin"] = std::round(double(o.margin) * 1e6) / 1e6;
    j["cascade"] = o.cascade;
    j["boxes"] = o.boxes_file;
    j["image"] = "flows/<subject>/<clip>.png: 8-bit RGB, R = u, G = v, B = os, each min-max normalised to 0..255 per clip (constant "
                 "channel -> 0)";
    j["raw"] = o.write_raw ? nlohmann::ordered_json("flows/<subject>/<clip>.f32: float32 CHW (u, v, os) un-normalised") : nullptr;
    j["class_names"] = list.class_names;
    j["read_report"] = list.report.summary();
    // Every annotation the reader repaired (also per clip in manifest.csv's `repairs`), and its warnings.
    nlohmann::ordered_json repairs = nlohmann::ordered_json::array();
    for (auto& s : list.samples)
      for (auto& r : s.repairs)
        repairs.push_back({{"dataset", s.dataset}, {"subject", s.subject}, {"clip", s.clip}, {"kind", r.kind},
                           {"changed", r.changed}, {"text", r.text}});
    j["repairs"] = repairs;
    j["read_warnings"] = list.report.warnings;
    write_file_atomic(rep.manifest_json, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }

  std::vector<const Sample*> todo;
  size_t n = list.samples.size();
  if (o.limit > 0) n = std::min(n, size_t(o.limit));
  rep.total = int(n);
  for (size_t i = 0; i < n; ++i) {
    if (done.count(cache_relative_path(list.samples[i]))) ++rep.already_done;
    else todo.push_back(&list.samples[i]);
  }

  std::ofstream manifest(rep.manifest_csv, std::ios::app | std::ios::binary);
  std::mutex mu;
  std::atomic<size_t> next{0};
  size_t finished = 0;
  auto started = std::chrono::steady_clock::now();
  // Redrawn at most 4 times a second on a terminal; one line per 10 % otherwise (logs).
  bool tty = isatty(fileno(stderr));
  double last_draw = -1;
  size_t last_decile = size_t(-1);
  auto progress = [&](bool final) {
    if (!o.progress) return;
    double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!final && tty && now - last_draw < 0.25 && finished != todo.size()) return;
    size_t decile = todo.empty() ? 10 : finished * 10 / todo.size();
    if (!tty && decile == last_decile && finished != 0 && last_draw >= 0) return;
    last_draw = now, last_decile = decile;
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    double rate = el > 0 ? finished / el : 0;
    double eta = rate > 0 ? (todo.size() - finished) / rate : 0;
    const int W = 30;
    int fill = todo.empty() ? W : int(W * finished / todo.size());
    std::fprintf(stderr, "%sprepare [%s%s] %zu/%zu  %.2f clips/s  ETA %s  (%d done before, %d failed)%s",
                 tty ? "\r" : "", std::string(fill, '#').c_str(), std::string(W - fill, '.').c_str(), finished, todo.size(), rate,
                 hms(eta).c_str(), rep.already_done, rep.failed, (final || !tty) ? "\n" : "");
    std::fflush(stderr);
  };
  progress(false);
  // SIGINT / SIGTERM: no new clip is started; the clips being computed are abandoned (not recorded,
  // so a rerun computes them again), the manifest keeps every clip finished before.
  StopOnSignal stop_guard;
  auto worker = [&] {
    for (size_t i; !stop_requested() && (i = next++) < todo.size();) {
      ClipResult r = process_clip(*todo[i], o, boxes);
      std::lock_guard<std::mutex> g(mu);
      if (stop_requested()) return;
      ++finished;
      if (r.ok) {
        manifest << csv_line(r.row);
        manifest.flush();
        ++rep.computed;
      } else {
        ++rep.failed;
        rep.warnings.push_back(r.warning);
        if (o.progress) std::fprintf(stderr, "\nwarning: %s\n", r.warning.c_str());
      }
      progress(false);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::min<int>(threads, std::max<size_t>(1, todo.size())); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  progress(true);
  if (int sig = stop_signal()) {
    manifest.close();
    throw Interrupted(sig, "interrupted by " + std::string(signal_name(sig)) + ": the clips in progress were abandoned, " +
                               std::to_string(rep.already_done + rep.computed) + " of " + std::to_string(rep.total) +
                               " clips are in the cache " + o.out_dir + "; rerun the same command to resume");
  }

  // The workers appended rows in the order they finished; the manifest is rewritten in the order the
  // dataset lists its clips (rows of clips it no longer lists last, as they were), so the same data
  // gives the same manifest, and the same training run, whatever the thread count.
  manifest.close();
  {
    std::map<std::string, size_t> position;
    for (size_t i = 0; i < list.samples.size(); ++i) position.emplace(cache_relative_path(list.samples[i]), i);
    Table t = parse_csv(read_file_bytes(rep.manifest_csv), rep.manifest_csv);
    if (!t.empty()) {
      auto rank = [&](const std::vector<std::string>& row) {
        auto it = row.size() > 9 ? position.find(row[9]) : position.end();
        return it == position.end() ? list.samples.size() : it->second;
      };
      std::stable_sort(t.begin() + 1, t.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
      std::string text;
      for (auto& r : t) text += csv_line(r);
      write_file_atomic(rep.manifest_csv, text);
    }
  }

  // Contact sheet of the face crops (onset frames) of the first clips, for checking by eye.
  if (o.contact_tiles > 0 && n > 0) {
    std::vector<img::Image> tiles;
    for (size_t i = 0; i < n && (int)tiles.size() < o.contact_tiles; ++i) {
      const Sample& s = list.samples[i];
      try {
        img::Image on = img::load(s.onset_path);
        std::string why;
        FaceBox b = clip_box(s, on, o, boxes, why);
        if (b.empty()) continue;
        tiles.push_back(to_crop(on, b, 64, o.crop_for(s.dataset)));
      } catch (const std::exception&) {
        continue;  // already reported above
      }
    }
    if (!tiles.empty()) {
      rep.contact_sheet = (fs::path(o.out_dir) / "contact_sheet.png").string();
      save_png_atomic(rep.contact_sheet, contact_sheet(tiles, 8, 64));
    }
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace ahmsa::data
