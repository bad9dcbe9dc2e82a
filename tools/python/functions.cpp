// The one-shot Python functions: group_norm (zero-copy, torch.nn.functional.group_norm's argument order) and
// group_normalization (the NumPy reference's signature, converting its inputs).
#include "functions.hpp"

#include <pybind11/numpy.h>

#include <string>

#include "arguments.hpp"
#include "normalize.hpp"

namespace groupnorm::python {

const char* const kLayouts[] = {"nchw", "nhwc"};
const char* const kActivations[] = {"none", "relu", "silu", "gelu"};
const char* const kDtypes[] = {"float32", "float16", "bfloat16"};

std::size_t groups_arg(PyObject* o) {
  const long long g = integer_arg(o, "num_groups");
  if (g < 1) value_error("num_groups = " + std::to_string(g) + ", expected at least 1");
  return static_cast<std::size_t>(g);
}

namespace {

// Runs a one-shot problem on acquired operands: the plan is this thread's cached one when the problem
// repeats.
py::object run_one_shot(problem& p, operands& o, const argument_names& names) {
  const detail::plan_state& s = detail::one_shot_plan_state(p);
  return run(s, o, names);
}

const char* const kGroupNormArgs[] = {
    "x",        "num_groups", "weight",     "bias",         "eps",     "layout", "activation",
    "residual", "out",        "return_sum", "return_stats", "threads", "dtype"};
PyObject* group_norm_keys[13] = {};
constexpr signature kGroupNorm{"group_norm", kGroupNormArgs, 13, 5, 2, group_norm_keys};

const char* const kGroupNormalizationArgs[] = {"X",       "gamma", "beta",   "num_groups",
                                               "epsilon", "out",   "threads"};
PyObject* group_normalization_keys[7] = {};
constexpr signature kGroupNormalization{"group_normalization",   kGroupNormalizationArgs, 7, 5, 4,
                                        group_normalization_keys};

bool given(PyObject* o) {
  return o != nullptr && o != Py_None;
}

// group_normalization's conversions: X of any real dtype becomes C-contiguous float32 (float16 stays
// float16); gamma / beta become float32.
py::array converted(PyObject* o, const char* name, bool keep_half) {
  const py::array a = py::array::ensure(py::reinterpret_borrow<py::object>(o));
  if (!a) type_error(std::string(name) + " must be a numpy.ndarray or array-like, got " + type_name(o));
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    value_error(std::string(name) + " has dtype " + std::string(py::str(a.dtype())) +
                ", expected a real floating-point type");
  if (keep_half && kind == 'f' && a.dtype().itemsize() == 2)
    return py::module_::import("numpy").attr("ascontiguousarray")(a, "float16");
  return py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
}

}  // namespace

namespace {

py::object group_norm(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[13];
  bind(kGroupNorm, args, nargs, kwnames, a);
  operands o;
  problem p;
  p.num_groups = groups_arg(a[1]);
  if (a[4] != nullptr) p.epsilon = static_cast<float>(float_arg(a[4], "eps"));
  const auto memory_layout = static_cast<layout>(a[5] ? choice_arg(a[5], "layout", kLayouts, 2) : 0);
  p.fused_activation = static_cast<activation>(a[6] ? choice_arg(a[6], "activation", kActivations, 4, 0) : 0);
  o.return_sum = a[9] != nullptr && bool_arg(a[9], "return_sum");
  o.return_stats = a[10] != nullptr && bool_arg(a[10], "return_stats");
  o.threads = threads_arg(a[11]);
  const int asked = given(a[12]) ? choice_arg(a[12], "dtype", kDtypes, 3) : -1;
  o.x.acquire(a[0], "x", false);
  p.data_type = storage_of(o.x, "x", asked == 2);
  if (asked >= 0 && static_cast<int>(p.data_type) != asked)
    value_error("x has dtype " + o.x.type_name() + ", but dtype='" + kDtypes[asked] + "' was given");
  shape_to_problem(o.x, memory_layout, "x", p);
  if (given(a[2])) o.weight.acquire(a[2], "weight", false);
  if (given(a[3])) o.bias.acquire(a[3], "bias", false);
  if (given(a[7])) o.residual.acquire(a[7], "residual", false);
  p.residual = o.residual.present();
  if (given(a[8])) o.out.acquire(a[8], "out", true), o.out_object = a[8];
  return run_one_shot(p, o, kTorchNames);
}

py::object group_normalization(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[7];
  bind(kGroupNormalization, args, nargs, kwnames, a);
  operands o;
  problem p;
  const py::array x = converted(a[0], "X", true);
  const py::object gamma = given(a[1]) ? py::object(converted(a[1], "gamma", false)) : py::none();
  const py::object beta = given(a[2]) ? py::object(converted(a[2], "beta", false)) : py::none();
  p.num_groups = groups_arg(a[3]);
  if (a[4] != nullptr) p.epsilon = static_cast<float>(float_arg(a[4], "epsilon"));
  o.threads = threads_arg(a[6]);
  o.x.acquire(x.ptr(), "X", false);
  p.data_type = storage_of(o.x, "X", false);
  shape_to_problem(o.x, layout::nchw, "X", p);
  if (!gamma.is_none()) o.weight.acquire(gamma.ptr(), "gamma", false);
  if (!beta.is_none()) o.bias.acquire(beta.ptr(), "beta", false);
  if (given(a[5])) {
    if (!py::isinstance<py::array>(a[5]))
      type_error("out must be None or a numpy.ndarray, got " + type_name(a[5]));
    o.out.acquire(a[5], "out", true), o.out_object = a[5];
  }
  return run_one_shot(p, o, argument_names{"X", "gamma", "beta"});
}

PyObject* group_norm_entry(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return python_call([&] { return group_norm(args, nargs, kwnames); });
}

PyObject* group_normalization_entry(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return python_call([&] { return group_normalization(args, nargs, kwnames); });
}

// PyMethodDef stores every function as a PyCFunction; the flags tell CPython the real signature.
template <class F>
PyCFunction as_method(F* f) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f));
}

