// The C ABI: thin wrappers that translate exceptions into gn_status + a thread-local message. Plans are built
// on the stack (no heap allocation once an arena of the requested size exists).
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "fault_injection.hpp"
#include "groupnorm/groupnorm.h"
#include "plan_state.hpp"

namespace {

thread_local std::string last_error;
// Set when a message could not be stored (memory exhausted): gn_last_error() returns it instead of
// last_error.
thread_local const char* last_error_fallback = nullptr;

// Records the message of a failed call. Never throws: storing a message may itself need memory, and an
// exception here would escape a noexcept C entry point (std::terminate) exactly when the process is out of
// memory.
void set_error(const char* what, const char* detail = "") noexcept {
  try {
    last_error.assign(what).append(detail);
    last_error_fallback = nullptr;
  } catch (...) {
    last_error_fallback = "groupnorm: out of memory (while recording the error message)";
  }
}

// One arena per thread count, created on first use and kept for the life of the process, so a C caller never
// pays for thread start-up twice. Counts above the hardware concurrency are capped ("at most n threads").
tbb::task_arena* arena_for(int num_threads) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<tbb::task_arena>> arenas;
  const int hardware = tbb::info::default_concurrency();
  const int n = (num_threads == 0 || num_threads > hardware) ? hardware : num_threads;
  std::lock_guard<std::mutex> lock(mutex);
  if (arenas.size() <= static_cast<std::size_t>(n)) arenas.resize(static_cast<std::size_t>(n) + 1);
  if (!arenas[static_cast<std::size_t>(n)]) {
    auto arena = std::make_unique<tbb::task_arena>(n);
    arena->initialize();
    arenas[static_cast<std::size_t>(n)] = std::move(arena);
  }
  return arenas[static_cast<std::size_t>(n)].get();
}

template <class F>
gn_status guarded(F&& body) noexcept {
  try {
    body();
    last_error.clear();
    last_error_fallback = nullptr;
    return GN_OK;
  } catch (const std::invalid_argument& e) {
    set_error(e.what());
    return GN_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    set_error("groupnorm: out of memory");
    return GN_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error("groupnorm: internal error: ", e.what());
    return GN_INTERNAL_ERROR;
  } catch (...) {
    set_error("groupnorm: internal error: unknown exception");
    return GN_INTERNAL_ERROR;
  }
}

