// The dispatch layer (tensor/backend.h): the only place that chooses between the CPU kernels
// and their CUDA twins. A build without CUDA has no device memory, so the CUDA branch is an error.
#include "tensor/backend.h"

#include <stdexcept>
#include <string>

#ifdef AHMSA_HAVE_CUDA
#include "tensor/kernels_cuda.h"
#define AHMSA_CUDA_BRANCH(kernel, ...) return cuda::kernel(__VA_ARGS__)
#else
#define AHMSA_CUDA_BRANCH(kernel, ...) no_cuda(#kernel)
#endif

namespace ahmsa::tt {

#ifndef AHMSA_HAVE_CUDA
[[noreturn]] static void no_cuda(const char* kernel) {
  throw std::runtime_error(std::string(kernel) +
                           ": this build has no CUDA backend (nvcc was not found at configure time)");
}
#endif

bool cuda_built() {
#ifdef AHMSA_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

StridedView strided_view(const Tensor& t) {
  Shape sh = t.shape(), st = t.strides();
  cpu::coalesce_dims(sh, {&st});  // dims that step through memory as one are merged
  if (sh.size() > size_t(kMaxDims))
    throw ShapeError("strided_copy: the view " + t.str() + " folds to " + std::to_string(sh.size()) +
                     " dimensions, at most " + std::to_string(kMaxDims) + " are supported");
  StridedView v;
  v.ndim = int(sh.size());
  for (size_t d = 0; d < sh.size(); ++d) v.shape[d] = sh[d], v.strides[d] = st[d];
  return v;
}

void unary_forward(Device dev, Unary op, const float* x, float* y, int64_t n) {
  if (dev == Device::CPU) return cpu::unary_forward(op, x, y, n);
  AHMSA_CUDA_BRANCH(unary_forward, op, x, y, n);
}

void unary_backward(Device dev, Unary op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  if (dev == Device::CPU) return cpu::unary_backward(op, x, y, gy, gx, n);
  AHMSA_CUDA_BRANCH(unary_backward, op, x, y, gy, gx, n);
}

void binary_forward(Device dev, Binary op, const float* a, const std::vector<int64_t>& sa, const float* b,
                    const std::vector<int64_t>& sb, float* y, const std::vector<int64_t>& shape) {
  if (dev == Device::CPU) return cpu::binary_forward(op, a, sa, b, sb, y, shape);
  AHMSA_CUDA_BRANCH(binary_forward, op, a, sa, b, sb, y, shape);
}

void scalar_forward(Device dev, Binary op, const float* a, float s, float* y, int64_t n) {
  if (dev == Device::CPU) return cpu::scalar_forward(op, a, s, y, n);
  AHMSA_CUDA_BRANCH(scalar_forward, op, a, s, y, n);
}

void sum_mid(Device dev, const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  if (dev == Device::CPU) return cpu::sum_mid(x, y, outer, R, inner);
  AHMSA_CUDA_BRANCH(sum_mid, x, y, outer, R, inner);
}

void max_mid(Device dev, const float* x, float* y, int32_t* idx, int64_t outer, int64_t R, int64_t inner) {
  if (dev == Device::CPU) return cpu::max_mid(x, y, idx, outer, R, inner);
  AHMSA_CUDA_BRANCH(max_mid, x, y, idx, outer, R, inner);
}

void softmax_mid(Device dev, const float* x, float* y, int64_t outer, int64_t R, int64_t inner, bool log) {
  if (dev == Device::CPU) return cpu::softmax_mid(x, y, outer, R, inner, log);
  AHMSA_CUDA_BRANCH(softmax_mid, x, y, outer, R, inner, log);
}

void softmax_mid_backward(Device dev, const float* y, const float* gy, float* gx, int64_t outer, int64_t R,
                          int64_t inner, bool log) {
  if (dev == Device::CPU) return cpu::softmax_mid_backward(y, gy, gx, outer, R, inner, log);
  AHMSA_CUDA_BRANCH(softmax_mid_backward, y, gy, gx, outer, R, inner, log);
}

void bmm(Device dev, const float* a, const float* c, float* y, int64_t batch, int64_t M, int64_t K, int64_t N, bool ta,
         bool tc, float beta) {
  if (dev == Device::CPU) return cpu::bmm(a, c, y, batch, M, K, N, ta, tc, beta);
  AHMSA_CUDA_BRANCH(bmm, a, c, y, batch, M, K, N, ta, tc, beta);
}

void attention_forward(Device dev, const float* qkv, float* out, float* P, int64_t B, int64_t T, int64_t heads,
                       int64_t d) {
  if (dev == Device::CPU) return cpu::attention_forward(qkv, out, P, B, T, heads, d);
  AHMSA_CUDA_BRANCH(attention_forward, qkv, out, P, B, T, heads, d);
}

void attention_backward(Device dev, const float* qkv, const float* P, const float* gout, float* gqkv, int64_t B,
                        int64_t T, int64_t heads, int64_t d) {
  if (dev == Device::CPU) return cpu::attention_backward(qkv, P, gout, gqkv, B, T, heads, d);
  AHMSA_CUDA_BRANCH(attention_backward, qkv, P, gout, gqkv, B, T, heads, d);
}

void conv2d_forward(Device dev, const ConvShape& s, const float* x, const float* w, const float* b, float* y) {
  if (dev == Device::CPU) return cpu::conv2d_forward(s, x, w, b, y);
  AHMSA_CUDA_BRANCH(conv2d_forward, s, x, w, b, y);
}

void conv2d_backward(Device dev, const ConvShape& s, const float* x, const float* w, const float* gy, float* gx,
                     float* gw, float* gb) {
  if (dev == Device::CPU) return cpu::conv2d_backward(s, x, w, gy, gx, gw, gb);
  AHMSA_CUDA_BRANCH(conv2d_backward, s, x, w, gy, gx, gw, gb);
}

void max_pool2d_forward(Device dev, const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W,
                        int64_t OH, int64_t OW, int k, int stride, int pad) {
  if (dev == Device::CPU) return cpu::max_pool2d_forward(x, y, idx, planes, H, W, OH, OW, k, stride, pad);
  AHMSA_CUDA_BRANCH(max_pool2d_forward, x, y, idx, planes, H, W, OH, OW, k, stride, pad);
}

void adaptive_avg_pool2d_forward(Device dev, const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                 int64_t OW) {
  if (dev == Device::CPU) return cpu::adaptive_avg_pool2d_forward(x, y, planes, H, W, OH, OW);
  AHMSA_CUDA_BRANCH(adaptive_avg_pool2d_forward, x, y, planes, H, W, OH, OW);
}

void adaptive_avg_pool2d_backward(Device dev, const float* gy, float* gx, int64_t planes, int64_t H, int64_t W,
                                  int64_t OH, int64_t OW) {
  if (dev == Device::CPU) return cpu::adaptive_avg_pool2d_backward(gy, gx, planes, H, W, OH, OW);
  AHMSA_CUDA_BRANCH(adaptive_avg_pool2d_backward, gy, gx, planes, H, W, OH, OW);
}

void adaptive_max_pool2d_forward(Device dev, const float* x, float* y, int32_t* idx, int64_t planes, int64_t H,
                                 int64_t W, int64_t OH, int64_t OW) {
  if (dev == Device::CPU) return cpu::adaptive_max_pool2d_forward(x, y, idx, planes, H, W, OH, OW);
  AHMSA_CUDA_BRANCH(adaptive_max_pool2d_forward, x, y, idx, planes, H, W, OH, OW);
}

void pool_scatter_backward(Device dev, const float* gy, const int32_t* idx, float* gx, int64_t planes, int64_t HW,
                           int64_t OHW) {
  if (dev == Device::CPU) return cpu::pool_scatter_backward(gy, idx, gx, planes, HW, OHW);
  AHMSA_CUDA_BRANCH(pool_scatter_backward, gy, idx, gx, planes, HW, OHW);
}

void batch_norm_train_forward(Device dev, const float* x, const float* w, const float* b, float* y, float* mean,
                              float* invstd, float* var_unbiased, int64_t N, int64_t C, int64_t HW, float eps) {
  if (dev == Device::CPU) return cpu::batch_norm_train_forward(x, w, b, y, mean, invstd, var_unbiased, N, C, HW, eps);
  AHMSA_CUDA_BRANCH(batch_norm_train_forward, x, w, b, y, mean, invstd, var_unbiased, N, C, HW, eps);
}

void batch_norm_eval_forward(Device dev, const float* x, const float* w, const float* b, const float* rmean,
                             const float* rvar, float* y, int64_t N, int64_t C, int64_t HW, float eps) {
  if (dev == Device::CPU) return cpu::batch_norm_eval_forward(x, w, b, rmean, rvar, y, N, C, HW, eps);
  AHMSA_CUDA_BRANCH(batch_norm_eval_forward, x, w, b, rmean, rvar, y, N, C, HW, eps);
}

void batch_norm_backward(Device dev, const float* x, const float* w, const float* mean, const float* invstd,
                         const float* gy, float* gx, float* gw, float* gb, int64_t N, int64_t C, int64_t HW,
                         bool training) {
  if (dev == Device::CPU) return cpu::batch_norm_backward(x, w, mean, invstd, gy, gx, gw, gb, N, C, HW, training);
  AHMSA_CUDA_BRANCH(batch_norm_backward, x, w, mean, invstd, gy, gx, gw, gb, N, C, HW, training);
}

void norm_mid_forward(Device dev, const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                      int64_t outer, int64_t C, int64_t inner, float eps) {
  if (dev == Device::CPU) return cpu::norm_mid_forward(x, w, b, y, mean, invstd, outer, C, inner, eps);
  AHMSA_CUDA_BRANCH(norm_mid_forward, x, w, b, y, mean, invstd, outer, C, inner, eps);
}

void norm_mid_backward(Device dev, const float* x, const float* w, const float* mean, const float* invstd,
                       const float* gy, float* gx, float* gw, float* gb, int64_t outer, int64_t C, int64_t inner) {
  if (dev == Device::CPU) return cpu::norm_mid_backward(x, w, mean, invstd, gy, gx, gw, gb, outer, C, inner);
  AHMSA_CUDA_BRANCH(norm_mid_backward, x, w, mean, invstd, gy, gx, gw, gb, outer, C, inner);
}

void batch_norm_update_running(Device dev, float* running_mean, float* running_var, const float* mean,
                               const float* var_unbiased, int64_t C, float momentum) {
  if (dev == Device::CPU) return cpu::batch_norm_update_running(running_mean, running_var, mean, var_unbiased, C,
    momentum);
  AHMSA_CUDA_BRANCH(batch_norm_update_running, running_mean, running_var, mean, var_unbiased, C, momentum);
}

void batch_norm_eval_stats(Device dev, const float* rmean, const float* rvar, float* mean, float* invstd, int64_t C,
                           float eps) {
  if (dev == Device::CPU) return cpu::batch_norm_eval_stats(rmean, rvar, mean, invstd, C, eps);
  AHMSA_CUDA_BRANCH(batch_norm_eval_stats, rmean, rvar, mean, invstd, C, eps);
}

void cross_entropy(Device dev, const float* logits, const int32_t* targets, const float* wc, int64_t N, int64_t K,
                   float eps, float* loss, float* dlogits) {
  if (dev == Device::CPU) return cpu::cross_entropy(logits, targets, wc, N, K, eps, loss, dlogits);
  AHMSA_CUDA_BRANCH(cross_entropy, logits, targets, wc, N, K, eps, loss, dlogits);
}

void cross_entropy_soft(Device dev, const float* logits, const float* targets, const float* wc, int64_t N, int64_t K,
                        float eps, float* loss, float* dlogits) {
  if (dev == Device::CPU) return cpu::cross_entropy_soft(logits, targets, wc, N, K, eps, loss, dlogits);
  AHMSA_CUDA_BRANCH(cross_entropy_soft, logits, targets, wc, N, K, eps, loss, dlogits);
}

void fill(Device dev, float* y, int64_t n, float v) {
  if (dev == Device::CPU) return cpu::fill(y, n, v);
  AHMSA_CUDA_BRANCH(fill, y, n, v);
}

void add_inplace(Device dev, float* dst, const float* src, int64_t n) {
  if (dev == Device::CPU) return cpu::add_inplace(dst, src, n);
  AHMSA_CUDA_BRANCH(add_inplace, dst, src, n);
}

void strided_copy(Device dev, const float* src, const StridedView& view, float* dst) {
  if (dev == Device::CPU) return cpu::strided_copy(src, view, dst);
  AHMSA_CUDA_BRANCH(strided_copy, src, view, dst);
}

void max_mid_backward(Device dev, const float* gy, const int32_t* idx, float* gx, int64_t outer, int64_t R,
                      int64_t inner) {
  if (dev == Device::CPU) return cpu::max_mid_backward(gy, idx, gx, outer, R, inner);
  AHMSA_CUDA_BRANCH(max_mid_backward, gy, idx, gx, outer, R, inner);
}

void dropout_mask(Device dev, float* mask, int64_t n, float p, uint64_t seed, uint64_t offset,
                  const uint64_t* offset_shift) {
  if (dev == Device::CPU) return cpu::dropout_mask(mask, n, p, seed, offset, offset_shift);
  AHMSA_CUDA_BRANCH(dropout_mask, mask, n, p, seed, offset, offset_shift);
}

void sgd_update(Device dev, const ParamList& p, float* v_slab, float lr, float momentum, float weight_decay,
                bool nesterov, bool first) {
  if (dev == Device::CPU) return cpu::sgd_update(p, v_slab, lr, momentum, weight_decay, nesterov, first);
  AHMSA_CUDA_BRANCH(sgd_update, p, v_slab, lr, momentum, weight_decay, nesterov, first);
}

void adam_update(Device dev, const ParamList& p, float* m_slab, float* v_slab, float lr, float beta1, float beta2,
                 float eps, float weight_decay, bool decoupled, int64_t t) {
  if (dev == Device::CPU) return cpu::adam_update(p, m_slab, v_slab, lr, beta1, beta2, eps, weight_decay, decoupled, t);
  AHMSA_CUDA_BRANCH(adam_update, p, m_slab, v_slab, lr, beta1, beta2, eps, weight_decay, decoupled, t);
}

}  // namespace ahmsa::tt
