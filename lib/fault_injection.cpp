// Internal test hook: see fault_injection.hpp.
#include "fault_injection.hpp"

#include <atomic>
#include <stdexcept>

namespace groupnorm::detail {
namespace {
std::atomic<int> armed{0};
}  // namespace

void inject_fault(fault f) noexcept {
  armed.store(static_cast<int>(f), std::memory_order_relaxed);
}

void raise_injected_fault() {
  if (armed.load(std::memory_order_relaxed) == 0) return;
  switch (static_cast<fault>(armed.exchange(0, std::memory_order_relaxed))) {
    case fault::std_exception:
      throw std::runtime_error("injected fault");
    case fault::foreign:
      throw 42;
    case fault::none:
      break;
  }
}

}  // namespace groupnorm::detail
