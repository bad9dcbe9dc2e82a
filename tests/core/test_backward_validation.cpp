// Backward entry points on bad input: a clear error naming the argument, and every output untouched.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "backward_util.hpp"
#include "groupnorm/groupnorm.h"

namespace {

constexpr float kSentinel = -777.0f;

// A valid NCHW f32 call (B = 2, C = 4, spatial 3, G = 2) whose buffers a case then breaks.
struct call {
  std::vector<float> x = gn_test::normal(24, 1), dy = gn_test::normal(24, 2), gamma = gn_test::normal(4, 3);
  std::vector<float> beta = gn_test::normal(4, 4), mean = std::vector<float>(4, 0.1f),
                     rstd = std::vector<float>(4, 1.2f);
  std::vector<float> dx = std::vector<float>(24, kSentinel), dgamma = std::vector<float>(4, kSentinel),
                     dbeta = std::vector<float>(4, kSentinel);
  // Pointers passed to the C call; a case redirects them.
  const float *px = x.data(), *pdy = dy.data(), *pgamma = gamma.data(), *pmean = mean.data(),
              *prstd = rstd.data();
  float *pdx = dx.data(), *pdgamma = dgamma.data(), *pdbeta = dbeta.data();
  std::size_t channels = 4, groups = 2;
  int threads = 1;

