#include "train/data/flow_dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "flow/image.h"
#include "train/data/datasets.h"
#include "train/data/table.h"

namespace fs = std::filesystem;

namespace ahmsa::data {

std::vector<float> load_uvos_png(const std::string& path, int& size) {
  img::Image im = img::load(path);
  // A grey image is not a flow image (it would become u = v = os without a word): refuse it.
  // RGBA is read as RGB (alpha ignored).
  if (im.channels < 3)
    throw DataError("flow image '" + path + "' has " + std::to_string(im.channels) + " channel" +
                    (im.channels == 1 ? " (grey)" : "s (grey + alpha)") + ": a (u, v, os) flow image has 3 (R, G, B)");
  if (im.width != im.height)
    throw DataError("flow image '" + path + "' is " + std::to_string(im.width) + "x" + std::to_string(im.height) + ", not square");
  size = im.width;
  const int n = size * size;
  std::vector<float> x(size_t(3) * n);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) x[size_t(c) * n + i] = im.data[size_t(i) * im.channels + c] / 255.f;  // R,G,B = u,v,os
  return x;
}

// All samples must share one size. When they do not, name the files whose size differs from the
// most common one (not whichever came first in sorted order).
static void check_same_size(const std::vector<FlowSample>& samples, const std::vector<std::string>& files,
                            const std::string& where) {
  std::map<int, int> count;
  for (auto& s : samples) ++count[s.size];
  if (count.size() <= 1) return;
  int common = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  std::string odd;
  int n_odd = 0;
  for (size_t i = 0; i < samples.size(); ++i)
    if (samples[i].size != common && n_odd++ < 5)
      odd += (odd.empty() ? "" : ", ") + files[i] + " (" + std::to_string(samples[i].size) + " px)";
  throw DataError(where + ": " + std::to_string(n_odd) + " of " + std::to_string(samples.size()) + " flow images are not " +
                  std::to_string(common) + " px like the others: " + odd + (n_odd > 5 ? ", ..." : ""));
}

// A label cell: a small non-negative integer, or -1.
static int parse_label(const std::string& s) {
  if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::atoi(s.c_str());
}

// The string value of "key": "..." in our own manifest.json (flat, written by prepare).
static std::string json_string(const std::string& j, const std::string& key) {
  size_t p = j.find("\"" + key + "\": \"");
  if (p == std::string::npos) return "";
  p += key.size() + 5;
  std::string out;
  for (; p < j.size() && j[p] != '"'; ++p) {
    if (j[p] == '\\' && p + 1 < j.size()) {
      ++p;
      out += j[p] == 'n' ? '\n' : j[p];
    } else out += j[p];
  }
  return out;
}

static std::vector<std::string> json_string_list(const std::string& j, const std::string& key) {
  std::vector<std::string> out;
  size_t p = j.find("\"" + key + "\": [");
  if (p == std::string::npos) return out;
  size_t e = j.find(']', p);
  for (size_t q = j.find('"', p + key.size() + 4); q != std::string::npos && q < e; q = j.find('"', q + 1)) {
    size_t r = j.find('"', q + 1);
    out.push_back(j.substr(q + 1, r - q - 1));
    q = r;
  }
  return out;
}

