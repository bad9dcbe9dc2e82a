// Strict .npy reader: a whole file into typed storage (the header is parsed by npy_header.cpp, files are
// written by npy_write.cpp); see npy.hpp for what is accepted.
#include "npy.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>

#include <sys/stat.h>

namespace groupnorm::tool::npy {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw error(name + ": " + what);
}

// Data of a C-ordered little-endian array into typed storage (byte-swapped on a big-endian host).
template <class T>
void load_into(std::vector<T>& v, std::size_t count, const unsigned char* src) {
  v.resize(count);
  if (count) std::memcpy(v.data(), src, count * sizeof(T));
  if constexpr (std::endian::native == std::endian::big) {
    auto* b = reinterpret_cast<unsigned char*>(v.data());
    for (std::size_t i = 0; i < count; ++i) std::reverse(b + i * sizeof(T), b + (i + 1) * sizeof(T));
  }
}

void allocate(array& a) {
  switch (a.info.type) {
    case elem::f32:
      a.f32.resize(a.info.count);
      break;
    case elem::f16:
      a.f16.resize(a.info.count);
      break;
    case elem::bf16:
      a.bf16.resize(a.info.count);
      break;
  }
}

void fix_endianness(array& a) {
  if constexpr (std::endian::native == std::endian::big) {
    auto* b = static_cast<unsigned char*>(a.data());
    const std::size_t w = elem_size(a.info.type);
    for (std::size_t i = 0; i < a.info.count; ++i) std::reverse(b + i * w, b + (i + 1) * w);
  } else {
    (void)a;
  }
}

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

const void* array::data() const noexcept {
  switch (info.type) {
    case elem::f32:
      return f32.data();
    case elem::f16:
      return f16.data();
    case elem::bf16:
      return bf16.data();
  }
  return nullptr;
}

void* array::data() noexcept {
  return const_cast<void*>(static_cast<const array*>(this)->data());
}

array parse(std::string_view bytes, const std::string& name) {
  array a;
  a.info = parse_header(bytes, bytes.size(), name);
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data()) + a.info.data_offset;
  switch (a.info.type) {
    case elem::f32:
      load_into(a.f32, a.info.count, src);
      break;
    case elem::f16:
      load_into(a.f16, a.info.count, src);
      break;
    case elem::bf16:
      load_into(a.bf16, a.info.count, src);
      break;
  }
  return a;
}

array read_file(const std::string& path) {
  std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fileno(f.get()), &st) != 0) fail(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const auto file_size = static_cast<std::uint64_t>(st.st_size);

  std::string prefix(static_cast<std::size_t>(std::min<std::uint64_t>(file_size, 4096)), '\0');
  auto read_exact = [&](void* dst, std::size_t n) {
    if (n && std::fread(dst, 1, n, f.get()) != n)
      fail(path, std::ferror(f.get()) ? std::string("read error: ") + std::strerror(errno)
                                      : std::string("the file shrank while being read"));
  };
  read_exact(prefix.data(), prefix.size());
  std::size_t needed = 0;
  array a;
  a.info = parse_header(prefix, file_size, path, &needed);
  if (a.info.data_offset == 0) {  // header longer than the first read
    const std::size_t have = prefix.size();
    prefix.resize(needed);
    read_exact(prefix.data() + have, needed - have);
    a.info = parse_header(prefix, file_size, path);
  }
  if (std::fseek(f.get(), static_cast<long>(a.info.data_offset), SEEK_SET) != 0)
    fail(path, std::string("seek error: ") + std::strerror(errno));
  try {
    allocate(a);
  } catch (const std::bad_alloc&) {
    fail(path, "not enough memory for " + std::to_string(a.info.data_bytes) + " bytes of data");
  }
  read_exact(a.data(), static_cast<std::size_t>(a.info.data_bytes));
  fix_endianness(a);
  return a;
}

}  // namespace groupnorm::tool::npy
