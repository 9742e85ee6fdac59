#include "train/progress.h"

#include <cstdio>

#include <unistd.h>

namespace ahmsa::train {

std::string format_duration(double s) {
  if (s < 0) s = 0;
  int t = int(s + 0.5);
  char b[32];
  if (t >= 3600) std::snprintf(b, sizeof b, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(b, sizeof b, "%d:%02d", t / 60, t % 60);
  return b;
}

static std::string bar(double frac, int width) {
  if (frac < 0) frac = 0;
  if (frac > 1) frac = 1;
  int full = int(frac * width + 0.5);
  return std::string(size_t(full), '#') + std::string(size_t(width - full), '.');
}

Progress::Progress(int64_t total_steps, bool enabled)
    : total_(total_steps), enabled_(enabled), tty_(isatty(fileno(stderr)) != 0), t0_(std::chrono::steady_clock::now()) {}

void Progress::step(int fold, int folds, const std::string& name, int epoch, int epochs, int step, int steps, double loss) {
  ++done_;
  if (!enabled_ || !tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && std::chrono::duration<double>(now - last_draw_).count() < 0.2 && step != steps) return;
  last_draw_ = now;
  drawn_ = true;
  double el = std::chrono::duration<double>(now - t0_).count();
  double rate = el > 0 ? double(done_) / el : 0;
  double eta = rate > 0 ? double(total_ - done_) / rate : 0;
  double fold_frac = (double(epoch - 1) * steps + step) / (double(epochs) * steps);
  std::fprintf(stderr, "\r\033[Kfold %d/%d %-14.14s [%s] ep %d/%d loss %.3f | all [%s] %3.0f%% %.1f step/s ETA %s", fold, folds,
               name.c_str(), bar(fold_frac, 16).c_str(), epoch, epochs, loss, bar(double(done_) / double(total_), 20).c_str(),
               100.0 * double(done_) / double(total_), rate, format_duration(eta).c_str());
  std::fflush(stderr);
}

void Progress::line(const std::string& text) {
  if (!enabled_) return;
  if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_ && tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

}  // namespace ahmsa::train
