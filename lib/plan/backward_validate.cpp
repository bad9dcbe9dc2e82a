// The backward pass's plan decisions: its scratch size, and the validation of a run's buffers (sizes,
// presence and overlaps, all before the first write).
#include <cstdint>
#include <string>

#include "plan/backward.hpp"

namespace groupnorm::detail {
namespace {

std::string num(std::size_t v) {
  return std::to_string(v);
}

void check_size(const char* name, const void* p, std::size_t got, std::size_t expected, bool optional,
                const char* what) {
  if (optional && got == 0 && p == nullptr) return;
  if (p == nullptr && expected != 0)
    fail(std::string(name) + " is null, expected " + num(expected) + " elements (" + what + ")");
  if (got != expected)
    fail(std::string(name) + " has " + num(got) + " elements, expected " + num(expected) + " (" + what + ")");
}

struct region {
  const char* name;
  std::uintptr_t begin, end;
};

region make_region(const char* name, const void* p, std::size_t count, std::size_t elem_size) {
  const auto b = reinterpret_cast<std::uintptr_t>(p);
  return {name, b, b + (p ? count * elem_size : 0)};
}

bool overlaps(const region& a, const region& b) {
  return a.begin != a.end && b.begin != b.end && a.begin < b.end && b.begin < a.end;
}

}  // namespace

std::size_t backward_scratch_doubles(const plan_state& s) noexcept {
  return 2 * s.desc.batch * s.desc.channels + 4 * s.pairs;
}

std::size_t backward_workspace_doubles(const plan_state& s) noexcept {
  const std::size_t n = backward_scratch_doubles(s);
  return n <= kBackwardStackDoubles ? 0 : n;
}

void validate_backward(const plan_state& s, const backward_buffers& b, const backward_sizes& n) {
  const std::size_t C = s.desc.channels;
  check_size("x", b.x, n.x, s.total, false, "batch * channels * spatial");
  check_size("dy", b.dy, n.dy, s.total, false, "batch * channels * spatial, the gradient of y");
  check_size("gamma", b.gamma, n.gamma, C, true, "channels, or absent for 1");
  check_size("beta", b.beta, n.beta, C, true, "channels, or absent for 0");
  if ((b.mean == nullptr) != (b.rstd == nullptr))
    fail(std::string("mean is ") + (b.mean ? "given" : "absent") + " and rstd is " +
         (b.rstd ? "given" : "absent") +
         ", expected both (the forward's saved statistics) or neither (recomputed)");
  check_size("mean", b.mean, n.mean, s.pairs, true, "batch * num_groups, or absent");
  check_size("rstd", b.rstd, n.rstd, s.pairs, true, "batch * num_groups, or absent");
  if (b.dx == nullptr && b.dgamma == nullptr && b.dbeta == nullptr)
    fail("dx, dgamma and dbeta are all absent, expected at least one gradient to compute");
  check_size("dx", b.dx, n.dx, s.total, true, "batch * channels * spatial, or absent");
  check_size("dgamma", b.dgamma, n.dgamma, C, true, "channels, or absent");
  check_size("dbeta", b.dbeta, n.dbeta, C, true, "channels, or absent");
  const std::size_t need = backward_workspace_doubles(s);
  if (need != 0 && (b.workspace == nullptr || n.workspace < need))
    fail("workspace has " + num(b.workspace ? n.workspace : 0) + " doubles, expected at least " + num(need) +
         " (plan::backward_workspace_size(): 2 * batch * (channels + 2 * num_groups) doubles beyond the " +
         num(kBackwardStackDoubles) + " kept on the stack)");

  const region inputs[] = {
      make_region("x", b.x, n.x, s.elem_size),   make_region("dy", b.dy, n.dy, s.elem_size),
      make_region("gamma", b.gamma, n.gamma, 4), make_region("beta", b.beta, n.beta, 4),
      make_region("mean", b.mean, n.mean, 4),    make_region("rstd", b.rstd, n.rstd, 4)};
  const region outputs[] = {make_region("dx", b.dx, n.dx, s.elem_size),
                            make_region("dgamma", b.dgamma, n.dgamma, 4),
                            make_region("dbeta", b.dbeta, n.dbeta, 4),
                            make_region("workspace", need ? b.workspace : nullptr, n.workspace, 8)};
  const bool in_place = b.dx != nullptr && b.dx == b.dy;
  for (const region& o : outputs) {
    for (const region& i : inputs) {
      const bool dx_on_dy = &o == &outputs[0] && &i == &inputs[1];
      if (dx_on_dy && in_place) continue;  // dx == dy: in place, allowed
      if (overlaps(o, i))
        fail(std::string(o.name) + " overlaps " + i.name +
             (dx_on_dy ? " without being identical to it (in place needs dx == dy)"
                       : ", expected disjoint buffers"));
    }
    for (const region& o2 : outputs)
      if (&o2 < &o && overlaps(o, o2))
        fail(std::string(o.name) + " overlaps " + o2.name + ", expected disjoint buffers");
  }
}

}  // namespace groupnorm::detail
