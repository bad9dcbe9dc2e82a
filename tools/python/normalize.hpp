// The Python surface's run: checks the Python-level arguments (naming them as the calling function does),
// fills the library's call and runs it through the library's one entry point with the GIL released.
#pragma once

#include <pybind11/pybind11.h>

#include "buffers.hpp"
#include "entry.hpp"
#include "groupnorm/groupnorm.hpp"

namespace groupnorm::python {

namespace py = pybind11;

// How the calling function names its arguments in messages.
struct argument_names {
  const char* x;
  const char* weight;
  const char* bias;
};
inline constexpr argument_names kTorchNames{"x", "weight", "bias"};

// The operands of one run. Absent optional views are not acquired.
struct operands {
  view x, weight, bias, residual, out;
  PyObject* out_object = nullptr;  // the caller's out (borrowed), returned as given
  bool return_sum = false;
  bool return_stats = false;
  int threads = 0;                   // 0: all hardware threads
  tbb::task_arena* arena = nullptr;  // where to run; nullptr: detail::shared_arena(threads)
};

// The storage type a view holds: float32, float16, or bfloat16 (uint16 bits when `bfloat16` is asked for, or
// a DLPack bfloat16). Raises ValueError naming `name` for anything else.
dtype storage_of(const view& v, const char* name, bool bfloat16);

// The problem's (batch, channels, spatial) of a shape in `memory_layout` (rank >= 2).
void shape_to_problem(const view& x, layout memory_layout, const char* name, problem& p);

// Runs `s` on the operands (x already acquired and matching the plan) and returns out, or the tuple
// (out[, sum][, mean, rstd]).
py::object run(const detail::plan_state& s, operands& o, const argument_names& names);

}  // namespace groupnorm::python
