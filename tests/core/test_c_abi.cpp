// The C ABI (groupnorm.h): status codes, gn_last_error text and its thread-locality, bitwise agreement with
// the C++ API at every num_threads, gn_group_norm_ex with and without options, and nothing written on error.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "groupnorm/groupnorm.h"
#include "test_util.hpp"

using namespace gn_test;

namespace {

constexpr unsigned char kSentinel = 0x5A;

std::vector<float> sentinel_buffer(std::size_t n) {
  std::vector<float> v(n);
  std::memset(v.data(), kSentinel, n * sizeof(float));
  return v;
}

bool all_sentinel(const std::vector<float>& v) {
  const std::vector<float> s = sentinel_buffer(v.size());
  return same_bits(v, s);
}

std::string last_error() {
  return gn_last_error();
}

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// gn_options as a caller compiled against a newer header sees it: this version's fields, then more.
struct newer_options {
  gn_options known;
  std::uint64_t unknown[3];
};
static_assert(offsetof(newer_options, unknown) == sizeof(gn_options));

}  // namespace

TEST_CASE("C gn_group_norm_f32 returns GN_OK and the C++ API's bits at num_threads 0 1 2 7") {
  for (const shape& s :
       {shape{2, 6, 7, 3}, shape{1, 32, 64, 8}, shape{2, 64, 33 * 31, 8}, shape{1, 4, 40000, 1}}) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), 1);
    const std::vector<float> gamma = uniform(s.channels, 2, 0.5, 1.5), beta = uniform(s.channels, 3, -1, 1);
    const std::vector<float> cpp = run(make_problem(s, 1e-5f), x, gamma, beta);
    for (int threads : {0, 1, 2, 7}) {
      CAPTURE(threads);
      std::vector<float> y(x.size(), -1.0f);
      REQUIRE(gn_group_norm_f32(x.data(), y.data(), gamma.data(), beta.data(), s.batch, s.channels, s.spatial,
                                s.groups, 1e-5f, threads) == GN_OK);
      CHECK(last_error().empty());
      CHECK(same_bits(y, cpp));
    }
    // Null gamma / beta mean 1 and 0.
    const std::vector<float> cpp_plain = run(make_problem(s, 1e-5f), x);
    std::vector<float> y(x.size());
    REQUIRE(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, s.batch, s.channels, s.spatial, s.groups,
                              1e-5f, 2) == GN_OK);
    CHECK(same_bits(y, cpp_plain));
    // In place: y == x.
    std::vector<float> xy = x;
    REQUIRE(gn_group_norm_f32(xy.data(), xy.data(), gamma.data(), beta.data(), s.batch, s.channels, s.spatial,
                              s.groups, 1e-5f, 3) == GN_OK);
    CHECK(same_bits(xy, cpp));
  }
}

TEST_CASE("C seed example through gn_group_norm_f32") {
  const float x[4] = {1, 2, 3, 4};
  float y[4] = {0, 0, 0, 0};
  REQUIRE(gn_group_norm_f32(x, y, nullptr, nullptr, 1, 2, 2, 1, 1e-5f, 1) == GN_OK);
  const double expected[4] = {-1.3416, -0.4472, 0.4472, 1.3416};
  for (int i = 0; i < 4; ++i) CHECK(std::fabs(y[i] - expected[i]) < 1e-4);
}

