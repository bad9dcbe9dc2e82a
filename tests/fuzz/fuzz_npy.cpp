// libFuzzer target: the strict .npy reader (tools/npy.hpp) on arbitrary bytes. Accepted files must satisfy
// the header invariants and survive a write/read round trip bit for bit; rejected ones must fail with
// npy::error only (never another exception, a crash, a leak or an allocation larger than the input
// justifies).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "npy.hpp"

namespace npy = groupnorm::tool::npy;

namespace {
[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "fuzz_npy: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The incremental header parser on every prefix length a reader might try.
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, std::size_t{64}, size / 2, size}) {
    if (cut > size) continue;
    try {
      std::size_t needed = 0;
      const npy::header h = npy::parse_header(bytes.substr(0, cut), size, "fuzz", &needed);
      if (h.data_offset == 0 && needed <= cut) die("parse_header asked for no more bytes than it had");
    } catch (const npy::error&) {
    }
  }
  npy::array a;
  try {
    a = npy::parse(bytes, "fuzz");
  } catch (const npy::error& e) {
    if (std::strncmp(e.what(), "fuzz", 4) != 0) die("message does not start with the file name");
    return 0;
  }
  const npy::header& h = a.info;
  std::size_t count = 1;
  for (std::size_t d : h.shape)
    if (__builtin_mul_overflow(count, d, &count)) die("accepted a shape whose product overflows");
  if (count != h.count) die("count != product of shape");
  if (h.data_bytes != count * npy::elem_size(h.type)) die("data_bytes != count * elem_size");
  // No alignment check on data_offset: NumPy pads headers to 64 bytes when writing but np.load accepts any
  // header length, and so does the reader.
  if (h.data_offset + h.data_bytes != size) die("data does not end the file");
  const std::size_t have = h.type == npy::elem::f32   ? a.f32.size()
                           : h.type == npy::elem::f16 ? a.f16.size()
                                                      : a.bf16.size();
  if (have != count) die("loaded element count != header count");
  // Round trip: what we write, we read back identically.
  const std::string again = npy::serialize(h.descr, h.shape, a.data(), h.data_bytes);
  const npy::array b = npy::parse(again, "roundtrip");
  if (b.info.shape != h.shape || b.info.type != h.type) die("round trip changed the header");
  if (h.data_bytes && std::memcmp(a.data(), b.data(), h.data_bytes) != 0) die("round trip changed the data");
  return 0;
}
