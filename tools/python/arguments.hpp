// Argument binding for the Python functions: positional and keyword arguments matched to a signature with
// Python's own TypeErrors, and scalar parsers whose errors name the argument (never printing an array).
#pragma once

#include <Python.h>

#include <pybind11/pybind11.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace groupnorm::python {

namespace py = pybind11;

// A function's parameters: the first `positional` may be passed by position (the rest are keyword-only), the
// first `required` must be given. `keys` (count slots, initially null) receives the interned names on first
// use: keywords written in Python source are interned, so matching them is a pointer comparison.
struct signature {
  const char* function;
  const char* const* names;
  int count;
  int positional;
  int required;
  PyObject** keys;
};

// Fill slots[0..count) with the given arguments (borrowed; nullptr when not given). Raise TypeError for an
// unexpected keyword, a duplicate, too many positionals or a missing required argument.
// The vectorcall form: args[0..nargs) by position, then the values of the keywords kwnames names (or null).
void bind(const signature& sig, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, PyObject** slots);
// The tp_call form: a tuple and a dict (or null).
void bind(const signature& sig, PyObject* args, PyObject* kwargs, PyObject** slots);

// Runs body (returning a new reference) and turns every C++ exception into the Python error it stands for:
// a raw CPython entry point must not let one escape.
template <class F>
PyObject* python_call(F&& body) noexcept {
  try {
    return body().release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (py::builtin_exception& e) {
    e.set_error();
  } catch (const std::invalid_argument& e) {  // the library's groupnorm::invalid_argument
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "groupnorm: unknown C++ exception");
  }
  return nullptr;
}

// ValueError / TypeError "groupnorm: <message>".
[[noreturn]] void value_error(const std::string& message);
[[noreturn]] void type_error(const std::string& message);

// The Python type name of o ("float", "numpy.ndarray"), for messages that must not print the value.
std::string type_name(PyObject* o);

// An integer argument (operator.index: a float is a TypeError, never truncated).
long long integer_arg(PyObject* o, const char* name);
// A real number argument.
double float_arg(PyObject* o, const char* name);
// A truth value: bool, or anything with __bool__.
bool bool_arg(PyObject* o, const char* name);
// One of `choices` (strings); None counts as `none_means` when it is >= 0. Returns the index.
int choice_arg(PyObject* o, const char* name, const char* const* choices, int count, int none_means = -1);
// threads: None -> 0 (all hardware threads), else a count >= 1.
int threads_arg(PyObject* o);

}  // namespace groupnorm::python