  gn_status run_f32() {
    return gn_group_norm_backward_f32(px, pdy, pgamma, pmean, prstd, pdx, pdgamma, pdbeta, 2, channels, 3,
                                      groups, 1e-5f, threads);
  }
  bool untouched() const {
    for (float v : dx)
      if (v != kSentinel) return false;
    for (float v : dgamma)
      if (v != kSentinel) return false;
    for (float v : dbeta)
      if (v != kSentinel) return false;
    return true;
  }
};

void expect_error(call& c, const char* needle) {
  CAPTURE(needle);
  CHECK(c.run_f32() == GN_INVALID_ARGUMENT);
  CHECK(std::string(gn_last_error()).find(needle) != std::string::npos);
  CHECK(c.untouched());
}

TEST_CASE("backward C ABI: a valid call succeeds (the baseline the error cases break)") {
  call c;
  CHECK(c.run_f32() == GN_OK);
  CHECK(std::string(gn_last_error()).empty());
  CHECK_FALSE(c.untouched());
}

TEST_CASE("backward C ABI: bad arguments are named and nothing is written") {
  {
    call c;
    c.px = nullptr;
    expect_error(c, "x is null");
  }
  {
    call c;
    c.pdy = nullptr;
    expect_error(c, "dy is null");
  }
  {
    call c;
    c.pdx = nullptr, c.pdgamma = nullptr, c.pdbeta = nullptr;
    CHECK(c.run_f32() == GN_INVALID_ARGUMENT);
    CHECK(std::string(gn_last_error()).find("dx, dgamma and dbeta are all absent") != std::string::npos);
  }
  {
    call c;
    c.prstd = nullptr;
    expect_error(c, "mean is given and rstd is absent");
  }
  {
    call c;
    c.groups = 3;
    expect_error(c, "num_groups = 3 does not divide channels = 4");
  }
  {
    call c;
    c.threads = -1;
    expect_error(c, "num_threads = -1");
  }
  {
    call c;
    c.dy.push_back(0.0f);  // 25 floats: dx = dy + 1 overlaps dy without being it
    c.pdy = c.dy.data(), c.pdx = c.dy.data() + 1;
    CHECK(c.run_f32() == GN_INVALID_ARGUMENT);
    CHECK(std::string(gn_last_error()).find("dx overlaps dy without being identical") != std::string::npos);
  }
  {
    call c;
    c.pdx = c.x.data();
    CHECK(c.run_f32() == GN_INVALID_ARGUMENT);
    CHECK(std::string(gn_last_error()).find("dx overlaps x") != std::string::npos);
  }
  {
    call c;
    c.pdbeta = c.dgamma.data();
    expect_error(c, "dbeta overlaps dgamma");
  }
  {
    call c;
    c.pdgamma = c.gamma.data();
    CHECK(c.run_f32() == GN_INVALID_ARGUMENT);
    CHECK(std::string(gn_last_error()).find("dgamma overlaps gamma") != std::string::npos);
  }
}

TEST_CASE("backward C ABI: options fields of the forward are rejected, enums are checked") {
  call c;
  gn_options o;
  gn_options_init(&o);
  o.residual = c.x.data();
  CHECK(gn_group_norm_backward_ex(c.x.data(), c.dy.data(), nullptr, nullptr, nullptr, nullptr, c.dx.data(),
                                  nullptr, nullptr, 2, 4, 3, 2, 1e-5f, &o) == GN_INVALID_ARGUMENT);
  CHECK(std::string(gn_last_error()).find("options->residual is set") != std::string::npos);
  gn_options_init(&o);
  o.activation = static_cast<gn_activation>(9);
  CHECK(gn_group_norm_backward_ex(c.x.data(), c.dy.data(), nullptr, nullptr, nullptr, nullptr, c.dx.data(),
                                  nullptr, nullptr, 2, 4, 3, 2, 1e-5f, &o) == GN_INVALID_ARGUMENT);
  CHECK(std::string(gn_last_error()).find("activation = 9") != std::string::npos);
  CHECK(c.untouched());
}

TEST_CASE("backward C ABI equals plan::run_backward (NHWC, f16, silu, recomputed statistics)") {
  const gn_test::shape s{2, 12, 40, 3};
  const std::vector<groupnorm::f16> x = gn_test::encode<groupnorm::f16>(gn_test::normal(s.elements(), 5));
  const std::vector<groupnorm::f16> dy = gn_test::encode<groupnorm::f16>(gn_test::normal(s.elements(), 6));
  const std::vector<float> gamma = gn_test::normal(12, 7), beta = gn_test::normal(12, 8);
  groupnorm::problem p = gn_test::make_problem(s);
  p.memory_layout = groupnorm::layout::nhwc;
  p.data_type = groupnorm::dtype::f16;
  p.fused_activation = groupnorm::activation::silu;
  const gn_test::bw::result<groupnorm::f16> want = gn_test::bw::run<groupnorm::f16>(p, x, dy, gamma, beta);
  gn_options o;
  gn_options_init(&o);
  o.layout = GN_LAYOUT_NHWC;
  o.dtype = GN_DTYPE_F16;
  o.activation = GN_ACTIVATION_SILU;
  o.num_threads = 2;
  std::vector<groupnorm::f16> dx(s.elements());
  std::vector<float> dgamma(12), dbeta(12);
  REQUIRE(gn_group_norm_backward_ex(x.data(), dy.data(), gamma.data(), beta.data(), nullptr, nullptr,
                                    dx.data(), dgamma.data(), dbeta.data(), 2, 12, 40, 3, 1e-5f,
                                    &o) == GN_OK);
  CHECK(gn_test::first_bit_difference(dx, want.dx) == -1);
  CHECK(gn_test::first_bit_difference(dgamma, want.dgamma) == -1);
  CHECK(gn_test::first_bit_difference(dbeta, want.dbeta) == -1);
}

TEST_CASE("plan::run_backward: wrong dtype, sizes and a missing workspace are errors, nothing written") {
  const gn_test::shape s{8, 1024, 4, 32};  // scratch 2 * 8 * (1024 + 64) doubles: beyond the stack bound
  groupnorm::problem p = gn_test::make_problem(s);
  const groupnorm::plan pl(p);
  REQUIRE(pl.backward_workspace_size() == 2 * 8 * (1024 + 2 * 32));
  const std::vector<float> x = gn_test::normal(s.elements(), 9), dy = gn_test::normal(s.elements(), 10);
  std::vector<float> dx(s.elements(), kSentinel), dgamma(1024, kSentinel);
  auto untouched = [&] {
    for (float v : dx)
      if (v != kSentinel) return false;
    for (float v : dgamma)
      if (v != kSentinel) return false;
    return true;
  };
  CHECK_THROWS_WITH_AS(pl.run_backward(groupnorm::backward_tensors<float>{.x = x, .dy = dy, .dx = dx}),
                       doctest::Contains("workspace has 0 doubles, expected at least 17408"),
                       groupnorm::invalid_argument);
  std::vector<double> workspace(pl.backward_workspace_size());
  CHECK_THROWS_WITH_AS(
      pl.run_backward(groupnorm::backward_tensors<float>{
          .x = x, .dy = std::span<const float>(dy).first(10), .dx = dx, .workspace = workspace}),
      doctest::Contains("dy has 10 elements, expected 32768"), groupnorm::invalid_argument);
  CHECK_THROWS_WITH_AS(
      pl.run_backward(groupnorm::backward_tensors<float>{
          .x = x, .dy = dy, .dgamma = std::span<float>(dgamma).first(3), .workspace = workspace}),
      doctest::Contains("dgamma has 3 elements, expected 1024"), groupnorm::invalid_argument);
  const std::vector<groupnorm::f16> x16(s.elements()), dy16(s.elements());
  std::vector<groupnorm::f16> dx16(s.elements());
  CHECK_THROWS_AS(
      pl.run_backward(groupnorm::backward_tensors<groupnorm::f16>{.x = x16, .dy = dy16, .dx = dx16}),
      groupnorm::invalid_argument);
  CHECK(untouched());
  // With the workspace the same call runs, and equals the C ABI (which allocates the scratch itself).
  pl.run_backward(groupnorm::backward_tensors<float>{
      .x = x, .dy = dy, .dx = dx, .dgamma = dgamma, .workspace = workspace});
  std::vector<float> dx_c(s.elements()), dgamma_c(1024);
  REQUIRE(gn_group_norm_backward_f32(x.data(), dy.data(), nullptr, nullptr, nullptr, dx_c.data(),
                                     dgamma_c.data(), nullptr, 8, 1024, 4, 32, 1e-5f, 0) == GN_OK);
  CHECK(gn_test::first_bit_difference(dx, dx_c) == -1);
  CHECK(gn_test::first_bit_difference(dgamma, dgamma_c) == -1);
}

TEST_CASE("backward of an empty batch writes zero parameter gradients") {
  std::vector<float> dgamma(4, kSentinel), dbeta(4, kSentinel);
  CHECK(gn_group_norm_backward_f32(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, dgamma.data(),
                                   dbeta.data(), 0, 4, 3, 2, 1e-5f, 1) == GN_OK);
  CHECK(dgamma == std::vector<float>(4, 0.0f));
  CHECK(dbeta == std::vector<float>(4, 0.0f));
}

}  // namespace
