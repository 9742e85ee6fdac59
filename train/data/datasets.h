// Readers for the micro-expression datasets as their owners receive them (layouts and defects in
// shared/spec/DATASETS.md). Each reader returns one list of samples and a report of what it skipped.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "train/data/table.h"

namespace ahmsa::data {

// Class protocols. The composite/3-class protocols share ids 0 = negative, 1 = positive, 2 = surprise.
enum class Protocol {
  Composite3,  // MEGC2019: negative / positive / surprise (any dataset)
  Casme2_5,    // CASME II: happiness, surprise, disgust, repression, others (fear and sadness dropped)
  Casme3_3,    // CAS(ME)^3: negative / positive / surprise (others dropped)
  Casme3_4,    // CAS(ME)^3: negative / positive / surprise / others
  Casme3_7,    // CAS(ME)^3: the emotion column as it is (7 words)
};
Protocol parse_protocol(const std::string& name);  // "composite3", "casme2-5", "casme3-3", "casme3-4", "casme3-7"
std::string protocol_name(Protocol p);
std::vector<std::string> class_names(Protocol p);
// Class id of an emotion word of `dataset` ("casme2", "samm", "smic", "casme3") under `p`; -1 when the
// protocol drops it. Words are matched case-insensitively, ignoring spaces ("Happiness", "happy").
int map_emotion(Protocol p, const std::string& dataset, const std::string& emotion);

// One annotation defect of a kept clip: what was annotated and what is used instead.
struct Repair {
  std::string kind;  // "apex outside [onset, offset]", "onset > offset", "offset not annotated", "onset = apex"
  std::string text;  // "apex 1143 after offset 1134: using the middle frame 1127"
  bool changed = true;  // false: kept as annotated with a warning only (onset = apex without a remedy)
};

struct Sample {
  std::string dataset;  // "casme2", "samm", "smic", "casme3"
  std::string subject;  // unique across datasets: "casme2/sub01", "samm/006", "smic/s01", "casme3/spNO.1"
  std::string clip;     // "EP02_01f", "006_1_2", "s1_ne_01", "a_175" (CAS(ME)^3: video letter + onset)
  int onset = -1, apex = -1, offset = -1;  // frame numbers as the dataset counts them
  std::string onset_path, apex_path, offset_path;
  std::string emotion;  // the dataset's own word
  int label = -1;       // class id under the protocol the list was read with
  bool apex_estimated = false;  // apex not the annotated one: SMIC's middle frame, or a repaired apex
  std::vector<Repair> repairs;  // annotation defects repaired (or flagged) for this clip, in order
  std::string repair_text() const;  // the changed ones as "text; text" (the manifest's `repairs` field)
};

// What a reader does with a clip whose annotation is defective but repairable (DATASETS.md: a clip a
// protocol lists is repaired rather than dropped, so results stay comparable with published ones).
enum class OnsetApexFix {
  None,    // keep apex = onset, with a warning (the onset->apex flow is zero)
  Median,  // apex = onset + the dataset's median (apex - onset) over its clips with onset < apex <= offset
  Middle,  // apex = the clip's middle frame
};
const char* onset_apex_fix_name(OnsetApexFix f);  // "none", "median", "middle"
struct ReadOptions {
  // false: an apex outside [onset, offset] becomes the clip's middle frame, an inverted interval is
  // reordered (each with a warning and recorded); true: those clips are dropped, as before.
  bool strict = false;
  OnsetApexFix onset_apex = OnsetApexFix::None;
};

// What a reader kept, repaired and skipped, and why. Every skipped or repaired clip has a warning
// line naming it. Clips and subjects are counted apart, and each count adds up:
//   rows = kept + sum(skipped) + dropped_by_protocol
//   subjects_seen = subjects_kept + subjects_without_clip + subjects_not_given
struct ReadReport {
  int rows = 0;                       // annotation rows / clips seen (blank rows are not rows)
  int kept = 0;                       // clips in the list
  std::map<std::string, int> skipped; // clips: reason -> count
  int dropped_by_protocol = 0;        // clips whose emotion the protocol does not use (not defects: no warning)
  std::map<std::string, int> repaired;  // kept clips: defect repaired -> count
  std::map<std::string, int> flagged;   // kept clips as annotated, with a warning -> count ("onset = apex")
  int subjects_seen = 0, subjects_kept = 0, subjects_without_clip = 0;
  int subjects_not_given = 0;         // composite: subjects of a dataset whose root was not given
  std::vector<std::string> warnings;  // "casme2 sub01/EP02_01f: apex '/' is missing: skipped"
  std::vector<std::string> repair_lines;  // those of the warnings that say what was repaired
  std::vector<std::string> notes;     // statements about conventions used (SMIC apex)
  void skip(const std::string& reason, const std::string& clip, const std::string& detail);
  std::string summary() const;  // multi-line, for the console and the manifest
};

struct SampleList {
  std::vector<Sample> samples;
  std::vector<std::string> class_names;
  ReadReport report;
  ReadOptions read;  // what the reader was asked to do with defects (part of a cache's signature)
  // dataset -> the folder holding its subject folders, as the reader found it under the root given
  // ("/data/CASME2/Cropped"): what `prepare` decides each dataset's crop mode by.
  std::map<std::string, std::string> bases;
};

// CASME II. `root` is the folder holding sub01/.. (raw release) or Cropped/sub01/.. (or the Cropped
// folder itself); frames img46.jpg or reg_img46.jpg. `annotations`: CASME2-coding-*.xlsx or its CSV.
SampleList read_casme2(const std::string& root, const std::string& annotations, Protocol p = Protocol::Composite3,
                       const ReadOptions& ro = {});
// SAMM: root holds 006/006_1_2/006_05562.jpg (or SAMM/006/..); sheet SAMM_Micro_FACS_Codes_v2.xlsx or CSV.
SampleList read_samm(const std::string& root, const std::string& annotations, Protocol p = Protocol::Composite3,
                     const ReadOptions& ro = {});
// SMIC-HS: root holds s1/micro/{negative,positive,surprise}/s1_ne_01/*.bmp (or HS/s1/..). Labels come
// from the folder names; onset/offset = first/last frame, apex = the middle frame (stated in notes).
SampleList read_smic(const std::string& root, Protocol p = Protocol::Composite3);
// CAS(ME)^3 Part A: root holds spNO.1/a/color/175.jpg; sheet cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx.
SampleList read_casme3(const std::string& root, const std::string& annotations, Protocol p = Protocol::Casme3_3,
                       const ReadOptions& ro = {});

// MEGC2019 composite: the ground-truth CSV (rows db,subject,clip,label) defines the list and the
// labels; the three dataset readers supply the frames. An empty root skips that dataset (counted).
struct CompositeSources {
  std::string composite_csv;
  std::string casme2_root, casme2_annotations;
  std::string samm_root, samm_annotations;
  std::string smic_root;
};
SampleList read_composite(const CompositeSources& src, const ReadOptions& ro = {});

// Composite CSV rows, canonicalised: dataset, subject as in our Sample ids ("casme2/sub01"), clip, label.
struct CompositeRow {
  std::string dataset, subject, clip;
  int label = -1;
  int line = 0;  // 1-based row of the CSV, for messages
};
std::vector<CompositeRow> read_composite_csv(const std::string& path, ReadReport* report = nullptr);
// Canonical subject id for a dataset from any of its spellings ("1", "01", "sub01" -> "casme2/sub01";
// "6", "006" -> "samm/006"; "s1", "s01" -> "smic/s01"; "spNO.1" -> "casme3/spNO.1").
std::string canonical_subject(const std::string& dataset, const std::string& raw);
// Canonical clip name for matching (SMIC "s01_ne_01" and "s1_ne_01" are the same clip).
std::string canonical_clip(const std::string& dataset, const std::string& clip);

// Frames of one clip folder: frame number -> file, numbers parsed as the integer after the last '_'
// or the last run of digits in the file name's stem (img46, reg_img46, 006_05562, image559740).
std::map<int, std::string> list_frames(const std::string& dir);

}  // namespace ahmsa::data
