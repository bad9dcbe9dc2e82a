// One table per public enum (layout, dtype, activation): every value in order, with its names. to_string and
// parse (lib/names.cpp), validation messages and the kernel tables' dimensions all come from these.
#pragma once

#include <cstddef>
#include <iterator>
#include <string>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::detail {

template <class E>
struct enum_name {
  E value;
  const char* name;             // canonical: to_string returns it
  const char* alias = nullptr;  // also accepted by parse
};

inline constexpr enum_name<layout> kLayoutNames[] = {{layout::nchw, "nchw"}, {layout::nhwc, "nhwc"}};
inline constexpr enum_name<dtype> kDtypeNames[] = {
    {dtype::f32, "f32", "float32"}, {dtype::f16, "f16", "float16"}, {dtype::bf16, "bf16", "bfloat16"}};
inline constexpr enum_name<activation> kActivationNames[] = {{activation::none, "none"},
                                                             {activation::relu, "relu"},
                                                             {activation::silu, "silu"},
                                                             {activation::gelu, "gelu"}};

// Each table lists the values 0 .. N-1 in order, so a value indexes the kernel tables directly.
template <class E, std::size_t N>
constexpr bool dense(const enum_name<E> (&table)[N]) {
  for (std::size_t i = 0; i < N; ++i)
    if (static_cast<std::size_t>(table[i].value) != i) return false;
  return true;
}
static_assert(dense(kLayoutNames) && dense(kDtypeNames) && dense(kActivationNames));

inline constexpr int kDtypes = static_cast<int>(std::size(kDtypeNames));
inline constexpr int kActivations = static_cast<int>(std::size(kActivationNames));

// Whether v is a value of its enum's table (a cast from an arbitrary int may not be).
template <class E>
bool is_valid(E v) noexcept;
// The table's values for a message: "none (0), relu (1), silu (2), gelu (3)".
template <class E>
std::string value_list();

}  // namespace groupnorm::detail
