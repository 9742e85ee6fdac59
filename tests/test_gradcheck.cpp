// The gradient checker: every op's backward against central finite differences.
//
// Cases come from two places and run through the same registry (tests/op_registry.h):
//   (a) every case of tests/fixtures/ops.safetensors, on the fixture's own inputs;
//   (b) the table below: random inputs of other shapes — odd sizes, size-1 dimensions, batch 1,
//       broadcasting against size-1 and 0-d tensors, stride-2 and 1×1 convolutions on odd sizes,
//       adaptive pools whose output does not divide the input — and non-contiguous inputs
//       (a transposed or narrowed view of the leaf is what the op receives).
//
// The scalar checked is L = Σ out ⊙ gout for a fixed random gout, accumulated in double, so
// ∂L/∂x is exactly what out.backward(gout) leaves in x.grad(). For each input element x_j:
//   numeric n_j = (L(x_j + h) − L(x_j − h)) / (x_j⁺ − x_j⁻),   h = 1e-3 · max(1, |x_j|),
// with the denominator the float32 difference of the perturbed values actually used.
//
// Tolerance (float32 forward, truncation O(h²), rounding ≈ 1e-7·|L|/h): for every input,
//   elementwise   |a_j − n_j| ≤ 2e-3 · max(1, ‖n‖∞) + 1e-2 · |n_j|
//   and overall   ‖a − n‖₂ ≤ 2e-3 · max(‖n‖₂, 1)      (a = analytic gradient).
// A gradient scaled by 1.02 or with one wrong element fails this (checked below).
//
// Non-smooth ops (relu, max, max pools): the random inputs are made tie-free and kink-free by
// construction (values at least 6e-3 apart, |x| ≥ 0.02 for relu). The fixture inputs (torch.randn)
// do hold near-ties (two values 1e-6 apart in amax_b): an element whose one-sided differences
// disagree (|d⁺ − d⁻| > 0.05·max(1, |d⁺|, |d⁻|)) is skipped, but only if it really is within 2h of a
// kink (another value of the same input, or 0); a skip anywhere else fails the test.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <numeric>
#include <set>

#include "model/safetensors.h"
#include "op_registry.h"
#include "tensor/parallel.h"

using namespace ahmsa;
using namespace ahmsa::testing;

namespace {

constexpr double kAbsTol = 2e-3;   // × max(1, ‖n‖∞), elementwise
constexpr double kRelTol = 1e-2;   // × |n_j|, elementwise
constexpr double kNormTol = 2e-3;  // ‖a − n‖₂ / max(‖n‖₂, 1)
constexpr double kKinkTol = 0.05;

// A test case: op arguments, the leaves (the tensors differentiated against), which leaves get
// a gradient, and how each leaf is presented to the op (identity, or a view of it).
struct Case {
  std::string name;
  Args args;
  std::vector<Tensor> leaves;
  std::vector<bool> differentiable;
  std::vector<std::function<Tensor(const Tensor&)>> present;  // empty function = the leaf itself
  std::vector<int> targets;                                   // cross_entropy only
};

bool non_smooth(const std::string& op) {
  return op == "relu" || op == "max" || op == "max_pool2d" || op == "adaptive_max_pool2d";
}

// A few ops the shared registry does not list (scalar forms, views, dropout); the rest go to run_op.
Tensor run_case(const Args& a, std::vector<Tensor>& in, const std::vector<int>& targets) {
  const std::string& op = a.at("op");
  if (op == "neg") return neg(in[0]);
  if (op == "add_scalar") return add(in[0], getf(a, "s"));
  if (op == "mul_scalar") return mul(in[0], getf(a, "s"));
  if (op == "sum_all") return sum(in[0]);
  if (op == "mean_all") return mean(in[0]);
  if (op == "reshape") return in[0].reshape(getdims(a, "shape"));
  if (op == "permute") return in[0].permute(getdims(a, "order"));
  if (op == "narrow") return in[0].narrow(geti(a, "dim"), geti(a, "start"), geti(a, "length"));
  if (op == "unsqueeze") return in[0].unsqueeze(geti(a, "dim"));
  if (op == "dropout") {  // the same mask on every evaluation: a fresh generator with a fixed seed
    Generator g(uint64_t(geti(a, "seed")));
    return dropout(in[0], getf(a, "p"), true, g);
  }
  return run_op(a, in, targets);
}

Tensor evaluate(Case& c) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.leaves.size(); ++i)
    in.push_back(i < c.present.size() && c.present[i] ? c.present[i](c.leaves[i]) : c.leaves[i]);
  Tensor out = run_case(c.args, in, c.targets);
  // batch_norm2d updates its running statistics in place: they are inputs 3 and 4 and no leaf
  // of ours is a view of them, so nothing else needs restoring.
  return out;
}

