// Internal: what every C ABI file shares: exception -> gn_status translation with the thread's last error,
// struct_size-versioned struct reading, and enum fields read as their stored integers.
#pragma once

#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "groupnorm/groupnorm.h"
#include "groupnorm/groupnorm.hpp"

namespace groupnorm::detail {

// Records the outcome of a C call for gn_last_error(). Never throw.
void record_success() noexcept;
void record_error(const char* what, const char* detail = "") noexcept;

// Runs body, translating every exception into a status and a message: nothing crosses the C boundary.
template <class F>
gn_status guarded(F&& body) noexcept {
  try {
    body();
    record_success();
    return GN_OK;
  } catch (const std::invalid_argument& e) {
    record_error(e.what());
    return GN_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    record_error("groupnorm: out of memory");
    return GN_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    record_error("groupnorm: internal error: ", e.what());
    return GN_INTERNAL_ERROR;
  } catch (...) {
    record_error("groupnorm: internal error: unknown exception");
    return GN_INTERNAL_ERROR;
  }
}

// The stored value of a C enum field, read as its integer: a C caller may pass a value outside the
// enumerators (validation rejects it), and loading such a value as the C++ enum type itself is undefined
// behaviour.
template <class E>
int raw_enum(const E& e) noexcept {
  std::underlying_type_t<E> v;
  static_assert(sizeof v == sizeof e);
  std::memcpy(&v, &e, sizeof v);
  return static_cast<int>(v);
}

// How a versioned struct is named in messages: the argument ("options"), its type and its init function.
struct struct_names {
  const char* argument;
  const char* type;
  const char* init;
};

// The largest struct_size read at all (the Linux copy_struct_from_user convention caps it at a page too): a
// garbage size must not make the library scan memory it was not given.
inline constexpr std::size_t kMaxStructSize = 4096;

// Throws groupnorm::invalid_argument for a struct_size that is not accepted (the messages of read_versioned).
[[noreturn]] void struct_size_error(const struct_names& names, std::size_t size, std::size_t current,
                                    const std::size_t* sizes, std::size_t count, std::size_t nonzero_byte);

// Copies a caller's struct into out (defaults already set), following the Linux copy_struct_from_user
// convention: a shorter struct from an older header (its size one of `sizes`: the offset of a field after
// struct_size, or sizeof(T)) keeps the defaults of the fields it lacks; a longer one from a newer header (at
// most kMaxStructSize) is accepted only when every byte this version does not know is zero (a newer field
// left at its default), since ignoring a field the caller set would do something else than asked. Sets
// out.struct_size = sizeof(T). Allocates nothing unless it throws.
template <class T, std::size_t N>
void read_versioned(const T& in, T& out, const std::size_t (&sizes)[N], const struct_names& names) {
  const std::size_t size = in.struct_size;
  if (size == sizeof(T)) {
    std::memcpy(&out, &in, sizeof(T));
  } else if (size > sizeof(T)) {
    if (size > kMaxStructSize) struct_size_error(names, size, sizeof(T), sizes, N, 0);
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(&in);
    for (std::size_t i = sizeof(T); i < size; ++i)
      if (bytes[i] != 0) struct_size_error(names, size, sizeof(T), sizes, N, i);
    std::memcpy(&out, &in, sizeof(T));
  } else {
    bool boundary = false;
    for (std::size_t n : sizes) boundary = boundary || n == size;
    if (!boundary) struct_size_error(names, size, sizeof(T), sizes, N, 0);
    std::memcpy(&out, &in, size);  // an older, shorter struct: the fields past it keep their defaults
  }
  out.struct_size = sizeof(T);
}

// Copies a caller's gn_options into out (defaults set) by read_versioned's rules.
void read_options(const gn_options& in, gn_options& out);

// The problem of a one-shot call (forward or backward): its sizes, and the options' thread count (checked
// here) and layout, dtype and activation (read as stored; the plan validates them). residual stays false.
void check_num_threads(const gn_options& o);
problem one_shot_problem(std::size_t batch, std::size_t channels, std::size_t spatial, std::size_t num_groups,
                         float epsilon, const gn_options& o);

}  // namespace groupnorm::detail
