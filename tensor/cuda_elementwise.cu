// Elementwise kernels on the GPU: the twins of tensor/cpu_elementwise.cpp (maths in tensor/kernels.h).
// One thread per element in grid-stride loops; the unary map is a template argument, so each launch
// runs one branch-free loop.
#include <cmath>
#include <stdexcept>

#include "tensor/cuda_check.h"
#include "tensor/cuda_grid.h"
#include "tensor/kernels_cuda.h"

namespace ahmsa::cuda {

namespace {

constexpr float kSqrt1_2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

template <Unary op>
__device__ inline float unary_f(float x) {
  if constexpr (op == Unary::Relu) return x <= 0.f ? 0.f : x;  // NaN passes through, as in PyTorch
  if constexpr (op == Unary::Gelu) return 0.5f * x * (1.f + erff(x * kSqrt1_2));  // x Φ(x)
  if constexpr (op == Unary::Sigmoid) return 1.f / (1.f + expf(-x));
  if constexpr (op == Unary::Exp) return expf(x);
  if constexpr (op == Unary::Log) return logf(x);
  if constexpr (op == Unary::Sqrt) return sqrtf(x);
  if constexpr (op == Unary::Square) return x * x;
  return -x;  // Neg
}

// f'(x) times gy, from x or y = f(x) as the CPU kernel does.
template <Unary op>
__device__ inline float unary_df(float x, float y, float gy) {
  if constexpr (op == Unary::Relu) return x > 0.f ? gy : 0.f;
  if constexpr (op == Unary::Gelu) {  // Φ(x) + x φ(x)
    const float cdf = 0.5f * (1.f + erff(x * kSqrt1_2));
    const float pdf = expf(-0.5f * x * x) * kInvSqrt2Pi;
    return gy * (cdf + x * pdf);
  }
  if constexpr (op == Unary::Sigmoid) return gy * y * (1.f - y);
  if constexpr (op == Unary::Exp) return gy * y;
  if constexpr (op == Unary::Log) return gy / x;
  if constexpr (op == Unary::Sqrt) return gy * 0.5f / y;
  if constexpr (op == Unary::Square) return gy * 2.f * x;
  return -gy;  // Neg
}

template <Unary op>
__global__ void unary_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  AHMSA_GRID_STRIDE_LOOP(i, n) y[i] = unary_f<op>(x[i]);
}

// x or y may be null when op does not read it (the CPU kernel has the same contract).
template <Unary op>
__global__ void unary_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                      const float* __restrict__ gy, float* __restrict__ gx, int64_t n) {
  constexpr bool reads_x = op == Unary::Relu || op == Unary::Gelu || op == Unary::Log || op == Unary::Square;
  constexpr bool reads_y = op == Unary::Sigmoid || op == Unary::Exp || op == Unary::Sqrt;
  AHMSA_GRID_STRIDE_LOOP(i, n) gx[i] = unary_df<op>(reads_x ? x[i] : 0.f, reads_y ? y[i] : 0.f, gy[i]);
}

const char* unary_name(Unary op) {
  switch (op) {
    case Unary::Relu: return "relu";
    case Unary::Gelu: return "gelu";
    case Unary::Sigmoid: return "sigmoid";
    case Unary::Exp: return "exp";
    case Unary::Log: return "log";
    case Unary::Sqrt: return "sqrt";
    case Unary::Square: return "square";
    case Unary::Neg: return "neg";
  }
  return "?";
}

template <Unary op>
void unary_forward_launch(const float* x, float* y, int64_t n) {
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), unary_forward_kernel<op>)(x, y, n);
}
template <Unary op>
void unary_backward_launch(const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), unary_backward_kernel<op>)(x, y, gy, gx, n);
}

// ---- broadcast binary ops ----------------------------------------------------------------------

