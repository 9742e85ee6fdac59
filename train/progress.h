// Progress on stderr: one line redrawn in place with the fold's bar and the whole run's bar, the
// step rate and the estimated time left; one permanent summary line per finished fold. When stderr
// is not a terminal only the summary lines are written (logs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace ahmsa::train {

class Progress {
 public:
  // total_steps: optimisation steps of the whole run still to do (for the overall bar and ETA).
  Progress(int64_t total_steps, bool enabled);
  // After each step: fold i of n (1-based), its name, epoch/epochs, step/steps, the loss.
  void step(int fold, int folds, const std::string& name, int epoch, int epochs, int step, int steps, double loss);
  // A permanent line (clears the bar first).
  void line(const std::string& text);
  void finish();

 private:
  int64_t total_, done_ = 0;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point t0_, last_draw_;
  bool drawn_ = false;
};

std::string format_duration(double seconds);  // "1:02:03" or "2:03"

}  // namespace ahmsa::train
