// ThreadSanitizer <-> oneTBB bridge for an UNINSTRUMENTED libtbb (Debian 12: libtbb12 2021.8).
//
// TSan cannot see the synchronization inside libtbb.so (task pools, mailboxes, the arena's wait loops, the
// small-object pool's free lists): those atomics are in code not compiled with -fsanitize=thread. Without
// help every parallel_for is reported as a race. This library gives TSan the missing happens-before edges,
// each one at a point where libtbb really synchronizes, and nothing else:
//
// 1. An Intel ITT "collector". libtbb has ITT notify compiled in; at its one-time initialization, its
//    static ITT part (src/tbb/tools_api/ittnotify_static.c, __itt_init_ittlib) dlopen()s the library named
//    by INTEL_LIBITTNOTIFY64 and, since this one exports __itt_api_init, calls
//    __itt_api_init(&__itt__ittapi_global, init_groups), which fills in the api list's function pointers:
//      __itt_sync_acquired(p)  -> __tsan_acquire(p)
//      __itt_sync_releasing(p) -> __tsan_release(p)
//    and leaves everything else a no-op. The call that matters is in the dispatcher (task_dispatcher.h,
//    ITT_CALLEE_ENTER): __itt_sync_acquired(t) right before every t->execute(), on the thread that runs t.
//
// 2. Interposers (this library must be LD_PRELOADed) for the libtbb entry points that the (instrumented)
//    headers call. ITT alone is not enough: oneTBB's headers notify task hand-offs only when compiled with
//    TBB_USE_PROFILING_TOOLS=2, and nothing at all is notified for a task_arena::execute functor run by a
//    worker, for the small-object pool handing a freed task block to another thread, or for the waiter's
//    final read of a wait_context's reference count. Each interposer calls the real function (dlsym
//    RTLD_NEXT) and:
//    - spawn, enqueue, submit, execute_and_wait (task t): release(t) before; pairs with 1.'s acquire(t).
//    - wait, execute_and_wait (wait_context w): acquire(w's reference count) after. The waiter inside libtbb
//      did an acquire load of it, which synchronizes with every finished task's release RMW.
//    - execute (task_arena, delegate d): release(d) before and acquire(d) after; d itself runs wrapped, with
//      acquire(d) before and release(d) after, on whichever thread runs it.
//    - deallocate / allocate (small_object_pool block p), cache_aligned_{de,}allocate, {de,}allocate_memory:
//      release(p) when freed, acquire(p) when handed out again (the pool's free lists are atomics).
//
// Nothing here orders two tasks that TBB does not order: tasks running concurrently still race in TSan's eyes
// (tests/tsan/selftest_race.cpp checks it). The library is built WITHOUT -fsanitize and reaches TSan through
// weak references, so preloading it into uninstrumented processes (cmake, the compiler in the consumer test)
// is a no-op. It does not link libtbb.
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <oneapi/tbb/cache_aligned_allocator.h>
#include <oneapi/tbb/detail/_small_object_pool.h>
#include <oneapi/tbb/detail/_task.h>
#include <oneapi/tbb/detail/_utils.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/tbb_allocator.h>

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
}