double dot(const Tensor& out, const std::vector<float>& gout) {
  std::vector<float> o = out.to_vector();
  double s = 0;
  for (size_t i = 0; i < o.size(); ++i) s += double(o[i]) * double(gout[i]);
  return s;
}

struct Gradients {
  std::vector<std::vector<float>> per_leaf;  // empty for leaves without a gradient
  int64_t elements = 0, skipped = 0;
};

Gradients analytic(Case& c, const std::vector<float>& gout) {
  for (size_t i = 0; i < c.leaves.size(); ++i) {
    c.leaves[i].zero_grad();
    c.leaves[i].set_requires_grad(c.differentiable[i]);
  }
  Tensor out = evaluate(c);
  out.backward(Tensor::from_vector(out.shape(), gout));
  Gradients g;
  for (size_t i = 0; i < c.leaves.size(); ++i) {
    if (!c.differentiable[i]) {
      g.per_leaf.emplace_back();
      continue;
    }
    Tensor gr = c.leaves[i].grad();
    REQUIRE_MESSAGE(gr.defined(), c.name << ": no gradient reached input " << i);
    REQUIRE(gr.shape() == c.leaves[i].shape());
    g.per_leaf.push_back(gr.to_vector());
  }
  return g;
}

// Restores the thread count on scope exit.
struct ThreadsGuard {
  int saved = num_threads();
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved); }
};

Gradients numeric(Case& c, const std::vector<float>& gout) {
  NoGradGuard no_grad;
  // Thousands of tiny forwards: on one thread, because entering an OpenMP region per tiny kernel
  // can cost a scheduler time slice when the shared 2-core machine is oversubscribed (measured
  // under load, before sgemm lost its internal barriers: 0.4 s on one thread, 23 s on two). The
  // analytic pass keeps the default thread count, so the threaded kernels are what is checked.
  ThreadsGuard one_thread(1);
  Gradients g;
  const bool kinks = non_smooth(c.args.at("op"));
  for (size_t i = 0; i < c.leaves.size(); ++i) {
    std::vector<float> n;
    if (c.differentiable[i]) {
      Tensor& x = c.leaves[i];
      REQUIRE(x.is_contiguous());
      float* p = x.data();
      double L0 = kinks ? dot(evaluate(c), gout) : 0.0;
      n.resize(size_t(x.numel()));
      for (int64_t j = 0; j < x.numel(); ++j) {
        const float x0 = p[j];
        const float h = 1e-3f * std::max(1.f, std::fabs(x0));
        const float xp = x0 + h, xm = x0 - h;
        p[j] = xp;
        double Lp = dot(evaluate(c), gout);
        p[j] = xm;
        double Lm = dot(evaluate(c), gout);
        p[j] = x0;
        n[size_t(j)] = float((Lp - Lm) / (double(xp) - double(xm)));
        ++g.elements;
        if (kinks) {  // one-sided slopes disagree: a kink within h, the difference means nothing
          double dp = (Lp - L0) / (double(xp) - double(x0)), dm = (L0 - Lm) / (double(x0) - double(xm));
          if (std::fabs(dp - dm) > kKinkTol * std::max({1.0, std::fabs(dp), std::fabs(dm)})) {
            n[size_t(j)] = NAN;  // marks "skip"
            ++g.skipped;
            // A kink of these ops is where two inputs tie (max) or x = 0 (relu): insist on one.
            bool tie = std::fabs(x0) <= 2 * h;
            for (int64_t k = 0; k < x.numel() && !tie; ++k) tie = k != j && std::fabs(p[k] - x0) <= 2 * h;
            CHECK_MESSAGE(tie, c.name << ": one-sided slopes " << dp << " and " << dm << " differ at input " << i
                                      << " element " << j << " = " << x0 << ", but no other value is within 2h");
          }
        }
      }
    }
    g.per_leaf.push_back(std::move(n));
  }
  return g;
}