PyMethodDef kMethods[] = {
    {"group_norm", as_method(group_norm_entry), METH_FASTCALL | METH_KEYWORDS,
     "group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, *, layout='nchw', activation=None,\n"
     "           residual=None, out=None, return_sum=False, return_stats=False, threads=None, dtype=None)\n\n"
     "GroupNorm of x, in the argument order of torch.nn.functional.group_norm:\n"
     "    y = act(weight[c] * (x' - mean) / sqrt(var + eps) + bias[c]),  x' = x (+ residual)\n"
     "with the population mean and variance of each (sample, group).\n\n"
     "x: a C-contiguous buffer (NumPy array, memoryview, CPU torch.Tensor, anything with the buffer\n"
     "   protocol, __array_interface__ or __dlpack__), never copied: float32, float16, or bfloat16\n"
     "   (uint16 bits with dtype='bfloat16', or a bfloat16 DLPack tensor). Shape (batch, channels,\n"
     "   spatial...) for layout='nchw', (batch, spatial..., channels) for 'nhwc'.\n"
     "weight, bias: `channels` float32 values, or None (1 and 0).\n"
     "activation: None, 'relu', 'silu' or 'gelu' (erf form), fused after the affine.\n"
     "residual: normalize x + residual (same shape and dtype as x).\n"
     "out: where y goes (shape and dtype of x, C-contiguous, writable); out=x runs in place. None: a new\n"
     "   NumPy array (bfloat16 as uint16).\n"
     "return_sum: also return x + residual. return_stats: also return mean and rstd = 1/sqrt(var + eps),\n"
     "   float32 arrays of shape (batch, num_groups).\n"
     "threads: None = all hardware threads; n = at most n (capped at the hardware). The bits do not\n"
     "   depend on it.\n"
     "dtype: None (from x), or 'bfloat16' for uint16 arrays holding bfloat16 bits.\n"
     "Returns out, or the tuple (out[, sum][, mean, rstd]). Raises ValueError / TypeError naming the\n"
     "argument; on any error nothing is written."},
    {"group_normalization", as_method(group_normalization_entry), METH_FASTCALL | METH_KEYWORDS,
     "group_normalization(X, gamma, beta, num_groups, epsilon=1e-5, *, out=None, threads=None)\n\n"
     "The NumPy reference's signature. Unlike group_norm it converts: X of any real dtype becomes\n"
     "float32 (float16 stays float16; a C-contiguous float32 X is used without a copy), gamma and beta\n"
     "(`channels` values, any shape, or None) become float32. X is NCHW (batch, channels, spatial...).\n"
     "out: None or a C-contiguous writable numpy.ndarray of the result's dtype and X's shape (out=X: in\n"
     "place). Returns out."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void register_functions(py::module_& m) {
  if (PyModule_AddFunctions(m.ptr(), kMethods) != 0) throw py::error_already_set();
}

}  // namespace groupnorm::python
