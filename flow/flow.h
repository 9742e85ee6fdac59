// Dense optical flow between two frames (onset -> apex), the optical strain derived from it, and the
// (u, v, os) image that AHMSA-Net takes as input. No OpenCV: OpenCV is only the cross-check
// (flow/opencv_reference.h, used by tests/test_flow_opencv.cpp and `ahmsa bench flow`).
// Algorithms and measured accuracy: docs/FLOW.md.
//
// Conventions: a flow field holds, for every pixel x of the first frame I0, the displacement (u, v) in
// pixels such that I0(x) ~ I1(x + (u, v)); u along columns (x, to the right), v along rows (y, down).
#pragma once
#include <string>
#include <vector>

#include "flow/image.h"

namespace ahmsa::flow {

struct FlowError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FlowField {
  int width = 0, height = 0;
  std::vector<float> u, v;  // row-major, height * width each, in pixels

  FlowField() = default;
  FlowField(int w, int h) : width(w), height(h), u(size_t(w) * h, 0.f), v(size_t(w) * h, 0.f) {}
  bool empty() const { return u.empty(); }
};

enum class Method { TVL1, Farneback };

// TV-L1 (Zach, Pock, Bischof 2007; analysed by Sanchez, Meinhardt-Llopis, Facciolo, IPOL 2013):
//   min_u  sum |grad u1| + |grad u2| + lambda |I1(x + u) - I0(x)|,
// solved per warp by the duality-based primal-dual scheme with the auxiliary field v (coupling theta).
// Within one warp at most outer_iterations x inner_iterations steps are run; after every block of
// inner_iterations steps the mean squared update of u is compared with epsilon^2 and the loop stops
// below it (IPOL: inner 1, outer 300; OpenCV: inner 30, outer 10).
struct TVL1Params {
  float tau = 0.25f;       // time step of the dual update (<= 0.25 for convergence)
  float lambda = 0.15f;    // weight of the data term (image values in 0..255)
  float theta = 0.3f;      // coupling between u and v
  int scales = 5;          // pyramid levels (reduced so the coarsest side stays >= 16 px, as IPOL does)
  float zoom = 0.5f;       // downsampling factor between levels (OpenCV calls it scaleStep)
  int warps = 5;           // re-linearisations of I1 per level
  float epsilon = 0.01f;   // stopping threshold on the RMS change of u (pixels)
  int inner_iterations = 1;
  int outer_iterations = 300;
  int median_filter = 0;   // odd size of a median filter on u after every warp (0 or 1: none)
  bool normalize = false;  // stretch both images jointly to 0..255 first (IPOL's reference code does)
  int threads = 0;         // OpenMP threads, 0 = the OpenMP default
  // How I1 and its gradient are sampled at x + u at every warp. BSpline: the interpolating cubic
  // B-spline (the samples are first turned into spline coefficients by a recursive prefilter, Unser
  // 1999) -- measured more accurate on the face cases (docs/FLOW.md). Bicubic: Keys' cubic
  // convolution (a = -0.5), the IPOL article's choice. Both presets use BSpline.
  enum class Interpolation { BSpline, Bicubic };
  Interpolation interpolation = Interpolation::BSpline;
  static const char* interpolation_name(Interpolation i);  // "bspline" or "bicubic"
  static Interpolation interpolation_from_name(const std::string& name);  // FlowError naming `name` otherwise

  static TVL1Params ipol();    // tau .25 lambda .15 theta .3, 5 scales, zoom .5, 5 warps, eps .01, 300 iter
  static TVL1Params opencv();  // as cv::optflow::DualTVL1OpticalFlow::create(): zoom .8, 30x10 iter, median 5
  std::string describe() const;
};

// Farneback (2003): each frame is locally approximated by a quadratic polynomial x^T A x + b^T x + c
// (weighted least squares, Gaussian applicability of sigma poly_sigma over (2 poly_n + 1)^2 pixels);
// the displacement d solves A d = -1/2 delta b, averaged over a window, iterated and coarse-to-fine.
struct FarnebackParams {
  float pyr_scale = 0.5f;  // downsampling factor between pyramid levels
  int levels = 5;          // number of pyramid levels including the full-size image
  int winsize = 13;        // averaging window (odd side)
  int iterations = 10;     // iterations per level
  int poly_n = 5;          // polynomial neighbourhood is (2 poly_n + 1)^2 ... as OpenCV: 5 or 7 typical
  float poly_sigma = 1.1f; // sigma of the Gaussian applicability
  bool gaussian_window = false;  // true: Gaussian window of sigma 0.3 (winsize/2 - 1) + 0.8; false: box
  int threads = 0;

