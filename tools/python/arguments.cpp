// Argument binding and scalar parsing for the Python functions.
#include "arguments.hpp"

#include <cstring>

namespace groupnorm::python {

[[noreturn]] void value_error(const std::string& message) {
  throw py::value_error("groupnorm: " + message);
}

[[noreturn]] void type_error(const std::string& message) {
  throw py::type_error("groupnorm: " + message);
}

std::string type_name(PyObject* o) {
  PyTypeObject* t = Py_TYPE(o);
  const py::object module =
      py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(t)).attr("__module__");
  const std::string m = py::str(module);
  return m == "builtins" ? std::string(t->tp_name) : m + "." + t->tp_name;
}

namespace {

void check_positional(const signature& sig, Py_ssize_t given) {
  if (given > sig.positional)
    throw py::type_error(std::string(sig.function) + "() takes at most " + std::to_string(sig.positional) +
                         " positional arguments (" + std::to_string(given) + " given)");
}

// The interned names of sig (created under the GIL on first use, kept for the life of the process).
PyObject* const* interned_keys(const signature& sig) {
  if (sig.keys[sig.count - 1] == nullptr)
    for (int i = 0; i < sig.count; ++i)
      if (sig.keys[i] == nullptr && (sig.keys[i] = PyUnicode_InternFromString(sig.names[i])) == nullptr)
        throw py::error_already_set();
  return sig.keys;
}

void assign_slot(const signature& sig, int i, PyObject* value, PyObject** slots) {
  if (slots[i] != nullptr)
    throw py::type_error(std::string(sig.function) + "() got multiple values for argument '" + sig.names[i] +
                         "'");
  slots[i] = value;
}

void assign_keyword(const signature& sig, PyObject* key, PyObject* value, PyObject** slots) {
  PyObject* const* keys = interned_keys(sig);
  for (int i = 0; i < sig.count; ++i)
    if (keys[i] == key) return assign_slot(sig, i, value, slots);
  const char* k = PyUnicode_AsUTF8(key);  // a key built at run time (e.g. a **kwargs dict): by value
  if (k == nullptr) throw py::error_already_set();
  for (int i = 0; i < sig.count; ++i)
    if (std::strcmp(k, sig.names[i]) == 0) return assign_slot(sig, i, value, slots);
  std::string names;
  for (int i = 0; i < sig.count; ++i) names += std::string(i ? ", " : "") + sig.names[i];
  throw py::type_error(std::string(sig.function) + "() got an unexpected keyword argument '" + k +
                       "' (its arguments: " + names + ")");
}

void check_required(const signature& sig, PyObject** slots) {
  for (int i = 0; i < sig.required; ++i)
    if (slots[i] == nullptr)
      throw py::type_error(std::string(sig.function) + "() missing required argument '" + sig.names[i] + "'");
}

}  // namespace

void bind(const signature& sig, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
          PyObject** slots) {
  for (int i = 0; i < sig.count; ++i) slots[i] = nullptr;
  check_positional(sig, nargs);
  for (Py_ssize_t i = 0; i < nargs; ++i) slots[i] = args[i];
  const Py_ssize_t keywords = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < keywords; ++i)
    assign_keyword(sig, PyTuple_GET_ITEM(kwnames, i), args[nargs + i], slots);
  check_required(sig, slots);
}

void bind(const signature& sig, PyObject* args, PyObject* kwargs, PyObject** slots) {
  for (int i = 0; i < sig.count; ++i) slots[i] = nullptr;
  const Py_ssize_t given = PyTuple_GET_SIZE(args);
  check_positional(sig, given);
  for (Py_ssize_t i = 0; i < given; ++i) slots[i] = PyTuple_GET_ITEM(args, i);
  PyObject *key = nullptr, *value = nullptr;
  Py_ssize_t pos = 0;
  while (kwargs != nullptr && PyDict_Next(kwargs, &pos, &key, &value)) assign_keyword(sig, key, value, slots);
  check_required(sig, slots);
}

long long integer_arg(PyObject* o, const char* name) {
  PyObject* index = PyNumber_Index(o);
  if (index == nullptr) {
    PyErr_Clear();
    type_error(std::string(name) + " must be an integer, got " + type_name(o));
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(index, &overflow);
  Py_DECREF(index);
  if (overflow != 0) value_error(std::string(name) + " is out of range");
  return v;
}

double float_arg(PyObject* o, const char* name) {
  const double v = PyFloat_AsDouble(o);
  if (v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    type_error(std::string(name) + " must be a real number, got " + type_name(o));
  }
  return v;
}

bool bool_arg(PyObject* o, const char* name) {
  const int v = PyObject_IsTrue(o);
  if (v < 0) {
    PyErr_Clear();
    type_error(std::string(name) + " must be True or False, got " + type_name(o));
  }
  return v != 0;
}

int choice_arg(PyObject* o, const char* name, const char* const* choices, int count, int none_means) {
  std::string expected;
  for (int i = 0; i < count; ++i) expected += std::string(i ? ", " : "") + "'" + choices[i] + "'";
  if (none_means >= 0) expected += " or None";
  if (o == Py_None && none_means >= 0) return none_means;
  if (!PyUnicode_Check(o))
    type_error(std::string(name) + " must be one of " + expected + ", got " + type_name(o));
  const char* s = PyUnicode_AsUTF8(o);
  if (s == nullptr) throw py::error_already_set();
  for (int i = 0; i < count; ++i)
    if (std::strcmp(s, choices[i]) == 0) return i;
  value_error(std::string(name) + " = '" + s + "', expected one of " + expected);
}

int threads_arg(PyObject* o) {
  if (o == nullptr || o == Py_None) return 0;
  const long long n = integer_arg(o, "threads");
  if (n < 1 || n > 65536)
    value_error(
        "threads = " + std::to_string(n) +
        ", expected None (all hardware threads) or a count from 1 to 65536 (more than the hardware is "
        "capped at it)");
  return static_cast<int>(n);
}

}  // namespace groupnorm::python
