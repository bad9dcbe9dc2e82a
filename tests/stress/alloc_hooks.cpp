// Replaces the global operator new / delete (all forms) with counting versions that can be armed to throw
// std::bad_alloc, and (outside sanitizer builds) interposes glibc's malloc family to count every C allocation
// of the process, libtbb's and libstdc++'s included. The replacements live in the executable, so the dynamic
// linker binds libgroupnorm's and libtbb's calls to them.
#include "alloc_hooks.hpp"

#include <cerrno>
#include <cstdlib>
#include <new>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace gn_alloc {

std::atomic<unsigned long> news{0};
std::atomic<unsigned long> mallocs{0};
std::atomic<unsigned long> mmaps{0};
namespace {
std::atomic<int> mode{0};
std::atomic<unsigned long> failed{0};
}  // namespace

void arm(fail_mode m) noexcept {
  mode.store(static_cast<int>(m));
}
unsigned long failures() noexcept {
  return failed.load();
}

namespace {
bool should_fail() noexcept {
  int m = mode.load(std::memory_order_relaxed);
  if (m == 0) return false;
  if (m == static_cast<int>(fail_mode::next) && !mode.compare_exchange_strong(m, 0)) return false;
  failed.fetch_add(1);
  return true;
}

void* allocate(std::size_t n, std::size_t align) {
  news.fetch_add(1, std::memory_order_relaxed);
  if (should_fail()) throw std::bad_alloc();
  if (n == 0) n = 1;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t))
    p = std::malloc(n);
  else if (posix_memalign(&p, align, n) != 0)
    p = nullptr;
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* allocate_nothrow(std::size_t n, std::size_t align) noexcept {
  try {
    return allocate(n, align);
  } catch (...) {
    return nullptr;
  }
}
}  // namespace

}  // namespace gn_alloc

using gn_alloc::allocate;
using gn_alloc::allocate_nothrow;
constexpr std::size_t kDefaultAlign = alignof(std::max_align_t);

void* operator new(std::size_t n) {
  return allocate(n, kDefaultAlign);
}
void* operator new[](std::size_t n) {
  return allocate(n, kDefaultAlign);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return allocate_nothrow(n, kDefaultAlign);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return allocate_nothrow(n, kDefaultAlign);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate_nothrow(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate_nothrow(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

#if !GROUPNORM_TEST_SANITIZED && defined(__GLIBC__)
// glibc documents replacing malloc by defining malloc, free, calloc and realloc (plus the aligned forms) in
// the program; __libc_* are its own implementations, exported for exactly this use.
extern "C" {
void* __libc_malloc(std::size_t);
void __libc_free(void*);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void* __libc_valloc(std::size_t);

void* malloc(std::size_t n) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
void free(void* p) {
  __libc_free(p);
}
void* calloc(std::size_t a, std::size_t b) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  if (a < sizeof(void*) || (a & (a - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void* valloc(std::size_t n) {
  gn_alloc::mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_valloc(n);
}
// oneTBB takes its memory from libtbbmalloc (scalable_malloc), which is resolved with dlsym inside libtbb and
// so cannot be interposed from here; its pools grow through mmap, which can.
void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
  gn_alloc::mmaps.fetch_add(1, std::memory_order_relaxed);
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}
void* mmap64(void* addr, std::size_t len, int prot, int flags, int fd, off_t off) {
  gn_alloc::mmaps.fetch_add(1, std::memory_order_relaxed);
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, len, prot, flags, fd, off));
}
}  // extern "C"
const bool gn_alloc::kMallocCounted = true;
#else
const bool gn_alloc::kMallocCounted = false;
#endif