TEST_CASE("C errors return GN_INVALID_ARGUMENT with a message naming the problem and leave y untouched") {
  const shape s{2, 10, 5, 5};
  const std::vector<float> x = normal(s.elements(), 4);
  std::vector<float> y = sentinel_buffer(s.elements());
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 10, 5, 3, 1e-5f, 1) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "num_groups = 3"));
  CHECK(contains(last_error(), "channels = 10"));

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 10, 5, 0, 1e-5f, 1) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "num_groups = 0"));

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 0, 5, 1, 1e-5f, 1) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "channels = 0"));

  CHECK(gn_group_norm_f32(nullptr, y.data(), nullptr, nullptr, 2, 10, 5, 5, 1e-5f, 1) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "x"));
  CHECK(contains(last_error(), "null"));

  CHECK(gn_group_norm_f32(x.data(), nullptr, nullptr, nullptr, 2, 10, 5, 5, 1e-5f, 1) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "y"));
  CHECK(contains(last_error(), "null"));

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 10, 5, 5, 1e-5f, -1) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "num_threads = -1"));

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 10, 5, 5, nan, 1) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "epsilon"));
  CHECK(contains(last_error(), "nan"));

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 10, 5, 5, inf, 1) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "epsilon"));

  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 2, 10, 5, 5, -0.5f, 1) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "epsilon"));

  const std::size_t max = std::numeric_limits<std::size_t>::max();
  CHECK(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, max / 2, 4, 1, 1, 1e-5f, 1) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "overflow"));

  // y partially overlapping x.
  std::vector<float> buf = sentinel_buffer(s.elements() + 1);
  CHECK(gn_group_norm_f32(buf.data(), buf.data() + 1, nullptr, nullptr, 2, 10, 5, 5, 1e-5f, 1) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "overlaps"));
  CHECK(all_sentinel(buf));

  CHECK(all_sentinel(y));
}

TEST_CASE("C gn_last_error is empty after a success and for zero-sized no-ops") {
  const std::vector<float> x = normal(8, 5);
  std::vector<float> y(8);
  REQUIRE(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 1, 4, 2, 3, 1e-5f, 1) ==
          GN_INVALID_ARGUMENT);
  REQUIRE(!last_error().empty());
  CHECK(contains(last_error(), "groupnorm"));
  REQUIRE(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 1, 4, 2, 2, 1e-5f, 1) == GN_OK);
  CHECK(last_error().empty());

  // Zero batch / spatial with null buffers: a valid no-op.
  REQUIRE(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 1, 4, 2, 3, 1e-5f, 1) ==
          GN_INVALID_ARGUMENT);
  CHECK(gn_group_norm_f32(nullptr, nullptr, nullptr, nullptr, 0, 4, 2, 2, 1e-5f, 1) == GN_OK);
  CHECK(last_error().empty());
  std::vector<float> untouched = sentinel_buffer(8);
  CHECK(gn_group_norm_f32(x.data(), untouched.data(), nullptr, nullptr, 3, 4, 0, 2, 1e-5f, 0) == GN_OK);
  CHECK(all_sentinel(untouched));
}

TEST_CASE("C gn_last_error is thread-local: an error on one thread does not show on another") {
  const std::vector<float> x = normal(8, 6);
  std::vector<float> y(8);
  REQUIRE(gn_group_norm_f32(x.data(), y.data(), nullptr, nullptr, 1, 4, 2, 3, 1e-5f, 1) ==
          GN_INVALID_ARGUMENT);
  const std::string mine = last_error();
  REQUIRE(contains(mine, "num_groups = 3"));

  std::string fresh, after_error, after_success;
  std::thread other([&] {
    fresh = gn_last_error();
    std::vector<float> y2(8);
    (void)gn_group_norm_f32(x.data(), y2.data(), nullptr, nullptr, 1, 4, 2, 2, -1.0f, 1);
    after_error = gn_last_error();
    (void)gn_group_norm_f32(x.data(), y2.data(), nullptr, nullptr, 1, 4, 2, 2, 1e-5f, 1);
    after_success = gn_last_error();
  });
  other.join();
  CHECK(fresh.empty());
  CHECK(contains(after_error, "epsilon"));
  CHECK(after_success.empty());
  // This thread still has its own message.
  CHECK(last_error() == mine);
}