FlowDataset load_flow_cache(const std::string& cache_dir) {
  fs::path mj = fs::path(cache_dir) / "manifest.json", mc = fs::path(cache_dir) / "manifest.csv";
  if (!fs::exists(mj) || !fs::exists(mc))
    throw DataError("'" + cache_dir + "' is not a flow cache (no manifest.json/manifest.csv; make one with ahmsa prepare)");
  std::ifstream f(mj);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string j = ss.str();
  FlowDataset ds;
  ds.class_names = json_string_list(j, "class_names");
  // A torn last line (an interrupted prepare) may end inside a quoted field: cut_torn_line.
  Table t = parse_csv(cut_torn_line(read_file_bytes(mc.string())), mc.string());
  if (t.empty()) throw DataError("flow cache '" + cache_dir + "': empty manifest.csv");
  auto& h = t[0];
  int c_ds = find_column(h, {"dataset"}), c_sub = find_column(h, {"subject"}), c_clip = find_column(h, {"clip"}),
      c_label = find_column(h, {"label"}), c_file = find_column(h, {"file"});
  if (c_ds < 0 || c_sub < 0 || c_clip < 0 || c_label < 0 || c_file < 0)
    throw DataError("flow cache '" + cache_dir + "': manifest.csv lacks dataset/subject/clip/label/file columns");
  int missing = 0;
  std::set<std::string> seen;
  std::vector<std::string> paths;  // of each sample, for messages
  for (size_t r = 1; r < t.size(); ++r) {
    auto& row = t[r];
    if (row.size() != h.size()) continue;  // a torn line from an interrupted run
    if (!seen.insert(row[c_file]).second) continue;
    fs::path p = fs::path(cache_dir) / row[c_file];
    if (!fs::exists(p)) {
      std::fprintf(stderr, "warning: flow cache %s: %s listed but missing: skipped\n", cache_dir.c_str(), row[c_file].c_str());
      ++missing;
      continue;
    }
    FlowSample s;
    s.dataset = row[c_ds], s.subject = row[c_sub], s.clip = row[c_clip];
    s.label = parse_label(row[c_label]);
    if (s.label < 0 || (!ds.class_names.empty() && s.label >= (int)ds.class_names.size()))
      throw DataError("flow cache '" + cache_dir + "': clip " + s.subject + "/" + s.clip + " has label " + row[c_label] +
                      " outside the " + std::to_string(ds.class_names.size()) + " classes");
    s.x = load_uvos_png(p.string(), s.size);
    ds.samples.push_back(std::move(s));
    paths.push_back(p.string());
  }
  check_same_size(ds.samples, paths, "flow cache '" + cache_dir + "'");
  ds.source = "flow cache " + cache_dir + " (" + std::to_string(ds.samples.size()) + " clips" +
              (missing ? ", " + std::to_string(missing) + " missing" : std::string()) + "): " + json_string(j, "source") +
              "; " + json_string(j, "signature");
  return ds;
}

// ---------------------------------------------------------------- community PNG folders

