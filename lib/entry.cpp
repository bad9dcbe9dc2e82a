// The one entry point of every language surface, the arena cache shared by the C ABI and Python, and the
// one-shot plan cache.
#include "entry.hpp"

#include <atomic>
#include <memory>
#include <mutex>

#include <oneapi/tbb/info.h>

#include "fault_injection.hpp"
#include "plan/backward.hpp"
#include "plan/plan_state.hpp"
#include "schedule/backward.hpp"
#include "schedule/schedule.hpp"

namespace groupnorm::detail {

namespace {
void validate_and_execute(const plan_state& s, const run_buffers& b, const buffer_sizes& n,
                          tbb::task_arena* arena) {
  validate_run(s, b, n);
  raise_injected_fault();  // test hook (fault_injection.hpp); a no-op unless a test armed it
  execute(s, b, arena);
}
}  // namespace

void run_call(const plan_state& s, const call& c) {
  validate_and_execute(s, c.buffers, c.sizes, c.arena);
}

namespace {

const void* present_or_null(const sized_buffer& b) noexcept {
  return b.count == 0 ? nullptr : b.data;
}
// The outputs of sized_buffers point to writable memory (sized_buffers keeps one pointer type for all).
void* writable(const void* p) noexcept {
  return const_cast<void*>(p);
}
const float* floats(const void* p) noexcept {
  return static_cast<const float*>(p);
}
float* writable_floats(const void* p) noexcept {
  return static_cast<float*>(writable(p));
}

}  // namespace

call call_from_sized(const sized_buffers& b, tbb::task_arena* arena) {
  return call{
      direction::forward,
      run_buffers{b.x.data, present_or_null(b.residual), writable(b.y.data), writable(present_or_null(b.sum)),
                  floats(present_or_null(b.gamma)), floats(present_or_null(b.beta)),
                  writable_floats(present_or_null(b.mean)), writable_floats(present_or_null(b.rstd))},
      buffer_sizes{b.x.count, b.y.count, b.gamma.count, b.beta.count, b.residual.count, b.sum.count,
                   b.mean.count, b.rstd.count},
      arena};
}

namespace {
std::size_t count_or_zero(const void* p, std::size_t n) noexcept {
  return p ? n : 0;
}
}  // namespace

void run_pointers(const plan_state& s, const run_buffers& b, tbb::task_arena* arena) {
  if (s.total != 0 && b.x == nullptr) throw invalid_argument("groupnorm: x is null");
  if (s.total != 0 && b.y == nullptr) throw invalid_argument("groupnorm: y is null");
  const std::size_t channels = s.desc.channels;
  validate_and_execute(s, b,
                       buffer_sizes{count_or_zero(b.x, s.total), count_or_zero(b.y, s.total),
                                    count_or_zero(b.gamma, channels), count_or_zero(b.beta, channels),
                                    count_or_zero(b.residual, s.total), count_or_zero(b.sum, s.total),
                                    count_or_zero(b.mean, s.pairs), count_or_zero(b.rstd, s.pairs)},
                       arena);
}

void run_backward_pointers(const plan_state& s, const backward_buffers& b, tbb::task_arena* arena) {
  const std::size_t C = s.desc.channels;
  const backward_sizes n{
      count_or_zero(b.x, s.total),    count_or_zero(b.dy, s.total),
      count_or_zero(b.gamma, C),      count_or_zero(b.beta, C),
      count_or_zero(b.mean, s.pairs), count_or_zero(b.rstd, s.pairs),
      count_or_zero(b.dx, s.total),   count_or_zero(b.dgamma, C),
      count_or_zero(b.dbeta, C),      count_or_zero(b.workspace, backward_workspace_doubles(s))};
  validate_backward(s, b, n);
  execute_backward(s, b, arena);
}

std::shared_ptr<const plan_state> make_shared_plan_state(const problem& p) {
  return std::make_shared<const plan_state>(make_plan_state(p));
}

namespace {

bool same_problem(const problem& a, const problem& b) noexcept {
  return a.batch == b.batch && a.channels == b.channels && a.spatial == b.spatial &&
         a.num_groups == b.num_groups && a.epsilon == b.epsilon && a.memory_layout == b.memory_layout &&
         a.data_type == b.data_type && a.fused_activation == b.fused_activation && a.residual == b.residual &&
         a.kernel_isa == b.kernel_isa;
}

struct one_shot_cache {
  bool valid = false;
  plan_state state;
};
thread_local one_shot_cache last_plan;

}  // namespace

const plan_state& one_shot_plan_state(const problem& p) {
  one_shot_cache& c = last_plan;
  // epsilon compares as a float: -0.0 == 0.0 plan identically, and a NaN never matches (planning rejects it).
  if (!c.valid || !same_problem(c.state.desc, p)) {
    c.valid = false;
    c.state = make_plan_state(p);
    c.valid = true;
  }
  return c.state;
}

std::size_t element_count(const plan_state& s) noexcept {
  return s.total;
}
std::size_t stats_count(const plan_state& s) noexcept {
  return s.pairs;
}
const problem& description(const plan_state& s) noexcept {
  return s.desc;
}

int hardware_threads() noexcept {
  static const int n = tbb::info::default_concurrency();
  return n;
}

int capped_threads(int num_threads) noexcept {
  const int hardware = hardware_threads();
  return (num_threads <= 0 || num_threads > hardware) ? hardware : num_threads;
}

tbb::task_arena* shared_arena(int num_threads) {
  const int n = capped_threads(num_threads);
  // One slot per count 1..hardware; arenas are never destroyed, so a published pointer stays valid and the
  // lookup is one acquire load. Creation is serialized so each count gets exactly one arena.
  static std::atomic<tbb::task_arena*>* const slots =
      new std::atomic<tbb::task_arena*>[static_cast<std::size_t>(hardware_threads()) + 1]();
  std::atomic<tbb::task_arena*>& slot = slots[n];
  if (tbb::task_arena* a = slot.load(std::memory_order_acquire)) return a;
  static std::mutex create;
  const std::lock_guard<std::mutex> lock(create);
  if (tbb::task_arena* a = slot.load(std::memory_order_relaxed)) return a;
  auto arena = std::make_unique<tbb::task_arena>(n);
  arena->initialize();
  tbb::task_arena* a = arena.release();
  slot.store(a, std::memory_order_release);
  return a;
}

}  // namespace groupnorm::detail