template <Binary op>
__device__ inline float binary_f(float p, float q) {
  if constexpr (op == Binary::Add) return p + q;
  if constexpr (op == Binary::Sub) return p - q;
  if constexpr (op == Binary::Mul) return p * q;
  return p / q;
}

// The output shape and both inputs' strides over it, after coalescing (passed by value).
struct BroadcastShape {
  int ndim = 0;
  int64_t shape[cpu::kMaxDims] = {};
  int64_t sa[cpu::kMaxDims] = {};
  int64_t sb[cpu::kMaxDims] = {};
};

// One thread per output element; its index is split into coordinates from the innermost dim out.
// Index is uint32_t when the output has fewer than 2^31 elements: 64-bit division costs several
// times the 32-bit one and would dominate this memory-bound loop.
template <Binary op, typename Index>
__global__ void binary_kernel(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y,
                              BroadcastShape s, int64_t n) {
  AHMSA_GRID_STRIDE_LOOP(i, n) {
    Index rem = Index(i), oa = 0, ob = 0;
    for (int d = s.ndim - 1; d >= 0; --d) {
      const Index size = Index(s.shape[d]);
      const Index id = rem % size;
      rem /= size;
      oa += id * Index(s.sa[d]);
      ob += id * Index(s.sb[d]);
    }
    y[i] = binary_f<op>(a[oa], b[ob]);
  }
}

// The launch's shape: cpu::coalesce_dims's folding ([B,C,H,W] + [1,C,1,1] -> [B,C,HW]).
BroadcastShape coalesce(const std::vector<int64_t>& shape, const std::vector<int64_t>& sa,
                        const std::vector<int64_t>& sb) {
  if (sa.size() != shape.size() || sb.size() != shape.size())
    throw std::invalid_argument("cuda::binary_forward: " + std::to_string(shape.size()) + "-d output with " +
                                std::to_string(sa.size()) + " and " + std::to_string(sb.size()) + " strides");
  std::vector<int64_t> s2 = shape, a2 = sa, b2 = sb;
  cpu::coalesce_dims(s2, {&a2, &b2});
  if (s2.size() > size_t(cpu::kMaxDims))
    throw std::invalid_argument("cuda::binary_forward: " + std::to_string(s2.size()) +
                                " dims after merging, at most " + std::to_string(cpu::kMaxDims));
  BroadcastShape r;
  r.ndim = int(s2.size());
  for (int d = 0; d < r.ndim; ++d) r.shape[d] = s2[d], r.sa[d] = a2[d], r.sb[d] = b2[d];
  return r;
}

// Whether every offset the kernel computes (index, and each input's offset) fits in 31 bits.
bool fits_32(const BroadcastShape& s, int64_t n) {
  if (n >= (int64_t(1) << 31)) return false;
  int64_t ma = 0, mb = 0;
  for (int d = 0; d < s.ndim; ++d) {
    if (s.sa[d] < 0 || s.sb[d] < 0) return false;
    ma += (s.shape[d] - 1) * s.sa[d];
    mb += (s.shape[d] - 1) * s.sb[d];
  }
  return ma < (int64_t(1) << 31) && mb < (int64_t(1) << 31);
}

template <Binary op>
void binary_launch(const float* a, const float* b, float* y, const BroadcastShape& s, int64_t n) {
  if (fits_32(s, n))
    AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), binary_kernel<op, uint32_t>)(a, b, y, s, n);
  else
    AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), binary_kernel<op, int64_t>)(a, b, y, s, n);
}

template <Binary op>
__global__ void scalar_kernel(const float* __restrict__ a, float s, float* __restrict__ y, int64_t n) {
  AHMSA_GRID_STRIDE_LOOP(i, n) y[i] = binary_f<op>(a[i], s);
}

const char* binary_name(Binary op) {
  switch (op) {
    case Binary::Add: return "add";
    case Binary::Sub: return "sub";
    case Binary::Mul: return "mul";
    case Binary::Div: return "div";
  }
  return "?";
}

