// Names of the public enums: to_string, parse and the lists validation messages quote, all from
// lib/names.hpp.
#include "names.hpp"

#include <string_view>

namespace groupnorm {
namespace detail {
namespace {

template <class E>
struct table_of;
template <>
struct table_of<layout> {
  static constexpr auto& entries = kLayoutNames;
  static constexpr const char* what = "layout";
};
template <>
struct table_of<dtype> {
  static constexpr auto& entries = kDtypeNames;
  static constexpr const char* what = "dtype";
};
template <>
struct table_of<activation> {
  static constexpr auto& entries = kActivationNames;
  static constexpr const char* what = "activation";
};

template <class E>
const char* name_of(E v) noexcept {
  for (const enum_name<E>& e : table_of<E>::entries)
    if (e.value == v) return e.name;
  return "unknown";
}

template <class E>
E parse_name(std::string_view name) {
  std::string accepted;
  for (const enum_name<E>& e : table_of<E>::entries) {
    if (name == e.name || (e.alias != nullptr && name == e.alias)) return e.value;
    accepted += std::string(accepted.empty() ? "" : ", ") + e.name;
    if (e.alias != nullptr) accepted += std::string(", ") + e.alias;
  }
  throw invalid_argument(std::string("groupnorm: ") + table_of<E>::what + " '" + std::string(name) +
                         "' is unknown, expected one of " + accepted);
}

}  // namespace

template <class E>
bool is_valid(E v) noexcept {
  for (const enum_name<E>& e : table_of<E>::entries)
    if (e.value == v) return true;
  return false;
}

template <class E>
std::string value_list() {
  std::string list;
  for (const enum_name<E>& e : table_of<E>::entries)
    list += std::string(list.empty() ? "" : ", ") + e.name + " (" +
            std::to_string(static_cast<int>(e.value)) + ")";
  return list;
}

template bool is_valid(layout) noexcept;
template bool is_valid(dtype) noexcept;
template bool is_valid(activation) noexcept;
template std::string value_list<layout>();
template std::string value_list<dtype>();
template std::string value_list<activation>();

}  // namespace detail

const char* to_string(layout v) noexcept {
  return detail::name_of(v);
}
const char* to_string(dtype v) noexcept {
  return detail::name_of(v);
}
const char* to_string(activation v) noexcept {
  return detail::name_of(v);
}
layout parse_layout(std::string_view name) {
  return detail::parse_name<layout>(name);
}
dtype parse_dtype(std::string_view name) {
  return detail::parse_name<dtype>(name);
}
activation parse_activation(std::string_view name) {
  return detail::parse_name<activation>(name);
}

}  // namespace groupnorm
