// The CUDA twins of the CPU kernels (tensor/kernels.h): the same functions with the same signatures,
// over device memory, implemented in tensor/cuda_*.cu (one file per family, beside its cpu_*.cpp).
// Each launches on the current stream and checks the launch; a failure throws CudaError naming the
// kernel, the shapes and the CUDA error. The maths is documented once, in tensor/kernels.h.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/kernels.h"

namespace ahmsa::cuda {

using cpu::Binary;
using cpu::ConvShape;
using cpu::ParamList;
using cpu::StepTerms;
using cpu::StridedView;
using cpu::Unary;


// ---- elementwise -------------------------------------------------------------------------
// y = f(x)
void unary_forward(Unary op, const float* x, float* y, int64_t n);
// gx = gy * f'(x), using x and/or y as convenient for each f
void unary_backward(Unary op, const float* x, const float* y, const float* gy, float* gx, int64_t n);

// Broadcast binary op. `shape` is the output shape; sa/sb are the inputs' strides over it
// (0 along broadcast dimensions).
void binary_forward(Binary op, const float* a, const std::vector<int64_t>& sa, const float* b,
                    const std::vector<int64_t>& sb, float* y, const std::vector<int64_t>& shape);
void scalar_forward(Binary op, const float* a, float s, float* y, int64_t n);  // y = a op s

// ---- reductions over the middle of a (outer, R, inner) view --------------------------------
// y[o, i] = sum_r x[o, r, i]
void sum_mid(const float* x, float* y, int64_t outer, int64_t R, int64_t inner);
// y[o, i] = max_r x[o, r, i], idx = argmax (first on ties)
void max_mid(const float* x, float* y, int32_t* idx, int64_t outer, int64_t R, int64_t inner);
// y = softmax over r; log: y = log_softmax
void softmax_mid(const float* x, float* y, int64_t outer, int64_t R, int64_t inner, bool log);
// softmax: gx = y ⊙ (gy − Σ_r gy⊙y);  log_softmax: gx = gy − exp(y) Σ_r gy
void softmax_mid_backward(const float* y, const float* gy, float* gx, int64_t outer, int64_t R, int64_t inner,
                          bool log);

// ---- matrix products -------------------------------------------------------------------------
// y[b] = a[b] @ c[b] for b < batch, each [M,K]x[K,N] (batch 1 = plain product)
void bmm(const float* a, const float* c, float* y, int64_t batch, int64_t M, int64_t K, int64_t N, bool ta = false,
         bool tc = false, float beta = 0.f);

// ---- multi-head self-attention (tensor/cpu_attention.cpp) ---------------------------------------
// qkv [B, T, 3C] with columns [q | k | v], C = heads·d; out [B, T, C] (heads concatenated in order);
// P [B, heads, T, T] receives the attention probabilities softmax(q kᵀ / sqrt d) for the backward.
void attention_forward(const float* qkv, float* out, float* P, int64_t B, int64_t T, int64_t heads, int64_t d);
// gqkv [B, T, 3C] is written (not accumulated).
void attention_backward(const float* qkv, const float* P, const float* gout, float* gqkv, int64_t B, int64_t T,
                        int64_t heads, int64_t d);

// ---- convolution (NCHW, square kernel, no groups) -----------------------------------------------
// y[n,o] = b[o] + Σ_{c,i,j} w[o,c,i,j] x[n, c, s·oh+i−p, s·ow+j−p]   (im2col + GEMM)
void conv2d_forward(const ConvShape& s, const float* x, const float* w, const float* b, float* y);
// gx = col2im(wᵀ gy), gw = gy colᵀ, gb = Σ gy; any of gx/gw/gb may be null. Results are written, not added.
void conv2d_backward(const ConvShape& s, const float* x, const float* w, const float* gy, float* gx, float* gw,
                     float* gb);

// ---- pooling (NCHW; planes = N*C) ---------------------------------------------------------------
void max_pool2d_forward(const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, int k, int stride, int pad);
// Adaptive pools: output cell (i, j) covers rows [floor(i H/OH), ceil((i+1) H/OH)) and likewise columns.
void adaptive_avg_pool2d_forward(const float* x, float* y, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                 int64_t OW);
void adaptive_avg_pool2d_backward(const float* gy, float* gx, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW);
void adaptive_max_pool2d_forward(const float* x, float* y, int32_t* idx, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW);
// Max pools route each output gradient to its argmax (idx is the flat index inside the plane).
void pool_scatter_backward(const float* gy, const int32_t* idx, float* gx, int64_t planes, int64_t HW, int64_t OHW);

// ---- normalisation -------------------------------------------------------------------------------
// BatchNorm2d forward in training mode: per channel mean μ and biased variance σ² over (N,H,W),
// y = w (x − μ)/sqrt(σ² + eps) + b; returns μ and 1/sqrt(σ² + eps) per channel, and the unbiased
// variance for the running estimate.
void batch_norm_train_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                              float* var_unbiased, int64_t N, int64_t C, int64_t HW, float eps);
void batch_norm_eval_forward(const float* x, const float* w, const float* b, const float* rmean, const float* rvar,
                             float* y, int64_t N, int64_t C, int64_t HW, float eps);