  // As cv::FarnebackOpticalFlow::create(): 5 levels, scale .5, window 13, 10 iterations, poly 5 / 1.1.
  static FarnebackParams opencv_defaults();
  // The values of OpenCV's samples/tutorial (0.5, 3 levels, 15, 3 iterations, 5, 1.2).
  static FarnebackParams opencv_sample();
  std::string describe() const;
};

// Both convert to grey first when the images have several channels. Sizes must match (FlowError).
FlowField tvl1(const img::Image& I0, const img::Image& I1, const TVL1Params& p);
FlowField farneback(const img::Image& I0, const img::Image& I1, const FarnebackParams& p);

// ---- batches of pairs ----------------------------------------------------------------------------
// TV-L1 for many pairs of one size at once (e.g. every clip of a dataset at the face-crop size).
// Results equal flow::tvl1 on each pair up to float rounding (tests/test_flow_batch.cpp). A FlowError
// names the pair when sizes differ or a frame is empty.
// CPU: flow::tvl1 on each pair, the pairs spread over p.threads threads (each pair single-threaded).
std::vector<FlowField> tvl1_batch(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1,
                                  const TVL1Params& p);
// NVIDIA GPU (built when nvcc is found): the whole batch in each kernel launch, one thread per pixel;
// pairs stop iterating independently, as on the CPU. FlowError when the build has no CUDA or no GPU
// is usable (tvl1_cuda_available says why). median_filter at most 7.
std::vector<FlowField> tvl1_batch_cuda(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1,
                                       const TVL1Params& p);
bool tvl1_cuda_available(std::string* why = nullptr);
// The GPU solver's schedule and step code (flow/tvl1_schedule.h) run by plain CPU loops, one thread:
// how the GPU algorithm is tested on machines without a GPU. Slow; not meant for production use.
std::vector<FlowField> tvl1_batch_emulated(const std::vector<img::Image>& I0, const std::vector<img::Image>& I1,
                                           const TVL1Params& p);

struct FlowOptions {
  Method method = Method::TVL1;
  TVL1Params tvl1 = TVL1Params::ipol();
  FarnebackParams farneback = FarnebackParams::opencv_defaults();
  std::string describe() const;  // one line recording method + all parameters, for manifests
};

FlowField compute_flow(const img::Image& onset, const img::Image& apex, const FlowOptions& o);

// ---- optical strain ----------------------------------------------------------------------------
// os = sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2). Central: (f[i+1] - f[i-1]) / 2, one-sided at borders.
// Forward: f[i+1] - f[i], backward difference on the last row/column.
enum class StrainScheme { Central, Forward };
std::vector<float> optical_strain(const FlowField& f, StrainScheme s = StrainScheme::Central);

// (u, v, os) resized to size x size (area resize of the flow values) and each channel min-max
// normalised to 0..255 (constant channel -> 0): R = u, G = v, B = os. Values are not rounded here.
img::Image uvos_image(const FlowField& f, const std::vector<float>& os, int size);

// ---- Middlebury .flo ---------------------------------------------------------------------------
// float32 202021.25 ("PIEH"), int32 width, int32 height, then width*height (u, v) float32, little-endian.
// read_flo throws FlowError naming the file when it is missing, a directory, not .flo, claims more
// than kMaxFloPixels vectors, or is shorter than its header says (checked before allocating).
constexpr int64_t kMaxFloPixels = int64_t(1) << 25;
FlowField read_flo(const std::string& path);
void write_flo(const std::string& path, const FlowField& f);

// ---- visualisation -----------------------------------------------------------------------------
// Middlebury colour wheel (Baker et al. 2011): hue = direction, saturation = |flow| / max_magnitude.
// max_magnitude <= 0 uses the largest magnitude in the field. Unknown flow (|u| or |v| > 1e9, NaN) is black.
img::Image flow_to_color(const FlowField& f, float max_magnitude = 0.f);

// ---- error measures ----------------------------------------------------------------------------
// Average endpoint error mean |w - w_gt| and average angular error (degrees) between the space-time
// vectors (u, v, 1), over pixels at least `border` px from the image edge whose ground truth is known
// and, when min_truth > 0, moves by at least min_truth px (the moving region of a local motion: over
// a whole face a zero flow scores well, since most pixels do not move).
struct FlowErrors {
  double aee = 0, aae_deg = 0, max_epe = 0;
  size_t pixels = 0;
};
FlowErrors flow_errors(const FlowField& est, const FlowField& gt, int border = 0, float min_truth = 0.f);
double average_endpoint_error(const FlowField& est, const FlowField& gt, int border = 0);
double average_angular_error(const FlowField& est, const FlowField& gt, int border = 0);

// ---- warping and resampling --------------------------------------------------------------------
// Backward warp: out(x) = im(x + w(x)), bilinear sampling, coordinates clamped to the image (edge
// replicate). With I1 = frame 2 and w its flow from frame 1, the result approximates frame 1; to make
// a synthetic frame 2 from frame 1 under motion w, warp frame 1 by the inverse motion (see tests).
img::Image warp_bilinear(const img::Image& im, const FlowField& w);
// Same with Keys' cubic convolution (a = -0.5), as TV-L1 uses internally.
img::Image warp_bicubic(const img::Image& im, const FlowField& w);
// Resizes a flow field to w x h and scales the vectors by the size ratio (bilinear or area).
FlowField resize_flow(const FlowField& f, int w, int h, bool area = false);
// Median filter of odd size k on one float plane (edge replicate).
void median_filter(std::vector<float>& plane, int width, int height, int k);

}  // namespace ahmsa::flow
