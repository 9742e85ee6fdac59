// sgemm / sgemm_serial against a naive double-precision product, for every transpose
// combination, alpha/beta, odd sizes around the blocking (MR 6, NR 16, MC 120, KC 256), row
// strides wider than the rows, on one thread and on two.
//
// Tolerance: the float32 forward-error bound of a length-K dot product followed by the α and β
// updates, |C − C_ref| ≤ (K + 2)·u·(|α| Σ_k |a_ik b_kj| + |β c_ij|) + 1e-30 with u = 2⁻²⁴. A correct
// kernel stays well inside it (worst measured ratio is printed), while a wrong index, a skipped
// k-block or a missing β term is off by about one whole term |a b| ≈ Σ|a b| / K, far outside for
// the sizes here (K ≤ 600, so (K + 2)·u·K < 0.03).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tensor/gemm.h"
#include "tensor/parallel.h"
#include "tensor/rng.h"

using namespace ahmsa;

namespace {

constexpr float kSentinel = -777.f;  // fills the padding past each row; must never change

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad;  // extra columns in each stored row of A, B, C
};

// Stored shapes: A is M×K (or K×M when transposed), B is K×N (or N×K), C is M×N.
struct Data {
  int64_t lda, ldb, ldc, a_rows, b_rows;
  std::vector<float> A, B, C0;
};

Data make_data(const Problem& p, Generator& g) {
  Data d;
  int64_t a_cols = p.ta ? p.M : p.K, b_cols = p.tb ? p.K : p.N;
  d.a_rows = p.ta ? p.K : p.M;
  d.b_rows = p.tb ? p.N : p.K;
  d.lda = a_cols + p.pad;
  d.ldb = b_cols + p.pad;
  d.ldc = p.N + p.pad;
  auto fill = [&](std::vector<float>& v, int64_t rows, int64_t cols, int64_t ld) {
    v.assign(size_t(std::max<int64_t>(rows * ld, 1)), kSentinel);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) v[size_t(r * ld + c)] = g.uniform(-1.f, 1.f);
  };
  fill(d.A, d.a_rows, a_cols, d.lda);
  fill(d.B, d.b_rows, b_cols, d.ldb);
  fill(d.C0, p.M, p.N, d.ldc);
  return d;
}

// Returns the number of elements outside the bound; `worst` is the largest error / bound.
int64_t check_product(const Problem& p, const Data& d, const std::vector<float>& C, double& worst) {
  const double u = std::ldexp(1.0, -24);
  int64_t bad = 0;
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      double ref = 0, mag = 0;
      for (int64_t k = 0; k < p.K; ++k) {
        double a = p.ta ? d.A[size_t(k * d.lda + i)] : d.A[size_t(i * d.lda + k)];
        double b = p.tb ? d.B[size_t(j * d.ldb + k)] : d.B[size_t(k * d.ldb + j)];
        ref += a * b;
        mag += std::fabs(a * b);
      }
      double c0 = d.C0[size_t(i * d.ldc + j)];
      ref = double(p.alpha) * ref + (p.beta == 0.f ? 0.0 : double(p.beta) * c0);
      double bound = double(p.K + 2) * u * (std::fabs(p.alpha) * mag + std::fabs(p.beta * c0)) + 1e-30;
      double err = std::fabs(double(C[size_t(i * d.ldc + j)]) - ref);
      worst = std::max(worst, err / bound);
      if (!(err <= bound)) ++bad;  // NaN counts as bad
    }
  // the padding after each row of C is untouched
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = p.N; j < d.ldc; ++j)
      if (C[size_t(i * d.ldc + j)] != kSentinel) ++bad;
  return bad;
}

void run_grid(bool serial, int threads, const std::vector<int64_t>& sizes) {
  set_num_threads(threads);
  Generator g(serial ? 11 : 22);
  const float ab[][2] = {{1.f, 0.f}, {0.5f, 2.f}, {-1.25f, 1.f}, {2.f, -0.5f}};
  int tested = 0;
  double worst = 0;
  size_t combo = 0;
  for (int64_t M : sizes)
    for (int64_t N : sizes)
      for (int64_t K : sizes) {
        // every transpose pair and alpha/beta pair over the grid, rotating so that each size
        // triple gets one of each kind without a 16× blow-up
        for (int t = 0; t < 4; ++t) {
          Problem p{bool(t & 1), bool(t & 2), M, N, K, ab[combo % 4][0], ab[combo % 4][1], int64_t(combo % 3) * 3};
          ++combo;
          Data d = make_data(p, g);
          std::vector<float> C = d.C0;
          if (serial)
            sgemm_serial(p.ta, p.tb, M, N, K, p.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, p.beta, C.data(), d.ldc);
          else
            sgemm(p.ta, p.tb, M, N, K, p.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, p.beta, C.data(), d.ldc);
          CAPTURE(p.ta);
          CAPTURE(p.tb);
          CAPTURE(M);
          CAPTURE(N);
          CAPTURE(K);
          CAPTURE(p.alpha);
          CAPTURE(p.beta);
          CAPTURE(p.pad);
          CHECK(check_product(p, d, C, worst) == 0);
          ++tested;
        }
      }
  MESSAGE(std::string(serial ? "sgemm_serial" : "sgemm") << " threads=" << threads << ": " << tested
                                              << " products, worst error/bound " << worst);
  set_num_threads(2);
}

}  // namespace

