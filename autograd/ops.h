// The differentiable ops: exactly the set AHMSA-Net and its training need.
//
// Each op lives in autograd/ops_<family>.cpp as a forward that calls a kernel through the dispatch
// layer (tensor/backend.h: tt::, which runs the CPU kernel of tensor/kernels.h or its CUDA twin) and,
// beside it, the backward closure it records. Inputs may be any strided view: ops take contiguous
// copies where the kernel needs them. All inputs of an op must be on one device (else a
// std::runtime_error naming the op and each argument's device) and the outputs are made there.
// Shapes are checked and a mismatch throws ShapeError naming the op and the shapes.
#pragma once
#include <vector>

#include "autograd/autograd.h"
#include "tensor/rng.h"
#include "tensor/tensor.h"

namespace ahmsa {

// ---- elementwise, with NumPy/PyTorch broadcasting ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, float s);
Tensor mul(const Tensor& a, float s);
Tensor neg(const Tensor& a);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
Tensor sigmoid(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
inline Tensor operator+(const Tensor& a, float s) { return add(a, s); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// In place, no autograd: dst += src (same shape). Used for gradient accumulation and optimisers.
void add_inplace(Tensor& dst, const Tensor& src);

// ---- reductions ----
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor sum(const Tensor& x);  // all elements -> shape []
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor max(const Tensor& x, int64_t dim, bool keepdim = false);  // values; the gradient goes to the argmax
// Sums `g` over broadcast dimensions so that it has `shape` (the backward of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- matrix products ----
Tensor matmul(const Tensor& a, const Tensor& b);  // [M,K]x[K,N] or batched [B,M,K]x[B,K,N]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);  // x[...,in] w[out,in] b[out] or undefined

// Multi-head self-attention of each of B sequences of T tokens: qkv [B, T, 3C] holds [q | k | v]
// per token, each split into `heads` heads of C/heads contiguous dims; returns the heads'
// softmax(q kᵀ / sqrt(d)) v concatenated in order, [B, T, C].
Tensor multi_head_attention(const Tensor& qkv, int64_t heads);

// ---- convolution and pooling (NCHW) ----
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride = 1, int pad = 0);
Tensor max_pool2d(const Tensor& x, int kernel, int stride, int pad = 0);
// PyTorch's bins: output cell i covers input rows floor(i*H/oh) .. ceil((i+1)*H/oh) - 1.
Tensor adaptive_avg_pool2d(const Tensor& x, int out_h, int out_w);
Tensor adaptive_max_pool2d(const Tensor& x, int out_h, int out_w);

// ---- normalisation ----
// Training: normalises with the biased batch variance and updates the running statistics in
// place (running_var with the unbiased variance), PyTorch semantics. Eval: uses running stats.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);
Tensor channel_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);  // LayerNorm over C of NCHW
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);    // over the last dim

// ---- shape ----
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);

// ---- regularisation and loss ----
// Inverted dropout: zeroes with probability p and scales survivors by 1/(1-p); identity when !training.
// The mask comes from the counter-based stream (tensor/counter_rng.h): element i of a call uses
// counter_uniform(seed, offset + i) with gen.counter_block(numel), so the same seed gives the same mask
// on any device and thread count, and calls continue the stream. (Masks changed from earlier versions,
// which drew one gen.uniform() per element: a run with the same seed now drops different units.)
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);
// Mean cross-entropy of logits [N,K] against class ids; optional class weights [K] (PyTorch's
// weighted mean) and label smoothing eps (targets (1-eps) one-hot + eps/K).
Tensor cross_entropy(const Tensor& logits, const std::vector<int>& targets, const Tensor& class_weights = Tensor(),
                     float label_smoothing = 0.f);
// The same with the class ids already in memory on the logits' device (no upload: a captured training
// step reads the batch's ids where the host wrote them). The ids must lie in [0, K): not checked here.
class IntBuffer;
Tensor cross_entropy(const Tensor& logits, const IntBuffer& targets, const Tensor& class_weights = Tensor(),
                     float label_smoothing = 0.f);
// Cross-entropy against soft targets [N, K] (rows of class probabilities, e.g. mixup's), PyTorch's
// cross_entropy with probability targets: the mean over rows of −Σ_k w_k q_nk log softmax(logits)_nk with
// q = (1 − ε) targets + ε/K. No gradient flows to the targets.
Tensor cross_entropy_soft(const Tensor& logits, const Tensor& targets, const Tensor& class_weights = Tensor(),
                          float label_smoothing = 0.f);

}  // namespace ahmsa