std::string shape_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

void unary_forward(Unary op, const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  switch (op) {
    case Unary::Relu: unary_forward_launch<Unary::Relu>(x, y, n); break;
    case Unary::Gelu: unary_forward_launch<Unary::Gelu>(x, y, n); break;
    case Unary::Sigmoid: unary_forward_launch<Unary::Sigmoid>(x, y, n); break;
    case Unary::Exp: unary_forward_launch<Unary::Exp>(x, y, n); break;
    case Unary::Log: unary_forward_launch<Unary::Log>(x, y, n); break;
    case Unary::Sqrt: unary_forward_launch<Unary::Sqrt>(x, y, n); break;
    case Unary::Square: unary_forward_launch<Unary::Square>(x, y, n); break;
    case Unary::Neg: unary_forward_launch<Unary::Neg>(x, y, n); break;
  }
  check_launch_of(
      [&] { return std::string("unary_forward (") + unary_name(op) + ") on " + std::to_string(n) + " elements"; });
}

void unary_backward(Unary op, const float* x, const float* y, const float* gy, float* gx, int64_t n) {
  if (n <= 0) return;
  switch (op) {
    case Unary::Relu: unary_backward_launch<Unary::Relu>(x, y, gy, gx, n); break;
    case Unary::Gelu: unary_backward_launch<Unary::Gelu>(x, y, gy, gx, n); break;
    case Unary::Sigmoid: unary_backward_launch<Unary::Sigmoid>(x, y, gy, gx, n); break;
    case Unary::Exp: unary_backward_launch<Unary::Exp>(x, y, gy, gx, n); break;
    case Unary::Log: unary_backward_launch<Unary::Log>(x, y, gy, gx, n); break;
    case Unary::Sqrt: unary_backward_launch<Unary::Sqrt>(x, y, gy, gx, n); break;
    case Unary::Square: unary_backward_launch<Unary::Square>(x, y, gy, gx, n); break;
    case Unary::Neg: unary_backward_launch<Unary::Neg>(x, y, gy, gx, n); break;
  }
  check_launch_of(
      [&] { return std::string("unary_backward (") + unary_name(op) + ") on " + std::to_string(n) + " elements"; });
}

void binary_forward(Binary op, const float* a, const std::vector<int64_t>& sa, const float* b,
                    const std::vector<int64_t>& sb, float* y, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n <= 0) return;
  const BroadcastShape s = coalesce(shape, sa, sb);
  switch (op) {
    case Binary::Add: binary_launch<Binary::Add>(a, b, y, s, n); break;
    case Binary::Sub: binary_launch<Binary::Sub>(a, b, y, s, n); break;
    case Binary::Mul: binary_launch<Binary::Mul>(a, b, y, s, n); break;
    case Binary::Div: binary_launch<Binary::Div>(a, b, y, s, n); break;
  }
  check_launch_of([&] {
    return std::string("binary_forward (") + binary_name(op) + ") on output " + shape_str(shape) + ", strides a " +
           shape_str(sa) + ", b " + shape_str(sb);
  });
}

void scalar_forward(Binary op, const float* a, float s, float* y, int64_t n) {
  if (n <= 0) return;
  switch (op) {
    case Binary::Add: AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), scalar_kernel<Binary::Add>)(a, s, y, n); break;
    case Binary::Sub: AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), scalar_kernel<Binary::Sub>)(a, s, y, n); break;
    case Binary::Mul: AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), scalar_kernel<Binary::Mul>)(a, s, y, n); break;
    case Binary::Div: AHMSA_LAUNCH(blocks_for(n), kThreads, 0, stream(), scalar_kernel<Binary::Div>)(a, s, y, n); break;
  }
  check_launch_of(
      [&] { return std::string("scalar_forward (") + binary_name(op) + ") on " + std::to_string(n) + " elements"; });
}

}  // namespace ahmsa::cuda