// The verdict on one input's gradient; `why` says what failed.
struct Verdict {
  bool ok = true;
  double worst_ratio = 0;  // max over elements of |a − n| / allowed
  double norm_error = 0;   // ‖a − n‖₂ / max(‖n‖₂, 1)
  std::string why;
};

Verdict compare(const std::vector<float>& a, const std::vector<float>& n) {
  Verdict v;
  double inf = 0, nn = 0, dd = 0;
  for (size_t j = 0; j < n.size(); ++j)
    if (!std::isnan(n[j])) inf = std::max(inf, double(std::fabs(n[j]))), nn += double(n[j]) * n[j];
  const double atol = kAbsTol * std::max(1.0, inf);
  for (size_t j = 0; j < n.size(); ++j) {
    if (std::isnan(n[j])) continue;
    double d = std::fabs(double(a[j]) - double(n[j]));
    dd += d * d;
    double allowed = atol + kRelTol * std::fabs(n[j]);
    if (d / allowed > v.worst_ratio) {
      v.worst_ratio = d / allowed;
      if (d > allowed) {
        v.ok = false;
        v.why = "element " + std::to_string(j) + ": analytic " + std::to_string(a[j]) + ", numeric " +
                std::to_string(n[j]);
      }
    }
  }
  v.norm_error = std::sqrt(dd) / std::max(std::sqrt(nn), 1.0);
  if (v.norm_error > kNormTol) {
    v.ok = false;
    v.why += (v.why.empty() ? "" : "; ") + std::string("relative norm error ") + std::to_string(v.norm_error);
  }
  return v;
}

struct Summary {
  int cases = 0;
  int64_t elements = 0, skipped = 0;
  double worst_ratio = 0, worst_norm = 0;
  std::string worst_case;
};

void check_case(Case& c, uint64_t seed, Summary& sum) {
  CAPTURE(c.name);
  // gout: fixed random, one per case.
  Tensor out = [&] {
    NoGradGuard ng;
    return evaluate(c);
  }();
  Generator g(seed);
  std::vector<float> gout(size_t(out.numel()));
  for (auto& v : gout) v = g.normal();
  Gradients an = analytic(c, gout), nu = numeric(c, gout);
  for (size_t i = 0; i < c.leaves.size(); ++i) {
    if (!c.differentiable[i]) continue;
    Verdict v = compare(an.per_leaf[i], nu.per_leaf[i]);
    CHECK_MESSAGE(v.ok, c.name << " input " << i << " " << shape_str(c.leaves[i].shape()) << ": " << v.why);
    if (v.worst_ratio > sum.worst_ratio) sum.worst_ratio = v.worst_ratio, sum.worst_case = c.name;
    sum.worst_norm = std::max(sum.worst_norm, v.norm_error);
  }
  sum.cases++;
  sum.elements += nu.elements;
  sum.skipped += nu.skipped;
}

// ---- random inputs --------------------------------------------------------------------------

enum class Fill { Normal, Positive, AwayFromZero, Distinct };