TEST_CASE("C gn_group_norm_ex with NULL options and with gn_options_init equals gn_group_norm_f32") {
  const shape s{2, 6, 4099, 3};
  const std::vector<float> x = normal(s.elements(), 7);
  const std::vector<float> gamma = uniform(6, 8, 0.5, 1.5), beta = uniform(6, 9, -1, 1);
  std::vector<float> want(x.size()), y1(x.size()), y2(x.size());
  REQUIRE(gn_group_norm_f32(x.data(), want.data(), gamma.data(), beta.data(), 2, 6, 4099, 3, 1e-5f, 0) ==
          GN_OK);
  REQUIRE(gn_group_norm_ex(x.data(), y1.data(), gamma.data(), beta.data(), 2, 6, 4099, 3, 1e-5f, nullptr) ==
          GN_OK);
  CHECK(same_bits(y1, want));
  gn_options o;
  std::memset(&o, 0xff, sizeof o);
  gn_options_init(&o);
  CHECK(o.struct_size == sizeof(gn_options));
  CHECK(o.layout == GN_LAYOUT_NCHW);
  CHECK(o.dtype == GN_DTYPE_F32);
  CHECK(o.activation == GN_ACTIVATION_NONE);
  CHECK(o.residual == nullptr);
  CHECK(o.sum == nullptr);
  CHECK(o.mean == nullptr);
  CHECK(o.rstd == nullptr);
  CHECK(o.num_threads == 0);
  o.num_threads = 2;
  REQUIRE(gn_group_norm_ex(x.data(), y2.data(), gamma.data(), beta.data(), 2, 6, 4099, 3, 1e-5f, &o) ==
          GN_OK);
  CHECK(same_bits(y2, want));
}

TEST_CASE("C gn_group_norm_ex saves mean and rstd that match the float64 reference") {
  const shape s{3, 8, 301, 4};
  const std::vector<float> x = normal(s.elements(), 10, 2.0, 3.0);
  std::vector<float> y(x.size()), mean(s.pairs(), -1.0f), rstd(s.pairs(), -1.0f);
  gn_options o;
  gn_options_init(&o);
  o.mean = mean.data();
  o.rstd = rstd.data();
  const float eps = 1e-3f;
  REQUIRE(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 3, 8, 301, 4, eps, &o) == GN_OK);
  std::vector<groupnorm::reference::stats> st;
  const std::vector<double> ref =
      groupnorm::reference::group_norm(x.data(), 3, 8, 301, 4, static_cast<double>(eps), {}, {}, &st);
  REQUIRE(st.size() == s.pairs());
  for (std::size_t q = 0; q < s.pairs(); ++q) {
    CAPTURE(q);
    const double want_rstd = 1.0 / std::sqrt(st[q].var + static_cast<double>(eps));
    CHECK(std::fabs(mean[q] - st[q].mean) <= 1e-5 * std::fabs(st[q].mean));
    CHECK(std::fabs(rstd[q] - want_rstd) <= 1e-5 * want_rstd);
  }
  const compare_result r = compare(y, ref, 1e-5, 1e-5);
  INFO(r.describe());
  CHECK(r.failures == 0);
}

TEST_CASE("C gn_group_norm_ex rejects struct_size 0 and accepts an older shorter struct") {
  const std::vector<float> x = normal(40, 11);
  std::vector<float> y = sentinel_buffer(40), mean = sentinel_buffer(4);
  gn_options o;
  gn_options_init(&o);
  o.struct_size = 0;
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "struct_size = 0"));
  CHECK(all_sentinel(y));

  // An older caller whose struct ends before `mean`: the fields past its size are ignored (defaults).
  gn_options_init(&o);
  o.struct_size = offsetof(gn_options, mean);
  o.mean = mean.data();  // beyond struct_size: must not be written
  REQUIRE(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) == GN_OK);
  CHECK(all_sentinel(mean));
  CHECK(same_bits(y, run(make_problem({2, 4, 5, 2}), x)));
}

