#include "train/data/datasets.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace ahmsa::data {

// ---------------------------------------------------------------- protocols

Protocol parse_protocol(const std::string& name) {
  std::string n = normalise_header(name);
  if (n == "composite3" || n == "composite" || n == "megc2019" || n == "3class" || n == "3") return Protocol::Composite3;
  if (n == "casme25" || n == "casme2") return Protocol::Casme2_5;
  if (n == "casme33") return Protocol::Casme3_3;
  if (n == "casme34") return Protocol::Casme3_4;
  if (n == "casme37") return Protocol::Casme3_7;
  throw DataError("unknown protocol '" + name + "' (composite3, casme2-5, casme3-3, casme3-4, casme3-7)");
}

std::string protocol_name(Protocol p) {
  switch (p) {
    case Protocol::Composite3: return "composite3";
    case Protocol::Casme2_5: return "casme2-5";
    case Protocol::Casme3_3: return "casme3-3";
    case Protocol::Casme3_4: return "casme3-4";
    case Protocol::Casme3_7: return "casme3-7";
  }
  return "?";
}

std::vector<std::string> class_names(Protocol p) {
  switch (p) {
    case Protocol::Composite3:
    case Protocol::Casme3_3: return {"negative", "positive", "surprise"};
    case Protocol::Casme3_4: return {"negative", "positive", "surprise", "others"};
    case Protocol::Casme2_5: return {"happiness", "surprise", "disgust", "repression", "others"};
    case Protocol::Casme3_7: return {"anger", "disgust", "fear", "happy", "others", "sad", "surprise"};
  }
  return {};
}

static std::string word(const std::string& s) {
  std::string w;
  for (unsigned char c : s)
    if (std::isalpha(c)) w += (char)std::tolower(c);
  // Synonyms across the datasets' spellings.
  if (w == "happy" || w == "happiness" || w == "positive") return "happiness";
  if (w == "sad" || w == "sadness") return "sadness";
  if (w == "other") return "others";
  if (w == "angry") return "anger";
  if (w == "disgusted") return "disgust";
  if (w == "surprised") return "surprise";
  if (w == "fearful") return "fear";
  return w;
}

int map_emotion(Protocol p, const std::string& dataset, const std::string& emotion) {
  std::string w = word(emotion);
  auto in = [&](std::initializer_list<const char*> l) {
    for (auto s : l)
      if (w == s) return true;
    return false;
  };
  switch (p) {
    case Protocol::Composite3:
      if (w == "happiness") return 1;
      if (w == "surprise") return 2;
      if (dataset == "casme2") return in({"disgust", "repression"}) ? 0 : -1;
      if (dataset == "samm") return in({"anger", "contempt", "disgust", "fear", "sadness"}) ? 0 : -1;
      if (dataset == "smic") return w == "negative" ? 0 : -1;
      if (dataset == "casme3") return in({"disgust", "fear", "anger", "sadness"}) ? 0 : -1;
      return -1;
    case Protocol::Casme2_5:
      if (w == "happiness") return 0;
      if (w == "surprise") return 1;
      if (w == "disgust") return 2;
      if (w == "repression") return 3;
      if (w == "others") return 4;
      return -1;
    case Protocol::Casme3_3:
    case Protocol::Casme3_4:
      if (in({"disgust", "fear", "anger", "sadness", "negative"})) return 0;
      if (w == "happiness") return 1;
      if (w == "surprise") return 2;
      if (w == "others" && p == Protocol::Casme3_4) return 3;
      return -1;
    case Protocol::Casme3_7:
      if (w == "anger") return 0;
      if (w == "disgust") return 1;
      if (w == "fear") return 2;
      if (w == "happiness") return 3;
      if (w == "others") return 4;
      if (w == "sadness") return 5;
      if (w == "surprise") return 6;
      return -1;
  }
  return -1;
}

// ---------------------------------------------------------------- report

