// The op registry shared by the reference-fixture test and the gradient checker: a case is an
// op name, its arguments ("stride=2;pad=1") and its inputs; run_op() calls the op. Adding an op
// to this table makes both tests cover it with no new test code.
#pragma once
#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/ops.h"

namespace ahmsa::testing {

using Args = std::map<std::string, std::string>;

inline Args parse_args(const std::string& s) {  // "op=conv2d;stride=1;pad=1"
  Args a;
  std::stringstream ss(s);
  std::string kv;
  while (std::getline(ss, kv, ';')) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) a[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return a;
}

inline int geti(const Args& a, const std::string& k, int def = 0) {
  auto it = a.find(k);
  return it == a.end() ? def : std::stoi(it->second);
}
inline float getf(const Args& a, const std::string& k, float def = 0.f) {
  auto it = a.find(k);
  return it == a.end() ? def : std::stof(it->second);
}
inline std::vector<int64_t> getdims(const Args& a, const std::string& k) {
  std::vector<int64_t> d;
  std::stringstream ss(a.at(k));
  std::string x;
  while (std::getline(ss, x, ',')) d.push_back(std::stoll(x));
  return d;
}

// Runs the op on `in` (float inputs, in fixture order; integer targets separately).
// For batch_norm2d, in[3] and in[4] are the running statistics and are updated in place.
inline Tensor run_op(const Args& a, std::vector<Tensor>& in, const std::vector<int>& targets = {}) {
  const std::string& op = a.at("op");
  auto opt = [&](size_t i) { return i < in.size() ? in[i] : Tensor(); };
  if (op == "conv2d") return conv2d(in[0], in[1], opt(2), geti(a, "stride", 1), geti(a, "pad", 0));
  if (op == "matmul") return matmul(in[0], in[1]);
  if (op == "linear") return linear(in[0], in[1], opt(2));
  if (op == "add") return add(in[0], in[1]);
  if (op == "sub") return sub(in[0], in[1]);
  if (op == "mul") return mul(in[0], in[1]);
  if (op == "div") return div(in[0], in[1]);
  if (op == "relu") return relu(in[0]);
  if (op == "gelu") return gelu(in[0]);
  if (op == "sigmoid") return sigmoid(in[0]);
  if (op == "exp") return exp(in[0]);
  if (op == "log") return log(in[0]);
  if (op == "sqrt") return sqrt(in[0]);
  if (op == "square") return square(in[0]);
  if (op == "sum") return sum(in[0], getdims(a, "dims"), geti(a, "keepdim") != 0);
  if (op == "mean") return mean(in[0], getdims(a, "dims"), geti(a, "keepdim") != 0);
  if (op == "max") return max(in[0], geti(a, "dim"), geti(a, "keepdim") != 0);
  if (op == "softmax") return softmax(in[0], geti(a, "dim"));
  if (op == "log_softmax") return log_softmax(in[0], geti(a, "dim"));
  if (op == "channel_norm") return channel_norm(in[0], in[1], in[2], getf(a, "eps", 1e-5f));
  if (op == "layer_norm") return layer_norm(in[0], in[1], in[2], getf(a, "eps", 1e-5f));
  if (op == "batch_norm2d")
    return batch_norm2d(in[0], in[1], in[2], in[3], in[4], geti(a, "training") != 0, getf(a, "momentum", 0.1f),
                        getf(a, "eps", 1e-5f));
  if (op == "max_pool2d") return max_pool2d(in[0], geti(a, "kernel"), geti(a, "stride"), geti(a, "pad"));
  if (op == "adaptive_avg_pool2d") return adaptive_avg_pool2d(in[0], geti(a, "out_h"), geti(a, "out_w"));
  if (op == "adaptive_max_pool2d") return adaptive_max_pool2d(in[0], geti(a, "out_h"), geti(a, "out_w"));
  if (op == "cat") return cat({in[0], in[1]}, geti(a, "dim"));
  if (op == "multi_head_attention") return multi_head_attention(in[0], geti(a, "heads"));
  if (op == "cross_entropy")
    return cross_entropy(in[0], targets, geti(a, "weighted") ? in[1] : Tensor(), getf(a, "label_smoothing"));
  if (op == "cross_entropy_soft")
    return cross_entropy_soft(in[0], in[1], geti(a, "weighted") ? in[2] : Tensor(), getf(a, "label_smoothing"));
  throw std::invalid_argument("op registry: unknown op '" + op + "'");
}

// Relative error ‖a − b‖ / max(‖b‖, tiny), the figure the tolerances are stated in.
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += double(a[i] - b[i]) * double(a[i] - b[i]);
    den += double(b[i]) * double(b[i]);
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-12);
}

}  // namespace ahmsa::testing
