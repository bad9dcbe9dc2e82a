// .npy header: the preamble, the header dictionary and the dtype names (see npy.hpp for what is accepted).
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "npy.hpp"

namespace groupnorm::tool::npy {
namespace {

constexpr std::size_t kMaxHeaderLen =
    1 << 20;  // NumPy itself refuses headers above 10000 characters by default

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw error(name + ": " + what);
}

// Printable form of a header excerpt for messages: one line, bounded length.
std::string excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  if (s.size() > 60) out += "...";
  return out;
}

std::uint32_t load_le(const unsigned char* p, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The header dictionary: {'descr': <str>, 'fortran_order': <bool>, 'shape': <tuple of int>}, keys in any
// order, Python-literal whitespace, an optional trailing comma.
class dict_parser {
 public:
  dict_parser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  void parse(std::string& descr, bool& fortran, std::vector<std::size_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{', "the header dictionary to start with '{'");
    for (;;) {
      skip_ws();
      if (peek() == '}') break;
      const std::string key = string_literal("a quoted key");
      skip_ws();
      expect(':', "':' after key '" + key + "'");
      skip_ws();
      if (key == "descr") {
        if (have_descr) bad("key 'descr' appears twice");
        if (peek() == '[')
          bad("structured dtype (a list descr) is not supported; expected '<f4', '<f2', '<u2' or '|V2'");
        descr = string_literal("a quoted string for 'descr'");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran) bad("key 'fortran_order' appears twice");
        fortran = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        if (have_shape) bad("key 'shape' appears twice");
        shape = tuple();
        have_shape = true;
      } else {
        bad("unexpected header key '" + key + "' (expected exactly 'descr', 'fortran_order' and 'shape')");
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_ws();
      if (peek() != '}') bad("expected ',' or '}' in the header at offset " + std::to_string(pos_));
    }
    ++pos_;  // '}'
    skip_ws();
    if (pos_ != s_.size())
      bad("unexpected text after the header dictionary: '" + excerpt(s_.substr(pos_)) + "'");
    if (!have_descr) bad("the header has no 'descr' key");
    if (!have_fortran) bad("the header has no 'fortran_order' key");
    if (!have_shape) bad("the header has no 'shape' key");
  }

 private:
  [[noreturn]] void bad(const std::string& what) const { fail(name_, "bad .npy header: " + what); }

  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c, const std::string& what) {
    if (peek() != c) bad("expected " + what + " at offset " + std::to_string(pos_));
    ++pos_;
  }
  std::string string_literal(const std::string& what) {
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected " + what + " at offset " + std::to_string(pos_));
    const std::size_t start = ++pos_;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\' || s_[pos_] == '\n') bad("unsupported character in a header string");
      ++pos_;
    }
    if (pos_ >= s_.size()) bad("unterminated string in the header");
    std::string out(s_.substr(start, pos_ - start));
    ++pos_;
    return out;
  }
  bool boolean() {
    if (s_.substr(pos_, 4) == "True") return pos_ += 4, true;
    if (s_.substr(pos_, 5) == "False") return pos_ += 5, false;
    bad("'fortran_order' must be True or False");
  }
  std::vector<std::size_t> tuple() {
    std::vector<std::size_t> out;
    bool trailing_comma = false;
    expect('(', "a tuple '(...)' for 'shape'");
    for (;;) {
      skip_ws();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') bad("'shape' must be a tuple of non-negative integers");
      std::size_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        const auto digit = static_cast<std::size_t>(peek() - '0');
        if (__builtin_mul_overflow(v, std::size_t{10}, &v) || __builtin_add_overflow(v, digit, &v))
          bad("a 'shape' dimension overflows size_t");
        ++pos_;
      }
      out.push_back(v);
      skip_ws();
      trailing_comma = peek() == ',';
      if (trailing_comma) {
        ++pos_;
        continue;
      }
      if (peek() != ')') bad("expected ',' or ')' in 'shape'");
    }
    ++pos_;
    // Python needs the comma of a 1-tuple: "(5)" is the int 5, not a shape.
    if (out.size() == 1 && !trailing_comma)
      bad("'shape' (" + std::to_string(out[0]) + ") is not a tuple; a 1-tuple is written (n,)");
    return out;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

elem elem_of_descr(const std::string& d, const std::string& name) {
  if (d == "<f4") return elem::f32;
  if (d == "<f2") return elem::f16;
  if (d == "<u2" || d == "|V2") return elem::bf16;
  if (d.size() >= 2 && d[0] == '>')
    fail(name, "big-endian dtype '" + d + "' is not supported; save x.astype(x.dtype.newbyteorder('<'))");
  if (d == "=f4" || d == "f4" || d == "=f2" || d == "f2")
    fail(name, "dtype '" + d + "' has no explicit byte order; expected '<" + d.substr(d.size() - 2) + "'");
  fail(name, "unsupported dtype '" + d +
                 "'; expected '<f4' (float32), '<f2' (float16), or '<u2' / '|V2' (bfloat16 bits)");
}

}  // namespace

const char* elem_name(elem e) noexcept {
  switch (e) {
    case elem::f32:
      return "float32";
    case elem::f16:
      return "float16";
    case elem::bf16:
      return "bfloat16";
  }
  return "?";
}

std::size_t elem_size(elem e) noexcept {
  return e == elem::f32 ? 4 : 2;
}

const char* default_descr(elem e) noexcept {
  switch (e) {
    case elem::f32:
      return "<f4";
    case elem::f16:
      return "<f2";
    case elem::bf16:
      return "<u2";
  }
  return "?";
}

std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

header parse_header(std::string_view prefix, std::uint64_t file_size, const std::string& name,
                    std::size_t* needed) {
  const auto* p = reinterpret_cast<const unsigned char*>(prefix.data());
  const std::size_t avail = std::min<std::uint64_t>(prefix.size(), file_size);
  if (avail < kMagicLen || std::memcmp(p, kMagic, kMagicLen) != 0) {
    if (avail < kMagicLen && std::string_view(kMagic, avail) == prefix.substr(0, avail))
      fail(name,
           "truncated .npy file: " + std::to_string(file_size) + " bytes, shorter than the magic string");
    fail(name, "not a .npy file (the first bytes are not \\x93NUMPY)");
  }
  if (avail < kMagicLen + 2) fail(name, "truncated .npy file: no format version");
  header h;
  h.major = p[6];
  h.minor = p[7];
  if ((h.major != 1 && h.major != 2) || h.minor != 0)
    fail(name, "unsupported .npy format version " + std::to_string(h.major) + "." + std::to_string(h.minor) +
                   " (expected 1.0 or 2.0)");
  const std::size_t len_bytes = h.major == 1 ? 2 : 4;
  const std::size_t pre = kMagicLen + 2 + len_bytes;
  if (file_size < pre) fail(name, "truncated .npy file: the header length is missing");
  if (avail < pre) {
    if (needed) return *needed = pre, h;
    fail(name, "truncated .npy file: the header length is missing");
  }
  const std::size_t header_len = load_le(p + 8, static_cast<int>(len_bytes));
  if (header_len > kMaxHeaderLen)
    fail(name, "the .npy header claims " + std::to_string(header_len) + " bytes, more than the limit of " +
                   std::to_string(kMaxHeaderLen));
  h.data_offset = pre + header_len;
  if (file_size < h.data_offset)
    fail(name, "truncated .npy file: the header needs " + std::to_string(h.data_offset) +
                   " bytes, the file has " + std::to_string(file_size));
  if (avail < h.data_offset) {
    if (needed) return *needed = h.data_offset, h.data_offset = 0, h;
    fail(name, "truncated .npy file: the header is incomplete");
  }
  const std::string_view text = prefix.substr(pre, header_len);
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80)
      fail(name, "bad .npy header: non-ASCII byte in a format 1.0/2.0 header");

  bool fortran = false;
  dict_parser(text, name).parse(h.descr, fortran, h.shape);
  h.type = elem_of_descr(h.descr, name);
  if (fortran) fail(name, "Fortran-ordered arrays are not supported; save np.ascontiguousarray(x) (C order)");

  h.count = 1;
  for (std::size_t d : h.shape)
    if (__builtin_mul_overflow(h.count, d, &h.count))
      fail(name, "shape " + shape_string(h.shape) + " has more elements than size_t can count");
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(h.count),
                             static_cast<std::uint64_t>(elem_size(h.type)), &h.data_bytes))
    fail(name, "shape " + shape_string(h.shape) + " is too large");
  const std::uint64_t have = file_size - h.data_offset;
  if (have < h.data_bytes)
    fail(name, "truncated .npy file: shape " + shape_string(h.shape) + " of " + h.descr + " needs " +
                   std::to_string(h.data_bytes) + " bytes of data, the file has " + std::to_string(have));
  if (have > h.data_bytes)
    fail(name, "the file has " + std::to_string(have) + " bytes of data, more than shape " +
                   shape_string(h.shape) + " of " + h.descr + " needs (" + std::to_string(h.data_bytes) +
                   ")");
  return h;
}

}  // namespace groupnorm::tool::npy
