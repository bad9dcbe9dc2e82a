// The one-shot C ABI (gn_group_norm_f32, gn_group_norm_ex), gn_options and the thread's last error. A
// one-shot call reuses this thread's last plan and the shared arena of its thread count: no heap allocation
// once that arena exists.
#include <cstddef>
#include <string>

#include "c_api_support.hpp"
#include "groupnorm/groupnorm.h"
#include "plan/plan_state.hpp"
#include "schedule/schedule.hpp"

namespace groupnorm::detail {
namespace {

// The thread's last error, in one thread_local so a call resolves one TLS address.
struct error_slot {
  std::string message;
  // Set when a message could not be stored (memory exhausted): gn_last_error() returns it instead.
  const char* fallback = nullptr;
};
thread_local error_slot last_error;

}  // namespace

void record_success() noexcept {
  error_slot& e = last_error;
  e.message.clear();
  e.fallback = nullptr;
}

// Storing a message may itself need memory, and an exception here would escape a noexcept C entry point
// (std::terminate) exactly when the process is out of memory.
void record_error(const char* what, const char* detail) noexcept {
  error_slot& e = last_error;
  try {
    e.message.assign(what).append(detail);
    e.fallback = nullptr;
  } catch (...) {
    e.fallback = "groupnorm: out of memory (while recording the error message)";
  }
}

void struct_size_error(const struct_names& names, std::size_t size, std::size_t current,
                       const std::size_t* sizes, std::size_t count, std::size_t nonzero_byte) {
  const std::string head =
      std::string("groupnorm: ") + names.argument + "->struct_size = " + std::to_string(size);
  const std::string init = std::string(" (call ") + names.init + ")";
  if (size > kMaxStructSize)
    throw invalid_argument(head + ", more than the " + std::to_string(kMaxStructSize) +
                           " bytes accepted for any version of " + names.type + init);
  if (size > current)
    throw invalid_argument(head + " is larger than sizeof(" + names.type + ") = " + std::to_string(current) +
                           " in this library version, and byte " + std::to_string(nonzero_byte) +
                           " is not zero: it belongs to fields unknown to this library version (leave them "
                           "zero, or use a newer groupnorm)");
  std::string list;
  for (std::size_t i = 0; i < count; ++i) list += (i ? ", " : "") + std::to_string(sizes[i]);
  throw invalid_argument(head + ", which does not end on a field boundary of " + names.type + "; expected " +
                         list + init);
}

namespace {

// The sizes gn_options may have: offsetof(gn_options, f) for each field f after struct_size (the struct of an
// older header that ended just before f) and sizeof(gn_options). A size ending inside a field would give the
// library part of that field.
constexpr std::size_t kOptionsSizes[] = {
    offsetof(gn_options, layout),   offsetof(gn_options, dtype),       offsetof(gn_options, activation),
    offsetof(gn_options, residual), offsetof(gn_options, sum),         offsetof(gn_options, mean),
    offsetof(gn_options, rstd),     offsetof(gn_options, num_threads), sizeof(gn_options)};
constexpr struct_names kOptionsNames{"options", "gn_options", "gn_options_init"};

}  // namespace

void read_options(const gn_options& in, gn_options& out) {
  read_versioned(in, out, kOptionsSizes, kOptionsNames);
}

void check_num_threads(const gn_options& o) {
  if (o.num_threads < 0)
    throw invalid_argument("groupnorm: num_threads = " + std::to_string(o.num_threads) +
                           ", expected 0 (all hardware threads) or a positive count");
}

problem one_shot_problem(std::size_t batch, std::size_t channels, std::size_t spatial, std::size_t num_groups,
                         float epsilon, const gn_options& o) {
  problem p;
  p.batch = batch;
  p.channels = channels;
  p.spatial = spatial;
  p.num_groups = num_groups;
  p.epsilon = epsilon;
  p.memory_layout = static_cast<layout>(raw_enum(o.layout));
  p.data_type = static_cast<dtype>(raw_enum(o.dtype));
  p.fused_activation = static_cast<activation>(raw_enum(o.activation));
  return p;
}

namespace {

// Throws like run_call; the callers translate.
void run_one_shot(const void* x, void* y, const float* gamma, const float* beta, std::size_t batch,
                  std::size_t channels, std::size_t spatial, std::size_t num_groups, float epsilon,
                  const gn_options& o) {
  check_num_threads(o);
  problem p = one_shot_problem(batch, channels, spatial, num_groups, epsilon, o);
  p.residual = o.residual != nullptr;
  run_pointers(one_shot_plan_state(p), run_buffers{x, o.residual, y, o.sum, gamma, beta, o.mean, o.rstd},
               shared_arena(o.num_threads));
}

}  // namespace
}  // namespace groupnorm::detail

extern "C" {

void gn_options_init(gn_options* options) {
  if (options == nullptr) return;
  *options = gn_options{};
  options->struct_size = sizeof(gn_options);
}

gn_status gn_group_norm_f32(const float* x, float* y, const float* gamma, const float* beta, size_t batch,
                            size_t channels, size_t spatial, size_t num_groups, float epsilon,
                            int num_threads) {
  using namespace groupnorm::detail;
  return guarded([&] {
    gn_options o;
    gn_options_init(&o);
    o.num_threads = num_threads;
    run_one_shot(x, y, gamma, beta, batch, channels, spatial, num_groups, epsilon, o);
  });
}

gn_status gn_group_norm_ex(const void* x, void* y, const float* gamma, const float* beta, size_t batch,
                           size_t channels, size_t spatial, size_t num_groups, float epsilon,
                           const gn_options* options) {
  using namespace groupnorm::detail;
  return guarded([&] {
    // This header's struct is read in place; no options or another version is first copied over the defaults.
    gn_options copy;
    const gn_options* o = options;
    if (o == nullptr || o->struct_size != sizeof(gn_options)) [[unlikely]] {
      gn_options_init(&copy);
      if (o != nullptr) read_versioned(*o, copy, kOptionsSizes, kOptionsNames);
      o = &copy;
    }
    run_one_shot(x, y, gamma, beta, batch, channels, spatial, num_groups, epsilon, *o);
  });
}

const char* gn_last_error(void) {
  using namespace groupnorm::detail;
  const error_slot& e = last_error;
  return e.fallback ? e.fallback : e.message.c_str();
}

}  // extern "C"
