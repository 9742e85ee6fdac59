// `ahmsa synth`: writes the synthetic corpus (CASME II layout + CSV coding sheet). See docs/DATA.md.
#include <cstdio>
#include <sstream>

#include "tools/command.h"
#include "train/data/synth.h"

namespace {

int cmd_synth(const ahmsa::cli::Args& a) {
  using ahmsa::cli::option;
  using ahmsa::cli::option_double;
  using ahmsa::cli::option_int;
  using ahmsa::cli::option_u64;
  if (ahmsa::cli::has_flag(a, "--help")) {
    std::printf(
        "usage: ahmsa synth --out DIR [--subjects 20] [--clips-per-class 3] [--balance 1,1,1] [--seed 1]\n"
        "                   [--amplitude 1.0] [--distractors 1.0] [--size 128] [--frames 10,30]\n"
        "                   [--format jpg|png] [--faces DIR] [--threads N]\n"
        "Writes DIR/sub01/EP01_01/img{N}.jpg in the CASME II raw layout, DIR/CASME2-coding-synthetic.csv\n"
        "(read it with: ahmsa prepare --dataset casme2 --root DIR --annotations DIR/CASME2-coding-synthetic.csv),\n"
        "DIR/synth_landmarks.csv and DIR/synth_parameters.json. Classes: negative (disgust/repression),\n"
        "positive (happiness), surprise; --balance weighs them in that order. Deterministic for a seed.\n");
    return 0;
  }
  ahmsa::data::SynthOptions o;
  o.out_dir = option(a, "--out");
  if (o.out_dir.empty()) throw std::invalid_argument("--out DIR is required (ahmsa synth --help)");
  o.faces_dir = option(a, "--faces");
  o.subjects = option_int(a, "--subjects", 20);
  o.clips_per_class = option_int(a, "--clips-per-class", 3);
  o.seed = option_u64(a, "--seed", 1);
  o.amplitude = option_double(a, "--amplitude", 1.0);
  o.distractors = option_double(a, "--distractors", 1.0);
  o.size = option_int(a, "--size", 128);
  o.format = option(a, "--format", "jpg");
  o.threads = option_int(a, "--threads", 0);
  {
    std::stringstream ss(option(a, "--balance", "1,1,1"));
    std::string w;
    o.balance.clear();
    while (std::getline(ss, w, ',')) o.balance.push_back(std::stof(w));
  }
  {
    std::string fr = option(a, "--frames", "10,30");
    auto comma = fr.find(',');
    if (comma == std::string::npos) throw std::invalid_argument("--frames needs MIN,MAX");
    o.min_frames = std::stoi(fr.substr(0, comma)), o.max_frames = std::stoi(fr.substr(comma + 1));
  }
  auto rep = ahmsa::data::synthesize_corpus(o);
  int per_class[3] = {0, 0, 0};
  for (auto& c : rep.clips) per_class[c.cls]++;
  std::printf("synth: %d subjects, %zu clips (negative %d, positive %d, surprise %d) in %.1f s\n", o.subjects,
              rep.clips.size(), per_class[0], per_class[1], per_class[2], rep.seconds);
  std::printf("  frames:      %s/subNN/EPxx_yy/img{N}.%s\n  coding sheet: %s\n  landmarks:   %s\n", o.out_dir.c_str(),
              o.format.c_str(), rep.coding_csv.c_str(), rep.landmarks_csv.c_str());
  return 0;
}

}  // namespace

AHMSA_COMMAND("synth", "write the synthetic micro-expression corpus (CASME II layout)", cmd_synth);