TEST_CASE("C gn_group_norm_ex errors on residual sum and statistics leave every output untouched") {
  const std::vector<float> x = normal(40, 12), r = normal(40, 13);
  std::vector<float> y = sentinel_buffer(40), sum = sentinel_buffer(40), stats = sentinel_buffer(8);
  gn_options o;
  gn_options_init(&o);
  o.sum = sum.data();  // sum without residual
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "sum"));
  gn_options_init(&o);
  o.mean = stats.data();
  o.rstd = stats.data() + 2;  // overlapping
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "overlaps"));
  gn_options_init(&o);
  o.residual = r.data();
  o.sum = y.data();  // sum == y
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) == GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "overlaps"));
  CHECK(all_sentinel(y));
  CHECK(all_sentinel(sum));
  CHECK(all_sentinel(stats));
}

TEST_CASE("C gn_group_norm_ex residual sum relu and f16 storage match the C++ API bitwise") {
  const shape s{2, 6, 333, 3};
  const std::vector<float> x = normal(s.elements(), 14), r = normal(s.elements(), 15);
  const std::vector<float> gamma = uniform(6, 16, 0.5, 1.5), beta = uniform(6, 17, -1, 1);
  groupnorm::problem p = make_problem(s);
  p.residual = true;
  p.fused_activation = groupnorm::activation::relu;
  std::vector<float> want_y(x.size()), want_sum(x.size());
  groupnorm::tensors<float> t;
  t.x = x;
  t.y = want_y;
  t.residual = r;
  t.sum = want_sum;
  t.gamma = gamma;
  t.beta = beta;
  groupnorm::plan(p).run(t);

  std::vector<float> y(x.size()), sum(x.size());
  gn_options o;
  gn_options_init(&o);
  o.residual = r.data();
  o.sum = sum.data();
  o.activation = GN_ACTIVATION_RELU;
  o.num_threads = 2;
  REQUIRE(gn_group_norm_ex(x.data(), y.data(), gamma.data(), beta.data(), 2, 6, 333, 3, 1e-5f, &o) == GN_OK);
  CHECK(same_bits(y, want_y));
  CHECK(same_bits(sum, want_sum));

  const std::vector<groupnorm::f16> xh = encode<groupnorm::f16>(x);
  std::vector<groupnorm::f16> want_h(x.size()), yh(x.size());
  groupnorm::problem ph = make_problem(s);
  ph.data_type = groupnorm::dtype::f16;
  groupnorm::tensors<groupnorm::f16> th;
  th.x = xh;
  th.y = want_h;
  groupnorm::plan(ph).run(th);
  gn_options_init(&o);
  o.dtype = GN_DTYPE_F16;
  REQUIRE(gn_group_norm_ex(xh.data(), yh.data(), nullptr, nullptr, 2, 6, 333, 3, 1e-5f, &o) == GN_OK);
  CHECK(same_bits(yh, want_h));
}

TEST_CASE("C gn_group_norm_ex rejects a struct_size that ends inside a field, naming it") {
  const std::vector<float> x = normal(40, 18);
  std::vector<float> y = sentinel_buffer(40);
  gn_options o;
  gn_options_init(&o);
  for (std::size_t size :
       {std::size_t{1}, std::size_t{7}, std::size_t{9}, std::size_t{10}, std::size_t{13}, std::size_t{20},
        std::size_t{28}, offsetof(gn_options, num_threads) + 2, sizeof(gn_options) - 1}) {
    CAPTURE(size);
    o.struct_size = size;
    CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) ==
          GN_INVALID_ARGUMENT);
    CHECK(contains(last_error(), "struct_size = " + std::to_string(size) + ","));
    CHECK(contains(last_error(), "field boundary"));
  }
  CHECK(all_sentinel(y));
}