TEST_CASE("kernel name") {
  std::string k = sgemm_kernel_name();
  CHECK((k == "avx2-fma 6x16" || k == "generic 6x16"));
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) CHECK(k == "avx2-fma 6x16");
#endif
}

TEST_CASE("sgemm_serial: all transposes, alpha/beta, odd sizes, wide row strides") {
  run_grid(true, 1, {1, 5, 17, 130});
}

TEST_CASE("sgemm on two threads: the same grid, with sizes that engage the threaded path") {
  // The threaded path needs M·N·K ≥ 2e5; it splits the columns when N ≥ M, else the rows, so
  // this grid runs both splits. 130 and 257 cross MC = 120 and KC = 256.
  run_grid(false, 2, {1, 17, 130, 257});
}

TEST_CASE("sgemm: large shapes across every block boundary, serial and threaded agree") {
  Generator g(33);
  // K = 600 spans three KC blocks, M = 250 three MC blocks, N = 2100 two NC panels.
  for (Problem p : {Problem{false, false, 250, 2100, 37, 1.f, 0.f, 1}, Problem{true, true, 61, 67, 600, 1.f, 1.f, 0},
                    Problem{false, true, 250, 45, 600, -1.f, 0.5f, 5}, Problem{true, false, 7, 2100, 300, 0.3f, 0.f, 0}}) {
    CAPTURE(p.M);
    CAPTURE(p.N);
    CAPTURE(p.K);
    Data d = make_data(p, g);
    std::vector<float> C1 = d.C0, C2 = d.C0;
    double worst = 0;
    set_num_threads(1);
    sgemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, p.beta, C1.data(), d.ldc);
    set_num_threads(2);
    sgemm(p.ta, p.tb, p.M, p.N, p.K, p.alpha, d.A.data(), d.lda, d.B.data(), d.ldb, p.beta, C2.data(), d.ldc);
    CHECK(check_product(p, d, C1, worst) == 0);
    CHECK(check_product(p, d, C2, worst) == 0);
    // The strip-aligned split keeps every element's order of summation: identical results.
    CHECK(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("sgemm edge cases: beta = 0 ignores C, K = 0 scales C, empty M or N") {
  set_num_threads(2);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Generator g(44);
  for (int64_t n : {5, 64}) {  // a serial-size and a threaded-size product
    Problem p{false, false, 40, n, 300, 1.f, 0.f, 0};
    Data d = make_data(p, g);
    std::vector<float> C(d.C0.size(), nan);  // beta = 0: C's old contents (even NaN) are not read
    sgemm(false, false, p.M, p.N, p.K, 1.f, d.A.data(), d.lda, d.B.data(), d.ldb, 0.f, C.data(), d.ldc);
    double worst = 0;
    CHECK(check_product(p, d, C, worst) == 0);
  }
  std::vector<float> C = {1, 2, 3, 4};
  sgemm(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  CHECK(C == std::vector<float>{0.5f, 1.f, 1.5f, 2.f});
  sgemm_serial(false, false, 2, 2, 0, 1.f, nullptr, 1, nullptr, 2, 0.f, C.data(), 2);
  CHECK(C == std::vector<float>{0, 0, 0, 0});
  C = {9, 9};
  sgemm(false, false, 0, 2, 3, 1.f, nullptr, 3, nullptr, 2, 0.f, C.data(), 2);
  sgemm(false, false, 2, 0, 3, 1.f, nullptr, 3, nullptr, 0, 0.f, C.data(), 1);
  CHECK(C == std::vector<float>{9, 9});
  // exact small case by hand: [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
  std::vector<float> A = {1, 2, 3, 4}, B = {5, 6, 7, 8}, Y(4);
  sgemm(false, false, 2, 2, 2, 1.f, A.data(), 2, B.data(), 2, 0.f, Y.data(), 2);
  CHECK(Y == std::vector<float>{19, 22, 43, 50});
  sgemm(true, true, 2, 2, 2, 1.f, A.data(), 2, B.data(), 2, 0.f, Y.data(), 2);  // Aᵀ Bᵀ = (B A)ᵀ
  CHECK(Y == std::vector<float>{23, 31, 34, 46});
}

TEST_CASE("sgemm called from inside a parallel region runs serially and correctly") {
  set_num_threads(2);
  Generator g(55);
  Problem p{false, true, 64, 96, 80, 1.f, 0.f, 0};
  std::vector<Data> data;
  for (int t = 0; t < 2; ++t) data.push_back(make_data(p, g));
  std::vector<std::vector<float>> out = {data[0].C0, data[1].C0};
  parallel_region([&](int tid, int nt) {
    for (int t = tid; t < 2; t += nt)
      sgemm(p.ta, p.tb, p.M, p.N, p.K, 1.f, data[t].A.data(), data[t].lda, data[t].B.data(), data[t].ldb, 0.f,
            out[t].data(), data[t].ldc);
  });
  for (int t = 0; t < 2; ++t) {
    double worst = 0;
    CHECK(check_product(p, data[size_t(t)], out[size_t(t)], worst) == 0);
  }
}
