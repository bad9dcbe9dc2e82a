// Python module `groupnorm`: NumPy-facing GroupNorm on the library's C++ core.
//
//   groupnorm.group_normalization(X, gamma, beta, num_groups, epsilon=1e-5, *, out=None, threads=None)
//
// X is (batch, channels, spatial...) in C order. float32 arrays that are C-contiguous are used without a
// copy; anything else real-valued is converted to float32 (float16 arrays stay float16 and give a float16
// result). The GIL is released while the kernel runs. Bad arguments raise ValueError with the library's
// message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.hpp"

namespace py = pybind11;

namespace {

using farray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// One task_arena per thread count, created on first use and kept for the life of the process (deliberately
// never destroyed: tearing TBB arenas down during interpreter shutdown gains nothing).
tbb::task_arena& arena_for(int threads) {
  static std::mutex mutex;
  static auto* cache = new std::map<int, std::unique_ptr<tbb::task_arena>>();
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = (*cache)[threads];
  if (!slot) slot = std::make_unique<tbb::task_arena>(threads);
  return *slot;
}

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_str(const py::array& a) {
  return py::str(a.dtype()).cast<std::string>();
}

[[noreturn]] void value_error(const std::string& what) {
  throw py::value_error("groupnorm: " + what);
}

// gamma / beta: None (absent: an unused empty array) or anything convertible to float32; the library checks
// the element count.
farray affine(const py::object& o, const char* name) {
  if (o.is_none()) return farray();
  const py::array a = py::array::ensure(o);
  if (!a) throw py::type_error(std::string("groupnorm: ") + name + " must be None or array-like");
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    value_error(std::string(name) + " has dtype " + dtype_str(a) + ", expected a real floating-point type");
  farray f = farray::ensure(a);
  if (!f) throw py::type_error(std::string("groupnorm: ") + name + " cannot be converted to float32");
  return f;
}

py::object group_normalization(const py::object& X, const py::object& gamma_obj, const py::object& beta_obj,
                               const py::object& num_groups_obj, double epsilon, const py::object& out_obj,
                               const py::object& threads_obj) {
  // X: float16 stays float16; every other real dtype (and non-contiguous float32) becomes C-contiguous
  // float32.
  const py::array any = py::array::ensure(X);
  if (!any) throw py::type_error("groupnorm: X must be a numpy.ndarray or array-like");
  const char kind = any.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    value_error("X has dtype " + dtype_str(any) +
                ", expected a real floating-point type (float32 or float16)");
  const bool half = kind == 'f' && any.dtype().itemsize() == 2;
  py::array x;
  if (half) {
    x = py::module_::import("numpy").attr("ascontiguousarray")(any).cast<py::array>();
    if (!x.dtype().equal(py::dtype("float16")))  // non-native byte order: normalize it
      x = x.attr("astype")("float16").cast<py::array>();
  } else {
    x = farray::ensure(any);
  }
  if (!x) throw py::type_error("groupnorm: X cannot be converted to a C-contiguous float32 array");
  if (x.ndim() < 2)
    value_error("X has shape " + shape_str(x) + ", expected rank >= 2 (batch, channels, spatial...)");

  const farray gamma = affine(gamma_obj, "gamma");
  const farray beta = affine(beta_obj, "beta");

  // num_groups: an integer (operator.index), never a float silently truncated.
  const py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(num_groups_obj.ptr()));
  if (!idx) throw py::error_already_set();
  int overflow = 0;
  const long long ng = PyLong_AsLongLongAndOverflow(idx.ptr(), &overflow);
  if (overflow != 0 || (ng == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    value_error("num_groups = " + py::str(idx).cast<std::string>() + " is out of range");
  }
  if (ng < 0) value_error("num_groups = " + std::to_string(ng) + ", expected at least 1");

  int threads = 0;
  if (!threads_obj.is_none()) {
    const py::object t = py::reinterpret_steal<py::object>(PyNumber_Index(threads_obj.ptr()));
    if (!t) throw py::error_already_set();
    const long long n = PyLong_AsLongLongAndOverflow(t.ptr(), &overflow);
    if (overflow != 0 || n < 1 || n > 65536)
      value_error("threads = " + py::str(t).cast<std::string>() +
                  ", expected None (all hardware threads) or a count from 1 to 65536");
    threads = static_cast<int>(n);
  } else {
    threads = tbb::info::default_concurrency();
  }

  groupnorm::problem p;
  p.batch = static_cast<std::size_t>(x.shape(0));
  p.channels = static_cast<std::size_t>(x.shape(1));
  p.spatial = 1;
  for (py::ssize_t i = 2; i < x.ndim(); ++i) p.spatial *= static_cast<std::size_t>(x.shape(i));
  p.num_groups = static_cast<std::size_t>(ng);
  p.epsilon = static_cast<float>(epsilon);
  p.data_type = half ? groupnorm::dtype::f16 : groupnorm::dtype::f32;

  // out: a C-contiguous, writable array of the result's dtype and X's shape (out=X normalizes X in place).
  const py::dtype out_dtype = half ? py::dtype("float16") : py::dtype::of<float>();
  py::array out;
  if (out_obj.is_none()) {
    std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
    out = py::array(out_dtype, shape);
  } else {
    if (!py::isinstance<py::array>(out_obj))
      throw py::type_error("groupnorm: out must be None or a numpy.ndarray");
    out = py::reinterpret_borrow<py::array>(out_obj);
    if (!out.dtype().equal(out_dtype))
      value_error("out has dtype " + dtype_str(out) + ", expected " +
                  (half ? std::string("float16") : std::string("float32")) + " (the dtype of the result)");
    if (!(out.flags() & py::array::c_style)) value_error("out is not C-contiguous");
    if (!out.writeable()) value_error("out is read-only");
    bool same = out.ndim() == x.ndim();
    for (py::ssize_t i = 0; same && i < x.ndim(); ++i) same = out.shape(i) == x.shape(i);
    if (!same)
      value_error("out has shape " + shape_str(out) + ", expected " + shape_str(x) + " (the shape of X)");
  }

  const std::size_t n = static_cast<std::size_t>(x.size());
  const void* xp = x.data();
  void* yp = out.mutable_data();
  auto as_span = [](const py::object& given, const farray& a) {
    return given.is_none() ? std::span<const float>()
                           : std::span<const float>(a.data(), static_cast<std::size_t>(a.size()));
  };
  const std::span<const float> g = as_span(gamma_obj, gamma), b = as_span(beta_obj, beta);
  tbb::task_arena& arena = arena_for(threads);

  std::string error;
  {
    const py::gil_scoped_release nogil;
    try {
      const groupnorm::plan pl(p);
      if (half) {
        groupnorm::tensors<groupnorm::f16> t;
        t.x = {static_cast<const groupnorm::f16*>(xp), n};
        t.y = {static_cast<groupnorm::f16*>(yp), n};
        t.gamma = g;
        t.beta = b;
        pl.run(t, &arena);
      } else {
        pl.run({static_cast<const float*>(xp), n}, {static_cast<float*>(yp), n}, g, b, &arena);
      }
    } catch (const std::invalid_argument& e) {  // groupnorm::invalid_argument
      error = e.what();
      if (error.empty()) error = "groupnorm: invalid argument";
    }
  }
  if (!error.empty()) throw py::value_error(error);
  return out;
}

}  // namespace

