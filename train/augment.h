// Augmentation of normalised (u, v, os) flow images for training, and the batch mixing of mixup and
// CutMix. Everything here works on CPU memory: the trainer builds each batch on the CPU, augments it,
// and only then uploads it to the model's device. Every random choice is drawn from the generator the
// caller passes (the fold's data-order stream), one sample after the other, so a fold's run is
// deterministic. Why each transform keeps the meaning of a flow image: docs/TRAINING.md §3.
//
// The image layout is the cache's: CHW, channels u, v, os, each min-max normalised to [0, 1] (a constant
// channel stored as 0).
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/rng.h"
#include "tensor/tensor.h"

namespace ahmsa::train {

// The amounts and probabilities (declared once in train/settings.h). An amount of 0 turns the transform
// off and then draws nothing, so a run without augmentation uses the generator exactly as before.
struct AugmentSettings {
  float translate = 0, translate_prob = 0;  // shift up to translate·S pixels in x and y
  float crop = 0, crop_prob = 0;            // crop a square of side c·S, c in [1 − crop, 1], resized to S
  float rotate = 0, rotate_prob = 0;        // rotate by up to ±rotate degrees about the centre
  float erase = 0, erase_prob = 0;          // zero a rectangle of up to erase·S² pixels
  bool any() const { return translate > 0 || crop > 0 || rotate > 0 || erase > 0; }
};

// What was drawn for one sample.
struct SampleAugment {
  bool warp = false;
  float dx = 0, dy = 0;          // translation of the content, pixels (+x right, +y down)
  float crop = 1;                // side of the crop as a fraction of S (1: none)
  float cx = 0, cy = 0;          // offset of the crop's centre from the image centre, pixels
  float angle = 0;               // rotation of the content, radians: R(θ) = [cos −sin; sin cos] in (x right, y down)
  bool erase = false;
  int ex = 0, ey = 0, ew = 0, eh = 0;  // the erased rectangle [ex, ex + ew) × [ey, ey + eh)
};

// Draws one sample's transforms in a fixed order (translation, crop, rotation, erasing; for each
// enabled one a Bernoulli draw, then its parameters).
SampleAugment draw_augment(const AugmentSettings& a, int size, Generator& gen);

// The geometric part, in place: output pixel p samples the input bilinearly at
//   q = c + o + s · R(−θ) (p − c − d)
// (c the image centre, d the translation, s the crop side fraction, o the crop centre, θ the angle),
// reading past the border as the nearest edge pixel; then each channel is min-max normalised again
// (a constant channel becomes 0), as `ahmsa prepare` normalises the crop it stores. The (u, v) values
// are not rotated (see docs/TRAINING.md §3 for the size of that approximation).
void warp_flow_image(float* chw, int size, const SampleAugment& t);
// Zeroes [x, x + w) × [y, y + h) in all three channels (clipped to the image).
void erase_flow_image(float* chw, int size, int x, int y, int w, int h);
// Applies aug[i] to sample i of the CPU batch x [B, 3, S, S] (warp first, then erasing).
void augment_batch(Tensor& x, const std::vector<SampleAugment>& aug);

// ---- mixup and CutMix ----------------------------------------------------------------------------------
struct MixSettings {
  float mixup_alpha = 0, cutmix_alpha = 0;  // Beta(α, α); 0 turns the method off
  float prob = 1;                           // probability that a batch is mixed (when either is on)
  bool any() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

struct MixPlan {
  enum Kind { None, Mixup, CutMix } kind = None;
  float lambda = 1;            // share of the sample's own image (and label)
  std::vector<int> partner;    // row i is mixed with row partner[i] (a permutation of the batch)
  int bx = 0, by = 0, bw = 0, bh = 0;  // CutMix: the box pasted from the partner
};

// A Beta(α, α) draw (α > 0) from two Gamma(α) draws (Marsaglia-Tsang, with the α < 1 boost), computed in
// log space so that a tiny α gives 0 or 1 rather than 0/0.
float sample_beta(float alpha, Generator& gen);
// Whether and how this batch is mixed: a Bernoulli(prob) draw, the method (CutMix or mixup with
// probability ½ when both are on), λ ~ Beta(α, α), the partner permutation, and for CutMix a box of
// area (1 − λ)·S² at a uniform centre, clipped to the image, λ then set to its exact share
// 1 − box/S². Draws nothing when neither method is on.
MixPlan draw_mix(const MixSettings& m, int batch, int size, Generator& gen);
// Mixes the CPU batch x [B, 3, S, S] in place: mixup x_i = λ x_i + (1 − λ) x_partner(i); CutMix pastes
// the partner's box.
void apply_mix(Tensor& x, const MixPlan& p);
// The soft targets [B·K] of the plan: λ onehot(y_i) + (1 − λ) onehot(y_partner(i)).
std::vector<float> mixed_targets(const std::vector<int>& y, int classes, const MixPlan& p);

}  // namespace ahmsa::train
