// Internal test hook (not part of the public API): arms a fault that the next run (through any surface: the
// C ABI, C++, Python) raises inside the library, after validation and before any write, so tests can prove
// that no exception crosses the C boundary and that nothing is written. Costs one relaxed atomic load per run
// when disarmed.
#pragma once

namespace groupnorm::detail {

enum class fault : int {
  none = 0,
  std_exception = 1,  // the next run throws std::runtime_error("injected fault")
  foreign = 2,        // the next run throws an int (an exception not derived from std::exception)
};

// Arms (or, with fault::none, disarms) a one-shot fault for the next run on any thread. Exported so
// tests linked against the shared library can reach it.
[[gnu::visibility("default")]] void inject_fault(fault f) noexcept;

// Called by every run (detail::run_call): throws the armed fault once, then disarms.
void raise_injected_fault();

}  // namespace groupnorm::detail
