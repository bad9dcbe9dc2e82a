// Validation of problems and of run buffers. Everything is checked here, before any kernel writes a byte.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "kernels/dispatch.hpp"
#include "names.hpp"
#include "plan/plan_state.hpp"

namespace groupnorm::detail {

void fail(const std::string& what) {
  throw invalid_argument("groupnorm: " + what);
}

namespace {

std::string num(std::size_t v) {
  return std::to_string(v);
}

// The shortest decimal that reads back as v ("-1e-30", "0.5", "nan"): std::to_string would print %f, which
// shows every |v| < 5e-7 as 0.000000.
std::string num(float v) {
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

bool mul_overflows(std::size_t a, std::size_t b, std::size_t& out) {
  return __builtin_mul_overflow(a, b, &out);
}

std::size_t storage_bytes(dtype d) {
  return d == dtype::f32 ? 4 : 2;
}

}  // namespace

problem_sizes validate_problem(const problem& p) {
  if (p.channels == 0) fail("channels = 0, expected at least 1");
  if (p.num_groups == 0) fail("num_groups = 0, expected at least 1");
  if (p.channels % p.num_groups != 0)
    fail("num_groups = " + num(p.num_groups) + " does not divide channels = " + num(p.channels));
  if (!std::isfinite(p.epsilon) || p.epsilon < 0.0f)
    fail("epsilon = " + num(p.epsilon) + ", expected a finite value >= 0");
  if (!is_valid(p.memory_layout))
    fail("layout = " + std::to_string(static_cast<int>(p.memory_layout)) + ", expected one of " +
         value_list<layout>());
  if (!is_valid(p.data_type))
    fail("dtype = " + std::to_string(static_cast<int>(p.data_type)) + ", expected one of " +
         value_list<dtype>());
  if (!is_valid(p.fused_activation))
    fail("activation = " + std::to_string(static_cast<int>(p.fused_activation)) + ", expected one of " +
         value_list<activation>());
  if (!known_isa(p.kernel_isa))
    fail("isa = " + std::to_string(static_cast<int>(p.kernel_isa)) + ", expected one of " + isa_names());

  problem_sizes n;
  n.elem_size = storage_bytes(p.data_type);
  constexpr auto max_bytes = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  // Zero batch or spatial is a valid no-op (README): x has no elements whatever channels is, so the products
  // with channels are not formed (they could overflow for a problem that is valid). Otherwise every factor is
  // >= 1, so a partial product that overflows means the whole count does.
  std::size_t per_sample = 0;
  if (p.batch != 0 && p.spatial != 0 &&
      (mul_overflows(p.channels, p.spatial, per_sample) || mul_overflows(per_sample, p.batch, n.total) ||
       mul_overflows(n.total, n.elem_size, n.total_bytes) || n.total_bytes > max_bytes))
    fail("batch * channels * spatial = " + num(p.batch) + " * " + num(p.channels) + " * " + num(p.spatial) +
         " elements overflows the address space");
  // mean and rstd have batch * num_groups floats. With spatial > 0 that is at most the element count, checked
  // above; with spatial == 0 it is checked here.
  std::size_t stats_bytes = 0;
  if (mul_overflows(p.batch, p.num_groups, n.pairs) || mul_overflows(n.pairs, sizeof(float), stats_bytes) ||
      stats_bytes > max_bytes)
    fail("batch * num_groups = " + num(p.batch) + " * " + num(p.num_groups) +
         " (the size of mean and rstd) overflows the address space");
  return n;
}

namespace {

struct region {
  const char* name;
  std::uintptr_t begin;
  std::uintptr_t end;
};

region make_region(const char* name, const void* p, std::size_t count, std::size_t elem_size) {
  const auto b = reinterpret_cast<std::uintptr_t>(p);
  return {name, b, b + count * elem_size};
}

bool overlaps(const region& a, const region& b) {
  return a.begin != a.end && b.begin != b.end && a.begin < b.end && b.begin < a.end;
}

void check_size(const char* name, const void* p, std::size_t got, std::size_t expected, bool optional,
                const char* what) {
  if (optional && got == 0 && p == nullptr) return;
  if (got != expected)
    fail(std::string(name) + " has " + num(got) + " elements, expected " + num(expected) + " (" + what + ")");
  if (p == nullptr && expected != 0)
    fail(std::string(name) + " is null, expected " + num(expected) + " elements");
}

}  // namespace

void validate_run(const plan_state& s, const run_buffers& b, const buffer_sizes& n) {
  const problem& p = s.desc;
  check_size("x", b.x, n.x, s.total, false, "batch * channels * spatial");
  check_size("y", b.y, n.y, s.total, false, "batch * channels * spatial");
  check_size("gamma", b.gamma, n.gamma, p.channels, true, "channels, or empty for 1");
  check_size("beta", b.beta, n.beta, p.channels, true, "channels, or empty for 0");
  if (p.residual)
    check_size("residual", b.residual, n.residual, s.total, false, "same as x, the plan has residual = true");
  else if (b.residual != nullptr || n.residual != 0)
    fail("residual given (" + num(n.residual) + " elements), but the plan has residual = false");
  if (b.sum != nullptr || n.sum != 0) {
    if (!p.residual) fail("sum output given, but the plan has residual = false (sum is x + residual)");
    check_size("sum", b.sum, n.sum, s.total, false, "same as x");
  }
  check_size("mean", b.mean, n.mean, s.pairs, true, "batch * num_groups, or empty");
  check_size("rstd", b.rstd, n.rstd, s.pairs, true, "batch * num_groups, or empty");

  const region x = make_region("x", b.x, n.x, s.elem_size);
  const region y = make_region("y", b.y, n.y, s.elem_size);
  const region inputs[] = {x, make_region("gamma", b.gamma, n.gamma, 4),
                           make_region("beta", b.beta, n.beta, 4),
                           make_region("residual", b.residual, n.residual, s.elem_size)};
  const region outputs[] = {y, make_region("sum", b.sum, n.sum, s.elem_size),
                            make_region("mean", b.mean, n.mean, 4), make_region("rstd", b.rstd, n.rstd, 4)};
  const bool in_place = b.x == b.y && s.total != 0;
  for (const region& o : outputs) {
    for (const region& i : inputs) {
      if (in_place && &o == &outputs[0] && &i == &inputs[0]) continue;  // y == x: in place, allowed
      if (overlaps(o, i))
        fail(std::string(o.name) + " overlaps " + i.name +
             (&i == &inputs[0] && &o == &outputs[0] ? " without being identical to it (in place needs y == x)"
                                                    : ", expected disjoint buffers"));
    }
    for (const region& o2 : outputs)
      if (&o2 < &o && overlaps(o, o2))
        fail(std::string(o.name) + " overlaps " + o2.name + ", expected disjoint buffers");
  }
}

}  // namespace groupnorm::detail
