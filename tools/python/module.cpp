// The compiled part of the Python package `groupnorm` (groupnorm._groupnorm): group_norm, Plan and
// group_normalization on the library's one entry point. Every function releases the GIL while the kernel
// runs.
#include <pybind11/pybind11.h>

#include "backward.hpp"
#include "entry.hpp"
#include "functions.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_groupnorm, m) {
  using namespace groupnorm::python;
  m.doc() = "Compiled core of the groupnorm package (import groupnorm instead).";
  m.attr("__version__") = GROUPNORM_VERSION_STRING;
  register_functions(m);
  m.def(
      "hardware_threads", [] { return groupnorm::detail::hardware_threads(); },
      "Number of threads `threads=None` uses (and the cap of every thread count).");
  register_plan(m);
  add_group_norm_backward(m);
}
