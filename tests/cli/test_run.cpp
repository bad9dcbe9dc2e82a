// In-process tests of `groupnorm run` (tools/run.cpp): results against the float64 reference, thread-count
// independence, 16-bit storage, residual / sum / statistics outputs, and the no-output-on-error rule.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "commands.hpp"
#include "half.hpp"
#include "npy.hpp"
#include "reference.hpp"

namespace fs = std::filesystem;
namespace npy = groupnorm::tool::npy;

namespace {

// A fresh, empty scratch directory per test case.
fs::path scratch(const std::string& name) {
  const fs::path d = fs::path(GROUPNORM_CLI_SCRATCH) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void save(const fs::path& path, const std::string& descr, const std::vector<std::size_t>& shape,
          const void* data, std::size_t bytes) {
  std::ofstream f(path, std::ios::binary);
  const std::string s = npy::serialize(descr, shape, data, bytes);
  f.write(s.data(), static_cast<std::streamsize>(s.size()));
  REQUIRE(f.good());
}

void save_f32(const fs::path& path, const std::vector<std::size_t>& shape, const std::vector<float>& v) {
  save(path, "<f4", shape, v.data(), v.size() * 4);
}

int run(std::vector<std::string> args) {
  args.insert(args.begin(), {"groupnorm", "run"});
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return groupnorm::tool::tool_main(static_cast<int>(argv.size()), argv.data());
}

std::vector<float> random_vector(std::size_t n, float mean, float stddev, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool no_temporaries(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return false;
  return true;
}

}  // namespace

TEST_CASE("run: float32 matches the float64 reference, small and split-slice shapes") {
  const fs::path d = scratch("f32");
  struct shape_case {
    std::vector<std::size_t> shape;
    std::size_t groups;
  };
  for (const shape_case& sc : {shape_case{{3, 12, 17, 19}, 4}, shape_case{{1, 64, 64, 64}, 1},
                               shape_case{{2, 32, 40, 40}, 32}, shape_case{{5, 6}, 3}}) {
    std::size_t n = 1;
    for (std::size_t s : sc.shape) n *= s;
    const std::size_t c = sc.shape[1], spatial = n / sc.shape[0] / c;
    CAPTURE(npy::shape_string(sc.shape));
    const std::vector<float> x = random_vector(n, 5.0f, 2.0f, 1);
    const std::vector<float> gamma = random_vector(c, 0.0f, 1.0f, 2);
    const std::vector<float> beta = random_vector(c, 0.0f, 1.0f, 3);
    save_f32(d / "x.npy", sc.shape, x);
    save_f32(d / "g.npy", {c}, gamma);
    save_f32(d / "b.npy", {c}, beta);
    REQUIRE(run({"--x", (d / "x.npy").string(), "--gamma", (d / "g.npy").string(), "--beta",
                 (d / "b.npy").string(), "--groups", std::to_string(sc.groups), "--eps", "1e-5", "--out",
                 (d / "y.npy").string()}) == 0);
    const npy::array y = npy::read_file((d / "y.npy").string());
    CHECK(y.info.descr == "<f4");
    CHECK(y.shape() == sc.shape);
    const std::vector<double> ref =
        groupnorm::reference::group_norm(x.data(), sc.shape[0], c, spatial, sc.groups, 1e-5, gamma, beta);
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i)
      worst = std::max(worst, std::abs(static_cast<double>(y.f32[i]) - ref[i]));
    CHECK(worst < 2e-5);
  }
}

TEST_CASE("run: output bits do not depend on --threads") {
  const fs::path d = scratch("threads");
  const std::vector<float> x = random_vector(2 * 64 * 48 * 48, -3.0f, 4.0f, 7);
  save_f32(d / "x.npy", {2, 64, 48, 48}, x);
  std::string first;
  for (const char* t : {"1", "2", "3", "8"}) {
    CAPTURE(t);
    REQUIRE(run({"--x", (d / "x.npy").string(), "--groups", "2", "--threads", t, "--out",
                 (d / "y.npy").string()}) == 0);
    const std::string bytes = slurp(d / "y.npy");
    if (first.empty()) first = bytes;
    CHECK(bytes == first);
  }
}

TEST_CASE("run: float16 and bfloat16 keep their dtype and descr") {
  const fs::path d = scratch("half");
  const std::vector<std::size_t> shape{2, 8, 10, 10};
  const std::size_t n = 1600;
  const std::vector<float> src = random_vector(n, 1.0f, 3.0f, 11);

  std::vector<std::uint16_t> h(n), b(n);
  std::vector<float> hx(n), bx(n);
  for (std::size_t i = 0; i < n; ++i) {
    h[i] = gn_half::float_to_f16(src[i]);
    b[i] = gn_half::float_to_bf16(src[i]);
    hx[i] = gn_half::f16_to_float(h[i]);
    bx[i] = gn_half::bf16_to_float(b[i]);
  }
  save(d / "h.npy", "<f2", shape, h.data(), n * 2);
  save(d / "b.npy", "|V2", shape, b.data(), n * 2);
  REQUIRE(run({"--x", (d / "h.npy").string(), "--groups", "4", "--out", (d / "yh.npy").string()}) == 0);
  REQUIRE(run({"--x", (d / "b.npy").string(), "--groups", "4", "--out", (d / "yb.npy").string()}) == 0);

  const npy::array yh = npy::read_file((d / "yh.npy").string());
  const npy::array yb = npy::read_file((d / "yb.npy").string());
  CHECK(yh.info.descr == "<f2");
  CHECK(yb.info.descr == "|V2");
  CHECK(yh.shape() == shape);
  CHECK(yb.shape() == shape);
  const std::vector<double> rh = groupnorm::reference::group_norm(hx.data(), 2, 8, 100, 4, 1e-5);
  const std::vector<double> rb = groupnorm::reference::group_norm(bx.data(), 2, 8, 100, 4, 1e-5);
  double wh = 0, wb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    wh = std::max(wh, std::abs(gn_half::f16_to_float(yh.f16[i].bits) - rh[i]) / (1 + std::abs(rh[i])));
    wb = std::max(wb, std::abs(gn_half::bf16_to_float(yb.bf16[i].bits) - rb[i]) / (1 + std::abs(rb[i])));
  }
  CHECK(wh < 1e-3);  // one float16 rounding of the result
  CHECK(wb < 8e-3);  // one bfloat16 rounding
}

