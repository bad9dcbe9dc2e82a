// Python `groupnorm.group_norm_backward` (tools/python/backward.cpp).
#pragma once

#include <pybind11/pybind11.h>

// Adds group_norm_backward to the module.
void add_group_norm_backward(pybind11::module_& m);