Tensor random_tensor(const Shape& s, Fill f, Generator& g) {
  Tensor t = Tensor::empty(s);
  float* p = t.data();
  const int64_t n = t.numel();
  switch (f) {
    case Fill::Normal:
      for (int64_t i = 0; i < n; ++i) p[i] = g.normal();
      break;
    case Fill::Positive:  // log, sqrt
      for (int64_t i = 0; i < n; ++i) p[i] = g.uniform(0.5f, 2.f);
      break;
    case Fill::AwayFromZero:  // relu's kink, divisors: |x| in [0.02, 2]
      for (int64_t i = 0; i < n; ++i) p[i] = (g.uniform() < 0.5f ? -1.f : 1.f) * g.uniform(0.02f, 2.f);
      break;
    case Fill::Distinct: {  // max / max pools: a shuffled ladder, neighbours 6e-3 .. 1.4e-2 apart
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[g.below(uint32_t(i + 1))]);
      for (int64_t i = 0; i < n; ++i)
        p[i] = 0.01f * float(order[size_t(i)] - n / 2) + g.uniform(-0.002f, 0.002f);
      break;
    }
  }
  return t;
}

struct Spec {
  std::string args;            // "op=...;..."
  std::vector<Shape> shapes;   // one per input (leaf shapes)
  std::vector<Fill> fills;     // defaults to Normal
  std::vector<bool> grads;     // defaults to true
  std::string view;            // "" | "t0" (input 0 is leaf.transpose(-1,-2)) | "n0" (input 0 narrowed on dim 0)
  std::vector<int> targets;
  Spec(std::string a, std::vector<Shape> s, std::vector<Fill> f = {}, std::vector<bool> g = {}, std::string v = "",
       std::vector<int> t = {})
      : args(std::move(a)), shapes(std::move(s)), fills(std::move(f)), grads(std::move(g)), view(std::move(v)),
        targets(std::move(t)) {}
};

