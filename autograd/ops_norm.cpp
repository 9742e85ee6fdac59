// BatchNorm2d, channel LayerNorm and LayerNorm.
#include <algorithm>

#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "tensor/backend.h"

namespace ahmsa {
using namespace detail;

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum, float eps) {
  const Device dev = same_device("batch_norm2d", {{"x", &x}, {"weight", &weight}, {"bias", &bias},
                                                  {"running_mean", &running_mean}, {"running_var", &running_var}});
  if (x.dim() != 4) shape_fail("batch_norm2d", "expects N×C×H×W, got " + x.str());
  int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  auto check_c = [&](const Tensor& t, const char* what) {
    if (t.defined() && (t.dim() != 1 || t.size(0) != C))
      shape_fail("batch_norm2d", std::string(what) + " " + t.str() + " for input " + x.str());
  };
  check_c(weight, "weight");
  check_c(bias, "bias");
  check_c(running_mean, "running_mean");
  check_c(running_var, "running_var");
  if (running_mean.defined() != running_var.defined())
    shape_fail("batch_norm2d", "running_mean and running_var must be given together");
  for (const Tensor* r : {&running_mean, &running_var})  // updated in place by the kernel
    if (r->defined() && !r->is_contiguous()) shape_fail("batch_norm2d", "running statistics must be contiguous");
  if (training && N * HW < 2)
    shape_fail("batch_norm2d", "training needs more than one value per channel, got input " + x.str());
  Tensor xc = contiguous_input(x), wc = weight.defined() ? contiguous_input(weight) : Tensor(),
         bc = bias.defined() ? contiguous_input(bias) : Tensor();
  const float* wp = wc.defined() ? wc.data() : nullptr;
  const float* bp = bc.defined() ? bc.data() : nullptr;
  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor mean = Tensor::empty({C}, dev), invstd = Tensor::empty({C}, dev);
  if (training) {
    Tensor var_u = Tensor::empty({C}, dev);
    tt::batch_norm_train_forward(dev, xc.data(), wp, bp, y.data(), mean.data(), invstd.data(), var_u.data(), N, C, HW,
                                 eps);
    if (running_mean.defined())
      tt::batch_norm_update_running(dev, running_mean.data(), running_var.data(), mean.data(), var_u.data(), C,
                                    momentum);
  } else {
    if (!running_mean.defined()) shape_fail("batch_norm2d", "eval mode needs running statistics");
    tt::batch_norm_eval_forward(dev, xc.data(), wp, bp, running_mean.data(), running_var.data(), y.data(), N, C, HW,
                                eps);
    tt::batch_norm_eval_stats(dev, running_mean.data(), running_var.data(), mean.data(), invstd.data(), C, eps);
  }
  bool gw = weight.defined() && weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  // The closure keeps wc (not the raw pointer wp): a weight that needs no gradient is not held
  // by the tape, and a temporary one would be freed before backward runs.
  autograd::record(y, "batch_norm2d", {x, weight, bias}, [=](const Tensor& g) -> std::vector<Tensor> {
    Tensor gc = contiguous_input(g), gx = Tensor::empty(xc.shape(), dev), tw = Tensor::empty({C}, dev),
           tb = Tensor::empty({C}, dev);
    tt::batch_norm_backward(dev, xc.data(), wc.defined() ? wc.data() : nullptr, mean.data(), invstd.data(), gc.data(),
                            gx.data(), tw.data(), tb.data(), N, C, HW, training);
    return {gx, gw ? tw : Tensor(), gb ? tb : Tensor()};
  });
  return y;
}

// Normalises over C in a (outer, C, inner) layout; shared by channel_norm and layer_norm.
static Tensor norm_mid(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t outer,
                       int64_t C, int64_t inner, float eps) {
  const Device dev = same_device(op, {{"x", &x}, {"weight", &weight}, {"bias", &bias}});
  for (const Tensor* t : {&weight, &bias})
    if (t->defined() && (t->dim() != 1 || t->size(0) != C))
      shape_fail(op, "affine parameter " + t->str() + " for " + std::to_string(C) + " channels of input " + x.str());
  Tensor xc = contiguous_input(x), wc = weight.defined() ? contiguous_input(weight) : Tensor(),
         bc = bias.defined() ? contiguous_input(bias) : Tensor();
  const float* wp = wc.defined() ? wc.data() : nullptr;
  Tensor y = Tensor::empty(x.shape(), dev);
  Tensor mean = Tensor::empty({outer * inner}, dev), invstd = Tensor::empty({outer * inner}, dev);
  tt::norm_mid_forward(dev, xc.data(), wp, bc.defined() ? bc.data() : nullptr, y.data(), mean.data(), invstd.data(),
                       outer, C, inner, eps);
  bool gw = weight.defined() && weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  autograd::record(y, op, {x, weight, bias}, [=](const Tensor& g) -> std::vector<Tensor> {  // keeps wc, as above
    Tensor gc = contiguous_input(g), gx = Tensor::empty(xc.shape(), dev), tw = Tensor::empty({C}, dev),
           tb = Tensor::empty({C}, dev);
    tt::norm_mid_backward(dev, xc.data(), wc.defined() ? wc.data() : nullptr, mean.data(), invstd.data(), gc.data(),
                          gx.data(), tw.data(), tb.data(), outer, C, inner);
    return {gx, gw ? tw : Tensor(), gb ? tb : Tensor()};
  });
  return y;
}

Tensor channel_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  if (x.dim() != 4) shape_fail("channel_norm", "expects N×C×H×W, got " + x.str());
  return norm_mid("channel_norm", x, weight, bias, x.size(0), x.size(1), x.size(2) * x.size(3), eps);
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  if (x.dim() < 1) shape_fail("layer_norm", "needs at least one dimension");
  int64_t C = x.size(-1);
  return norm_mid("layer_norm", x, weight, bias, x.numel() / std::max<int64_t>(C, 1), C, 1, eps);
}

}  // namespace ahmsa
