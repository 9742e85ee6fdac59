// The autograd tape: accumulation, shared subexpressions, no_grad, freed graphs, retain_graph,
// and the errors that name the op and the shapes.
#include <doctest/doctest.h>

#include <pthread.h>

#include <cmath>

#include "autograd/ops.h"

using namespace ahmsa;

namespace {

Tensor leaf(const Shape& s, std::vector<float> v) { return Tensor::from_vector(s, v).set_requires_grad(true); }

template <class E, class F>
std::string message_of(F&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void check_close(const std::vector<float>& a, const std::vector<float>& b, float tol = 1e-6f) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(tol));
}

}  // namespace

TEST_CASE("gradients of a leaf accumulate across backward calls until zero_grad") {
  Tensor w = leaf({3}, {1, 2, 3});
  Tensor x = Tensor::from_vector({3}, {4, 5, 6});
  sum(mul(w, x)).backward();
  check_close(w.grad().to_vector(), {4, 5, 6});
  sum(mul(w, x)).backward();  // a second, independent graph: gradients add up
  check_close(w.grad().to_vector(), {8, 10, 12});
  sum(square(w)).backward();  // a different loss adds 2w
  check_close(w.grad().to_vector(), {10, 14, 18});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  sum(w).backward();
  check_close(w.grad().to_vector(), {1, 1, 1});
  CHECK_FALSE(x.grad().defined());  // x never required a gradient
}

TEST_CASE("a tensor used twice in one graph gets both contributions") {
  Tensor x = leaf({2}, {3, -2});
  sum(mul(x, x)).backward();  // d(x²) = 2x, through both inputs of one node
  check_close(x.grad().to_vector(), {6, -4});
  x.zero_grad();
  sum(add(x, x)).backward();  // add hands the same gradient tensor to both inputs
  check_close(x.grad().to_vector(), {2, 2});
  x.zero_grad();
  // a diamond: a = 2x, L = Σ (a + a·a) = Σ (2x + 4x²), dL/dx = 2 + 8x
  Tensor a = mul(x, 2.f);
  sum(add(a, mul(a, a))).backward();
  check_close(x.grad().to_vector(), {26, -14});
  x.zero_grad();
  // the same intermediate through views: y = x.reshape, z = y.unsqueeze, L = Σ y + Σ 3 z
  Tensor y = x.reshape({1, 2});
  sum(add(sum(y), sum(mul(y.unsqueeze(0), 3.f)))).backward();
  check_close(x.grad().to_vector(), {4, 4});
}

TEST_CASE("gradients flow through views into the right elements") {
  Tensor x = leaf({2, 3}, {1, 2, 3, 4, 5, 6});
  // narrow picks column 1..2 of each row; permute + contiguous; weights differ per element
  Tensor v = x.narrow(1, 1, 2).transpose(0, 1);  // [2, 2]: v[c, r] = x[r, 1 + c]
  Tensor wts = Tensor::from_vector({2, 2}, {10, 20, 30, 40});
  sum(mul(v, wts)).backward();
  check_close(x.grad().to_vector(), {0, 10, 30, 0, 20, 40});
  x.zero_grad();
  sum(mul(cat({x, x.narrow(0, 1, 1)}, 0), Tensor::from_vector({3, 1}, {1, 2, 3}))).backward();
  check_close(x.grad().to_vector(), {1, 1, 1, 5, 5, 5});
  // detach cuts the graph
  x.zero_grad();
  sum(add(x, mul(x.detach(), 100.f))).backward();
  check_close(x.grad().to_vector(), {1, 1, 1, 1, 1, 1});
}

TEST_CASE("no_grad scope records nothing and restores the previous state") {
  Tensor x = leaf({2}, {1, 2});
  CHECK(autograd::grad_enabled());
  {
    NoGradGuard ng;
    CHECK_FALSE(autograd::grad_enabled());
    Tensor y = mul(exp(x), 2.f);
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(bool(y.grad_fn()));
    Tensor v = x.transpose(0, 0);  // views too
    CHECK_FALSE(bool(v.grad_fn()));
    {
      NoGradGuard nested;
      CHECK_FALSE(autograd::grad_enabled());
    }
    CHECK_FALSE(autograd::grad_enabled());  // the inner guard restores "off", not "on"
    CHECK_THROWS_AS(y.backward(Tensor::ones({2})), std::logic_error);
  }
  CHECK(autograd::grad_enabled());
  Tensor y = mul(x, 2.f);
  CHECK(y.requires_grad());
  REQUIRE(bool(y.grad_fn()));
  CHECK(y.grad_fn()->op == "mul_scalar");
  CHECK(y.grad_fn()->out_shape == Shape{2});
  // no history when no input requires a gradient
  Tensor c = mul(Tensor::ones({2}), 2.f);
  CHECK_FALSE(c.requires_grad());
  CHECK_FALSE(bool(c.grad_fn()));
}

