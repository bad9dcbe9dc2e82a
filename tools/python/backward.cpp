// Python `groupnorm.group_norm_backward`: the gradients of a GroupNorm forward (docs/backward.md).
//
//   dx, dgamma, dbeta = groupnorm.group_norm_backward(x, dy, num_groups, gamma=None, beta=None, mean=None,
//       rstd=None, epsilon=1e-5, *, layout="nchw", activation="none", dx=True, dgamma=True, dbeta=True,
//       threads=None)
//
// x and dy: (batch, channels, spatial...) for layout "nchw", (batch, spatial..., channels) for "nhwc";
// float16 arrays stay float16 (dx too), anything else is used as float32. A gradient not asked for is None.
// The GIL is released while the kernel runs; bad arguments raise ValueError with the library's message.
#include "backward.hpp"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "entry.hpp"
#include "groupnorm/groupnorm.hpp"

namespace py = pybind11;

namespace {

using farray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using harray = py::array_t<std::uint16_t, py::array::c_style>;

[[noreturn]] void value_error(const std::string& what) {
  throw py::value_error("groupnorm: " + what);
}

farray optional_floats(const py::object& o) {
  return o.is_none() ? farray() : farray::ensure(o);
}

std::span<const float> span_of(const farray& a) {
  return a ? std::span<const float>(a.data(), static_cast<std::size_t>(a.size())) : std::span<const float>();
}

template <class T, class A>
std::span<const T> cspan(const A& a) {
  return {reinterpret_cast<const T*>(a.data()), static_cast<std::size_t>(a.size())};
}
template <class T, class A>
std::span<T> mspan(A& a) {
  return {reinterpret_cast<T*>(a.mutable_data()), static_cast<std::size_t>(a.size())};
}

groupnorm::activation parse_activation(const std::string& s) {
  const char* names[] = {"none", "relu", "silu", "gelu"};
  for (int i = 0; i < 4; ++i)
    if (s == names[i]) return static_cast<groupnorm::activation>(i);
  value_error("activation = '" + s + "', expected 'none', 'relu', 'silu' or 'gelu'");
}

py::tuple group_norm_backward(const py::array& x_in, const py::array& dy_in, std::size_t num_groups,
                              const py::object& gamma_in, const py::object& beta_in,
                              const py::object& mean_in, const py::object& rstd_in, float epsilon,
                              const std::string& layout, const std::string& activation, bool want_dx,
                              bool want_dgamma, bool want_dbeta, std::optional<int> threads) {
  if (layout != "nchw" && layout != "nhwc")
    value_error("layout = '" + layout + "', expected 'nchw' or 'nhwc'");
  if (x_in.ndim() < 2)
    value_error("x has " + std::to_string(x_in.ndim()) + " dimensions, expected at least 2");
  if (threads && *threads <= 0)
    value_error("threads = " + std::to_string(*threads) + ", expected a positive count or None");
  const bool nhwc = layout == "nhwc";
  const bool half = x_in.dtype().is(py::dtype("float16"));
  groupnorm::problem p;
  p.batch = static_cast<std::size_t>(x_in.shape(0));
  p.channels = static_cast<std::size_t>(x_in.shape(nhwc ? x_in.ndim() - 1 : 1));
  p.spatial = static_cast<std::size_t>(x_in.size()) / std::max<std::size_t>(1, p.batch * p.channels);
  p.num_groups = num_groups;
  p.epsilon = epsilon;
  p.memory_layout = nhwc ? groupnorm::layout::nhwc : groupnorm::layout::nchw;
  p.data_type = half ? groupnorm::dtype::f16 : groupnorm::dtype::f32;
  p.fused_activation = parse_activation(activation);
  if (dy_in.ndim() != x_in.ndim() || !std::equal(x_in.shape(), x_in.shape() + x_in.ndim(), dy_in.shape()))
    value_error("dy's shape differs from x's, expected the same shape");
  const farray gamma = optional_floats(gamma_in), beta = optional_floats(beta_in);
  const farray mean = optional_floats(mean_in), rstd = optional_floats(rstd_in);
  std::vector<py::ssize_t> shape(x_in.shape(), x_in.shape() + x_in.ndim());
  const py::ssize_t channels = static_cast<py::ssize_t>(p.channels);
  py::object dx = py::none(), dgamma = py::none(), dbeta = py::none();
  farray dgamma_a = want_dgamma ? farray(channels) : farray(),
         dbeta_a = want_dbeta ? farray(channels) : farray();
  const groupnorm::plan pl = [&] {
    try {
      return groupnorm::plan(p);
    } catch (const groupnorm::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }();
  std::vector<double> workspace(pl.backward_workspace_size());
  auto run = [&](auto tag, const auto& x, const auto& dy, auto& dx_a) {
    using T = decltype(tag);
    const groupnorm::backward_tensors<T> t{
        .x = cspan<T>(x),
        .dy = cspan<T>(dy),
        .gamma = span_of(gamma),
        .beta = span_of(beta),
        .mean = span_of(mean),
        .rstd = span_of(rstd),
        .dx = want_dx ? mspan<T>(dx_a) : std::span<T>(),
        .dgamma = want_dgamma ? mspan<float>(dgamma_a) : std::span<float>(),
        .dbeta = want_dbeta ? mspan<float>(dbeta_a) : std::span<float>(),
        .workspace = workspace};
    try {
      py::gil_scoped_release release;
      pl.run_backward(t, threads ? groupnorm::detail::shared_arena(*threads) : nullptr);
    } catch (const groupnorm::invalid_argument& e) {
      throw py::value_error(e.what());
    }
    if (want_dx) dx = dx_a;
  };
  if (half) {
    // float16 as its bits (uint16), C-contiguous.
    auto bits = [](const py::object& a) {
      return harray::ensure(py::module_::import("numpy").attr("ascontiguousarray")(a).attr("view")("uint16"));
    };
    const harray x = bits(x_in), dy = bits(dy_in.attr("astype")("float16"));
    if (!x || !dy) value_error("x / dy could not be read as float16");
    harray dx_a = want_dx ? harray(shape) : harray();
    run(groupnorm::f16{}, x, dy, dx_a);
    if (want_dx) dx = dx_a.attr("view")("float16");
  } else {
    const farray x = farray::ensure(x_in), dy = farray::ensure(dy_in);
    farray dx_a = want_dx ? farray(shape) : farray();
    run(float{}, x, dy, dx_a);
  }
  if (want_dgamma) dgamma = dgamma_a;
  if (want_dbeta) dbeta = dbeta_a;
  return py::make_tuple(dx, dgamma, dbeta);
}

}  // namespace

void add_group_norm_backward(py::module_& m) {
  m.def("group_norm_backward", &group_norm_backward, py::arg("x"), py::arg("dy"), py::arg("num_groups"),
        py::arg("gamma") = py::none(), py::arg("beta") = py::none(), py::arg("mean") = py::none(),
        py::arg("rstd") = py::none(), py::arg("epsilon") = 1e-5f, py::kw_only(), py::arg("layout") = "nchw",
        py::arg("activation") = "none", py::arg("dx") = true, py::arg("dgamma") = true,
        py::arg("dbeta") = true, py::arg("threads") = py::none(),
        "Gradients (dx, dgamma, dbeta) of GroupNorm; None for a gradient not asked for. mean / rstd: the "
        "forward's saved statistics (batch x num_groups), or None to recompute them. Bitwise identical for "
        "every thread count.");
}
