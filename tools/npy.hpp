// A small, strict reader and writer of NumPy .npy files (format 1.0 and 2.0), for the element types the
// library stores: little-endian float32 ('<f4'), float16 ('<f2') and bfloat16. NumPy has no bfloat16 dtype,
// so bfloat16 data travels as its raw 16-bit patterns: '<u2' (x.view(np.uint16)) or '|V2' (what ml_dtypes'
// bfloat16 arrays save as). Anything else — bad magic, other versions, other dtypes, big-endian, Fortran
// order, structured dtypes, a header shape that does not match the data size — is rejected with a one-line
// message naming the file.
//
// Writes are byte-identical to NumPy 1.24's np.save for the same array (format 1.0 unless the header
// needs 2.0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::tool::npy {

// The preamble of every .npy file: this magic string, then the major and minor version bytes.
inline constexpr char kMagic[] = "\x93NUMPY";
inline constexpr std::size_t kMagicLen = 6;

// Any problem with a file: the message is one line and starts with the file's name.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class elem { f32, f16, bf16 };

const char* elem_name(elem e) noexcept;                           // "float32", "float16", "bfloat16"
std::size_t elem_size(elem e) noexcept;                           // 4 or 2
std::string shape_string(const std::vector<std::size_t>& shape);  // Python form: "(2, 3)", "(5,)", "()"

// What the header says. data_offset = bytes before the data (a multiple of 16; 64 for files NumPy writes).
struct header {
  int major = 1;
  int minor = 0;
  std::string descr;  // as written: "<f4", "<f2", "<u2", "|V2"
  elem type = elem::f32;
  std::vector<std::size_t> shape;
  std::size_t data_offset = 0;
  std::size_t count = 0;         // product of shape
  std::uint64_t data_bytes = 0;  // count * elem_size(type)
};

// Parses the preamble and header dictionary of a file whose first bytes are `prefix` (at least the whole
// header) and whose total size is `file_size`; checks that the data size matches the shape exactly. `name`
// prefixes every message. If `prefix` is too short to hold the header, `needed` (when non-null) receives the
// number of bytes required and the function returns a header with data_offset == 0 instead of throwing;
// otherwise a short prefix is a truncation error.
header parse_header(std::string_view prefix, std::uint64_t file_size, const std::string& name,
                    std::size_t* needed = nullptr);

// A loaded array: exactly one of the three vectors holds count() elements, as `type` says.
struct array {
  header info;
  std::vector<float> f32;
  std::vector<groupnorm::f16> f16;
  std::vector<groupnorm::bf16> bf16;

  elem type() const noexcept { return info.type; }
  const std::vector<std::size_t>& shape() const noexcept { return info.shape; }
  std::size_t count() const noexcept { return info.count; }
  const void* data() const noexcept;
  void* data() noexcept;
};

// Reads a whole .npy file from memory (for tests) or from a path. Throws npy::error.
array parse(std::string_view bytes, const std::string& name);
array read_file(const std::string& path);

// The bytes NumPy 1.24 writes before the data of an array with this descr and shape (C order).
std::string make_header(std::string_view descr, const std::vector<std::size_t>& shape);

// Serializes an array (header + little-endian data) to bytes, or writes it to an open stdio stream.
std::string serialize(std::string_view descr, const std::vector<std::size_t>& shape, const void* data,
                      std::size_t bytes);
// Returns false on an I/O error (errno is set).
bool write(std::FILE* f, std::string_view descr, const std::vector<std::size_t>& shape, const void* data,
           std::size_t bytes);

// A NumPy .npz archive (what np.savez writes: an uncompressed zip of .npy members) of small in-memory
// members, e.g. {"mean.npy", serialize(...)}. Returns false on an I/O error.
struct npz_member {
  std::string name;
  std::string bytes;
};
std::string serialize_npz(const std::vector<npz_member>& members);

// The descr the writer uses for an element type ("<f4", "<f2", "<u2").
const char* default_descr(elem e) noexcept;

}  // namespace groupnorm::tool::npy
