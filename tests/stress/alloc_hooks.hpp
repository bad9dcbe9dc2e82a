// Counting / failing replacements of the global allocation functions, for groupnorm_stress_alloc only.
#pragma once

#include <atomic>
#include <cstddef>

namespace gn_alloc {

// Calls of any replaced operator new (all forms), from every thread of the process.
extern std::atomic<unsigned long> news;
// Calls of malloc, calloc, realloc, memalign, aligned_alloc, posix_memalign, valloc from every thread and
// every library in the process (glibc's allocator is interposed). Zero forever when !kMallocCounted.
extern std::atomic<unsigned long> mallocs;
// Calls of mmap / mmap64 through the dynamic linker (libtbbmalloc's and libstdc++'s requests for fresh memory
// from the OS; glibc's own malloc and the loader call the system directly and are not seen). Same build rule.
extern std::atomic<unsigned long> mmaps;
// Whether malloc & co. are interposed in this build (not in sanitizer builds: the sanitizer owns malloc
// there).
extern const bool kMallocCounted;

// The three counts at one moment; counts_since(start) is what was counted after it. Reading them allocates
// nothing, so a caller can take them right after the calls it measures.
struct counts {
  unsigned long news, mallocs, mmaps;
};
inline counts counts_now() noexcept {
  return {news.load(), mallocs.load(), mmaps.load()};
}
inline counts counts_since(const counts& start) noexcept {
  return {news.load() - start.news, mallocs.load() - start.mallocs, mmaps.load() - start.mmaps};
}

// Failure injection for operator new (not nothrow forms' callers: those get nullptr).
enum class fail_mode : int { off = 0, next = 1, all = 2 };
void arm(fail_mode m) noexcept;
// Number of operator new calls that were made to fail since the process started.
unsigned long failures() noexcept;

}  // namespace gn_alloc