PYBIND11_MODULE(groupnorm, m) {
  m.doc() =
      "Deterministic Group Normalization for CPUs (oneTBB), on NumPy arrays.\n\n"
      "Results are bitwise identical for every thread count.";
  m.attr("__version__") = GROUPNORM_VERSION_STRING;
  m.def("group_normalization", &group_normalization, py::arg("X"), py::arg("gamma"), py::arg("beta"),
        py::arg("num_groups"), py::arg("epsilon") = 1e-5, py::kw_only(), py::arg("out") = py::none(),
        py::arg("threads") = py::none(),
        "group_normalization(X, gamma, beta, num_groups, epsilon=1e-5, *, out=None, threads=None)\n\n"
        "GroupNorm of X, shape (batch, channels, spatial...) in C order:\n"
        "    y = gamma[c] * (x - mean) / sqrt(var + epsilon) + beta[c]\n"
        "with the population mean and variance of each (sample, group) slice.\n\n"
        "X: float32 (used without a copy when C-contiguous), float16 (float16 result), or any other real\n"
        "   dtype (converted to float32). gamma, beta: `channels` values or None (1 and 0).\n"
        "num_groups: must divide channels. epsilon: finite and >= 0.\n"
        "out: None (a new array is returned) or a C-contiguous writable array of the result's dtype and X's\n"
        "   shape; out=X normalizes X in place. Returns out.\n"
        "threads: None = all hardware threads, n = a task arena of n threads (arenas are cached per count).\n"
        "   The result does not depend on it.\n"
        "The GIL is released during the computation. Raises ValueError with the library's message on bad "
        "input.");
  m.def(
      "hardware_threads", [] { return tbb::info::default_concurrency(); },
      "Number of threads `threads=None` uses.");
}
