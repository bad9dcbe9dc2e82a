// Internal: the one entry point every language surface (C++ plan::run, the C ABI, Python) goes through, the
// arena cache they share, and the per-thread plan cache of the one-shot functions.
#pragma once

#include <cstddef>
#include <memory>

#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.hpp"

namespace groupnorm::detail {

struct plan_state;

// The raw buffers of one run; null = absent.
struct run_buffers {
  const void* x = nullptr;
  const void* residual = nullptr;
  void* y = nullptr;
  void* sum = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float* mean = nullptr;
  float* rstd = nullptr;
};

// Sizes of one run's buffers, for validation against the plan: element counts, 0 = absent.
struct buffer_sizes {
  std::size_t x, y, gamma, beta, residual, sum, mean, rstd;
};

// What a call computes. Only the forward pass exists; a new direction gets its own buffers in `call`.
enum class direction : int { forward = 0 };

// One call from any surface: its buffers with their element counts and where to run.
struct call {
  direction dir = direction::forward;
  run_buffers buffers;
  buffer_sizes sizes{};
  tbb::task_arena* arena = nullptr;  // nullptr: the calling thread's current arena
};

// The entry point: validates the call against the plan (throws groupnorm::invalid_argument before anything
// is written), then runs it. No heap allocation, no thread creation.
void run_call(const plan_state& s, const call& c);

// A buffer as C++ spans and Python buffers carry it: address and element count.
struct sized_buffer {
  const void* data = nullptr;
  std::size_t count = 0;
};
struct sized_buffers {
  sized_buffer x, y, gamma, beta, residual, sum, mean, rstd;  // y, sum, mean, rstd are writable memory
};

// The sized form of a call: an optional buffer with no elements is absent, whatever its address (an empty
// vector with reserved capacity, a zero-length slice of a real buffer), so the kernels see null exactly when
// there is nothing to use.
call call_from_sized(const sized_buffers& b, tbb::task_arena* arena);

// The C form of a call, validated and run: pointers carry no sizes, so a non-null pointer stands for a buffer
// of the size the plan expects and a null one for "absent" (rejected where the buffer is required).
// Equivalent to run_call with those sizes, without building a call.
void run_pointers(const plan_state& s, const run_buffers& b, tbb::task_arena* arena);
// The same for the backward (plan/backward.hpp; the workspace stands for backward_workspace_doubles(s)
// doubles).
struct backward_buffers;
void run_backward_pointers(const plan_state& s, const backward_buffers& b, tbb::task_arena* arena);

// A plan's state on the heap, shared by the objects that hold it (C gn_plan, Python Plan, C++ plan).
std::shared_ptr<const plan_state> make_shared_plan_state(const problem& p);

// The state of p for a one-shot call: the last problem this thread planned is reused without planning again
// (plans depend on the problem alone). Valid until the next call on this thread. Throws like
// make_plan_state.
const plan_state& one_shot_plan_state(const problem& p);

// Elements of x (batch * channels * spatial) and of mean / rstd (batch * num_groups).
std::size_t element_count(const plan_state& s) noexcept;
std::size_t stats_count(const plan_state& s) noexcept;
const problem& description(const plan_state& s) noexcept;

// Hardware threads of this process (read once): what 0 threads means, and the cap of every thread count.
int hardware_threads() noexcept;

// A thread count as the library uses it: 0 and counts above the hardware become hardware_threads().
int capped_threads(int num_threads) noexcept;

// The arena of capped_threads(num_threads) threads shared by the one-shot C ABI and Python, created on first
// use and kept for the life of the process. The lookup of an existing arena takes no lock and allocates
// nothing. num_threads >= 0. Throws std::bad_alloc when an arena cannot be created.
tbb::task_arena* shared_arena(int num_threads);

}  // namespace groupnorm::detail