TEST_CASE("backward twice through a freed graph throws naming the op; retain_graph allows it") {
  Tensor x = leaf({3}, {0.1f, 0.2f, 0.3f});
  Tensor loss = sum(exp(x));
  loss.backward();
  auto first = x.grad().to_vector();
  std::string m = message_of<std::logic_error>([&] { loss.backward(); });
  CHECK(contains(m, "'sum'"));
  CHECK(contains(m, "retain_graph"));
  check_close(x.grad().to_vector(), first);  // the failed call did not touch the gradient

  // A freed interior node is named too: a new root over the old (freed) exp node.
  Tensor e = exp(x);
  sum(e).backward();
  m = message_of<std::logic_error>([&] { sum(mul(e, 2.f)).backward(); });
  CHECK(contains(m, "'exp'"));

  x.zero_grad();
  Tensor loss2 = sum(exp(x));
  loss2.backward(Tensor(), /*retain_graph=*/true);
  loss2.backward(Tensor(), true);
  loss2.backward();  // the last one may free
  for (size_t i = 0; i < 3; ++i) CHECK(x.grad().to_vector()[i] == doctest::Approx(3 * std::exp(0.1f * float(i + 1))));
  CHECK_THROWS_AS(loss2.backward(), std::logic_error);
}

TEST_CASE("shape and usage errors name the op and the shapes") {
  Tensor x = leaf({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor y = mul(x, 2.f);
  // a non-scalar output needs an explicit gradient
  std::string m = message_of<ShapeError>([&] { y.backward(); });
  CHECK(contains(m, "[2, 3]"));
  // the explicit gradient must have the output's shape
  m = message_of<ShapeError>([&] { y.backward(Tensor::ones({3, 2})); });
  CHECK(contains(m, "[3, 2]"));
  CHECK(contains(m, "[2, 3]"));
  // backward on something without history
  CHECK_THROWS_AS(Tensor::ones({1}).backward(), std::logic_error);
  // a leaf can be the root: its gradient is grad_out
  Tensor s = leaf({}, {2.f});
  s.backward();
  CHECK(s.grad().item() == 1.f);
  // cannot clear requires_grad on a non-leaf
  CHECK_THROWS_AS(y.set_requires_grad(false), std::logic_error);

  // a backward closure that returns a gradient of the wrong shape is caught and named
  Tensor out = Tensor::zeros({2});
  autograd::record(out, "my_broken_op", {x}, [](const Tensor&) -> std::vector<Tensor> {
    return {Tensor::zeros({5})};
  });
  m = message_of<ShapeError>([&] { sum(out).backward(); });
  CHECK(contains(m, "my_broken_op"));
  CHECK(contains(m, "[2, 3]"));
  CHECK(contains(m, "[5]"));
  // ... or the wrong number of gradients
  Tensor out2 = Tensor::zeros({2});
  autograd::record(out2, "my_miscounting_op", {x}, [](const Tensor&) -> std::vector<Tensor> { return {}; });
  m = message_of<std::logic_error>([&] { sum(out2).backward(); });
  CHECK(contains(m, "my_miscounting_op"));

  // op shape errors
  m = message_of<ShapeError>([&] { linear(x, Tensor::zeros({4, 5}), Tensor()); });
  CHECK(contains(m, "linear"));
  CHECK(contains(m, "[2, 3]"));
  CHECK(contains(m, "[4, 5]"));
  m = message_of<ShapeError>([&] { cross_entropy(x, {0, 7}); });
  CHECK(contains(m, "cross_entropy"));
  CHECK(contains(m, "7"));
  m = message_of<ShapeError>([&] { cat({x, Tensor::zeros({3, 3})}, 1); });
  CHECK(contains(m, "[3, 3]"));
}

TEST_CASE("normalisation keeps a weight that needs no gradient alive until backward") {
  // The backward reads the affine weight; when the weight requires no gradient the tape does not
  // hold it, so the closure must. A temporary weight of 2 must double the input gradient.
  auto grads = [](bool temporary, const char* which) {
    Tensor x = Tensor::from_vector({2, 3, 2, 2}, {0.3f, -1.2f, 0.5f, 2.f, 1.f, -0.7f, 0.2f, 0.9f, -0.4f, 1.5f, 0.1f, -2.f,
                                                  0.8f, 0.6f, -1.f, 0.4f, -0.3f, 1.1f, 0.0f, 0.7f, -0.9f, 1.3f, 0.2f, 0.5f})
                   .set_requires_grad(true);
    Tensor gout = Tensor::from_vector({2, 3, 2, 2}, std::vector<float>{1, -1, 2, 0.5f, 3, 1, -2, 1, 0, 2, 1, -1,
                                                                       -1, 1, 0.5f, 2, 1, 1, -3, 0, 2, -1, 1, 1});
    Tensor keep = Tensor::full({3}, 2.f), rm = Tensor::zeros({3}), rv = Tensor::ones({3});
    Tensor y;
    std::string w = which;
    if (w == "batch_norm2d")
      y = batch_norm2d(x, temporary ? Tensor::full({3}, 2.f) : keep, Tensor(), rm, rv, true);
    else if (w == "channel_norm")
      y = channel_norm(x, temporary ? Tensor::full({3}, 2.f) : keep, Tensor());
    else
      y = layer_norm(x.reshape({8, 3}), temporary ? Tensor::full({3}, 2.f) : keep, Tensor()).reshape({2, 3, 2, 2});
    // allocate and release memory so that a dangling pointer would read other values
    for (int i = 0; i < 8; ++i) Tensor::full({3}, -123.f).to_vector();
    y.backward(gout);
    return x.grad().to_vector();
  };
  for (const char* op : {"batch_norm2d", "channel_norm", "layer_norm"}) {
    CAPTURE(op);
    auto a = grads(false, op), b = grads(true, op);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == a[i]);
  }
}

TEST_CASE("a long chain of ops backpropagates without recursion") {
  // 20000 nodes: the tape walks them iteratively (a recursive walk would need a deep stack).
  Tensor x = leaf({1}, {1.f});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add(y, 0.25f);  // exact in float32
  Tensor loss = sum(mul(y, y));                         // y = x + 5000, dL/dx = 2y = 10002
  loss.backward();
  CHECK(x.grad().item() == 10002.f);
}

namespace {
// Runs fn on a thread with a 1 MB stack (a recursive teardown of a long graph overflows it).
void on_small_stack(void (*fn)(void*), void* arg) {
  struct Call {
    void (*fn)(void*);
    void* arg;
  } call{fn, arg};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t(1) << 20);
  pthread_t th;
  REQUIRE(pthread_create(
              &th, &attr,
              [](void* p) -> void* {
                auto* c = static_cast<Call*>(p);
                c->fn(c->arg);
                return nullptr;
              },
              &call) == 0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
}
}  // namespace

TEST_CASE("a 300,000-op graph is freed without recursion, even on a 1 MB stack") {
  struct Result {
    float value = 0;
    long leaf_owners_before = 0, leaf_owners_after = 0;
  } r;
  on_small_stack(
      [](void* p) {
        auto& r = *static_cast<Result*>(p);
        Tensor x = leaf({1}, {1.f});
        {
          Tensor y = x;
          for (int i = 0; i < 300000; ++i) y = add(y, 0.25f);  // each Node owns the previous output
          r.value = y.item();
          r.leaf_owners_before = x.impl_ptr().use_count();
        }  // the whole chain is freed here
        r.leaf_owners_after = x.impl_ptr().use_count();
      },
      &r);
  CHECK(r.value == 75001.f);  // 1 + 300000 / 4, exact in float32
  CHECK(r.leaf_owners_before == 2);  // x and the first Node's input
  CHECK(r.leaf_owners_after == 1);   // only x: every Node is gone
}
