/* The C API of ahmsa: load an AHMSA-Net checkpoint (safetensors, as `ahmsa train` writes it or a
 * PyTorch export) and classify a micro-expression, from the network's (u, v, os) input image or from an
 * onset/apex pair of 8-bit grey face crops (TV-L1 flow and optical strain computed here, exactly as
 * `ahmsa prepare` and `ahmsa predict --crop none` do). docs/EMBEDDING.md shows it in use.
 *
 * Rules:
 *  - Every function returning ahmsa_status returns AHMSA_OK (0) on success and never lets a C++
 *    exception out. On failure a message naming what was wrong is kept per thread (ahmsa_last_error)
 *    and, for calls on a model, also on the model (ahmsa_model_error).
 *  - Models run on the CPU (a CUDA build's GPU is used by the C++ API, infer::Classifier, only).
 *  - A model is used by one thread at a time; separate models may be used from separate threads at
 *    the same time (the thread pool runs one caller's work in parallel, others' on their own thread).
 *  - Strings returned are owned by the library: class names live as long as the model, messages
 *    until the next failing call on the same thread (ahmsa_last_error) or model (ahmsa_model_error).
 *  - Linking: ahmsa::infer (CMake, find_package(ahmsa)) or `pkg-config --libs ahmsa`; the library is
 *    C++, so link with a C++ compiler driver or add the C++ runtime (the .pc file does).
 */
#ifndef AHMSA_H
#define AHMSA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHMSA_API_VERSION 1

typedef enum ahmsa_status {
  AHMSA_OK = 0,
  AHMSA_ERR_NULL_ARGUMENT = 1,    /* a required pointer argument is NULL: the message names it */
  AHMSA_ERR_FILE = 2,             /* the checkpoint cannot be opened (missing, unreadable, a directory) */
  AHMSA_ERR_CHECKPOINT = 3,       /* not a usable checkpoint: truncated, malformed, missing/misshaped weights */
  AHMSA_ERR_INPUT_SIZE = 4,       /* an image's size does not fit the model or the call (message: both sizes) */
  AHMSA_ERR_OUTPUT_SIZE = 5,      /* the caller's output arrays hold fewer values than the model has classes */
  AHMSA_ERR_INVALID_ARGUMENT = 6, /* a value out of range (thread count, crop size, flow method) */
  AHMSA_ERR_OUT_OF_MEMORY = 7,
  AHMSA_ERR_INTERNAL = 8          /* anything else (the message says what) */
} ahmsa_status;

/* Flow methods for ahmsa_classify_pair: the one the training cache was prepared with. */
typedef enum ahmsa_flow_method { AHMSA_FLOW_TVL1 = 0, AHMSA_FLOW_FARNEBACK = 1 } ahmsa_flow_method;

typedef struct ahmsa_pair_options {
  int crop_size; /* side the flow is computed at (`ahmsa prepare --crop-size`), 16..8192; default 128 */
  int method;    /* an ahmsa_flow_method; default AHMSA_FLOW_TVL1 */
} ahmsa_pair_options;

typedef struct ahmsa_model ahmsa_model; /* opaque */

/* The library's version ("git describe" of the build) and a short name of a status ("AHMSA_ERR_FILE"). */
const char* ahmsa_version(void);
const char* ahmsa_status_name(ahmsa_status status);
/* The message of the last failed call on this thread ("" when none failed yet). */
const char* ahmsa_last_error(void);

/* Threads of the CPU kernels' pool, shared by every model of the process (0: the default, the
 * AHMSA_THREADS or OMP_NUM_THREADS environment variable, else all cores). The flow of a pair runs on one
 * thread below 256x256 crops. A build without threads (CMake option AHMSA_THREADS=OFF) accepts only 0
 * and 1. */
ahmsa_status ahmsa_set_threads(int threads);

/* Loads a checkpoint. On success *out is a new model (close it with ahmsa_model_close); on failure *out
 * is NULL and ahmsa_last_error() says why: AHMSA_ERR_FILE, AHMSA_ERR_CHECKPOINT, AHMSA_ERR_NULL_ARGUMENT. */
ahmsa_status ahmsa_model_open(const char* path, ahmsa_model** out);
void ahmsa_model_close(ahmsa_model* model); /* NULL is allowed */
/* The message of the last failed call on this model ("" when the last call succeeded; "" for NULL). */
const char* ahmsa_model_error(const ahmsa_model* model);

/* The model's input side S (input images are 3 x S x S), its class count K, and the name of class k
 * (from the checkpoint's metadata, else negative/positive/surprise for K = 3, else "class<k>").
 * They return 0 / NULL for a NULL model or k outside 0..K-1. */
int ahmsa_model_input_size(const ahmsa_model* model);
int ahmsa_model_num_classes(const ahmsa_model* model);
const char* ahmsa_model_class_name(const ahmsa_model* model, int k);

/* Classifies one (u, v, os) image: 3 x height x width floats, planar (all u, then all v, then all os),
 * valued as the network was trained on (the cache's 8-bit value / 255). width and height must equal the
 * model's input size (AHMSA_ERR_INPUT_SIZE otherwise). Writes K logits to `logits` and K softmax
 * probabilities to `probabilities` (either may be NULL, not both); `capacity` is the length of each
 * given array (AHMSA_ERR_OUTPUT_SIZE when below K). */
ahmsa_status ahmsa_classify_image(ahmsa_model* model, const float* image, int width, int height, float* logits,
                                  float* probabilities, int capacity);

/* Classifies an onset/apex pair of 8-bit grey face crops of one size (width x height, rows `stride`
 * bytes apart; stride 0 means width). Each frame is brought to crop_size x crop_size, then the flow,
 * its optical strain and the 8-bit (u, v, os) image are computed as `ahmsa prepare` does, and the image
 * is classified as by ahmsa_classify_image. options may be NULL (the defaults). */
ahmsa_status ahmsa_classify_pair(ahmsa_model* model, const unsigned char* onset, const unsigned char* apex, int width,
                                 int height, int stride, const ahmsa_pair_options* options, float* logits,
                                 float* probabilities, int capacity);

/* The defaults of ahmsa_pair_options: crop_size 128, TV-L1. */
ahmsa_pair_options ahmsa_pair_options_default(void);

#ifdef __cplusplus
}
#endif

#endif /* AHMSA_H */
