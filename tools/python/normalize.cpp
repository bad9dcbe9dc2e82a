// The Python surface's run: argument checks with the caller's names, outputs, and the library call with the
// GIL released.
#include "normalize.hpp"

#include <pybind11/numpy.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "arguments.hpp"

namespace groupnorm::python {
namespace {

const char* storage_name(dtype d) {
  return d == dtype::f32 ? "float32" : d == dtype::f16 ? "float16" : "uint16 (bfloat16 bits)";
}

// The NumPy dtype of new outputs: bfloat16 is returned as its uint16 bits.
py::dtype numpy_dtype(dtype d) {
  return d == dtype::f32   ? py::dtype::of<float>()
         : d == dtype::f16 ? py::dtype("float16")
                           : py::dtype("uint16");
}

bool same_storage(const view& v, dtype d) {
  switch (d) {
    case dtype::f32:
      return v.type() == element::f32;
    case dtype::f16:
      return v.type() == element::f16;
    case dtype::bf16:
      return v.type() == element::u16 || v.type() == element::bf16;
  }
  return false;
}

void check_affine(const view& v, const char* name, std::size_t channels) {
  if (!v.present()) return;
  if (v.type() != element::f32)
    value_error(std::string(name) + " has dtype " + v.type_name() +
                ", expected float32 (convert it first, e.g. numpy.asarray(a, numpy.float32))");
  if (v.count() != channels)
    value_error(std::string(name) + " has " + std::to_string(v.count()) + " elements, expected " +
                std::to_string(channels) + " (channels)");
}

// residual and out: the storage and shape of x.
void check_like_x(const view& v, const char* name, const view& x, dtype d) {
  if (!same_storage(v, d))
    value_error(std::string(name) + " has dtype " + v.type_name() + ", expected " + storage_name(d) +
                " (the dtype of x)");
  bool same = v.rank() == x.rank();
  for (int i = 0; same && i < x.rank(); ++i) same = v.dim(i) == x.dim(i);
  if (!same)
    value_error(std::string(name) + " has shape " + v.shape_string() + ", expected " + x.shape_string() +
                " (the shape of x)");
}

py::array new_array(const view& like, dtype d) {
  return py::array(numpy_dtype(d), std::vector<py::ssize_t>(like.shape(), like.shape() + like.rank()));
}

// Releases the GIL for its lifetime (cheaper than pybind11's guard, which looks up its internals).
struct without_gil {
  without_gil() : state(PyEval_SaveThread()) {}
  ~without_gil() { PyEval_RestoreThread(state); }
  without_gil(const without_gil&) = delete;
  without_gil& operator=(const without_gil&) = delete;
  PyThreadState* state;
};

}  // namespace

dtype storage_of(const view& v, const char* name, bool bfloat16) {
  switch (v.type()) {
    case element::f32:
    case element::f16:
      if (bfloat16)
        value_error(std::string(name) + " has dtype " + v.type_name() +
                    ", expected uint16 holding bfloat16 bits (dtype='bfloat16')");
      return v.type() == element::f32 ? dtype::f32 : dtype::f16;
    case element::bf16:
      return dtype::bf16;
    case element::u16:
      if (bfloat16) return dtype::bf16;
      value_error(
          std::string(name) +
          " has dtype uint16; if it holds bfloat16 bits pass dtype='bfloat16', else convert it to float32");
    case element::other:
      break;
  }
  value_error(
      std::string(name) + " has dtype " + v.type_name() +
      ", expected float32, float16, or bfloat16 (uint16 bits with dtype='bfloat16'); convert it first "
      "(e.g. a.astype(numpy.float32)): groupnorm never converts silently");
}

void shape_to_problem(const view& x, layout memory_layout, const char* name, problem& p) {
  const int r = x.rank();
  if (r < 2)
    value_error(
        std::string(name) + " has shape " + x.shape_string() + ", expected rank >= 2 (" +
        (memory_layout == layout::nchw ? "batch, channels, spatial..." : "batch, spatial..., channels") +
        ")");
  p.batch = static_cast<std::size_t>(x.dim(0));
  p.memory_layout = memory_layout;
  p.channels = static_cast<std::size_t>(memory_layout == layout::nchw ? x.dim(1) : x.dim(r - 1));
  const int first = memory_layout == layout::nchw ? 2 : 1, end = memory_layout == layout::nchw ? r : r - 1;
  p.spatial = 1;
  for (int i = first; i < end; ++i) p.spatial *= static_cast<std::size_t>(x.dim(i));
}

py::object run(const detail::plan_state& s, operands& o, const argument_names& names) {
  const problem& p = detail::description(s);
  const dtype d = p.data_type;
  check_affine(o.weight, names.weight, p.channels);
  check_affine(o.bias, names.bias, p.channels);
  if (o.residual.present()) {
    if (!p.residual) value_error("residual given, but the Plan was made with residual=False");
    check_like_x(o.residual, "residual", o.x, d);
  } else if (p.residual) {
    value_error("residual is missing: the Plan was made with residual=True");
  }
  if (o.return_sum && !p.residual) value_error("return_sum=True needs a residual (sum is x + residual)");
  py::object out;
  if (o.out.present()) {
    check_like_x(o.out, "out", o.x, d);
  } else {
    out = new_array(o.x, d);
    o.out.acquire(out.ptr(), "out", true);
  }
  py::object sum, mean, rstd;  // py::object: a default py::array would be a real (empty) array
  if (o.return_sum) sum = new_array(o.x, d);
  if (o.return_stats) {
    const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(p.batch),
                                         static_cast<py::ssize_t>(p.num_groups)};
    mean = py::array(py::dtype::of<float>(), shape);
    rstd = py::array(py::dtype::of<float>(), shape);
  }
  auto whole = [](const py::object& o) {
    if (!o) return detail::sized_buffer{};
    const auto& a = static_cast<const py::array&>(o);
    return detail::sized_buffer{a.data(), static_cast<std::size_t>(a.size())};
  };
  auto given = [](const view& v) {
    return detail::sized_buffer{v.present() ? v.data() : nullptr, v.present() ? v.count() : 0};
  };
  const detail::sized_buffers b{given(o.x),        given(o.out), given(o.weight), given(o.bias),
                                given(o.residual), whole(sum),   whole(mean),     whole(rstd)};
  const detail::call c = detail::call_from_sized(b, o.arena ? o.arena : detail::shared_arena(o.threads));
  std::string error;
  int failure = 0;  // 1 invalid argument, 2 out of memory, 3 internal
  {
    const without_gil released;
    try {
      detail::run_call(s, c);
    } catch (const std::invalid_argument& e) {
      failure = 1;
      error = e.what();
    } catch (const std::bad_alloc&) {
      failure = 2;
    } catch (const std::exception& e) {
      failure = 3;
      error = e.what();
    } catch (...) {
      failure = 3;
      error = "unknown exception";
    }
  }
  if (failure == 1) throw py::value_error(error);
  if (failure == 2) throw std::bad_alloc();
  if (failure == 3) throw std::runtime_error("groupnorm: internal error: " + error);
  py::object result = out ? out : py::reinterpret_borrow<py::object>(o.out_object);
  if (!o.return_sum && !o.return_stats) return result;
  py::list items;
  items.append(result);
  if (o.return_sum) items.append(sum);
  if (o.return_stats) items.append(mean), items.append(rstd);
  return py::tuple(items);
}

}  // namespace groupnorm::python
