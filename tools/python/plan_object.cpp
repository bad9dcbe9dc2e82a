// The Python Plan class: a problem validated once, run on buffers of its shape and dtype.
#include <cstdio>
#include <memory>
#include <string>

#include "arguments.hpp"
#include "functions.hpp"
#include "normalize.hpp"

namespace groupnorm::python {
namespace {

struct plan_object {
  std::shared_ptr<const detail::plan_state> state;
  int rank = 0;
  Py_ssize_t shape[kMaxRank] = {};

  const problem& desc() const { return detail::description(*state); }
  py::tuple shape_tuple() const {
    py::tuple t(static_cast<std::size_t>(rank));
    for (int i = 0; i < rank; ++i) t[static_cast<std::size_t>(i)] = py::int_(shape[i]);
    return t;
  }
  std::string shape_string() const {
    std::string s = "(";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (rank == 1 ? ",)" : ")");
  }
};

const char* const kPlanArgs[] = {"shape", "num_groups", "eps", "layout", "dtype", "activation", "residual"};
constexpr signature kPlanInit{"Plan", kPlanArgs, 7, 3, 2};

const char* const kCallArgs[] = {"x",   "weight",     "bias",         "residual",
                                 "out", "return_sum", "return_stats", "threads"};
constexpr signature kPlanCall{"Plan.__call__", kCallArgs, 8, 3, 1};

bool given(PyObject* o) {
  return o != nullptr && o != Py_None;
}

plan_object make_plan(const py::args& args, const py::kwargs& kwargs) {
  PyObject* a[7];
  bind(kPlanInit, args.ptr(), kwargs.ptr(), a);
  plan_object pl;
  const py::object seq = py::reinterpret_borrow<py::object>(a[0]);
  if (!PySequence_Check(a[0]) || PyUnicode_Check(a[0]))
    type_error("shape must be a sequence of integers, got " + type_name(a[0]));
  const auto rank = static_cast<int>(PySequence_Size(a[0]));
  if (rank < 2 || rank > kMaxRank)
    value_error("shape has rank " + std::to_string(rank) + ", expected 2 to " + std::to_string(kMaxRank));
  pl.rank = rank;
  for (int i = 0; i < rank; ++i) {
    const py::object item = seq[py::int_(i)];
    const long long v = integer_arg(item.ptr(), "shape");
    if (v < 0) value_error("shape[" + std::to_string(i) + "] = " + std::to_string(v) + ", expected >= 0");
    pl.shape[i] = static_cast<Py_ssize_t>(v);
  }
  problem p;
  p.num_groups = groups_arg(a[1]);
  if (a[2] != nullptr) p.epsilon = static_cast<float>(float_arg(a[2], "eps"));
  const auto memory_layout = static_cast<layout>(a[3] ? choice_arg(a[3], "layout", kLayouts, 2) : 0);
  p.data_type = static_cast<dtype>(a[4] ? choice_arg(a[4], "dtype", kDtypes, 3) : 0);
  p.fused_activation = static_cast<activation>(a[5] ? choice_arg(a[5], "activation", kActivations, 4, 0) : 0);
  p.residual = a[6] != nullptr && bool_arg(a[6], "residual");
  const std::size_t first = memory_layout == layout::nchw ? 2 : 1;
  const std::size_t end = memory_layout == layout::nchw ? rank : rank - 1;
  p.memory_layout = memory_layout;
  p.batch = static_cast<std::size_t>(pl.shape[0]);
  p.channels = static_cast<std::size_t>(pl.shape[memory_layout == layout::nchw ? 1 : rank - 1]);
  p.spatial = 1;
  for (std::size_t i = first; i < end; ++i)
    if (__builtin_mul_overflow(p.spatial, static_cast<std::size_t>(pl.shape[i]), &p.spatial))
      value_error("shape " + pl.shape_string() + " has too many elements");
  pl.state = detail::make_shared_plan_state(p);
  return pl;
}

py::object call_plan(const plan_object& pl, PyObject* args, PyObject* kwargs) {
  PyObject* a[8];
  bind(kPlanCall, args, kwargs, a);
  operands o;
  const problem& p = pl.desc();
  o.return_sum = a[5] != nullptr && bool_arg(a[5], "return_sum");
  o.return_stats = a[6] != nullptr && bool_arg(a[6], "return_stats");
  o.threads = threads_arg(a[7]);
  o.x.acquire(a[0], "x", false);
  const dtype d = storage_of(o.x, "x", p.data_type == dtype::bf16);
  if (d != p.data_type)
    value_error("x has dtype " + o.x.type_name() + ", expected " + kDtypes[static_cast<int>(p.data_type)] +
                " (the Plan's dtype)");
  bool same = o.x.rank() == pl.rank;
  for (int i = 0; same && i < pl.rank; ++i) same = o.x.dim(i) == pl.shape[i];
  if (!same)
    value_error("x has shape " + o.x.shape_string() + ", expected " + pl.shape_string() +
                " (the Plan's shape)");
  if (given(a[1])) o.weight.acquire(a[1], "weight", false);
  if (given(a[2])) o.bias.acquire(a[2], "bias", false);
  if (given(a[3])) o.residual.acquire(a[3], "residual", false);
  if (given(a[4])) o.out.acquire(a[4], "out", true), o.out_object = a[4];
  return run(*pl.state, o, kTorchNames);
}

// Plan.__call__ as the type's tp_call slot: no pybind11 dispatch on the per-call path.
PyObject* plan_tp_call(PyObject* self, PyObject* args, PyObject* kwargs) {
  return python_call([&] { return call_plan(py::handle(self).cast<const plan_object&>(), args, kwargs); });
}

std::string repr(const plan_object& pl) {
  const problem& p = pl.desc();
  char eps[32];
  std::snprintf(eps, sizeof eps, "%g", static_cast<double>(p.epsilon));
  return "groupnorm.Plan(" + pl.shape_string() + ", " + std::to_string(p.num_groups) + ", eps=" + eps +
         ", layout='" + kLayouts[static_cast<int>(p.memory_layout)] + "', dtype='" +
         kDtypes[static_cast<int>(p.data_type)] + "', activation=" +
         (p.fused_activation == activation::none
              ? std::string("None")
              : "'" + std::string(kActivations[static_cast<int>(p.fused_activation)]) + "'") +
         ", residual=" + (p.residual ? "True" : "False") + ")";
}

}  // namespace

void register_plan(py::module_& m) {
  const auto cls =
      py::class_<plan_object>(
          m, "Plan",
          "Plan(shape, num_groups, eps=1e-5, *, layout='nchw', dtype='float32', activation=None, "
          "residual=False)\n\n"
          "A GroupNorm problem validated once; calling it runs it on buffers of its shape and\n"
          "dtype. Immutable: one Plan may be called from several Python threads at once.\n\n"
          "shape: (batch, channels, spatial...) for layout='nchw', (batch, spatial..., channels)\n"
          "   for 'nhwc'. dtype: 'float32', 'float16' or 'bfloat16' (uint16 arrays holding the\n"
          "   bits, or bfloat16 DLPack tensors). activation: None, 'relu', 'silu' or 'gelu' (erf\n"
          "   form), applied after the affine. residual=True: every call passes residual= and\n"
          "   normalizes x + residual.")
          .def(py::init(&make_plan))
          .def("__call__", &call_plan,
               "plan(x, weight=None, bias=None, *, residual=None, out=None, return_sum=False, "
               "return_stats=False, "
               "threads=None)\n\n"
               "Runs the plan: the arguments of group_norm() after the ones the Plan fixed. x must have the "
               "Plan's\n"
               "shape and dtype. Returns out, or (out[, sum][, mean, rstd]).")
          .def_property_readonly("shape", &plan_object::shape_tuple, "The shape of x.")
          .def_property_readonly(
              "num_groups", [](const plan_object& pl) { return pl.desc().num_groups; }, "Groups of channels.")
          .def_property_readonly(
              "eps", [](const plan_object& pl) { return pl.desc().epsilon; }, "Added to the variance.")
          .def_property_readonly(
              "layout",
              [](const plan_object& pl) { return kLayouts[static_cast<int>(pl.desc().memory_layout)]; },
              "'nchw' or 'nhwc'.")
          .def_property_readonly(
              "dtype", [](const plan_object& pl) { return kDtypes[static_cast<int>(pl.desc().data_type)]; },
              "'float32', 'float16' or 'bfloat16'.")
          .def_property_readonly(
              "activation",
              [](const plan_object& pl) -> py::object {
                const activation a = pl.desc().fused_activation;
                if (a == activation::none) return py::none();
                return py::str(kActivations[static_cast<int>(a)]);
              },
              "None, 'relu', 'silu' or 'gelu'.")
          .def_property_readonly(
              "residual", [](const plan_object& pl) { return pl.desc().residual; },
              "Whether calls pass residual=.")
          .def("__repr__", &repr);
  auto* type = reinterpret_cast<PyTypeObject*>(cls.ptr());
  type->tp_call = plan_tp_call;
  PyType_Modified(type);
}

}  // namespace groupnorm::python