namespace {

namespace d1 = tbb::detail::d1;
namespace r1 = tbb::detail::r1;

std::atomic<unsigned long> g_acquires{0}, g_releases{0};

void acquire(const void* p) {
  if (__tsan_acquire && p) {
    __tsan_acquire(const_cast<void*>(p));
    g_acquires.fetch_add(1, std::memory_order_relaxed);
  }
}
void release(const void* p) {
  if (__tsan_release && p) {
    __tsan_release(const_cast<void*>(p));
    g_releases.fetch_add(1, std::memory_order_relaxed);
  }
}

// wait_context is { uint64_t m_version_and_traits; std::atomic<uint64_t> m_ref_count; } (oneTBB 2021, private
// members). Checked at compile time (size) and once at start-up (a probe object in bridge_init).
static_assert(sizeof(d1::wait_context) == 16, "oneTBB wait_context layout changed: update ref_count_of()");
const void* ref_count_of(const d1::wait_context& w) {
  return reinterpret_cast<const char*>(&w) + 8;
}
void acquire_wait(const d1::wait_context& w) {
  acquire(&w);               // TBB_USE_PROFILING_TOOLS=2 headers release here
  acquire(ref_count_of(w));  // every task's release RMW on the reference count
}

// ---- real functions -------------------------------------------------------------------------------------
enum fn_id {
  f_spawn,
  f_spawn_slot,
  f_enqueue,
  f_enqueue_ctx,
  f_submit,
  f_execute_and_wait,
  f_wait,
  f_execute,
  f_allocate,
  f_allocate_ed,
  f_deallocate,
  f_deallocate_ed,
  f_ca_allocate,
  f_ca_deallocate,
  f_allocate_memory,
  f_deallocate_memory,
  f_count
};
// Itanium-mangled names of the exported libtbb.so.12 symbols interposed below (nm -D libtbb.so.12). The
// start-up check verifies that each one resolves to this library's definition, so a mistyped name or a
// signature that drifted from oneTBB's headers fails loudly instead of silently not interposing.
const char* const kNames[f_count] = {
    "_ZN3tbb6detail2r15spawnERNS0_2d14taskERNS2_18task_group_contextE",
    "_ZN3tbb6detail2r15spawnERNS0_2d14taskERNS2_18task_group_contextEt",
    "_ZN3tbb6detail2r17enqueueERNS0_2d14taskEPNS2_15task_arena_baseE",
    "_ZN3tbb6detail2r17enqueueERNS0_2d14taskERNS2_18task_group_contextEPNS2_15task_arena_baseE",
    "_ZN3tbb6detail2r16submitERNS0_2d14taskERNS2_18task_group_contextEPNS1_5arenaEm",
    "_ZN3tbb6detail2r116execute_and_waitERNS0_2d14taskERNS2_18task_group_contextERNS2_12wait_contextES6_",
    "_ZN3tbb6detail2r14waitERNS0_2d112wait_contextERNS2_18task_group_contextE",
    "_ZN3tbb6detail2r17executeERNS0_2d115task_arena_baseERNS2_13delegate_baseE",
    "_ZN3tbb6detail2r18allocateERPNS0_2d117small_object_poolEm",
    "_ZN3tbb6detail2r18allocateERPNS0_2d117small_object_poolEmRKNS2_14execution_dataE",
    "_ZN3tbb6detail2r110deallocateERNS0_2d117small_object_poolEPvm",
    "_ZN3tbb6detail2r110deallocateERNS0_2d117small_object_poolEPvmRKNS2_14execution_dataE",
    "_ZN3tbb6detail2r122cache_aligned_allocateEm",
    "_ZN3tbb6detail2r124cache_aligned_deallocateEPv",
    "_ZN3tbb6detail2r115allocate_memoryEm",
    "_ZN3tbb6detail2r117deallocate_memoryEPv",
};
std::atomic<void*> g_real[f_count];

void* real(fn_id id) {
  void* f = g_real[id].load(std::memory_order_acquire);
  if (!f) {
    f = dlsym(RTLD_NEXT, kNames[id]);
    if (!f) {
      std::fprintf(stderr, "itt_tsan_bridge: %s not found after this library (libtbb.so.12 not loaded?)\n",
                   kNames[id]);
      std::abort();
    }
    g_real[id].store(f, std::memory_order_release);
  }
  return f;
}
template <typename F>
F* real_as(fn_id id) {
  return reinterpret_cast<F*>(real(id));
}

// task_arena::execute's functor, wrapped so the thread that runs it (the caller, or a worker when the arena
// has no free slot for the caller) acquires what the caller released, and releases what it wrote.
class tsan_delegate final : public d1::delegate_base {
 public:
  explicit tsan_delegate(d1::delegate_base& inner) : m_inner(inner) {}
  bool operator()() const override {
    acquire(&m_inner);
    bool r;
    try {
      r = m_inner();
    } catch (...) {
      release(&m_inner);
      throw;
    }
    release(&m_inner);
    return r;
  }

 private:
  d1::delegate_base& m_inner;
};

}  // namespace