std::vector<Spec> extra_specs() {
  const Fill N = Fill::Normal, P = Fill::Positive, Z = Fill::AwayFromZero, D = Fill::Distinct;
  return {
      // elementwise with broadcasting (size-1 dims on both sides, a 0-d operand, odd sizes)
      {"op=add", {{5, 1, 3}, {1, 4, 1}}},
      {"op=add", {{}, {2, 3}}},
      {"op=sub", {{7}, {3, 7}}},
      {"op=sub", {{1}, {1, 1}}},
      {"op=mul", {{2, 1, 5}, {5}}},
      {"op=mul", {{3, 1}, {1, 3}}},
      {"op=div", {{3, 4}, {3, 1}}, {N, Z}},
      {"op=div", {{1, 5}, {2, 1}}, {N, Z}},
      {"op=relu", {{1, 1, 1, 5}}, {Z}},
      {"op=relu", {{3, 7, 2}}, {Z}},
      {"op=gelu", {{9}}},
      {"op=sigmoid", {{2, 1, 3}}},
      {"op=exp", {{4, 1}}},
      {"op=log", {{1, 7}}, {P}},
      {"op=sqrt", {{3, 3}}, {P}},
      {"op=square", {{5, 2}}},
      {"op=neg", {{3, 1, 2}}},
      {"op=add_scalar;s=0.75", {{2, 3}}},
      {"op=mul_scalar;s=-1.5", {{5}}},
      // reductions
      {"op=sum;dims=0,2;keepdim=0", {{3, 1, 5}}},
      {"op=sum;dims=1;keepdim=1", {{1, 5, 1}}},
      {"op=sum;dims=0,1,2;keepdim=0", {{2, 3, 2}}},
      {"op=sum_all", {{3, 5}}},
      {"op=mean;dims=0;keepdim=0", {{5, 3}}},
      {"op=mean;dims=1,2;keepdim=1", {{2, 3, 1}}},
      {"op=mean;dims=-1;keepdim=0", {{2, 1, 7}}},
      {"op=mean_all", {{1, 9}}},
      {"op=max;dim=0;keepdim=0", {{5, 1, 3}}, {D}},
      {"op=max;dim=-1;keepdim=1", {{1, 7}}, {D}},
      {"op=max;dim=1;keepdim=0", {{1, 1, 4}}, {D}},  // reducing a size-1 dim
      {"op=softmax;dim=0", {{5, 3}}},
      {"op=softmax;dim=-1", {{1, 1, 9}}},
      {"op=softmax;dim=1", {{2, 1, 3}}},  // softmax over one element: constant 1
      {"op=log_softmax;dim=0", {{3, 2, 5}}},
      {"op=log_softmax;dim=-1", {{1, 2}}},
      // matrix products
      {"op=matmul", {{1, 5}, {5, 1}}},
      {"op=matmul", {{17, 1}, {1, 13}}},
      {"op=matmul", {{1, 3, 7}, {1, 7, 2}}},
      {"op=matmul", {{2, 5, 3}, {2, 3, 4}}, {}, {}, "t0"},
      {"op=linear", {{1, 7}, {3, 7}}},
      {"op=linear", {{2, 1, 3, 5}, {1, 5}, {1}}},
      {"op=linear", {{4, 33}, {19, 33}, {19}}},
      {"op=linear", {{6, 5}, {3, 5}, {3}}, {}, {}, "n0"},
      // convolution
      {"op=conv2d;stride=2;pad=0", {{1, 3, 7, 5}, {2, 3, 1, 1}, {2}}},  // 1×1, stride 2, odd sizes
      {"op=conv2d;stride=2;pad=1", {{2, 2, 9, 7}, {3, 2, 3, 3}, {3}}},
      {"op=conv2d;stride=1;pad=3", {{2, 2, 7, 7}, {1, 2, 7, 7}}},  // spatial-attention conv 2→1, k7
      {"op=conv2d;stride=1;pad=2", {{1, 1, 5, 3}, {1, 1, 5, 5}, {1}}},
      {"op=conv2d;stride=3;pad=1", {{1, 2, 8, 10}, {2, 2, 3, 3}, {2}}},
      {"op=conv2d;stride=1;pad=1", {{2, 3, 5, 4}, {4, 3, 3, 3}, {4}}, {}, {true, false, true}},
      {"op=conv2d;stride=1;pad=1", {{1, 2, 5, 6}, {2, 2, 3, 3}, {2}}, {}, {}, "t0"},  // W/H-transposed view
      // pooling
      {"op=max_pool2d;kernel=3;stride=2;pad=1", {{1, 2, 9, 7}}, {D}},
      {"op=max_pool2d;kernel=2;stride=2;pad=0", {{1, 1, 5, 7}}, {D}},
      {"op=max_pool2d;kernel=3;stride=1;pad=1", {{2, 1, 4, 4}}, {D}},
      {"op=adaptive_avg_pool2d;out_h=3;out_w=2", {{1, 2, 7, 5}}},
      {"op=adaptive_avg_pool2d;out_h=1;out_w=1", {{2, 3, 5, 3}}},
      {"op=adaptive_avg_pool2d;out_h=1;out_w=4", {{2, 1, 1, 9}}},
      {"op=adaptive_avg_pool2d;out_h=4;out_w=4", {{1, 1, 5, 5}}},  // overlapping bins
      {"op=adaptive_max_pool2d;out_h=3;out_w=2", {{1, 2, 7, 5}}, {D}},
      {"op=adaptive_max_pool2d;out_h=1;out_w=1", {{1, 2, 9, 9}}, {D}},
      {"op=adaptive_max_pool2d;out_h=4;out_w=4", {{1, 1, 5, 5}}, {D}},
      // normalisation (affine parameters around 1 and 0; running statistics not differentiated)
      {"op=batch_norm2d;training=1;momentum=0.1;eps=1e-5", {{1, 2, 3, 5}, {2}, {2}, {2}, {2}}, {N, P, N, N, P},
       {true, true, true, false, false}},
      {"op=batch_norm2d;training=1;momentum=0.1;eps=1e-5", {{3, 4, 1, 1}, {4}, {4}, {4}, {4}}, {N, P, N, N, P},
       {true, true, true, false, false}},
      {"op=batch_norm2d;training=0;momentum=0.1;eps=1e-5", {{2, 3, 3, 3}, {3}, {3}, {3}, {3}}, {N, P, N, N, P},
       {true, true, true, false, false}},
      {"op=channel_norm;eps=1e-5", {{1, 3, 2, 5}, {3}, {3}}, {N, P, N}},
      {"op=channel_norm;eps=1e-5", {{2, 2, 1, 1}, {2}, {2}}, {N, P, N}},
      {"op=layer_norm;eps=1e-5", {{5, 3}, {3}, {3}}, {N, P, N}},
      {"op=layer_norm;eps=1e-5", {{1, 1, 7}, {7}, {7}}, {N, P, N}},
      {"op=layer_norm;eps=1e-5", {{4, 6}, {6}, {6}}, {N, P, N}, {}, "t0"},
      // shape ops and views
      {"op=cat;dim=0", {{1, 3}, {2, 3}}},
      {"op=cat;dim=-1", {{2, 1, 2}, {2, 1, 3}}},
      {"op=reshape;shape=3,-1", {{2, 3, 2}}},
      {"op=reshape;shape=5,2", {{2, 5}}, {}, {}, "t0"},  // reshape of a non-contiguous view copies
      {"op=permute;order=2,0,1", {{2, 3, 4}}},
      {"op=narrow;dim=1;start=1;length=3", {{2, 5, 2}}},
      {"op=unsqueeze;dim=1", {{3, 2}}},
      // regularisation and loss
      {"op=dropout;p=0.3;seed=7", {{4, 5}}},
      {"op=cross_entropy;weighted=0;label_smoothing=0", {{1, 3}}, {}, {}, "", {2}},
      {"op=cross_entropy;weighted=1;label_smoothing=0.2", {{5, 2}, {2}}, {N, P}, {true, false}, "", {0, 1, 1, 0, 1}},
      {"op=cross_entropy;weighted=0;label_smoothing=0.1", {{3, 7}}, {}, {}, "", {6, 0, 3}},
      {"op=cross_entropy_soft;weighted=0;label_smoothing=0", {{4, 3}, {4, 3}}, {N, P}, {true, false}},
      {"op=cross_entropy_soft;weighted=1;label_smoothing=0.2", {{5, 2}, {5, 2}, {2}}, {N, P, P}, {true, false, false}},
      {"op=cross_entropy_soft;weighted=0;label_smoothing=0.1", {{1, 7}, {1, 7}}, {N, P}, {true, false}},
  };
}

