// Process-wide caches of the libtorch operator: prepared plans keyed by problem, arenas keyed by thread
// count.
#include "plan_cache.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include <oneapi/tbb/info.h>

namespace groupnorm_torch {
namespace {

// More distinct GroupNorm problems than a UNet or VAE decoder has (about 30 in SD's UNet, forward and
// backward); past it the cache starts over rather than growing without bound.
constexpr std::size_t kMaxCachedPlans = 256;

using problem_key =
    std::tuple<std::size_t, std::size_t, std::size_t, std::size_t, std::uint32_t, int, int, int, bool, int>;

problem_key key_of(const groupnorm::problem& p) {
  return {p.batch,
          p.channels,
          p.spatial,
          p.num_groups,
          std::bit_cast<std::uint32_t>(p.epsilon),
          static_cast<int>(p.memory_layout),
          static_cast<int>(p.data_type),
          static_cast<int>(p.fused_activation),
          p.residual,
          static_cast<int>(p.kernel_isa)};
}

}  // namespace

groupnorm::plan cached_plan(const groupnorm::problem& p) {
  static std::mutex mutex;
  static std::map<problem_key, groupnorm::plan> plans;
  const problem_key key = key_of(p);
  {
    const std::lock_guard lock(mutex);
    if (const auto it = plans.find(key); it != plans.end()) return it->second;
  }
  groupnorm::plan built(p);  // outside the lock: construction validates and may throw
  const std::lock_guard lock(mutex);
  if (plans.size() >= kMaxCachedPlans) plans.clear();
  return plans.try_emplace(key, std::move(built)).first->second;
}

tbb::task_arena* arena_for_threads(int threads) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<tbb::task_arena>> arenas;
  static const int hardware = std::max(1, tbb::info::default_concurrency());
  const auto n = static_cast<std::size_t>(std::clamp(threads, 1, hardware));
  const std::lock_guard lock(mutex);
  if (arenas.size() <= n) arenas.resize(n + 1);
  if (!arenas[n]) {
    arenas[n] = std::make_unique<tbb::task_arena>(static_cast<int>(n));
    arenas[n]->initialize();
  }
  return arenas[n].get();
}

}  // namespace groupnorm_torch
