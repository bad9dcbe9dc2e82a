// The Python functions and the Plan class of the `groupnorm` module.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>

namespace groupnorm::python {

namespace py = pybind11;

// Names accepted by layout=, activation= and dtype= (index = the library's enum value).
extern const char* const kLayouts[];
extern const char* const kActivations[];
extern const char* const kDtypes[];

// num_groups: an integer >= 1.
std::size_t groups_arg(PyObject* o);

// Registers group_norm and group_normalization as vectorcall functions: no pybind11 dispatch, argument
// errors raised as Python raises them.
void register_functions(py::module_& m);

// Registers the Plan class (plan_object.cpp).
void register_plan(py::module_& m);

}  // namespace groupnorm::python
