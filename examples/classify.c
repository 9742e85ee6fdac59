/* A plain C program using the ahmsa C API (<ahmsa.h>): load a checkpoint, classify either a (u, v, os)
 * image (as the training cache stores it: an S x S RGB PNG, R = u, G = v, B = optical strain) or an
 * onset/apex pair of face crops (any size; converted to 8-bit grey), print the logits, the class
 * probabilities and the prediction.
 *
 *   classify MODEL.safetensors UVOS.png
 *   classify MODEL.safetensors ONSET.png APEX.png [CROP_SIZE]
 *
 * Images are decoded with stb_image (libstb-dev). Exit status: 0 on success, 1 on an error (the
 * library's status name and message are printed), 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#if defined(__GNUC__)
/* stb declares static functions that this configuration never defines; the warning comes at the end of
 * the file, so it stays off for the rest of it. */
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb/stb_image.h>

#include <ahmsa.h>

#define MAX_CLASSES 64

static int report(ahmsa_status s, const char* what) {
  fprintf(stderr, "classify: %s failed: %s: %s\n", what, ahmsa_status_name(s), ahmsa_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: %s MODEL.safetensors UVOS.png\n       %s MODEL.safetensors ONSET.png APEX.png [CROP_SIZE]\n", argv[0],
            argv[0]);
    return 2;
  }
  ahmsa_model* model = NULL;
  ahmsa_status s = ahmsa_model_open(argv[1], &model);
  if (s != AHMSA_OK) return report(s, "loading the model");
  const int S = ahmsa_model_input_size(model), K = ahmsa_model_num_classes(model);
  if (K > MAX_CLASSES) {
    fprintf(stderr, "classify: the model has %d classes, this program shows at most %d\n", K, MAX_CLASSES);
    ahmsa_model_close(model);
    return 1;
  }
  printf("model: %s (input 3x%dx%d, %d classes, ahmsa %s)\n", argv[1], S, S, K, ahmsa_version());

  float logits[MAX_CLASSES], prob[MAX_CLASSES];
  int w = 0, h = 0, n = 0;
  if (argc == 3) {
    /* The (u, v, os) image: interleaved 8-bit RGB to planar floats in 0..1. */
    unsigned char* rgb = stbi_load(argv[2], &w, &h, &n, 3);
    if (!rgb) {
      fprintf(stderr, "classify: cannot read '%s': %s\n", argv[2], stbi_failure_reason());
      ahmsa_model_close(model);
      return 1;
    }
    float* x = malloc(sizeof(float) * 3 * (size_t)w * (size_t)h);
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < w * h; ++i) x[(size_t)c * w * h + i] = rgb[(size_t)i * 3 + c] / 255.f;
    stbi_image_free(rgb);
    s = ahmsa_classify_image(model, x, w, h, logits, prob, MAX_CLASSES);
    free(x);
    printf("input: %s (%dx%d (u, v, os) image)\n", argv[2], w, h);
  } else {
    int w1 = 0, h1 = 0;
    unsigned char* onset = stbi_load(argv[2], &w, &h, &n, 1);
    unsigned char* apex = stbi_load(argv[3], &w1, &h1, &n, 1);
    if (!onset || !apex) {
      fprintf(stderr, "classify: cannot read '%s': %s\n", onset ? argv[3] : argv[2], stbi_failure_reason());
      stbi_image_free(onset);
      stbi_image_free(apex);
      ahmsa_model_close(model);
      return 1;
    }
    if (w1 != w || h1 != h) {
      fprintf(stderr, "classify: onset is %dx%d but apex is %dx%d\n", w, h, w1, h1);
      stbi_image_free(onset);
      stbi_image_free(apex);
      ahmsa_model_close(model);
      return 1;
    }
    ahmsa_pair_options opt = ahmsa_pair_options_default();
    if (argc == 5) opt.crop_size = atoi(argv[4]);
    s = ahmsa_classify_pair(model, onset, apex, w, h, 0, &opt, logits, prob, MAX_CLASSES);
    stbi_image_free(onset);
    stbi_image_free(apex);
    printf("input: %s -> %s (%dx%d, flow at %dx%d)\n", argv[2], argv[3], w, h, opt.crop_size, opt.crop_size);
  }
  if (s != AHMSA_OK) {
    fprintf(stderr, "classify: %s: %s\n", ahmsa_status_name(s), ahmsa_model_error(model));
    ahmsa_model_close(model);
    return 1;
  }

  int best = 0;
  printf("logits:");
  for (int k = 0; k < K; ++k) {
    printf(" %.9g", logits[k]);
    if (prob[k] > prob[best]) best = k;
  }
  printf("\nprobabilities:\n");
  for (int k = 0; k < K; ++k) printf("  %-12s %.4f%s\n", ahmsa_model_class_name(model, k), prob[k], k == best ? "  <-" : "");
  printf("prediction: %s\n", ahmsa_model_class_name(model, best));
  ahmsa_model_close(model);
  return 0;
}
