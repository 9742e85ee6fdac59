// `ahmsa flow ONSET APEX -o uvos.png`: optical flow between two frames, its optical strain, and the
// (u, v, os) image AHMSA-Net reads; optionally the raw flow (.flo) and a colour-coded picture.
#include <cstdio>
#include <string>

#include "flow/flow.h"
#include "tools/command.h"

namespace ahmsa::cli {

static int flow_main(const Args& a) {
  CLI::App app{"Optical flow + optical strain between onset and apex, written as the (u, v, os) PNG AHMSA-Net reads.",
               "ahmsa flow"};
  std::vector<std::string> frames;
  std::string out, method = "tvl1", preset, strain = "central", flo, viz, interp = "bspline";
  int size = 28, threads = 0;
  flow::TVL1Params tv = flow::TVL1Params::ipol();
  flow::FarnebackParams fb = flow::FarnebackParams::opencv_defaults();
  bool gaussian = false;
  app.add_option("frames", frames, "ONSET APEX: the two frames")->required()->expected(2)->type_name("ONSET APEX");
  app.add_option("-o,--output", out, "the (u, v, os) PNG")->required()->type_name("FILE");
  app.add_option("--method", method, "optical flow method")->capture_default_str()->check(one_of({"tvl1", "farneback"}))->type_name("tvl1|farneback");
  app.add_option("--preset", preset, "TV-L1: ipol (default) or opencv; Farneback: opencv (default) or sample")
      ->check(one_of({"ipol", "opencv", "sample"}))
      ->type_name("NAME");
  app.add_option("--size", size, "side of the (u, v, os) PNG")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--strain", strain, "derivative scheme of the optical strain")->capture_default_str()->check(one_of({"central", "forward"}))
      ->type_name("central|forward");
  app.add_option("--flo", flo, "also write the full-resolution flow (Middlebury .flo)")->type_name("FILE");
  app.add_option("--viz", viz, "also write the Middlebury colour coding of the flow")->type_name("FILE");
  add_threads_option(app, threads);
  // Overrides of the preset's parameters: only those given replace the preset's values.
  const std::vector<CLI::Option*> tvl1_opts = {
      app.add_option("--tau", tv.tau, "TV-L1 time step")->group("TV-L1 overrides"),
      app.add_option("--lambda", tv.lambda, "TV-L1 data weight")->group("TV-L1 overrides"),
      app.add_option("--theta", tv.theta, "TV-L1 coupling")->group("TV-L1 overrides"),
      app.add_option("--scales", tv.scales, "TV-L1 pyramid scales")->group("TV-L1 overrides")->check(CLI::Range(1, 64)),
      app.add_option("--zoom", tv.zoom, "TV-L1 pyramid zoom factor")->group("TV-L1 overrides")->check(CLI::Range(0.05, 0.99)),
      app.add_option("--warps", tv.warps, "TV-L1 warps per scale")->group("TV-L1 overrides")->check(CLI::Range(1, 1000)),
      app.add_option("--epsilon", tv.epsilon, "TV-L1 stopping threshold")->group("TV-L1 overrides"),
      app.add_option("--inner", tv.inner_iterations, "TV-L1 inner iterations")->group("TV-L1 overrides")->check(CLI::Range(1, 100000)),
      app.add_option("--outer", tv.outer_iterations, "TV-L1 outer iterations")->group("TV-L1 overrides")->check(CLI::Range(1, 100000)),
      app.add_option("--median", tv.median_filter, "TV-L1 median filter size (0 = none)")->group("TV-L1 overrides")->check(CLI::Range(0, 7)),
      app.add_option("--interp", interp, "how I1 is sampled at each warp")->group("TV-L1 overrides")->check(one_of({"bspline", "bicubic"}))
          ->type_name("bspline|bicubic")};
  const std::vector<CLI::Option*> fb_opts = {
      app.add_option("--pyr-scale", fb.pyr_scale, "Farneback pyramid scale")->group("Farneback overrides")->check(CLI::Range(0.05, 0.99)),
      app.add_option("--levels", fb.levels, "Farneback pyramid levels")->group("Farneback overrides")->check(CLI::Range(1, 64)),
      app.add_option("--winsize", fb.winsize, "Farneback window size")->group("Farneback overrides")->check(CLI::Range(1, 1000)),
      app.add_option("--iterations", fb.iterations, "Farneback iterations per level")->group("Farneback overrides")->check(CLI::Range(1, 1000)),
      app.add_option("--poly-n", fb.poly_n, "Farneback polynomial neighbourhood")->group("Farneback overrides")->check(CLI::Range(1, 15)),
      app.add_option("--poly-sigma", fb.poly_sigma, "Farneback polynomial sigma")->group("Farneback overrides"),
      app.add_flag("--gaussian", gaussian, "Farneback Gaussian window")->group("Farneback overrides")};
  parse(app, a);

  flow::FlowOptions o;
  const bool tvl1 = method == "tvl1";
  for (CLI::Option* opt : tvl1 ? fb_opts : tvl1_opts)
    if (opt->count() > 0) throw UsageError(opt->get_name() + " is a " + (tvl1 ? "Farneback" : "TV-L1") + " parameter; the method is " + method);
  // The parsed overrides were written into tv / fb; start from the preset and copy the given ones.
  auto given = [](CLI::Option* opt) { return opt->count() > 0; };
  if (tvl1) {
    if (preset == "sample") throw UsageError("unknown TV-L1 preset 'sample' (ipol or opencv)");
    o.method = flow::Method::TVL1;
    flow::TVL1Params p = preset == "opencv" ? flow::TVL1Params::opencv() : flow::TVL1Params::ipol();
    if (given(tvl1_opts[0])) p.tau = tv.tau;
    if (given(tvl1_opts[1])) p.lambda = tv.lambda;
    if (given(tvl1_opts[2])) p.theta = tv.theta;
    if (given(tvl1_opts[3])) p.scales = tv.scales;
    if (given(tvl1_opts[4])) p.zoom = tv.zoom;
    if (given(tvl1_opts[5])) p.warps = tv.warps;
    if (given(tvl1_opts[6])) p.epsilon = tv.epsilon;
    if (given(tvl1_opts[7])) p.inner_iterations = tv.inner_iterations;
    if (given(tvl1_opts[8])) p.outer_iterations = tv.outer_iterations;
    if (given(tvl1_opts[9])) p.median_filter = tv.median_filter;
    p.interpolation = flow::TVL1Params::interpolation_from_name(interp);
    p.threads = threads;
    o.tvl1 = p;
  } else {
    if (preset == "ipol") throw UsageError("unknown Farneback preset 'ipol' (opencv or sample)");
    o.method = flow::Method::Farneback;
    flow::FarnebackParams p = preset == "sample" ? flow::FarnebackParams::opencv_sample() : flow::FarnebackParams::opencv_defaults();
    if (given(fb_opts[0])) p.pyr_scale = fb.pyr_scale;
    if (given(fb_opts[1])) p.levels = fb.levels;
    if (given(fb_opts[2])) p.winsize = fb.winsize;
    if (given(fb_opts[3])) p.iterations = fb.iterations;
    if (given(fb_opts[4])) p.poly_n = fb.poly_n;
    if (given(fb_opts[5])) p.poly_sigma = fb.poly_sigma;
    p.gaussian_window = gaussian;
    p.threads = threads;
    o.farneback = p;
  }

  const img::Image onset = img::load(frames[0]), apex = img::load(frames[1]);
  if (onset.width != apex.width || onset.height != apex.height)
    throw std::invalid_argument("onset '" + frames[0] + "' is " + std::to_string(onset.width) + "x" + std::to_string(onset.height) +
                                " but apex '" + frames[1] + "' is " + std::to_string(apex.width) + "x" + std::to_string(apex.height));
  const flow::FlowField f = flow::compute_flow(onset, apex, o);
  const auto os = flow::optical_strain(f, strain == "central" ? flow::StrainScheme::Central : flow::StrainScheme::Forward);
  img::save_png(out, flow::uvos_image(f, os, size));
  if (!flo.empty()) flow::write_flo(flo, f);
  if (!viz.empty()) img::save_png(viz, flow::flow_to_color(f));
  std::printf("%s: %dx%d flow (%s), wrote %s (%dx%d u,v,os)\n", frames[1].c_str(), f.width, f.height, o.describe().c_str(), out.c_str(),
              size, size);
  return 0;
}

AHMSA_COMMAND("flow", "optical flow + strain between onset and apex -> (u,v,os) PNG", flow_main);

}  // namespace ahmsa::cli