// ---- interposers ----------------------------------------------------------------------------------------
namespace tbb::detail::r1 {

void spawn(d1::task& t, d1::task_group_context& ctx) {
  release(&t);
  real_as<void(d1::task&, d1::task_group_context&)>(f_spawn)(t, ctx);
}
void spawn(d1::task& t, d1::task_group_context& ctx, d1::slot_id id) {
  release(&t);
  real_as<void(d1::task&, d1::task_group_context&, d1::slot_id)>(f_spawn_slot)(t, ctx, id);
}
void enqueue(d1::task& t, d1::task_arena_base* a) {
  release(&t);
  real_as<void(d1::task&, d1::task_arena_base*)>(f_enqueue)(t, a);
}
void enqueue(d1::task& t, d1::task_group_context& ctx, d1::task_arena_base* a) {
  release(&t);
  real_as<void(d1::task&, d1::task_group_context&, d1::task_arena_base*)>(f_enqueue_ctx)(t, ctx, a);
}
void submit(d1::task& t, d1::task_group_context& ctx, arena* a, std::uintptr_t as_critical) {
  release(&t);
  real_as<void(d1::task&, d1::task_group_context&, arena*, std::uintptr_t)>(f_submit)(t, ctx, a, as_critical);
}
void execute_and_wait(d1::task& t, d1::task_group_context& t_ctx, d1::wait_context& w,
                      d1::task_group_context& w_ctx) {
  release(&t);
  try {
    real_as<void(d1::task&, d1::task_group_context&, d1::wait_context&, d1::task_group_context&)>(
        f_execute_and_wait)(t, t_ctx, w, w_ctx);
  } catch (...) {
    acquire_wait(w);
    throw;
  }
  acquire_wait(w);
}
void wait(d1::wait_context& w, d1::task_group_context& ctx) {
  try {
    real_as<void(d1::wait_context&, d1::task_group_context&)>(f_wait)(w, ctx);
  } catch (...) {
    acquire_wait(w);
    throw;
  }
  acquire_wait(w);
}
void execute(d1::task_arena_base& a, d1::delegate_base& d) {
  tsan_delegate wrapped(d);
  release(&d);
  try {
    real_as<void(d1::task_arena_base&, d1::delegate_base&)>(f_execute)(a, wrapped);
  } catch (...) {
    acquire(&d);
    throw;
  }
  acquire(&d);
}

void* allocate(d1::small_object_pool*& pool, std::size_t n) {
  void* p = real_as<void*(d1::small_object_pool*&, std::size_t)>(f_allocate)(pool, n);
  acquire(p);
  return p;
}
void* allocate(d1::small_object_pool*& pool, std::size_t n, const d1::execution_data& ed) {
  void* p = real_as<void*(d1::small_object_pool*&, std::size_t, const d1::execution_data&)>(f_allocate_ed)(
      pool, n, ed);
  acquire(p);
  return p;
}
void deallocate(d1::small_object_pool& pool, void* p, std::size_t n) {
  release(p);
  real_as<void(d1::small_object_pool&, void*, std::size_t)>(f_deallocate)(pool, p, n);
}
void deallocate(d1::small_object_pool& pool, void* p, std::size_t n, const d1::execution_data& ed) {
  release(p);
  real_as<void(d1::small_object_pool&, void*, std::size_t, const d1::execution_data&)>(f_deallocate_ed)(
      pool, p, n, ed);
}
void* cache_aligned_allocate(std::size_t n) {
  void* p = real_as<void*(std::size_t)>(f_ca_allocate)(n);
  acquire(p);
  return p;
}
void cache_aligned_deallocate(void* p) {
  release(p);
  real_as<void(void*)>(f_ca_deallocate)(p);
}
void* allocate_memory(std::size_t n) {
  void* p = real_as<void*(std::size_t)>(f_allocate_memory)(n);
  acquire(p);
  return p;
}
void deallocate_memory(void* p) {
  release(p);
  real_as<void(void*)>(f_deallocate_memory)(p);
}

}  // namespace tbb::detail::r1