static std::string lower(std::string s) {
  for (auto& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

struct PngFile {
  fs::path path;
  std::string stem;                     // lowercase
  std::vector<std::string> components;  // lowercase folder names under the root
  bool test_fold = false;               // under a u_test folder
};

// Does the file name end with the clip's name (at a '_' boundary), in the dataset's canonical form?
static bool stem_matches(const std::string& db, const std::string& stem, const std::string& clip_canon) {
  for (size_t p = 0; p != std::string::npos; p = stem.find('_', p + 1)) {
    std::string suffix = p == 0 ? stem : stem.substr(p + 1);
    if (p == 0 && lower(canonical_clip(db, stem)) == clip_canon) return true;
    if (p > 0 && lower(canonical_clip(db, suffix)) == clip_canon) return true;
  }
  return false;
}

static std::vector<std::string> subject_tokens(const std::string& db, const std::string& canonical) {
  std::string tail = canonical.substr(canonical.find('/') + 1);
  int n = -1;
  for (size_t i = 0; i < tail.size(); ++i)
    if (std::isdigit((unsigned char)tail[i])) { n = std::atoi(tail.c_str() + i); break; }
  std::vector<std::string> t = {lower(tail)};
  if (n >= 0) {
    char b[32];
    if (db == "casme2") std::snprintf(b, sizeof b, "sub%d", n), t.push_back(b);
    if (db == "samm") t.push_back(std::to_string(n));
    if (db == "smic") std::snprintf(b, sizeof b, "s%d", n), t.push_back(b);
  }
  return t;
}

FlowDataset load_flow_folder(const std::string& dir, const std::string& composite_csv) {
  if (!fs::is_directory(dir)) throw DataError("flow folder '" + dir + "' is not a folder");
  std::vector<PngFile> files;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || lower(it->path().extension().string()) != ".png") continue;
    PngFile f;
    f.path = it->path();
    f.stem = lower(it->path().stem().string());
    for (auto& c : fs::relative(it->path().parent_path(), dir)) {
      std::string s = lower(c.string());
      if (s != ".") f.components.push_back(s);
      if (s == "u_test") f.test_fold = true;
    }
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(), [](const PngFile& a, const PngFile& b) { return a.path < b.path; });
  if (files.empty()) throw DataError("flow folder '" + dir + "' holds no .png files");
  ReadReport rep;
  auto rows = read_composite_csv(composite_csv, &rep);
  FlowDataset ds;
  ds.class_names = class_names(Protocol::Composite3);
  int missing = 0, ambiguous = 0, label_disagree = 0;
  std::vector<std::string> paths;  // of each sample, for messages
  std::map<std::string, int> listed;  // clip -> the line that first lists it
  for (auto& r : rows) {                // a clip listed twice would be trained and scored twice
    std::string key = r.dataset + " " + r.subject + "/" + lower(canonical_clip(r.dataset, r.clip));
    auto [it, fresh] = listed.emplace(key, r.line);
    if (!fresh)
      throw DataError("'" + composite_csv + "' lists clip " + r.subject + "/" + r.clip +
                      " twice (lines " + std::to_string(it->second) + " and " + std::to_string(r.line) + ")");
  }
  for (auto& r : rows) {
    std::string canon = lower(canonical_clip(r.dataset, r.clip));
    std::vector<const PngFile*> cand;
    for (auto& f : files)
      if (stem_matches(r.dataset, f.stem, canon)) cand.push_back(&f);
    std::string where = r.dataset + " " + r.subject + "/" + r.clip;
    if (cand.empty()) {
      std::fprintf(stderr, "warning: %s: no flow image in %s: skipped\n", where.c_str(), dir.c_str());
      ++missing;
      continue;
    }
    // Several files: keep those naming the subject (a folder or the file-name prefix), then u_test ones.
    auto filter = [&](auto pred) {
      std::vector<const PngFile*> keep;
      for (auto* f : cand)
        if (pred(*f)) keep.push_back(f);
      if (!keep.empty()) cand = keep;
    };
    if (cand.size() > 1) {
      auto tokens = subject_tokens(r.dataset, r.subject);
      filter([&](const PngFile& f) {
        for (auto& t : tokens) {
          if (f.stem.rfind(t + "_", 0) == 0) return true;
          for (auto& c : f.components)
            if (c == t) return true;
        }
        return false;
      });
    }
    if (cand.size() > 1) filter([](const PngFile& f) { return f.test_fold; });
    if (cand.size() > 1) {
      std::set<std::string> stems;
      for (auto* f : cand) stems.insert(f->stem);
      if (stems.size() > 1) {
        std::fprintf(stderr, "warning: %s: %zu different flow images match (e.g. %s): skipped\n", where.c_str(), cand.size(),
                     cand[0]->path.string().c_str());
        ++ambiguous;
        continue;
      }
    }
    const PngFile& f = *cand[0];
    if (!f.components.empty()) {
      const std::string& parent = f.components.back();
      if (!parent.empty() && std::all_of(parent.begin(), parent.end(), ::isdigit) && std::atoi(parent.c_str()) != r.label) {
        std::fprintf(stderr, "warning: %s: folder label %s differs from the composite CSV label %d; using the CSV\n",
                     where.c_str(), parent.c_str(), r.label);
        ++label_disagree;
      }
    }
    FlowSample s;
    s.dataset = r.dataset, s.subject = r.subject, s.clip = r.clip, s.label = r.label;
    try {
      s.x = load_uvos_png(f.path.string(), s.size);
    } catch (const img::ImageError& e) {  // unreadable: skipped; grey or not square (DataError): stops
      std::fprintf(stderr, "warning: %s: %s: skipped\n", where.c_str(), e.what());
      ++missing;
      continue;
    }
    ds.samples.push_back(std::move(s));
    paths.push_back(f.path.string());
  }
  check_same_size(ds.samples, paths, "flow folder '" + dir + "'");
  for (auto& w : rep.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  ds.source = "flow folder " + dir + " with " + composite_csv + ": " + std::to_string(ds.samples.size()) + " of " +
              std::to_string(rows.size()) + " clips (" + std::to_string(missing) + " missing, " + std::to_string(ambiguous) +
              " ambiguous, " + std::to_string(label_disagree) + " folder labels overridden by the CSV); PNG R,G,B = u,v,os";
  return ds;
}

}  // namespace ahmsa::data