const char* onset_apex_fix_name(OnsetApexFix f) {
  return f == OnsetApexFix::Median ? "median" : f == OnsetApexFix::Middle ? "middle" : "none";
}

std::string Sample::repair_text() const {
  std::string t;
  for (auto& r : repairs)
    if (r.changed) t += (t.empty() ? "" : "; ") + r.text;
  return t;
}

void ReadReport::skip(const std::string& reason, const std::string& clip, const std::string& detail) {
  skipped[reason] += 1;
  warnings.push_back(clip + ": " + detail + ": skipped");
}

std::string ReadReport::summary() const {
  std::ostringstream s;
  int total = 0;
  for (auto& [k, v] : skipped) total += v;
  s << rows << " annotated clips seen: " << kept << " kept, " << total << " skipped, " << dropped_by_protocol
    << " not in the protocol's classes\n";
  for (auto& [k, v] : skipped) s << "  skipped " << v << ": " << k << "\n";
  for (auto& [k, v] : repaired) s << "  repaired " << v << " (kept): " << k << "\n";
  for (auto& [k, v] : flagged) s << "  kept as annotated " << v << ", with a warning: " << k << "\n";
  s << subjects_seen << " subjects seen: " << subjects_kept << " with a kept clip, " << subjects_without_clip
    << " without a usable clip";
  if (subjects_not_given) s << ", " << subjects_not_given << " of datasets not given";
  s << "\n";
  for (auto& n : notes) s << "  note: " << n << "\n";
  return s.str();
}

// ---------------------------------------------------------------- helpers

static std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Integer in a cell; false for "/", "", "n/a", 12.5, nan, inf and anything outside int (an onset of
// 3000000000 is not a frame number, not frame -2147483648).
static bool cell_int(const std::string& s, int& out) {
  std::string t = trim(s);
  if (t.empty()) return false;
  char* end = nullptr;
  double d = std::strtod(t.c_str(), &end);
  if (end == t.c_str() || *end != '\0' || !(d >= INT_MIN && d <= INT_MAX) || d != std::floor(d)) return false;
  out = (int)d;
  return true;
}

// The decimal number starting at s[i] (digits only); -1 when it does not fit an int.
static int digits_at(const std::string& s, size_t i) {
  long long n = 0;
  for (; i < s.size() && std::isdigit((unsigned char)s[i]); ++i)
    if ((n = n * 10 + (s[i] - '0')) > INT_MAX) return -1;
  return int(n);
}

static int first_int(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (std::isdigit((unsigned char)s[i])) return digits_at(s, i);
  return -1;
}

static std::string pad(const char* fmt, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, n);
  return buf;
}

std::string canonical_subject(const std::string& dataset, const std::string& raw) {
  int n = first_int(raw);
  if (n < 0) return dataset + "/" + trim(raw);
  if (dataset == "casme2") return "casme2/" + pad("sub%02d", n);
  if (dataset == "samm") return "samm/" + pad("%03d", n);
  if (dataset == "smic") return "smic/" + pad("s%02d", n);
  if (dataset == "casme3") return "casme3/" + pad("spNO.%d", n);
  return dataset + "/" + trim(raw);
}

std::string canonical_clip(const std::string& dataset, const std::string& clip) {
  std::string c = trim(clip);
  if (dataset == "smic" && c.size() > 1 && (c[0] == 's' || c[0] == 'S') && std::isdigit((unsigned char)c[1])) {
    size_t i = 1;
    while (i < c.size() && std::isdigit((unsigned char)c[i])) ++i;
    int n = digits_at(c, 1);
    if (n >= 0) return "s" + std::to_string(n) + c.substr(i);
  }
  return c;
}

static bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = (char)std::tolower((unsigned char)c);
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp";
}

