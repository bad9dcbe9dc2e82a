// Unit tests of the strict .npy reader / writer (tools/npy.hpp) against files NumPy wrote
// (tests/cli/fixtures).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "npy.hpp"

namespace npy = groupnorm::tool::npy;

namespace {

std::string fixture(const std::string& name) {
  return std::string(GROUPNORM_CLI_FIXTURES) + "/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The message of the npy::error that reading `bytes` throws ("" if it does not throw).
std::string parse_error(const std::string& bytes) {
  try {
    (void)npy::parse(bytes, "mem.npy");
  } catch (const npy::error& e) {
    const std::string m = e.what();
    CHECK(m.find('\n') == std::string::npos);
    CHECK(m.rfind("mem.npy: ", 0) == 0);
    return m;
  }
  return "";
}

std::string file_error(const std::string& name) {
  try {
    (void)npy::read_file(fixture(name));
  } catch (const npy::error& e) {
    const std::string m = e.what();
    CHECK(m.find('\n') == std::string::npos);
    CHECK(m.rfind(fixture(name) + ": ", 0) == 0);
    return m;
  }
  return "";
}

// A format 1.0 file with the given header dictionary text and data bytes (header padded NumPy's way).
std::string with_header(const std::string& dict, const std::string& data, int major = 1) {
  std::string h = dict;
  const std::size_t pre = major == 1 ? 10 : 12;
  while ((pre + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  for (std::size_t i = 0; i < pre - 8; ++i) out += static_cast<char>((h.size() >> (8 * i)) & 0xFF);
  return out + h + data;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("npy: reads NumPy's float32 files, format 1.0 and 2.0, with identical contents") {
  const npy::array a = npy::read_file(fixture("x_f32.npy"));
  CHECK(a.type() == npy::elem::f32);
  CHECK(a.info.major == 1);
  CHECK(a.info.descr == "<f4");
  CHECK(a.shape() == std::vector<std::size_t>{2, 4, 3, 3});
  CHECK(a.count() == 72);
  CHECK(a.f32.size() == 72);
  CHECK(a.info.data_offset == 128);
  const npy::array b = npy::read_file(fixture("x_f32_v2.npy"));
  CHECK(b.info.major == 2);
  CHECK(b.f32 == a.f32);
}

TEST_CASE("npy: float16 and the two bfloat16 encodings") {
  const npy::array h = npy::read_file(fixture("x_f16.npy"));
  CHECK(h.type() == npy::elem::f16);
  CHECK(h.f16.size() == 72);
  const npy::array u = npy::read_file(fixture("x_bf16_u2.npy"));
  const npy::array v = npy::read_file(fixture("x_bf16_v2.npy"));
  CHECK(u.type() == npy::elem::bf16);
  CHECK(v.type() == npy::elem::bf16);
  CHECK(u.info.descr == "<u2");
  CHECK(v.info.descr == "|V2");
  REQUIRE(u.bf16.size() == 72);
  REQUIRE(v.bf16.size() == 72);
  const npy::array x = npy::read_file(fixture("x_f32.npy"));
  for (std::size_t i = 0; i < 72; ++i) {
    CHECK(u.bf16[i].bits == v.bf16[i].bits);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &x.f32[i], 4);
    // Round to nearest even of the top 16 bits, as the fixture generator did.
    const std::uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    CHECK(u.bf16[i].bits == static_cast<std::uint16_t>(rounded));
  }
}

TEST_CASE("npy: the writer reproduces NumPy's files byte for byte") {
  for (const char* name :
       {"x_f32.npy", "gamma.npy", "x_f16.npy", "x_bf16_u2.npy", "x_bf16_v2.npy", "x_rank2.npy", "x_rank5.npy",
        "x_empty_batch.npy", "bad_rank1.npy", "bad_scalar.npy", "residual.npy"}) {
    CAPTURE(name);
    const std::string bytes = slurp(fixture(name));
    const npy::array a = npy::read_file(fixture(name));
    CHECK(npy::make_header(a.info.descr, a.shape()) == bytes.substr(0, a.info.data_offset));
    CHECK(npy::serialize(a.info.descr, a.shape(), a.data(), a.info.data_bytes) == bytes);
    const npy::array m = npy::parse(bytes, name);
    CHECK(m.shape() == a.shape());
    CHECK(npy::serialize(m.info.descr, m.shape(), m.data(), m.info.data_bytes) == bytes);
  }
}

TEST_CASE("npy: write() to a stream equals serialize()") {
  const npy::array a = npy::read_file(fixture("x_rank5.npy"));
  std::FILE* f = std::tmpfile();
  REQUIRE(f != nullptr);
  CHECK(npy::write(f, a.info.descr, a.shape(), a.data(), a.info.data_bytes));
  const long n = std::ftell(f);
  std::rewind(f);
  std::string back(static_cast<std::size_t>(n), '\0');
  CHECK(std::fread(back.data(), 1, back.size(), f) == back.size());
  std::fclose(f);
  CHECK(back == slurp(fixture("x_rank5.npy")));
}

TEST_CASE("npy: headers too long for format 1.0 are written as 2.0, 64-byte aligned") {
  const std::vector<std::size_t> shape(30000, 1);
  const std::string h = npy::make_header("<f4", shape);
  CHECK(h[6] == 2);
  CHECK(h.size() % 64 == 0);
  CHECK(h.back() == '\n');
  const float one = 1.0f;
  const npy::array a = npy::parse(h + std::string(reinterpret_cast<const char*>(&one), 4), "big.npy");
  CHECK(a.shape() == shape);
  CHECK(a.f32 == std::vector<float>{1.0f});
  const std::string small = npy::make_header("<f4", {3});
  CHECK(small[6] == 1);
  CHECK(small.size() == 128);
}

TEST_CASE("npy: every defect of the fixtures has its own message") {
  CHECK(contains(file_error("bad_magic.npy"), "not a .npy file"));
  CHECK(contains(file_error("bad_empty.npy"), "truncated .npy file"));
  CHECK(contains(file_error("bad_truncated_data.npy"), "needs 288 bytes of data, the file has 283"));
  CHECK(contains(file_error("bad_truncated_header.npy"), "the header needs 128 bytes, the file has 40"));
  CHECK(contains(file_error("bad_trailing.npy"), "has 292 bytes of data, more than shape (2, 4, 3, 3)"));
  CHECK(contains(file_error("bad_fortran.npy"), "Fortran-ordered arrays are not supported"));
  CHECK(contains(file_error("bad_bigendian.npy"), "big-endian dtype '>f4'"));
  CHECK(contains(file_error("bad_f64.npy"), "unsupported dtype '<f8'"));
  CHECK(contains(file_error("bad_i4.npy"), "unsupported dtype '<i4'"));
  CHECK(contains(file_error("bad_structured.npy"), "structured dtype"));
  CHECK(contains(file_error("bad_v3.npy"), "unsupported .npy format version 3.0"));
  CHECK(contains(file_error("bad_shape_mismatch.npy"), "shape (2, 4, 3, 4) of <f4 needs 384 bytes"));
  CHECK(contains(file_error("bad_header_keys.npy"), "unexpected header key 'fortran_ordex'"));
  CHECK(contains(file_error("does_not_exist.npy"), "cannot open"));
  CHECK(contains(file_error(""), "not a regular file"));  // the fixtures directory itself
}

TEST_CASE("npy: header dictionary syntax") {
  const std::string four(4, '\0');
  // Accepted: any key order, double quotes, extra whitespace, no trailing comma, the 1-tuple comma.
  CHECK(parse_error(with_header("{'shape': (1,), 'fortran_order': False, 'descr': '<f4'}", four)).empty());
  CHECK(parse_error(with_header("{ \"descr\" : \"<f4\" ,'fortran_order':False,'shape':( 1 , ) , }", four))
            .empty());
  CHECK(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", four, 2))
            .empty());
  CHECK(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", "")).empty());

  // Rejected, each with a precise message.
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", four)),
                 "is not a tuple"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", four)),
                 "non-negative integers"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': [1], }", four)),
                 "a tuple"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", four)),
                 "True or False"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'shape': (1,), }", four)), "no 'fortran_order'"));
  CHECK(contains(parse_error(with_header("{'fortran_order': False, 'shape': (1,), }", four)), "no 'descr'"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, }", four)), "no 'shape'"));
  CHECK(contains(parse_error(with_header(
                     "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", four)),
                 "'descr' appears twice"));
  CHECK(
      contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", four)),
               "unexpected text after"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", four)),
                 "expected ',' or '}'"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", four)),
                 "header"));
  CHECK(contains(parse_error(with_header("['descr']", four)), "to start with '{'"));
  CHECK(contains(parse_error(with_header("{'descr': 'f4', 'fortran_order': False, 'shape': (1,), }", four)),
                 "no explicit byte order"));
  CHECK(contains(parse_error(with_header(
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,)}", four)),
                 "overflows size_t"));
  CHECK(contains(parse_error(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
                                         "4294967296, 4294967296)}",
                                         four)),
                 "more elements than size_t can count"));
  std::string non_ascii = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", four);
  non_ascii[20] = static_cast<char>(0xE9);
  CHECK(contains(parse_error(non_ascii), "non-ASCII"));
}

TEST_CASE("npy: truncation at every byte of a valid file is an error, never a crash") {
  const std::string bytes = slurp(fixture("gamma.npy"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK(contains(parse_error(bytes.substr(0, n)), "truncated"));
  }
  CHECK(parse_error(bytes).empty());
}

TEST_CASE("npy: bad magic, versions and header lengths") {
  const std::string good = slurp(fixture("gamma.npy"));
  std::string v = good;
  v[6] = 1, v[7] = 1;
  CHECK(contains(parse_error(v), "format version 1.1"));
  v[6] = 4, v[7] = 0;
  CHECK(contains(parse_error(v), "format version 4.0"));
  CHECK(contains(parse_error("\x93NUMPZ" + good.substr(6)), "not a .npy file"));
  CHECK(contains(parse_error("PK\x03\x04 not an npy"), "not a .npy file"));
  std::string huge = std::string("\x93NUMPY\x02\x00", 8) + std::string("\xff\xff\xff\x7f", 4);
  CHECK(contains(parse_error(huge), "more than the limit"));
}

TEST_CASE("npy: shape_string is Python's tuple repr") {
  CHECK(npy::shape_string({}) == "()");
  CHECK(npy::shape_string({5}) == "(5,)");
  CHECK(npy::shape_string({2, 3}) == "(2, 3)");
}

TEST_CASE("npy: npz archive layout") {
  const std::string a = npy::serialize("<f4", {0}, nullptr, 0);
  const std::string z = npy::serialize_npz({{"mean.npy", a}, {"rstd.npy", a}});
  CHECK(z.substr(0, 4) == std::string("PK\x03\x04", 4));
  CHECK(z.find("mean.npy") != std::string::npos);
  CHECK(z.find("rstd.npy") != std::string::npos);
  CHECK(z.substr(z.size() - 22, 4) == std::string("PK\x05\x06", 4));  // end of central directory
  CHECK(static_cast<unsigned char>(z[z.size() - 22 + 10]) == 2);      // two entries
}
