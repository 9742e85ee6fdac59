// The dispatch layer between the differentiable ops and the kernels (dlib's tt::): one function
// per kernel of tensor/kernels.h, with the same parameters after a leading Device, which runs
// cpu::<kernel> for CPU memory and cuda::<kernel> (tensor/kernels_cuda.h) for device memory.
// Pointers must be memory of that device. The maths of every kernel is documented once, in
// tensor/kernels.h. Nothing above this layer names cpu:: or cuda:: kernels.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/kernels.h"
#include "tensor/tensor.h"

namespace ahmsa::tt {

using cpu::Binary;
using cpu::ConvShape;
using cpu::kMaxDims;
using cpu::ParamList;
using cpu::StepTerms;
using cpu::StridedView;
using cpu::adam_terms;
using cpu::sgd_terms;
using cpu::Unary;

// Whether this build has the CUDA kernels compiled in (cuda_available() in tensor/device.h says
// whether a usable GPU is present as well).
bool cuda_built();

// The kernel's description of a tensor's layout (for strided_copy): size-1 dimensions dropped and
// neighbours that step through memory as one merged, so inner rows are as long as the layout allows
// and views of more than kMaxDims dimensions work when they fold that far (else a ShapeError).
StridedView strided_view(const Tensor& t);

// ---- elementwise -------------------------------------------------------------------------
void unary_forward(Device dev, Unary op, const float* x, float* y, int64_t n);
void unary_backward(Device dev, Unary op, const float* x, const float* y, const float* gy, float* gx, int64_t n);
void binary_forward(Device dev, Binary op, const float* a, const std::vector<int64_t>& sa, const float* b,
                    const std::vector<int64_t>& sb, float* y, const std::vector<int64_t>& shape);
void scalar_forward(Device dev, Binary op, const float* a, float s, float* y, int64_t n);

// ---- reductions over the middle of a (outer, R, inner) view --------------------------------
void sum_mid(Device dev, const float* x, float* y, int64_t outer, int64_t R, int64_t inner);
void max_mid(Device dev, const float* x, float* y, int32_t* idx, int64_t outer, int64_t R, int64_t inner);
void softmax_mid(Device dev, const float* x, float* y, int64_t outer, int64_t R, int64_t inner, bool log);
void softmax_mid_backward(Device dev, const float* y, const float* gy, float* gx, int64_t outer, int64_t R,
                          int64_t inner, bool log);

// ---- matrix products -------------------------------------------------------------------------
void bmm(Device dev, const float* a, const float* c, float* y, int64_t batch, int64_t M, int64_t K, int64_t N,
         bool ta = false, bool tc = false, float beta = 0.f);

// ---- multi-head self-attention (tensor/cpu_attention.cpp) ---------------------------------------
void attention_forward(Device dev, const float* qkv, float* out, float* P, int64_t B, int64_t T, int64_t heads,
                       int64_t d);
void attention_backward(Device dev, const float* qkv, const float* P, const float* gout, float* gqkv, int64_t B,
                        int64_t T, int64_t heads, int64_t d);

// ---- convolution (NCHW, square kernel, no groups) -----------------------------------------------
void conv2d_forward(Device dev, const ConvShape& s, const float* x, const float* w, const float* b, float* y);
void conv2d_backward(Device dev, const ConvShape& s, const float* x, const float* w, const float* gy, float* gx,
                     float* gw, float* gb);

// ---- pooling (NCHW; planes = N*C) ---------------------------------------------------------------
void max_pool2d_forward(Device dev, const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W,
                        int64_t OH, int64_t OW, int k, int stride, int pad);
void adaptive_avg_pool2d_forward(Device dev, const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                 int64_t OW);
void adaptive_avg_pool2d_backward(Device dev, const float* gy, float* gx, int64_t planes, int64_t H, int64_t W,
                                  int64_t OH, int64_t OW);
void adaptive_max_pool2d_forward(Device dev, const float* x, float* y, int32_t* idx, int64_t planes, int64_t H,
                                 int64_t W, int64_t OH, int64_t OW);
void pool_scatter_backward(Device dev, const float* gy, const int32_t* idx, float* gx, int64_t planes, int64_t HW,
                           int64_t OHW);

// ---- normalisation -------------------------------------------------------------------------------
void batch_norm_train_forward(Device dev, const float* x, const float* w, const float* b, float* y, float* mean,
                              float* invstd, float* var_unbiased, int64_t N, int64_t C, int64_t HW, float eps);
void batch_norm_eval_forward(Device dev, const float* x, const float* w, const float* b, const float* rmean,
                             const float* rvar, float* y, int64_t N, int64_t C, int64_t HW, float eps);
void batch_norm_backward(Device dev, const float* x, const float* w, const float* mean, const float* invstd,
                         const float* gy, float* gx, float* gw, float* gb, int64_t N, int64_t C, int64_t HW,
                         bool training);
void norm_mid_forward(Device dev, const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                      int64_t outer, int64_t C, int64_t inner, float eps);
void norm_mid_backward(Device dev, const float* x, const float* w, const float* mean, const float* invstd,
                       const float* gy, float* gx, float* gw, float* gb, int64_t outer, int64_t C, int64_t inner);
void batch_norm_update_running(Device dev, float* running_mean, float* running_var, const float* mean,
                               const float* var_unbiased, int64_t C, float momentum);
void batch_norm_eval_stats(Device dev, const float* rmean, const float* rvar, float* mean, float* invstd, int64_t C,
                           float eps);

// ---- loss ----------------------------------------------------------------------------------------
void cross_entropy(Device dev, const float* logits, const int32_t* targets, const float* wc, int64_t N, int64_t K,
                   float eps, float* loss, float* dlogits);
void cross_entropy_soft(Device dev, const float* logits, const float* targets, const float* wc, int64_t N, int64_t K,
                        float eps, float* loss, float* dlogits);

// ---- memory ----------------------------------------------------------------------------------------
void fill(Device dev, float* y, int64_t n, float v);
void add_inplace(Device dev, float* dst, const float* src, int64_t n);
void strided_copy(Device dev, const float* src, const StridedView& view, float* dst);
void max_mid_backward(Device dev, const float* gy, const int32_t* idx, float* gx, int64_t outer, int64_t R,
                      int64_t inner);

// ---- dropout: a counter-based generator, so any device gives the same mask for the same seed ---------
void dropout_mask(Device dev, float* mask, int64_t n, float p, uint64_t seed, uint64_t offset,
                  const uint64_t* offset_shift = nullptr);

// ---- optimisers: one call updates every parameter (PyTorch's update rules) -------------------------
void sgd_update(Device dev, const ParamList& p, float* v_slab, float lr, float momentum, float weight_decay,
                bool nesterov, bool first);
void adam_update(Device dev, const ParamList& p, float* m_slab, float* v_slab, float lr, float beta1, float beta2,
                 float eps, float weight_decay, bool decoupled, int64_t t);

}  // namespace ahmsa::tt
