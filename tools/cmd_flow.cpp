// `ahmsa flow ONSET APEX -o uvos.png`: optical flow between two frames, its optical strain, and the
// (u, v, os) image AHMSA-Net reads; optionally the raw flow (.flo) and a colour-coded picture.
#include <cstdio>
#include <string>

#include "flow/flow.h"
#include "tools/command.h"

namespace ahmsa::cli {

static const char* kFlowUsage =
    "usage: ahmsa flow ONSET APEX -o uvos.png [options]\n"
    "  --method tvl1|farneback   (default tvl1)\n"
    "  --preset ipol|opencv      TV-L1 preset (default ipol); Farneback: opencv|sample (default opencv)\n"
    "  --size N                  side of the (u, v, os) PNG (default 28)\n"
    "  --strain central|forward  derivative scheme of the optical strain (default central)\n"
    "  --flo out.flo             also write the full-resolution flow (Middlebury .flo)\n"
    "  --viz flow.png            also write the Middlebury colour coding of the flow\n"
    "  --threads N               OpenMP threads (default: all)\n"
    "  TV-L1 overrides: --tau --lambda --theta --scales --zoom --warps --epsilon --inner --outer --median\n"
    "                  --interp bspline|bicubic  (how I1 is sampled at each warp; default bspline)\n"
    "  Farneback overrides: --pyr-scale --levels --winsize --iterations --poly-n --poly-sigma --gaussian\n";

static int flow_main(const Args& a) {
  if (has_flag(a, "--help") || has_flag(a, "-h")) {
    std::printf("%s", kFlowUsage);
    return 0;
  }
  const std::vector<std::string> valued = {"-o", "--method", "--preset", "--size", "--strain", "--flo", "--viz",
                                           "--threads", "--tau", "--lambda", "--theta", "--scales", "--zoom",
                                           "--warps", "--epsilon", "--inner", "--outer", "--median", "--interp", "--pyr-scale",
                                           "--levels", "--winsize", "--iterations", "--poly-n", "--poly-sigma"};
  const Args pos = positionals(a, valued);
  const std::string out = option(a, "-o");
  if (pos.size() != 2 || out.empty()) {
    std::fprintf(stderr, "%s", kFlowUsage);
    return 2;
  }
  flow::FlowOptions o;
  const std::string method = option(a, "--method", "tvl1");
  const std::string preset = option(a, "--preset", "");
  const int threads = option_int(a, "--threads", 0);
  if (method == "tvl1") {
    o.method = flow::Method::TVL1;
    if (preset == "" || preset == "ipol") o.tvl1 = flow::TVL1Params::ipol();
    else if (preset == "opencv") o.tvl1 = flow::TVL1Params::opencv();
    else throw std::invalid_argument("unknown TV-L1 preset '" + preset + "' (ipol or opencv)");
    auto& p = o.tvl1;
    p.tau = option_double(a, "--tau", p.tau);
    p.lambda = option_double(a, "--lambda", p.lambda);
    p.theta = option_double(a, "--theta", p.theta);
    p.scales = option_int(a, "--scales", p.scales);
    p.zoom = option_double(a, "--zoom", p.zoom);
    p.warps = option_int(a, "--warps", p.warps);
    p.epsilon = option_double(a, "--epsilon", p.epsilon);
    p.inner_iterations = option_int(a, "--inner", p.inner_iterations);
    p.outer_iterations = option_int(a, "--outer", p.outer_iterations);
    p.median_filter = option_int(a, "--median", p.median_filter);
    p.interpolation = flow::TVL1Params::interpolation_from_name(option(a, "--interp", "bspline"));
    p.threads = threads;
  } else if (method == "farneback") {
    o.method = flow::Method::Farneback;
    if (preset == "" || preset == "opencv") o.farneback = flow::FarnebackParams::opencv_defaults();
    else if (preset == "sample") o.farneback = flow::FarnebackParams::opencv_sample();
    else throw std::invalid_argument("unknown Farneback preset '" + preset + "' (opencv or sample)");
    auto& p = o.farneback;
    p.pyr_scale = option_double(a, "--pyr-scale", p.pyr_scale);
    p.levels = option_int(a, "--levels", p.levels);
    p.winsize = option_int(a, "--winsize", p.winsize);
    p.iterations = option_int(a, "--iterations", p.iterations);
    p.poly_n = option_int(a, "--poly-n", p.poly_n);
    p.poly_sigma = option_double(a, "--poly-sigma", p.poly_sigma);
    p.gaussian_window = has_flag(a, "--gaussian");
    p.threads = threads;
  } else {
    throw std::invalid_argument("unknown flow method '" + method + "' (tvl1 or farneback)");
  }
  const int size = option_int(a, "--size", 28);
  if (size <= 0) throw std::invalid_argument("--size must be positive");
  const std::string strain = option(a, "--strain", "central");
  if (strain != "central" && strain != "forward") throw std::invalid_argument("--strain must be central or forward");

  const img::Image onset = img::load(pos[0]), apex = img::load(pos[1]);
  if (onset.width != apex.width || onset.height != apex.height)
    throw std::invalid_argument("onset '" + pos[0] + "' is " + std::to_string(onset.width) + "x" +
                                std::to_string(onset.height) + " but apex '" + pos[1] + "' is " +
                                std::to_string(apex.width) + "x" + std::to_string(apex.height));
  const flow::FlowField f = flow::compute_flow(onset, apex, o);
  const auto os = flow::optical_strain(f, strain == "central" ? flow::StrainScheme::Central : flow::StrainScheme::Forward);
  img::save_png(out, flow::uvos_image(f, os, size));
  if (const std::string flo = option(a, "--flo"); !flo.empty()) flow::write_flo(flo, f);
  if (const std::string viz = option(a, "--viz"); !viz.empty()) img::save_png(viz, flow::flow_to_color(f));
  std::printf("%s: %dx%d flow (%s), wrote %s (%dx%d u,v,os)\n", pos[1].c_str(), f.width, f.height,
              o.describe().c_str(), out.c_str(), size, size);
  return 0;
}

AHMSA_COMMAND("flow", "optical flow + strain between onset and apex -> (u,v,os) PNG", flow_main);

}  // namespace ahmsa::cli
