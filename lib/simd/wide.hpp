// The 16-lane vector as a struct of native-width pieces, for targets whose registers are narrower than 64
// bytes: GCC keeps 64-byte extension vectors in memory there, so every operation would be a stack round trip;
// a struct of register-sized pieces is split into registers. Same operators as the vector extensions.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace groupnorm::detail {
namespace {  // internal linkage per ISA translation unit, see simd.hpp
namespace simd {

inline constexpr int kWidth = 16;

// 16 lanes of E as an array of native vectors P (P holds kPieceBytes).
template <class E, class P>
struct wide {
  using piece = P;
  static constexpr int kPieceLanes = static_cast<int>(sizeof(P) / sizeof(E));
  static constexpr int kPieces = kWidth / kPieceLanes;
  P p[kPieces];
  E operator[](int j) const noexcept { return p[j / kPieceLanes][j % kPieceLanes]; }
};

template <class T>
inline constexpr bool is_wide = false;
template <class E, class P>
inline constexpr bool is_wide<wide<E, P>> = true;

template <class To, class From>
[[gnu::always_inline]] inline To bitcast(From v) noexcept {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  if constexpr (is_wide<To> && is_wide<From>) {
    // Piece by piece (a vector cast reinterprets the bits): a memcpy of the whole struct would go through
    // the stack.
#pragma GCC unroll 4
    for (int k = 0; k < To::kPieces; ++k) out.p[k] = (typename To::piece)v.p[k];
  } else {
    std::memcpy(&out, &v, sizeof out);
  }
  return out;
}

template <class E, class P, class X>
inline void set_lane(wide<E, P>& v, int j, X x) noexcept {
  v.p[j / wide<E, P>::kPieceLanes][j % wide<E, P>::kPieceLanes] = static_cast<E>(x);
}

// Element-wise operators, vector-vector and with a scalar on either side (the scalar converted to E, as
// GCC's vector extensions do), plus the compound assignments.
#define GN_WIDE_BINARY(op)                                                                                  \
  template <class E, class P>                                                                               \
  [[gnu::always_inline]] inline wide<E, P> operator op(const wide<E, P>& a, const wide<E, P>& b) noexcept { \
    wide<E, P> r;                                                                                           \
    _Pragma("GCC unroll 4") for (int k = 0; k < wide<E, P>::kPieces; ++k) r.p[k] = a.p[k] op b.p[k];        \
    return r;                                                                                               \
  }                                                                                                         \
  template <class E, class P, class S, class = std::enable_if_t<std::is_arithmetic_v<S>>>                   \
  [[gnu::always_inline]] inline wide<E, P> operator op(const wide<E, P>& a, S b) noexcept {                 \
    wide<E, P> r;                                                                                           \
    _Pragma("GCC unroll 4") for (int k = 0; k < wide<E, P>::kPieces; ++k) r.p[k] =                          \
        a.p[k] op static_cast<E>(b);                                                                        \
    return r;                                                                                               \
  }                                                                                                         \
  template <class E, class P, class S, class = std::enable_if_t<std::is_arithmetic_v<S>>>                   \
  [[gnu::always_inline]] inline wide<E, P> operator op(S a, const wide<E, P>& b) noexcept {                 \
    wide<E, P> r;                                                                                           \
    _Pragma("GCC unroll 4") for (int k = 0; k < wide<E, P>::kPieces; ++k) r.p[k] =                          \
        static_cast<E>(a) op b.p[k];                                                                        \
    return r;                                                                                               \
  }                                                                                                         \
  template <class E, class P, class X>                                                                      \
  [[gnu::always_inline]] inline wide<E, P>& operator op##=(wide<E, P>& a, const X& b) noexcept {            \
    return a = a op b;                                                                                      \
  }
GN_WIDE_BINARY(+)
GN_WIDE_BINARY(-)
GN_WIDE_BINARY(*)
GN_WIDE_BINARY(/)
GN_WIDE_BINARY(&)
GN_WIDE_BINARY(|)
GN_WIDE_BINARY(^)
GN_WIDE_BINARY(<<)
GN_WIDE_BINARY(>>)
#undef GN_WIDE_BINARY

template <class E, class P>
[[gnu::always_inline]] inline wide<E, P> operator-(const wide<E, P>& a) noexcept {
  wide<E, P> r;
#pragma GCC unroll 4
  for (int k = 0; k < wide<E, P>::kPieces; ++k) r.p[k] = -a.p[k];
  return r;
}
template <class E, class P>
[[gnu::always_inline]] inline wide<E, P> operator~(const wide<E, P>& a) noexcept {
  wide<E, P> r;
#pragma GCC unroll 4
  for (int k = 0; k < wide<E, P>::kPieces; ++k) r.p[k] = ~a.p[k];
  return r;
}

}  // namespace simd
}  // namespace
}  // namespace groupnorm::detail