// ---- ITT collector ----------------------------------------------------------------------------------------
// The head of the static part's __itt_global (tools_api/ittnotify_config.h), up to the api list; stable since
// ITT API 3.0. Only api_list_ptr is used, after checking the magic bytes.
namespace {
struct itt_api_info {
  const char* name;
  void** func_ptr;
  void* init_func;
  void* null_func;
  int group;
};
struct itt_global_head {
  unsigned char magic[8];
  unsigned long version_major, version_minor, version_build;
  volatile long api_initialized, mutex_initialized, atomic_counter;
  pthread_mutex_t mutex;
  void* lib;
  void* error_handler;
  const char** dll_path_ptr;
  itt_api_info* api_list_ptr;
};
constexpr unsigned char kIttMagic[8] = {0xED, 0xAB, 0xAB, 0xEC, 0x0D, 0xEE, 0xDA, 0x30};

std::atomic<int> g_itt_inits{0};

void itt_sync_acquired(void* p) {
  acquire(p);
}
void itt_sync_releasing(void* p) {
  release(p);
}
}  // namespace

extern "C" {

__attribute__((visibility("default"))) void __itt_api_init(itt_global_head* g, int /*init_groups*/) {
  if (!g || std::memcmp(g->magic, kIttMagic, sizeof kIttMagic) != 0 || !g->api_list_ptr) {
    std::fprintf(stderr,
                 "itt_tsan_bridge: unexpected ITT global layout; TBB synchronization stays invisible\n");
    return;
  }
  // Only libtbb's notifications are wanted. libtbbmalloc (loaded by libtbb) has its own static ITT part and
  // notifies its internal locks; turned into TSan edges those would order unrelated threads that merely
  // allocate through it, and could hide races. Its memory hand-offs that reach us are covered by the
  // interposers (cache_aligned_*, *_memory).
  Dl_info owner{};
  const bool is_libtbb =
      dladdr(g, &owner) && owner.dli_fname && std::strstr(owner.dli_fname, "/libtbb.so") != nullptr;
  for (itt_api_info* p = g->api_list_ptr; p->name; ++p) {
    void* f = p->null_func;
    if (is_libtbb && !std::strcmp(p->name, "__itt_sync_acquired"))
      f = reinterpret_cast<void*>(&itt_sync_acquired);
    if (is_libtbb && !std::strcmp(p->name, "__itt_sync_releasing"))
      f = reinterpret_cast<void*>(&itt_sync_releasing);
    *p->func_ptr = f;
  }
  if (is_libtbb) g_itt_inits.fetch_add(1, std::memory_order_relaxed);
}

// For the self-tests: how many times libtbb's ITT part initialized this collector, and how many acquires and
// releases this process has passed to TSan.
__attribute__((visibility("default"))) void itt_tsan_bridge_stats(int* itt_inits, unsigned long* acquires,
                                                                  unsigned long* releases) {
  *itt_inits = g_itt_inits.load();
  *acquires = g_acquires.load();
  *releases = g_releases.load();
}

}  // extern "C"

namespace {
// Preloaded into a process that uses libtbb: point ITT at this library (unless INTEL_LIBITTNOTIFY64 is set
// already) and check that every interposer really interposes. Processes without libtbb: nothing to do.
__attribute__((constructor)) void bridge_init() {
  Dl_info self{};
  if (!dladdr(reinterpret_cast<void*>(&bridge_init), &self) || !self.dli_fname) return;
  setenv("INTEL_LIBITTNOTIFY64", self.dli_fname, /*overwrite=*/0);
  if (!dlsym(RTLD_DEFAULT, "TBB_runtime_version")) return;  // no libtbb in this process
  void* me = dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  for (int i = 0; i < f_count; ++i) {
    void* global = dlsym(RTLD_DEFAULT, kNames[i]);
    void* mine = me ? dlsym(me, kNames[i]) : nullptr;
    if (!mine || global != mine) {
      std::fprintf(
          stderr,
          "itt_tsan_bridge: %s is not interposed (bridge not LD_PRELOADed, or the name/signature drifted "
          "from oneTBB's headers)\n",
          kNames[i]);
      std::abort();
    }
    (void)real(static_cast<fn_id>(i));
  }
  if (me) dlclose(me);
  // The wait_context layout assumed by ref_count_of().
  alignas(d1::wait_context) unsigned char probe[sizeof(d1::wait_context)];
  new (probe) d1::wait_context(0x5eed);
  std::uint64_t count = 0;
  std::memcpy(&count, probe + 8, sizeof count);
  if (count != 0x5eed) {
    std::fprintf(stderr, "itt_tsan_bridge: oneTBB wait_context layout changed: update ref_count_of()\n");
    std::abort();
  }
}
}  // namespace
