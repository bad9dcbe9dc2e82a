// .npy / .npz writer, byte-identical to NumPy 1.24's np.save / np.savez (see npy.hpp).
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "npy.hpp"

namespace groupnorm::tool::npy {
namespace {

std::uint32_t crc32(const std::string& data) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

}  // namespace

std::string make_header(std::string_view descr, const std::vector<std::size_t>& shape) {
  // Exactly what numpy.lib.format._write_array_header (NumPy 1.24) produces for a C-ordered array.
  std::string dict = "{'descr': '" + std::string(descr) +
                     "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < 21) dict.append(21 - digits, ' ');
  }
  const std::size_t hlen = dict.size() + 1;  // + '\n'
  auto wrap = [&](int major) {
    const std::size_t len_bytes = major == 1 ? 2 : 4;
    const std::size_t padlen = 64 - ((kMagicLen + 2 + len_bytes + hlen) % 64);  // magic + version + length
    const std::size_t total_len = hlen + padlen;
    std::string out(kMagic, kMagicLen);
    out += static_cast<char>(major);
    out += '\0';
    put_le(out, total_len, static_cast<int>(len_bytes));
    out += dict;
    out.append(padlen, ' ');
    out += '\n';
    return out;
  };
  const std::size_t padded_v1 = hlen + (64 - ((kMagicLen + 2 + 2 + hlen) % 64));
  return wrap(padded_v1 <= 0xFFFF ? 1 : 2);
}

std::string serialize(std::string_view descr, const std::vector<std::size_t>& shape, const void* data,
                      std::size_t bytes) {
  std::string out = make_header(descr, shape);
  const std::size_t off = out.size();
  out.resize(off + bytes);
  if (bytes) std::memcpy(out.data() + off, data, bytes);
  if constexpr (std::endian::native == std::endian::big) {
    const std::size_t w = descr.size() >= 3 && descr.substr(1) == "f4" ? 4 : 2;
    for (std::size_t i = off; i + w <= out.size(); i += w) std::reverse(out.begin() + i, out.begin() + i + w);
  }
  return out;
}

bool write(std::FILE* f, std::string_view descr, const std::vector<std::size_t>& shape, const void* data,
           std::size_t bytes) {
  const std::string head = make_header(descr, shape);
  if (std::fwrite(head.data(), 1, head.size(), f) != head.size()) return false;
  if constexpr (std::endian::native == std::endian::big) {
    const std::string all = serialize(descr, shape, data, bytes);
    return std::fwrite(all.data() + head.size(), 1, bytes, f) == bytes;
  } else {
    // Large arrays go out in pieces so a progress-free write of many GB still reports errors early.
    const auto* p = static_cast<const char*>(data);
    constexpr std::size_t piece = std::size_t{64} << 20;
    for (std::size_t done = 0; done < bytes;) {
      const std::size_t n = std::min(piece, bytes - done);
      if (std::fwrite(p + done, 1, n, f) != n) return false;
      done += n;
    }
    return true;
  }
}

std::string serialize_npz(const std::vector<npz_member>& members) {
  // Uncompressed ("stored") zip, as np.savez writes; fixed 1980-01-01 timestamps so output is reproducible.
  constexpr std::uint16_t kTime = 0, kDate = (0 << 9) | (1 << 5) | 1;
  std::string out, central;
  for (const npz_member& m : members) {
    const std::uint32_t crc = crc32(m.bytes);
    const std::uint64_t offset = out.size();
    put_le(out, 0x04034b50, 4);
    put_le(out, 20, 2);  // version needed
    put_le(out, 0, 2);   // flags
    put_le(out, 0, 2);   // stored
    put_le(out, kTime, 2);
    put_le(out, kDate, 2);
    put_le(out, crc, 4);
    put_le(out, m.bytes.size(), 4);
    put_le(out, m.bytes.size(), 4);
    put_le(out, m.name.size(), 2);
    put_le(out, 0, 2);
    out += m.name;
    out += m.bytes;

    put_le(central, 0x02014b50, 4);
    put_le(central, 20, 2);  // made by
    put_le(central, 20, 2);  // needed
    put_le(central, 0, 2);
    put_le(central, 0, 2);
    put_le(central, kTime, 2);
    put_le(central, kDate, 2);
    put_le(central, crc, 4);
    put_le(central, m.bytes.size(), 4);
    put_le(central, m.bytes.size(), 4);
    put_le(central, m.name.size(), 2);
    put_le(central, 0, 2);  // extra
    put_le(central, 0, 2);  // comment
    put_le(central, 0, 2);  // disk
    put_le(central, 0, 2);  // internal attributes
    put_le(central, 0, 4);  // external attributes
    put_le(central, offset, 4);
    central += m.name;
  }
  const std::uint64_t cd_offset = out.size();
  out += central;
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 2);
  put_le(out, 0, 2);
  put_le(out, members.size(), 2);
  put_le(out, members.size(), 2);
  put_le(out, central.size(), 4);
  put_le(out, cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

}  // namespace groupnorm::tool::npy