TEST_CASE("C gn_group_norm_ex accepts every struct_size an older header could have and ignores the rest") {
  const std::vector<float> x = normal(40, 19), r = normal(40, 20);
  const std::vector<float> want = run(make_problem({2, 4, 5, 2}), x);
  const std::size_t sizes[] = {offsetof(gn_options, layout),     offsetof(gn_options, dtype),
                               offsetof(gn_options, activation), offsetof(gn_options, residual),
                               offsetof(gn_options, sum),        offsetof(gn_options, mean),
                               offsetof(gn_options, rstd),       offsetof(gn_options, num_threads)};
  for (std::size_t size : sizes) {
    CAPTURE(size);
    std::vector<float> y = sentinel_buffer(40), sum = sentinel_buffer(40), mean = sentinel_buffer(4),
                       rstd = sentinel_buffer(4);
    // Every field past `size` holds a value that would change the run or make it fail if it were read.
    gn_options o;
    gn_options_init(&o);
    o.layout = GN_LAYOUT_NHWC;
    o.dtype = static_cast<gn_dtype>(7);
    o.activation = GN_ACTIVATION_RELU;
    o.residual = r.data();
    o.sum = sum.data();
    o.mean = mean.data();
    o.rstd = rstd.data();
    o.num_threads = -1;
    gn_options defaults;
    gn_options_init(&defaults);
    std::memcpy(&o, &defaults, size);  // the fields before `size` at their defaults
    o.struct_size = size;
    REQUIRE(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &o) == GN_OK);
    CHECK(last_error().empty());
    CHECK(same_bits(y, want));
    CHECK(all_sentinel(sum));
    CHECK(all_sentinel(mean));
    CHECK(all_sentinel(rstd));
  }
}

TEST_CASE("C gn_group_norm_ex accepts a newer header's larger struct_size when the unknown bytes are zero") {
  const std::vector<float> x = normal(40, 21);
  std::vector<float> y = sentinel_buffer(40), mean = sentinel_buffer(4);
  newer_options n;
  std::memset(&n, 0, sizeof n);
  gn_options_init(&n.known);
  n.known.struct_size = sizeof n;
  n.known.mean = mean.data();
  n.known.activation = GN_ACTIVATION_RELU;
  REQUIRE(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &n.known) == GN_OK);
  CHECK(last_error().empty());
  groupnorm::problem p = make_problem({2, 4, 5, 2});
  p.fused_activation = groupnorm::activation::relu;
  CHECK(same_bits(y, run(p, x)));  // the known fields are used
  CHECK_FALSE(all_sentinel(mean));
  // One more byte than this version's struct, also zero.
  n.known.struct_size = sizeof(gn_options) + 1;
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &n.known) == GN_OK);
}

TEST_CASE("C gn_group_norm_ex rejects a larger struct_size whose unknown bytes are not zero, naming it") {
  const std::vector<float> x = normal(40, 22);
  std::vector<float> y = sentinel_buffer(40);
  newer_options n;
  std::memset(&n, 0, sizeof n);
  gn_options_init(&n.known);
  n.known.struct_size = sizeof n;
  n.unknown[2] = std::uint64_t{1} << 56;  // only the very last byte is set
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &n.known) ==
        GN_INVALID_ARGUMENT);
  const std::string msg = last_error();
  INFO(msg);
  CHECK(contains(msg, "struct_size = " + std::to_string(sizeof n)));
  CHECK(contains(msg, "unknown to this library version"));
  // A byte past the struct_size the caller gave is not looked at.
  n.known.struct_size = sizeof n - 1;
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &n.known) == GN_OK);
  // A size no version will ever have (past 4096) is rejected without being read.
  y = sentinel_buffer(40);
  n.known.struct_size = std::size_t{1} << 40;
  CHECK(gn_group_norm_ex(x.data(), y.data(), nullptr, nullptr, 2, 4, 5, 2, 1e-5f, &n.known) ==
        GN_INVALID_ARGUMENT);
  CHECK(contains(last_error(), "struct_size = " + std::to_string(std::size_t{1} << 40)));
  CHECK(all_sentinel(y));
}
