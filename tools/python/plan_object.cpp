// The Python Plan class: a problem validated once, run on buffers of its shape and dtype. A plain CPython
// type whose calls go through vectorcall (PEP 590): no pybind11 dispatch or type lookup on the per-call path.
#include <cstddef>
#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "arguments.hpp"
#include "functions.hpp"
#include "normalize.hpp"

// After Python.h (which arguments.hpp includes first): it uses Python.h's types.
#include <structmember.h>

namespace groupnorm::python {
namespace {

// What a Plan holds: everything a call needs, fixed at construction.
struct plan_data {
  std::shared_ptr<const detail::plan_state> state;
  tbb::task_arena* default_arena = nullptr;  // threads=None: all hardware threads
  int rank = 0;
  Py_ssize_t shape[kMaxRank] = {};

  const problem& desc() const { return detail::description(*state); }
  std::string shape_string() const {
    std::string s = "(";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (rank == 1 ? ",)" : ")");
  }
};

struct plan_object {
  PyObject_HEAD vectorcallfunc
      vectorcall;  // CPython calls the object through this slot (tp_vectorcall_offset)
  PyObject* weakrefs;
  plan_data data;  // constructed in place by plan_new, destroyed by plan_dealloc
};

const plan_data& data_of(PyObject* self) {
  return reinterpret_cast<plan_object*>(self)->data;
}

const char* const kPlanArgs[] = {"shape", "num_groups", "eps", "layout", "dtype", "activation", "residual"};
PyObject* plan_init_keys[7] = {};
constexpr signature kPlanInit{"Plan", kPlanArgs, 7, 3, 2, plan_init_keys};

const char* const kCallArgs[] = {"x",   "weight",     "bias",         "residual",
                                 "out", "return_sum", "return_stats", "threads"};
PyObject* plan_call_keys[8] = {};
constexpr signature kPlanCall{"Plan.__call__", kCallArgs, 8, 3, 1, plan_call_keys};

bool given(PyObject* o) {
  return o != nullptr && o != Py_None;
}

plan_data make_plan(PyObject* args, PyObject* kwargs) {
  PyObject* a[7];
  bind(kPlanInit, args, kwargs, a);
  plan_data pl;
  if (!PySequence_Check(a[0]) || PyUnicode_Check(a[0]))
    type_error("shape must be a sequence of integers, got " + type_name(a[0]));
  const auto rank = static_cast<int>(PySequence_Size(a[0]));
  if (rank < 2 || rank > kMaxRank)
    value_error("shape has rank " + std::to_string(rank) + ", expected 2 to " + std::to_string(kMaxRank));
  pl.rank = rank;
  for (int i = 0; i < rank; ++i) {
    const py::object item = py::reinterpret_steal<py::object>(PySequence_GetItem(a[0], i));
    if (!item) throw py::error_already_set();
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
  pl.default_arena = detail::shared_arena(0);
  return pl;
}

py::object call_plan(const plan_data& pl, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* a[8];
  bind(kPlanCall, args, nargs, kwnames, a);
  operands o;
  const problem& p = pl.desc();
  o.return_sum = a[5] != nullptr && bool_arg(a[5], "return_sum");
  o.return_stats = a[6] != nullptr && bool_arg(a[6], "return_stats");
  o.threads = threads_arg(a[7]);
  o.arena = o.threads == 0 ? pl.default_arena : nullptr;
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

// plan(...): the vectorcall slot, and Plan.__call__ (METH_FASTCALL | METH_KEYWORDS, the same convention).
PyObject* plan_vectorcall(PyObject* self, PyObject* const* args, std::size_t nargsf, PyObject* kwnames) {
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  return python_call([&] { return call_plan(data_of(self), args, nargs, kwnames); });
}

PyObject* plan_call_method(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return python_call([&] { return call_plan(data_of(self), args, nargs, kwnames); });
}

PyObject* plan_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return python_call([&] {
    plan_data pl = make_plan(args, kwargs);  // everything that can fail, before the object exists
    PyObject* self = type->tp_alloc(type, 0);
    if (self == nullptr) throw py::error_already_set();
    auto* o = reinterpret_cast<plan_object*>(self);
    o->vectorcall = plan_vectorcall;
    o->weakrefs = nullptr;
    new (&o->data) plan_data(std::move(pl));
    return py::reinterpret_steal<py::object>(self);
  });
}

void plan_dealloc(PyObject* self) {
  auto* o = reinterpret_cast<plan_object*>(self);
  PyTypeObject* type = Py_TYPE(self);
  if (o->weakrefs != nullptr) PyObject_ClearWeakRefs(self);
  o->data.~plan_data();
  type->tp_free(self);
  Py_DECREF(type);  // instances of a heap type own a reference to it
}

PyObject* plan_repr(PyObject* self) {
  return python_call([&] {
    const plan_data& pl = data_of(self);
    const problem& p = pl.desc();
    char eps[32];
    std::snprintf(eps, sizeof eps, "%g", static_cast<double>(p.epsilon));
    return py::str("groupnorm.Plan(" + pl.shape_string() + ", " + std::to_string(p.num_groups) +
                   ", eps=" + eps + ", layout='" + kLayouts[static_cast<int>(p.memory_layout)] +
                   "', dtype='" + kDtypes[static_cast<int>(p.data_type)] + "', activation=" +
                   (p.fused_activation == activation::none
                        ? std::string("None")
                        : "'" + std::string(kActivations[static_cast<int>(p.fused_activation)]) + "'") +
                   ", residual=" + (p.residual ? "True" : "False") + ")");
  });
}

// A read-only property: getter(data) returns a py::object.
template <py::object (*Get)(const plan_data&)>
PyObject* property(PyObject* self, void*) {
  return python_call([&] { return Get(data_of(self)); });
}

py::object shape_of(const plan_data& pl) {
  py::tuple t(static_cast<std::size_t>(pl.rank));
  for (int i = 0; i < pl.rank; ++i) t[static_cast<std::size_t>(i)] = py::int_(pl.shape[i]);
  return t;
}
py::object groups_of(const plan_data& pl) {
  return py::int_(pl.desc().num_groups);
}
py::object eps_of(const plan_data& pl) {
  return py::float_(static_cast<double>(pl.desc().epsilon));
}
py::object layout_of(const plan_data& pl) {
  return py::str(kLayouts[static_cast<int>(pl.desc().memory_layout)]);
}
py::object dtype_of(const plan_data& pl) {
  return py::str(kDtypes[static_cast<int>(pl.desc().data_type)]);
}
py::object activation_of(const plan_data& pl) {
  const activation a = pl.desc().fused_activation;
  return a == activation::none ? py::none() : py::object(py::str(kActivations[static_cast<int>(a)]));
}
py::object residual_of(const plan_data& pl) {
  return py::bool_(pl.desc().residual);
}

PyGetSetDef kProperties[] = {
    {"shape", property<shape_of>, nullptr, "The shape of x.", nullptr},
    {"num_groups", property<groups_of>, nullptr, "Groups of channels.", nullptr},
    {"eps", property<eps_of>, nullptr, "Added to the variance.", nullptr},
    {"layout", property<layout_of>, nullptr, "'nchw' or 'nhwc'.", nullptr},
    {"dtype", property<dtype_of>, nullptr, "'float32', 'float16' or 'bfloat16'.", nullptr},
    {"activation", property<activation_of>, nullptr, "None, 'relu', 'silu' or 'gelu'.", nullptr},
    {"residual", property<residual_of>, nullptr, "Whether calls pass residual=.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

// Plan.__call__ with its docstring (for help()); calls of the object itself take the vectorcall slot.
PyMethodDef kCallMethod = {
    "__call__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(plan_call_method)),
    METH_FASTCALL | METH_KEYWORDS,
    "plan(x, weight=None, bias=None, *, residual=None, out=None, return_sum=False, return_stats=False, "
    "threads=None)\n\n"
    "Runs the plan: the arguments of group_norm() after the ones the Plan fixed. x must have the Plan's\n"
    "shape and dtype. Returns out, or (out[, sum][, mean, rstd])."};

PyMemberDef kMembers[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(plan_object, vectorcall), READONLY, nullptr},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(plan_object, weakrefs), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

const char kPlanDoc[] =
    "Plan(shape, num_groups, eps=1e-5, *, layout='nchw', dtype='float32', activation=None, "
    "residual=False)\n\n"
    "A GroupNorm problem validated once; calling it runs it on buffers of its shape and\n"
    "dtype. Immutable: one Plan may be called from several Python threads at once.\n\n"
    "shape: (batch, channels, spatial...) for layout='nchw', (batch, spatial..., channels)\n"
    "   for 'nhwc'. dtype: 'float32', 'float16' or 'bfloat16' (uint16 arrays holding the\n"
    "   bits, or bfloat16 DLPack tensors). activation: None, 'relu', 'silu' or 'gelu' (erf\n"
    "   form), applied after the affine. residual=True: every call passes residual= and\n"
    "   normalizes x + residual.";

PyType_Slot kSlots[] = {{Py_tp_new, reinterpret_cast<void*>(plan_new)},
                        {Py_tp_dealloc, reinterpret_cast<void*>(plan_dealloc)},
                        {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
                        {Py_tp_repr, reinterpret_cast<void*>(plan_repr)},
                        {Py_tp_getset, kProperties},
                        {Py_tp_members, kMembers},
                        {Py_tp_doc, const_cast<char*>(kPlanDoc)},
                        {0, nullptr}};

PyType_Spec kSpec = {"groupnorm._groupnorm.Plan", sizeof(plan_object), 0,
                     Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_IMMUTABLETYPE, kSlots};

}  // namespace

void register_plan(py::module_& m) {
  PyObject* type = PyType_FromSpec(&kSpec);
  if (type == nullptr) throw py::error_already_set();
  const py::object owned = py::reinterpret_steal<py::object>(type);
  // Into the dict directly: the type is immutable, and its tp_call slot must stay the vectorcall one (a
  // __call__ method given in the spec would lose to the slot's generic wrapper anyway).
  const py::object call = py::reinterpret_steal<py::object>(
      PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(type), &kCallMethod));
  if (!call ||
      PyDict_SetItemString(reinterpret_cast<PyTypeObject*>(type)->tp_dict, "__call__", call.ptr()) != 0)
    throw py::error_already_set();
  PyType_Modified(reinterpret_cast<PyTypeObject*>(type));
  m.add_object("Plan", owned);
}

}  // namespace groupnorm::python
