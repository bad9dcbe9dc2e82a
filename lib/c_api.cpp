// The C ABI: thin wrappers that translate exceptions into gn_status + a thread-local message. Plans are built on
// the stack (no heap allocation once an arena of the requested size exists).
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.h"
#include "plan_state.hpp"

namespace {

thread_local std::string last_error;

// One arena per thread count, created on first use and kept for the life of the process, so a C caller never pays
// for thread start-up twice. Counts above the hardware concurrency are capped ("at most n threads").
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
    return GN_OK;
  } catch (const std::invalid_argument& e) {
    last_error = e.what();
    return GN_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    last_error = "groupnorm: out of memory";
    return GN_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    last_error = std::string("groupnorm: internal error: ") + e.what();
    return GN_INTERNAL_ERROR;
  } catch (...) {
    last_error = "groupnorm: internal error: unknown exception";
    return GN_INTERNAL_ERROR;
  }
}

std::size_t count_or_zero(const void* p, std::size_t n) { return p ? n : 0; }

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
    p.memory_layout = static_cast<layout>(o.layout);
    p.data_type = static_cast<dtype>(o.dtype);
    p.fused_activation = static_cast<activation>(o.activation);
    p.residual = o.residual != nullptr;
    const detail::plan_state s = detail::make_plan_state(p);
    const detail::run_buffers b{x, o.residual, y, o.sum, gamma, beta, o.mean, o.rstd};
    // Pointers carry no sizes in C: a non-null pointer stands for a buffer of the expected size, a null one for
    // "absent" (and is rejected where the buffer is required).
    const detail::buffer_sizes n{count_or_zero(x, s.total),          count_or_zero(y, s.total),
                                 count_or_zero(gamma, channels),      count_or_zero(beta, channels),
                                 count_or_zero(o.residual, s.total),  count_or_zero(o.sum, s.total),
                                 count_or_zero(o.mean, s.pairs),      count_or_zero(o.rstd, s.pairs)};
    if (s.total != 0 && x == nullptr) throw invalid_argument("groupnorm: x is null");
    if (s.total != 0 && y == nullptr) throw invalid_argument("groupnorm: y is null");
    detail::validate_run(s, b, n);
    if (s.total == 0) return;
    detail::execute(s, b, arena_for(o.num_threads));
  });
}

}  // namespace

extern "C" {

void gn_options_init(gn_options* options) {
  if (options == nullptr) return;
  *options = gn_options{};
  options->struct_size = sizeof(gn_options);
}

gn_status gn_group_norm_f32(const float* x, float* y, const float* gamma, const float* beta, size_t batch,
                            size_t channels, size_t spatial, size_t num_groups, float epsilon, int num_threads) {
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
    if (options->struct_size < sizeof(std::size_t) || options->struct_size > sizeof(gn_options)) {
      last_error = "groupnorm: options->struct_size = " + std::to_string(options->struct_size) +
                   ", expected sizeof(gn_options) = " + std::to_string(sizeof(gn_options)) +
                   " (call gn_options_init)";
      return GN_INVALID_ARGUMENT;
    }
    // An older, shorter struct: take the fields it has, keep defaults for the rest.
    std::memcpy(&o, options, options->struct_size);
    o.struct_size = sizeof(gn_options);
  }
  return run_c(x, y, gamma, beta, batch, channels, spatial, num_groups, epsilon, o);
}

const char* gn_last_error(void) { return last_error.c_str(); }

}  // extern "C"
