// `ahmsa synth`: writes the synthetic corpus (CASME II layout + CSV coding sheet). See docs/DATA.md.
#include <cstdio>

#include "tools/command.h"
#include "train/data/synth.h"
#include "train/data/synth_flow.h"

namespace {

int cmd_synth(const ahmsa::cli::Args& a) {
  using namespace ahmsa;
  CLI::App app{"Writes DIR/sub01/EP01_01/img{N}.jpg in the CASME II raw layout, DIR/CASME2-coding-synthetic.csv\n"
               "(read it with: ahmsa prepare --dataset casme2 --root DIR --annotations DIR/CASME2-coding-synthetic.csv),\n"
               "DIR/synth_landmarks.csv and DIR/synth_parameters.json. Classes: negative (disgust/repression),\n"
               "positive (happiness), surprise; --balance weighs them in that order. Deterministic for a seed.",
               "ahmsa synth"};
  data::SynthOptions o;
  std::vector<int> frames = {o.min_frames, o.max_frames};
  app.add_option("--out", o.out_dir, "output folder")->required()->type_name("DIR");
  app.add_option("--subjects", o.subjects, "subjects")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--clips-per-class", o.clips_per_class, "clips per class and subject")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--balance", o.balance, "class weights negative,positive,surprise")
      ->delimiter(',')
      ->expected(3)
      ->type_name("W,W,W")
      ->default_str("1,1,1")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "corpus seed")->capture_default_str();
  app.add_option("--amplitude", o.amplitude, "expression amplitude")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--distractors", o.distractors, "head motion / blink distractors")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--size", o.size, "frame side in pixels")->capture_default_str()->check(CLI::Range(64, 4096));
  app.add_option("--frames", frames, "clip length range")->delimiter(',')->expected(2)->type_name("MIN,MAX")->default_str("10,30")
      ->check(CLI::Range(2, 100000));
  app.add_option("--format", o.format, "frame format")->capture_default_str()->check(cli::one_of({"jpg", "png"}))->type_name("jpg|png");
  app.add_option("--faces", o.faces_dir, "folder of face photographs (default: shared/data/faces)")->type_name("DIR");
  cli::add_threads_option(app, o.threads);
  std::string preset;
  app.add_option("--preset", preset,
                 "small-data: instead of frames, write a flow cache (train it with --cache DIR) of a hard benchmark for the "
                 "training recipe: few clips per subject, subject-specific motion, a weak class signal, 250/109/83 imbalance, "
                 "three datasets of different noise and resolution (docs/DATA.md); uses --subjects (default 14) and --seed")
      ->check(cli::one_of({"small-data"}))
      ->type_name("small-data");
  cli::parse(app, a);
  if (preset == "small-data") {
    data::SmallDataOptions so;
    so.out_dir = o.out_dir, so.seed = o.seed;
    if (app.count("--subjects")) so.subjects = o.subjects;
    const data::SmallDataReport r = data::write_small_data_benchmark(so);
    std::printf("synth small-data: %d subjects, %d clips (negative %d, positive %d, surprise %d; casme2 %d, samm %d, smic %d), "
                "%d px flow images\n  flow cache: %s (ahmsa train --cache %s ...)\n",
                so.subjects, r.clips, r.per_class[0], r.per_class[1], r.per_class[2], r.per_dataset[0], r.per_dataset[1],
                r.per_dataset[2], so.size, so.out_dir.c_str(), so.out_dir.c_str());
    return 0;
  }
  o.min_frames = frames[0], o.max_frames = frames[1];
  if (o.min_frames > o.max_frames) throw cli::UsageError("--frames MIN,MAX: MIN " + std::to_string(o.min_frames) + " > MAX " +
                                                         std::to_string(o.max_frames));
  auto rep = data::synthesize_corpus(o);
  int per_class[3] = {0, 0, 0};
  for (auto& c : rep.clips) per_class[c.cls]++;
  std::printf("synth: %d subjects, %zu clips (negative %d, positive %d, surprise %d) in %.1f s\n", o.subjects, rep.clips.size(),
              per_class[0], per_class[1], per_class[2], rep.seconds);
  std::printf("  frames:      %s/subNN/EPxx_yy/img{N}.%s\n  coding sheet: %s\n  landmarks:   %s\n", o.out_dir.c_str(), o.format.c_str(),
              rep.coding_csv.c_str(), rep.landmarks_csv.c_str());
  return 0;
}

}  // namespace

AHMSA_COMMAND("synth", "write the synthetic micro-expression corpus (CASME II layout)", cmd_synth);