TEST_CASE("run: residual, sum, relu and saved statistics") {
  const fs::path d = scratch("extras");
  const std::vector<std::size_t> shape{2, 6, 5, 7};
  const std::size_t n = 420;
  const std::vector<float> x = random_vector(n, 2.0f, 1.5f, 21);
  const std::vector<float> r = random_vector(n, -1.0f, 0.5f, 22);
  save_f32(d / "x.npy", shape, x);
  save_f32(d / "r.npy", shape, r);
  REQUIRE(run({"--x", (d / "x.npy").string(), "--residual", (d / "r.npy").string(), "--sum",
               (d / "s.npy").string(), "--activation", "relu", "--groups", "3", "--mean",
               (d / "m.npy").string(), "--rstd", (d / "rs.npy").string(), "--stats", (d / "st.npz").string(),
               "--out", (d / "y.npy").string()}) == 0);
  std::vector<float> xr(n);
  for (std::size_t i = 0; i < n; ++i) xr[i] = x[i] + r[i];
  std::vector<groupnorm::reference::stats> st;
  const std::vector<double> ref = groupnorm::reference::group_norm(xr.data(), 2, 6, 35, 3, 1e-5, {}, {}, &st);

  const npy::array y = npy::read_file((d / "y.npy").string());
  const npy::array s = npy::read_file((d / "s.npy").string());
  const npy::array m = npy::read_file((d / "m.npy").string());
  const npy::array rs = npy::read_file((d / "rs.npy").string());
  CHECK(s.f32 == xr);
  for (std::size_t i = 0; i < n; ++i) CHECK(std::abs(y.f32[i] - std::max(0.0, ref[i])) < 2e-5);
  REQUIRE(m.shape() == std::vector<std::size_t>{2, 3});
  REQUIRE(rs.shape() == std::vector<std::size_t>{2, 3});
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(std::abs(m.f32[i] - st[i].mean) < 1e-5 * (1 + std::abs(st[i].mean)));
    const double rstd = 1 / std::sqrt(st[i].var + 1e-5);
    CHECK(std::abs(rs.f32[i] - rstd) < 1e-5 * rstd);
  }
  const std::string npz = slurp(d / "st.npz");
  CHECK(npz.substr(0, 4) == std::string("PK\x03\x04", 4));
  // The archive members are exactly the standalone files.
  CHECK(npz.find(slurp(d / "m.npy")) != std::string::npos);
  CHECK(npz.find(slurp(d / "rs.npy")) != std::string::npos);
}

TEST_CASE("run: errors write nothing and keep existing outputs") {
  const fs::path d = scratch("errors");
  const std::vector<float> x = random_vector(2 * 4 * 9, 0.0f, 1.0f, 5);
  save_f32(d / "x.npy", {2, 4, 3, 3}, x);
  const std::string x_path = (d / "x.npy").string(), y_path = (d / "y.npy").string();

  CHECK(run({"--x", x_path, "--groups", "3", "--out", y_path}) == 2);  // library: 3 does not divide 4
  CHECK(!fs::exists(d / "y.npy"));
  CHECK(run({"--x", x_path, "--groups", "2", "--eps", "nan", "--out", y_path}) == 2);
  CHECK(run({"--x", x_path, "--groups", "2", "--eps", "-0.5", "--out", y_path}) == 2);
  CHECK(run({"--x", x_path, "--groups", "2", "--out", y_path, "--mean", (d / "m.npy").string(), "--gamma",
             (d / "missing.npy").string()}) == 2);
  CHECK(!fs::exists(d / "y.npy"));
  CHECK(!fs::exists(d / "m.npy"));
  CHECK(no_temporaries(d));

  // An existing output stays byte-identical after a failed run.
  fs::copy_file(d / "x.npy", d / "y.npy");
  CHECK(run({"--x", x_path, "--groups", "5", "--out", y_path}) == 2);
  CHECK(slurp(d / "y.npy") == slurp(d / "x.npy"));
  CHECK(no_temporaries(d));

  // --out may name the input: replaced only on success.
  CHECK(run({"--x", x_path, "--groups", "2", "--out", x_path}) == 0);
  CHECK(npy::read_file(x_path).f32 != x);
  CHECK(no_temporaries(d));
}