Case make_case(const Spec& s, int index, Generator& g) {
  Case c;
  c.args = parse_args(s.args);
  c.name = "extra#" + std::to_string(index) + " " + s.args;
  c.targets = s.targets;
  for (size_t i = 0; i < s.shapes.size(); ++i) {
    Fill f = i < s.fills.size() ? s.fills[i] : Fill::Normal;
    Shape shape = s.shapes[i];
    if (i == 0 && s.view == "t0") std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
    if (i == 0 && s.view == "n0") shape[0] += 3;  // the op sees rows [1, 1 + shapes[0][0])
    c.leaves.push_back(random_tensor(shape, f, g));
    c.differentiable.push_back(i < s.grads.size() ? bool(s.grads[i]) : true);
  }
  if (s.view == "t0") c.present.push_back([](const Tensor& t) { return t.transpose(-1, -2); });
  if (s.view == "n0") {
    int64_t rows = s.shapes[0][0];
    c.present.push_back([rows](const Tensor& t) { return t.narrow(0, 1, rows); });
  }
  return c;
}

std::vector<Case> fixture_cases() {
  auto f = read_safetensors(AHMSA_SOURCE_DIR "/tests/fixtures/ops.safetensors");
  std::vector<Case> cases;
  for (auto& [name, spec] : f.metadata) {
    Args a = parse_args(spec);
    if (!a.count("op")) continue;
    Case c;
    c.name = "fixture " + name + " " + spec;
    c.args = a;
    const bool ce = a["op"] == "cross_entropy";
    for (int i = 0; f.has(name + "/in" + std::to_string(i)); ++i) {
      std::string key = name + "/in" + std::to_string(i);
      if (ce && i == 1) {
        for (auto t : f.ints(key)) c.targets.push_back(int(t));
        continue;
      }
      c.leaves.push_back(f.tensor(key));
      c.differentiable.push_back(f.has(name + "/grad" + std::to_string(i)));
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

void print_summary(const char* what, const Summary& s, double seconds) {
  std::printf("gradcheck %s: %d cases, %lld elements (%lld skipped at kinks), worst |a-n|/allowed %.3f (%s), "
              "worst norm error %.2e, %.1f s\n",
              what, s.cases, (long long)s.elements, (long long)s.skipped, s.worst_ratio, s.worst_case.c_str(),
              s.worst_norm, seconds);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("gradcheck: every fixture case against central differences") {
  auto t0 = std::chrono::steady_clock::now();
  auto cases = fixture_cases();
  REQUIRE(cases.size() >= 40);
  Summary s;
  std::set<std::string> ops;
  for (size_t i = 0; i < cases.size(); ++i) {
    check_case(cases[i], 1000 + i, s);
    ops.insert(cases[i].args.at("op"));
  }
  CHECK(s.cases == int(cases.size()));
  CHECK(ops.size() >= 25);
  print_summary("fixtures", s, seconds_since(t0));
}

TEST_CASE("gradcheck: random shapes (odd sizes, size-1 dims, broadcasting, strided views)") {
  auto t0 = std::chrono::steady_clock::now();
  Generator g(20250102);
  auto specs = extra_specs();
  Summary s;
  for (size_t i = 0; i < specs.size(); ++i) {
    Case c = make_case(specs[i], int(i), g);
    check_case(c, 5000 + i, s);
  }
  CHECK(s.cases == int(specs.size()));
  CHECK(s.skipped == 0);  // the random inputs are kink-free by construction
  print_summary("random shapes", s, seconds_since(t0));
}

TEST_CASE("gradcheck: the checker flags wrong gradients") {
  // Take a smooth case, compute the true gradients, then corrupt them in the ways a buggy
  // backward would: scale all by 1.02, flip one element's sign, drop one element to 0.
  Generator g(99);
  Case c = make_case({"op=conv2d;stride=2;pad=1", {{2, 2, 9, 7}, {3, 2, 3, 3}, {3}}}, 0, g);
  Tensor out = evaluate(c);
  std::vector<float> gout(size_t(out.numel()));
  for (auto& v : gout) v = g.normal();
  Gradients an = analytic(c, gout), nu = numeric(c, gout);
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    const auto& a = an.per_leaf[i];
    const auto& n = nu.per_leaf[i];
    CHECK(compare(a, n).ok);

    std::vector<float> scaled = a;
    for (auto& v : scaled) v *= 1.02f;
    CHECK_FALSE(compare(scaled, n).ok);

    size_t big = size_t(std::max_element(a.begin(), a.end(), [](float p, float q) { return std::fabs(p) < std::fabs(q); }) -
                        a.begin());
    std::vector<float> flipped = a;
    flipped[big] = -flipped[big];
    CHECK_FALSE(compare(flipped, n).ok);

    std::vector<float> dropped = a;
    dropped[big] = 0.f;
    CHECK_FALSE(compare(dropped, n).ok);
  }
  // A numeric difference that does not match a wrong-by-transpose weight gradient either.
  std::vector<float> wt = an.per_leaf[1];
  std::reverse(wt.begin(), wt.end());
  CHECK_FALSE(compare(wt, nu.per_leaf[1]).ok);
}