std::map<int, std::string> list_frames(const std::string& dir) {
  std::map<int, std::string> frames;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || !is_image(it->path())) continue;
    std::string stem = it->path().stem().string();
    size_t us = stem.rfind('_');
    std::string tail = us == std::string::npos ? stem : stem.substr(us + 1);
    size_t e = tail.size(), b = e;
    while (b > 0 && std::isdigit((unsigned char)tail[b - 1])) --b;
    int n = b == e ? -1 : digits_at(tail, b);
    if (n < 0) continue;  // no frame number, or one too large to be one
    frames[n] = it->path().string();
  }
  return frames;
}

static bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// The first candidate folder that has a child directory whose name starts with `prefix`.
static std::string find_base(const std::string& root, const std::vector<std::string>& subs, bool (*looks_like)(const std::string&)) {
  if (!is_dir(root)) throw DataError("dataset root '" + root + "' is not a folder");
  for (auto& s : subs) {
    std::string cand = s.empty() ? root : (fs::path(root) / s).string();
    if (!is_dir(cand)) continue;
    std::error_code ec;
    for (auto it = fs::directory_iterator(cand, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->is_directory() && looks_like(it->path().filename().string())) return cand;
  }
  throw DataError("no subject folders found under '" + root + "'");
}

struct RawRead {
  SampleList list;
  // dataset|subject|canonical clip of clips skipped for defects -> (reason, warning line)
  std::map<std::string, std::pair<std::string, std::string>> skipped_keys;
  void mark(const std::string& key, const std::string& reason) {
    skipped_keys[key] = {reason, list.report.warnings.empty() ? "" : list.report.warnings.back()};
  }
};

static std::string key_of(const std::string& dataset, const std::string& subject, const std::string& clip) {
  return dataset + "|" + subject + "|" + canonical_clip(dataset, clip);
}

static std::string num(int n) { return std::to_string(n); }
static std::string interval(int a, int b) { return "[" + num(a) + ", " + num(b) + "]"; }

// The middle frame of [lo, hi] in file order: index (n-1)/2 of the frames there, and never `lo` itself
// when there are two or more (a two-frame clip gets its second frame, not a zero onset->apex motion).
// -1 when the folder has no frame in [lo, hi].
static int middle_frame(const std::map<int, std::string>& frames, int lo, int hi) {
  std::vector<int> in;
  for (auto it = frames.lower_bound(lo); it != frames.end() && it->first <= hi; ++it) in.push_back(it->first);
  if (in.empty()) return -1;
  size_t i = (in.size() - 1) / 2;
  if (in.size() >= 2 && in[i] == lo) i = 1;
  return in[i];
}

// Checks the frame numbers against the clip folder, repairs what DATASETS.md calls repairable (an
// offset not annotated, an inverted interval, an apex outside the interval; recorded in s.repairs)
// and fills the sample's paths; false (and a warning naming the clip) when the clip must be skipped.
// `offset_cell` is the offset as annotated, for the message.
static bool resolve_frames(Sample& s, const std::string& dir, const std::string& name, const std::string& offset_cell,
                           const ReadOptions& ro, ReadReport& rep) {
  if (!is_dir(dir)) {
    rep.skip("clip folder missing", name, "folder '" + dir + "' not found");
    return false;
  }
  auto frames = list_frames(dir);
  if (frames.empty()) {
    rep.skip("no frames", name, "no image files in '" + dir + "'");
    return false;
  }
  if (s.offset <= 0) {
    s.offset = frames.rbegin()->first;
    std::string text = (offset_cell.empty() ? std::string("offset not annotated") : "offset annotated as '" + offset_cell + "'") +
                       ": using the last frame " + num(s.offset) + " of the folder";
    if (s.dataset == "casme3")
      text += " (a CAS(ME)^3 folder holds the whole video: this is the video's last frame, not the clip's)";
    s.repairs.push_back({"offset not annotated", text});
  }
  if (s.onset > s.offset) {
    std::string what = "onset " + num(s.onset) + " > offset " + num(s.offset) + " (interval " + interval(s.onset, s.offset) +
                       " inverted)";
    if (ro.strict) {
      rep.skip("onset > offset", name, what + " (--strict)");
      return false;
    }
    std::swap(s.onset, s.offset);
    s.repairs.push_back({"onset > offset", what + ": reordered to " + interval(s.onset, s.offset)});
  }
  if (s.apex < s.onset || s.apex > s.offset) {
    std::string what = "apex " + num(s.apex) + " outside " + interval(s.onset, s.offset) +
                       (s.apex > s.offset ? " (after the offset)" : " (before the onset)");
    int mid = middle_frame(frames, s.onset, s.offset);
    if (ro.strict || mid < 0) {
      rep.skip("apex outside [onset, offset]", name, what + (ro.strict ? " (--strict)" : ", and no frame of the folder in it"));
      return false;
    }
    s.repairs.push_back({"apex outside [onset, offset]", what + ": using the middle frame " + num(mid)});
    s.apex = mid, s.apex_estimated = true;
  }
  auto on = frames.find(s.onset), ap = frames.find(s.apex), off = frames.find(s.offset);
  if (on == frames.end() || ap == frames.end()) {
    rep.skip("missing frames", name, "frame " + num(on == frames.end() ? s.onset : s.apex) + " not in '" + dir + "'");
    return false;
  }
  s.onset_path = on->second, s.apex_path = ap->second;
  s.offset_path = off == frames.end() ? "" : off->second;
  return true;
}

// A clip whose apex is its onset has no onset->apex motion: flagged, or given another apex by `fix`
// (`median`: the dataset's median apex - onset, in frames; snapped to the nearest frame of the folder
// in (onset, offset]).
static void fix_onset_apex(Sample& s, const std::string& dir, OnsetApexFix fix, int median) {
  std::string what = "onset = apex = " + num(s.onset) + " (the onset->apex flow is zero)";
  if (fix == OnsetApexFix::None) {
    s.repairs.push_back({"onset = apex", what + ": kept as annotated (--fix-onset-apex median|middle takes another apex)", false});
    return;
  }
  auto frames = list_frames(dir);
  int target = fix == OnsetApexFix::Middle ? middle_frame(frames, s.onset, s.offset) : s.onset + median;
  int best = -1;
  for (auto it = frames.upper_bound(s.onset); it != frames.end() && it->first <= s.offset; ++it)
    if (best < 0 || std::abs(it->first - target) < std::abs(best - target)) best = it->first;
  if (median < 1 && fix == OnsetApexFix::Median) best = -1;
  if (best < 0) {
    s.repairs.push_back({"onset = apex", what + ": kept as annotated (no later frame in " + interval(s.onset, s.offset) +
                                             (median < 1 && fix == OnsetApexFix::Median ? ", no median apex offset" : "") + ")",
                         false});
    return;
  }
  std::string how = fix == OnsetApexFix::Middle ? "the middle frame " + num(best)
                                                : "onset + the dataset's median apex offset " + num(median) + " = " + num(best);
  if (fix == OnsetApexFix::Median && best != s.onset + median) how += " (the nearest frame in the folder)";
  s.repairs.push_back({"onset = apex", what + ": using " + how});
  s.apex = best, s.apex_path = frames[best], s.apex_estimated = true;
}

// The repairs of a kept clip as warnings and counts.
static void report_repairs(const Sample& s, const std::string& where, ReadReport& rep) {
  for (auto& r : s.repairs) {
    (r.changed ? rep.repaired : rep.flagged)[r.kind] += 1;
    rep.warnings.push_back(where + ": " + r.text);
    if (r.changed) rep.repair_lines.push_back(rep.warnings.back());
  }
}

// Shared by the readers: the subject counts, and a warning for each subject whose every clip was skipped.
static void count_subjects(const std::set<std::string>& seen, const std::vector<Sample>& samples, ReadReport& rep) {
  std::set<std::string> used;
  for (auto& s : samples) used.insert(s.subject);
  rep.subjects_seen = int(seen.size());
  for (auto& sub : seen)
    if (used.count(sub)) ++rep.subjects_kept;
    else {
      ++rep.subjects_without_clip;
      rep.warnings.push_back(sub + ": no usable clip for this subject");
    }
}

struct SheetColumns {
  int subject = -1, filename = -1, onset = -1, apex = -1, offset = -1, emotion = -1;
};

static SheetColumns sheet_columns(const Table& t, int& header_row, const std::string& path) {
  header_row = find_header_row(t, {"subject", "filename"});
  if (header_row < 0) throw DataError("annotation sheet '" + path + "': no header row with Subject and Filename");
  auto& h = t[header_row];
  SheetColumns c;
  c.subject = find_column(h, {"subject"});
  c.filename = find_column(h, {"filename"});
  c.onset = find_column(h, {"onsetframe", "onset"});
  c.apex = find_column(h, {"apexframe", "apex", "apexframe1"});
  c.offset = find_column(h, {"offsetframe", "offset"});
  c.emotion = find_column(h, {"estimatedemotion", "emotion"});
  if (c.onset < 0 || c.apex < 0 || c.emotion < 0)
    throw DataError("annotation sheet '" + path + "': header row " + std::to_string(header_row + 1) +
                    " lacks onset/apex/emotion columns");
  return c;
}

static std::string cell(const std::vector<std::string>& row, int c) {
  return c >= 0 && c < (int)row.size() ? trim(row[c]) : "";
}

static bool looks_casme2(const std::string& n) { return n.rfind("sub", 0) == 0; }
static bool looks_samm(const std::string& n) { return !n.empty() && std::isdigit((unsigned char)n[0]); }
static bool looks_smic(const std::string& n) { return n.size() > 1 && n[0] == 's' && std::isdigit((unsigned char)n[1]); }
static bool looks_casme3(const std::string& n) { return n.rfind("spNO", 0) == 0; }

// One reader for the three sheet-driven datasets; `keep_all` keeps clips the protocol drops (label -1).
static RawRead read_sheet_dataset(const std::string& dataset, const std::string& root, const std::string& annotations,
                                  Protocol p, bool keep_all, const ReadOptions& ro) {
  RawRead out;
  auto& rep = out.list.report;
  std::string base;
  if (dataset == "casme2") base = find_base(root, {"", "Cropped", "CASME2_RAW_selected", "CASME2_RAW"}, looks_casme2);
  else if (dataset == "samm") base = find_base(root, {"", "SAMM"}, looks_samm);
  else base = find_base(root, {"", "part_A", "data"}, looks_casme3);
  out.list.bases[dataset] = base;
  out.list.read = ro;
  Table t = read_table(annotations);
  int hr = 0;
  SheetColumns c = sheet_columns(t, hr, annotations);
  std::set<std::string> seen_keys, seen_subjects;
  std::vector<std::pair<std::string, std::string>> where_dir;  // of each kept sample: message prefix, clip folder
  std::vector<int> apex_offsets;  // apex - onset of every row with onset < apex <= offset: the median's sample
  for (size_t r = hr + 1; r < t.size(); ++r) {
    auto& row = t[r];
    std::string subj_raw = cell(row, c.subject), file = cell(row, c.filename);
    if (blank_row(row) || (subj_raw.empty() && file.empty())) continue;  // blank line, or a note below the table
    ++rep.rows;
    Sample s;
    s.dataset = dataset;
    s.subject = canonical_subject(dataset, subj_raw);
    s.emotion = cell(row, c.emotion);
    std::string where = dataset + " " + s.subject + "/" + file + " (sheet row " + std::to_string(r + 1) + ")";
    if (subj_raw.empty() || file.empty()) {
      rep.skip("incomplete row", where, "subject or filename empty");
      continue;
    }
    seen_subjects.insert(s.subject);
    if (!cell_int(cell(row, c.onset), s.onset)) {
      rep.skip("missing onset", where, "onset '" + cell(row, c.onset) + "' is not a frame number");
      continue;
    }
    s.clip = dataset == "casme3" ? file + "_" + std::to_string(s.onset) : file;  // named by the onset as annotated
    where = dataset + " " + s.subject + "/" + s.clip + " (sheet row " + std::to_string(r + 1) + ")";
    if (!cell_int(cell(row, c.apex), s.apex)) {
      rep.skip("missing apex", where, "apex '" + cell(row, c.apex) + "' is not a frame number");
      out.mark(key_of(dataset, s.subject, s.clip), "missing apex");
      continue;
    }
    std::string offset_cell = cell(row, c.offset);
    if (!cell_int(offset_cell, s.offset) || s.offset <= 0) s.offset = -1;
    std::string key = key_of(dataset, s.subject, s.clip);
    if (!seen_keys.insert(key).second) {
      rep.skip("duplicate clip", where, "the same clip appears again on sheet row " + std::to_string(r + 1));
      continue;
    }
    if (s.onset < s.apex && s.apex <= s.offset) apex_offsets.push_back(s.apex - s.onset);
    s.label = map_emotion(p, dataset, s.emotion);
    if (s.label < 0 && !keep_all) {
      ++rep.dropped_by_protocol;
      continue;
    }
    std::string dir;
    std::string sub_dir = s.subject.substr(s.subject.find('/') + 1);
    if (dataset == "casme3") {
      dir = (fs::path(base) / sub_dir / file / "color").string();
      if (!is_dir(dir)) dir = (fs::path(base) / sub_dir / file).string();
    } else dir = (fs::path(base) / sub_dir / file).string();
    auto skipped_before = rep.skipped;
    if (!resolve_frames(s, dir, where, offset_cell, ro, rep)) {
      std::string reason;
      for (auto& [k, v] : rep.skipped)
        if (skipped_before[k] != v) reason = k;
      out.mark(key, reason);
      continue;
    }
    out.list.samples.push_back(s);
    where_dir.emplace_back(where, dir);
  }
  // Onset = apex: needs the whole sheet for the median apex offset (lower median, in frames).
  int median = 0;
  if (!apex_offsets.empty()) {
    std::sort(apex_offsets.begin(), apex_offsets.end());
    median = apex_offsets[(apex_offsets.size() - 1) / 2];
  }
  for (size_t i = 0; i < out.list.samples.size(); ++i) {
    Sample& s = out.list.samples[i];
    if (s.apex == s.onset) fix_onset_apex(s, where_dir[i].second, ro.onset_apex, median);
    report_repairs(s, where_dir[i].first, rep);
  }
  if (ro.onset_apex == OnsetApexFix::Median)
    rep.notes.push_back(dataset + ": median apex offset " + num(median) + " frames (over " + num(int(apex_offsets.size())) +
                        " sheet rows with onset < apex <= offset), for --fix-onset-apex median");
  rep.kept = int(out.list.samples.size());
  count_subjects(seen_subjects, out.list.samples, rep);
  out.list.class_names = class_names(p);
  return out;
}

SampleList read_casme2(const std::string& root, const std::string& annotations, Protocol p, const ReadOptions& ro) {
  return read_sheet_dataset("casme2", root, annotations, p, false, ro).list;
}
SampleList read_samm(const std::string& root, const std::string& annotations, Protocol p, const ReadOptions& ro) {
  return read_sheet_dataset("samm", root, annotations, p, false, ro).list;
}
SampleList read_casme3(const std::string& root, const std::string& annotations, Protocol p, const ReadOptions& ro) {
  return read_sheet_dataset("casme3", root, annotations, p, false, ro).list;
}

static RawRead read_smic_raw(const std::string& root, Protocol p, bool keep_all) {
  RawRead out;
  auto& rep = out.list.report;
  std::string base = find_base(root, {"", "HS", "SMIC-HS", "SMIC_all_raw/HS"}, looks_smic);
  out.list.bases["smic"] = base;
  rep.notes.push_back("SMIC has no apex annotation: apex = middle frame between the first and last frame of each clip");
  std::vector<fs::path> subjects;
  std::error_code ec;
  for (auto it = fs::directory_iterator(base, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_directory() && looks_smic(it->path().filename().string())) subjects.push_back(it->path());
  std::sort(subjects.begin(), subjects.end());
  std::set<std::string> seen_subjects, seen_keys;
  for (auto& sp : subjects) {
    std::string subject = canonical_subject("smic", sp.filename().string());
    seen_subjects.insert(subject);
    fs::path micro = sp / "micro";
    if (!is_dir(micro.string())) {
      rep.warnings.push_back("smic " + subject + ": no micro/ folder");
      continue;
    }
    std::vector<fs::path> clips;
    for (auto& emo : {"negative", "positive", "surprise"}) {
      fs::path ed = micro / emo;
      for (auto it = fs::directory_iterator(ed, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (it->is_directory()) clips.push_back(it->path());
      ec.clear();
    }
    std::sort(clips.begin(), clips.end());
    for (auto& cp : clips) {
      ++rep.rows;
      Sample s;
      s.dataset = "smic";
      s.subject = subject;
      s.clip = cp.filename().string();
      s.emotion = cp.parent_path().filename().string();
      s.apex_estimated = true;
      std::string where = "smic " + subject + "/" + s.clip;
      if (!seen_keys.insert(key_of("smic", subject, s.clip)).second) {
        rep.skip("duplicate clip", where, "clip name appears in two emotion folders");
        out.mark(key_of("smic", subject, s.clip), "duplicate clip");
        continue;
      }
      s.label = map_emotion(p, "smic", s.emotion);
      if (s.label < 0 && !keep_all) {
        ++rep.dropped_by_protocol;
        continue;
      }
      auto frames = list_frames(cp.string());
      if (frames.size() < 2) {
        rep.skip("no frames", where, "fewer than 2 frames in '" + cp.string() + "'");
        out.mark(key_of("smic", subject, s.clip), "no frames");
        continue;
      }
      // The middle frame in file order (frame numbers are timestamps-like, not always contiguous).
      s.onset = frames.begin()->first, s.offset = frames.rbegin()->first, s.apex = middle_frame(frames, s.onset, s.offset);
      s.onset_path = frames[s.onset], s.apex_path = frames[s.apex], s.offset_path = frames[s.offset];
      out.list.samples.push_back(s);
    }
  }
  rep.kept = int(out.list.samples.size());
  count_subjects(seen_subjects, out.list.samples, rep);
  out.list.class_names = class_names(p);
  return out;
}

SampleList read_smic(const std::string& root, Protocol p) { return read_smic_raw(root, p, false).list; }

// ---------------------------------------------------------------- composite

std::vector<CompositeRow> read_composite_csv(const std::string& path, ReadReport* report) {
  Table t = read_csv(path);
  std::vector<CompositeRow> rows;
  bool first = true;  // the first non-blank line may be a header
  for (size_t r = 0; r < t.size(); ++r) {
    auto& row = t[r];
    if (blank_row(row)) continue;  // ",,," lines (combined_3class_gt-2.csv has one after every row)
    bool was_first = first;
    first = false;
    int label = -1;
    if (row.size() < 4 || !cell_int(row[3], label)) {
      if (was_first) continue;  // a header line
      if (report) {
        ++report->rows;
        report->skip("bad composite row", path + " line " + std::to_string(r + 1), "expected db,subject,clip,label");
      }
      continue;
    }
    std::string db = normalise_header(row[0]);
    if (db == "casmeii") db = "casme2";
    if (db == "smichs") db = "smic";
    CompositeRow c;
    c.dataset = db, c.subject = canonical_subject(db, row[1]), c.clip = trim(row[2]), c.label = label;
    c.line = int(r + 1);
    if (label < 0 || label > 2) {
      if (report) {
        ++report->rows;
        report->skip("bad composite row", db + " " + c.subject + "/" + c.clip, "label " + row[3] + " not in 0..2");
      }
      continue;
    }
    rows.push_back(c);
  }
  return rows;
}

SampleList read_composite(const CompositeSources& src, const ReadOptions& ro) {
  SampleList out;
  out.class_names = class_names(Protocol::Composite3);
  out.read = ro;
  auto& rep = out.report;
  std::map<std::string, Sample> index;
  std::map<std::string, std::pair<std::string, std::string>> skipped_keys;
  std::set<std::string> available;
  // Only the defects of clips the composite CSV lists matter here; they are reported per row below.
  auto absorb = [&](RawRead rr, const std::string& db) {
    available.insert(db);
    for (auto& n : rr.list.report.notes) rep.notes.push_back(n);
    for (auto& s : rr.list.samples) index[key_of(s.dataset, s.subject, s.clip)] = s;
    skipped_keys.insert(rr.skipped_keys.begin(), rr.skipped_keys.end());
    out.bases.insert(rr.list.bases.begin(), rr.list.bases.end());
  };
  if (!src.casme2_root.empty())
    absorb(read_sheet_dataset("casme2", src.casme2_root, src.casme2_annotations, Protocol::Composite3, true, ro), "casme2");
  if (!src.samm_root.empty())
    absorb(read_sheet_dataset("samm", src.samm_root, src.samm_annotations, Protocol::Composite3, true, ro), "samm");
  if (!src.smic_root.empty()) absorb(read_smic_raw(src.smic_root, Protocol::Composite3, true), "smic");
  auto rows = read_composite_csv(src.composite_csv, &rep);
  std::set<std::string> seen, subjects;
  for (auto& r : rows) {
    ++rep.rows;
    std::string where = r.dataset + " " + r.subject + "/" + r.clip;
    std::string key = key_of(r.dataset, r.subject, r.clip);
    subjects.insert(r.subject);
    if (!available.count(r.dataset)) {
      rep.skipped["dataset not given"] += 1;  // one summary line, not a warning per clip
      continue;
    }
    if (!seen.insert(key).second) {
      rep.skip("duplicate clip", where, "listed twice in the composite CSV");
      continue;
    }
    if (auto sk = skipped_keys.find(key); sk != skipped_keys.end()) {
      rep.skipped[sk->second.first] += 1;
      rep.warnings.push_back(sk->second.second);
      continue;
    }
    auto it = index.find(key);
    if (it == index.end()) {
      rep.skip("not found in the dataset", where, "no such clip in the " + r.dataset + " annotations/folders");
      continue;
    }
    Sample s = it->second;
    int sheet_label = s.label;
    s.label = r.label;
    if (sheet_label >= 0 && sheet_label != r.label)
      rep.warnings.push_back(where + ": composite CSV says " + out.class_names[r.label] + " but the emotion '" + s.emotion +
                             "' maps to " + out.class_names[sheet_label] + "; using the CSV label");
    report_repairs(s, where, rep);
    out.samples.push_back(s);
  }
  std::sort(rep.notes.begin(), rep.notes.end());
  rep.notes.erase(std::unique(rep.notes.begin(), rep.notes.end()), rep.notes.end());
  rep.kept = int(out.samples.size());
  std::set<std::string> given;
  for (auto& sub : subjects)
    if (available.count(sub.substr(0, sub.find('/')))) given.insert(sub);
    else ++rep.subjects_not_given;
  count_subjects(given, out.samples, rep);
  rep.subjects_seen += rep.subjects_not_given;
  return out;
}

}  // namespace ahmsa::data