std::size_t count_or_zero(const void* p, std::size_t n) {
  return p ? n : 0;
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

gn_status run_c(const void* x, void* y, const float* gamma, const float* beta, std::size_t batch,
                std::size_t channels, std::size_t spatial, std::size_t num_groups, float epsilon,
                const gn_options& o) {
  return guarded([&] {
    using namespace groupnorm;
    if (o.num_threads < 0)
      throw invalid_argument("groupnorm: num_threads = " + std::to_string(o.num_threads) +
                             ", expected 0 (all hardware threads) or a positive count");
    problem p;
    p.batch = batch;
    p.channels = channels;
    p.spatial = spatial;
    p.num_groups = num_groups;
    p.epsilon = epsilon;
    p.memory_layout = static_cast<layout>(raw_enum(o.layout));
    p.data_type = static_cast<dtype>(raw_enum(o.dtype));
    p.fused_activation = static_cast<activation>(raw_enum(o.activation));
    p.residual = o.residual != nullptr;
    const detail::plan_state s = detail::make_plan_state(p);
    const detail::run_buffers b{x, o.residual, y, o.sum, gamma, beta, o.mean, o.rstd};
    // Pointers carry no sizes in C: a non-null pointer stands for a buffer of the expected size, a null one
    // for "absent" (and is rejected where the buffer is required).
    const detail::buffer_sizes n{count_or_zero(x, s.total),          count_or_zero(y, s.total),
                                 count_or_zero(gamma, channels),     count_or_zero(beta, channels),
                                 count_or_zero(o.residual, s.total), count_or_zero(o.sum, s.total),
                                 count_or_zero(o.mean, s.pairs),     count_or_zero(o.rstd, s.pairs)};
    if (s.total != 0 && x == nullptr) throw invalid_argument("groupnorm: x is null");
    if (s.total != 0 && y == nullptr) throw invalid_argument("groupnorm: y is null");
    detail::validate_run(s, b, n);
    detail::raise_injected_fault();  // test hook (fault_injection.hpp); a no-op unless a test armed it
    if (s.total == 0) return;
    detail::execute(s, b, arena_for(o.num_threads));
  });
}

// The sizes gn_options may have: offsetof(gn_options, f) for each field f after struct_size (the struct of an
// older header that ended just before f) and sizeof(gn_options). A size ending inside a field would give the
// library part of that field.
constexpr std::size_t kOptionsSizes[] = {
    offsetof(gn_options, layout),   offsetof(gn_options, dtype),       offsetof(gn_options, activation),
    offsetof(gn_options, residual), offsetof(gn_options, sum),         offsetof(gn_options, mean),
    offsetof(gn_options, rstd),     offsetof(gn_options, num_threads), sizeof(gn_options)};
// The largest struct_size read at all (the Linux copy_struct_from_user convention caps it at a page too): a
// garbage size must not make the library scan memory it was not given.
constexpr std::size_t kMaxOptionsSize = 4096;

std::string options_sizes_list() {
  std::string list;
  for (std::size_t n : kOptionsSizes) list += (list.empty() ? "" : ", ") + std::to_string(n);
  return list;
}

// Copies the caller's options into o (defaults already set), following the Linux copy_struct_from_user
// convention: a shorter struct from an older header keeps the defaults of the fields it lacks; a longer one
// from a newer header is accepted only when every byte this version does not know is zero (a newer field left
// at its default), and rejected otherwise, since ignoring a field the caller set would do something else than
// asked.
void read_options(const gn_options& options, gn_options& o) {
  const std::size_t size = options.struct_size;
  const std::string head = "groupnorm: options->struct_size = " + std::to_string(size);
  if (size > sizeof(gn_options)) {
    if (size > kMaxOptionsSize)
      throw groupnorm::invalid_argument(
          head + ", more than the " + std::to_string(kMaxOptionsSize) +
          " bytes accepted for any version of gn_options (call gn_options_init)");
    const unsigned char* bytes = reinterpret_cast<const unsigned char*>(&options);
    for (std::size_t i = sizeof(gn_options); i < size; ++i)
      if (bytes[i] != 0)
        throw groupnorm::invalid_argument(
            head + " is larger than sizeof(gn_options) = " + std::to_string(sizeof(gn_options)) +
            " in this library version, and byte " + std::to_string(i) +
            " is not zero: it belongs to fields unknown to this library version (leave them zero, or use a "
            "newer groupnorm)");
    std::memcpy(&o, &options, sizeof(gn_options));
  } else {
    bool boundary = false;
    for (std::size_t n : kOptionsSizes) boundary = boundary || n == size;
    if (!boundary)
      throw groupnorm::invalid_argument(head +
                                        ", which does not end on a field boundary of gn_options; expected " +
                                        options_sizes_list() + " (call gn_options_init)");
    std::memcpy(&o, &options, size);  // an older, shorter struct: the fields past it keep their defaults
  }
  o.struct_size = sizeof(gn_options);
}

}  // namespace

extern "C" {

void gn_options_init(gn_options* options) {
  if (options == nullptr) return;
  *options = gn_options{};
  options->struct_size = sizeof(gn_options);
}

gn_status gn_group_norm_f32(const float* x, float* y, const float* gamma, const float* beta, size_t batch,
                            size_t channels, size_t spatial, size_t num_groups, float epsilon,
                            int num_threads) {
  gn_options o;
  gn_options_init(&o);
  o.num_threads = num_threads;
  return run_c(x, y, gamma, beta, batch, channels, spatial, num_groups, epsilon, o);
}

gn_status gn_group_norm_ex(const void* x, void* y, const float* gamma, const float* beta, size_t batch,
                           size_t channels, size_t spatial, size_t num_groups, float epsilon,
                           const gn_options* options) {
  gn_options o;
  gn_options_init(&o);
  if (options != nullptr) {
    const gn_status st = guarded([&] { read_options(*options, o); });
    if (st != GN_OK) return st;
  }
  return run_c(x, y, gamma, beta, batch, channels, spatial, num_groups, epsilon, o);
}

const char* gn_last_error(void) {
  return last_error_fallback ? last_error_fallback : last_error.c_str();
}

}  // extern "C"