// training: gx = w·invstd/M (M gy − Σgy − x̂ Σ gy x̂); gw = Σ gy x̂; gb = Σ gy  (M = N·H·W)
// eval (batch statistics are constants): gx = w·invstd·gy
void batch_norm_backward(const float* x, const float* w, const float* mean, const float* invstd, const float* gy,
                         float* gx, float* gw, float* gb, int64_t N, int64_t C, int64_t HW, bool training);
// Normalisation over C of groups laid out as (outer, C, inner): channel_norm is (N, C, HW),
// layer_norm over the last dim is (rows, C, 1). y = w (x − μ)/sqrt(σ² + eps) + b per (outer, inner).
void norm_mid_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* invstd,
                      int64_t outer, int64_t C, int64_t inner, float eps);
// gx = invstd (ĝ − mean_C(ĝ) − x̂ mean_C(ĝ x̂)) with ĝ = w gy; gw += Σ gy x̂; gb += Σ gy
void norm_mid_backward(const float* x, const float* w, const float* mean, const float* invstd, const float* gy,
                       float* gx, float* gw, float* gb, int64_t outer, int64_t C, int64_t inner);

// Running statistics of BatchNorm in training: r = (1 − m) r + m batch (mean, and unbiased variance).
void batch_norm_update_running(float* running_mean, float* running_var, const float* mean, const float* var_unbiased,
                               int64_t C, float momentum);
// Eval mode keeps the batch statistics of the backward as constants: mean = rmean, invstd = 1/sqrt(rvar + eps).
void batch_norm_eval_stats(const float* rmean, const float* rvar, float* mean, float* invstd, int64_t C, float eps);

// ---- loss ----------------------------------------------------------------------------------------
// Cross-entropy with optional class weights wc and label smoothing ε. Per row n with target t:
// q = (1−ε) onehot(t) + ε/K, l_n = −Σ_k wc[k] q_k log p_k  (unweighted: wc = 1);
// loss = Σ_n l_n / Σ_n wc[t_n]  (PyTorch's weighted mean). Writes loss[0] and dlogits = ∂loss/∂logits.
// targets are class ids in [0, K) in the same memory as logits (checked by the caller).
void cross_entropy(const float* logits, const int32_t* targets, const float* wc, int64_t N, int64_t K, float eps,
                   float* loss, float* dlogits);
// Soft-target cross-entropy (maths in tensor/kernels.h), one block like cross_entropy.
void cross_entropy_soft(const float* logits, const float* targets, const float* wc, int64_t N, int64_t K, float eps,
                        float* loss, float* dlogits);

// ---- memory ----------------------------------------------------------------------------------------
void fill(float* y, int64_t n, float v);
// dst[i] += src[i] (gradient accumulation)
void add_inplace(float* dst, const float* src, int64_t n);
// dst (contiguous, row-major over `shape`) = the strided view src[Σ idx_d · strides_d]; at most 8 dims.
void strided_copy(const float* src, const StridedView& view, float* dst);
// gx = 0 except gx[o, idx[o, i], i] = gy[o, i] (the backward of max_mid)
void max_mid_backward(const float* gy, const int32_t* idx, float* gx, int64_t outer, int64_t R, int64_t inner);

// ---- dropout: a counter-based generator, so any device gives the same mask for the same seed ---------
// u_i = counter_uniform(seed, offset + shift + i) (tensor/counter_rng.h); mask_i = u_i < p ? 0 : 1/(1 − p).
// shift = *offset_shift when given (memory on the kernel's device: a captured graph's launch reads the
// step's shift there), else 0.
void dropout_mask(float* mask, int64_t n, float p, uint64_t seed, uint64_t offset,
                  const uint64_t* offset_shift = nullptr);

// ---- optimisers: one call updates every parameter (PyTorch's update rules) -------------------------
// Parameter i is theta[i][0..n[i]) with gradient grad[i] (null: skipped) and state at offset[i] in the slabs.
// SGD: d = g + λθ; with momentum v = first ? d : μ v + d, d = nesterov ? d + μ v : v;  θ −= lr d
void sgd_update(const ParamList& p, float* v_slab, float lr, float momentum, float weight_decay, bool nesterov,
                bool first);
// Adam/AdamW at step t (1-based): decoupled: θ *= 1 − lr λ, else g += λθ;
// m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; θ −= (lr / (1−β1ᵗ)) m / (sqrt(v) / sqrt(1−β2ᵗ) + ε)
void adam_update(const ParamList& p, float* m_slab, float* v_slab, float lr, float beta1, float beta2, float eps,
                 float weight_decay, bool decoupled, int64_t t);

}  // namespace ahmsa::cuda
