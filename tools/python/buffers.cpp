// Zero-copy views of Python objects' memory (buffer protocol, __array_interface__, DLPack).
#include "buffers.hpp"

#include <pybind11/numpy.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "arguments.hpp"

namespace groupnorm::python {
namespace {

// The DLPack ABI (dlpack.h, stable since v0.2): only what a CPU consumer reads.
struct dl_device {
  std::int32_t device_type;  // 1 = CPU
  std::int32_t device_id;
};
struct dl_data_type {
  std::uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat, 5 complex, 6 bool
  std::uint8_t bits;
  std::uint16_t lanes;
};
struct dl_tensor {
  void* data;
  dl_device device;
  std::int32_t ndim;
  dl_data_type dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // in elements; null = C-contiguous
  std::uint64_t byte_offset;
};
struct dl_managed_tensor {
  dl_tensor tensor;
  void* manager_ctx;
  void (*deleter)(dl_managed_tensor*);
};

constexpr bool kLittleEndian = std::endian::native == std::endian::little;

// A NumPy-style name for a kind ('f', 'i', 'u', 'c', 'b') and a size in bytes: "float32", "uint16".
std::string numpy_name(char kind, std::size_t bytes) {
  const std::string bits = std::to_string(bytes * 8);
  switch (kind) {
    case 'f':
      return "float" + bits;
    case 'i':
      return "int" + bits;
    case 'u':
      return "uint" + bits;
    case 'c':
      return "complex" + bits;
    case 'b':
      return "bool";
    default:
      return std::string(1, kind) + std::to_string(bytes);
  }
}

element element_of(char kind, std::size_t bytes) {
  if (kind == 'f' && bytes == 4) return element::f32;
  if (kind == 'f' && bytes == 2) return element::f16;
  if (kind == 'u' && bytes == 2) return element::u16;
  return element::other;
}

[[noreturn]] void not_contiguous(const char* name) {
  value_error(std::string(name) +
              " is not C-contiguous; pass a contiguous copy (numpy.ascontiguousarray(a), or t.contiguous() "
              "for a torch.Tensor): groupnorm never copies silently");
}

[[noreturn]] void read_only(const char* name) {
  value_error(std::string(name) + " is read-only, expected a writable buffer");
}

}  // namespace

bool c_contiguous(int rank, const Py_ssize_t* shape, const Py_ssize_t* strides, Py_ssize_t itemsize) {
  Py_ssize_t expected = itemsize;
  for (int i = rank - 1; i >= 0; --i) {
    if (shape[i] == 0) return true;  // no elements: any strides
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

std::string view::type_name() const {
  std::string name = kind_ == 0     ? std::string("format '") + format_ + "'"
                     : kind_ == 'B' ? "bfloat" + std::to_string(itemsize_ * 8)
                                    : numpy_name(kind_, itemsize_);
  return native_ ? name : "non-native byte order " + name;
}

std::string view::shape_string() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + (rank_ == 1 ? ",)" : ")");
}

void view::set_shape(int rank, const Py_ssize_t* shape, const char* name) {
  if (rank > kMaxRank)
    value_error(std::string(name) + " has rank " + std::to_string(rank) + ", at most " +
                std::to_string(kMaxRank) + " is supported");
  rank_ = rank;
  count_ = 1;
  for (int i = 0; i < rank; ++i) {
    shape_[i] = shape[i];
    count_ *= static_cast<std::size_t>(shape[i]);
  }
}

void view::release() noexcept {
  if (has_buffer_) PyBuffer_Release(&buffer_);
  has_buffer_ = false;
  Py_CLEAR(owner_);
  if (dlpack_ != nullptr) {
    auto* m = static_cast<dl_managed_tensor*>(dlpack_);
    if (m->deleter) m->deleter(m);
    dlpack_ = nullptr;
  }
  data_ = nullptr;
  present_ = false;
}

void view::acquire(PyObject* o, const char* name, bool writable) {
  release();
  if (py::isinstance<py::array>(o)) return from_numpy(o, name, writable);
  if (PyObject_CheckBuffer(o)) return from_buffer(o, name, writable);
  PyObject* interface = PyObject_GetAttrString(o, "__array_interface__");
  if (interface != nullptr) {
    const py::object owned = py::reinterpret_steal<py::object>(interface);
    return from_array_interface(o, interface, name, writable);
  }
  PyErr_Clear();
  if (PyObject_HasAttrString(o, "__dlpack__")) return from_dlpack(o, name);
  type_error(std::string(name) +
             " must be an array (buffer protocol, __array_interface__ or __dlpack__), got " +
             python::type_name(o));
}

void view::from_numpy(PyObject* o, const char* name, bool writable) {
  using api = py::detail::npy_api;
  const py::detail::PyArray_Proxy* a = py::detail::array_proxy(o);
  const py::detail::PyArrayDescr_Proxy* d = py::detail::array_descriptor_proxy(a->descr);
  set_shape(a->nd, a->dimensions, name);
  const char order = d->byteorder;  // '=' native, '|' not applicable, '<' little, '>' big
  kind_ = d->kind;  // NumPy's kinds are the names' kinds ('f', 'i', 'u', 'c', 'b'; others print as "O8")
  itemsize_ = static_cast<std::size_t>(d->elsize);
  native_ = !(itemsize_ > 1 && (order == '<' ? !kLittleEndian : order == '>' ? kLittleEndian : false));
  type_ = native_ ? element_of(kind_, itemsize_) : element::other;
  if (!(a->flags & api::NPY_ARRAY_C_CONTIGUOUS_)) not_contiguous(name);
  if (writable && !(a->flags & api::NPY_ARRAY_WRITEABLE_)) read_only(name);
  data_ = a->data;
  Py_INCREF(o);
  owner_ = o;
  present_ = true;
}

void view::from_buffer(PyObject* o, const char* name, bool writable) {
  if (PyObject_GetBuffer(o, &buffer_, PyBUF_RECORDS_RO) != 0) {
    PyErr_Clear();
    type_error(std::string(name) + " (" + python::type_name(o) + ") does not expose a strided buffer");
  }
  has_buffer_ = true;
  set_shape(buffer_.ndim, buffer_.shape, name);
  if (buffer_.ndim == 0) count_ = 1;
  // struct-module format: an optional byte-order prefix, then one type character ("Zf": complex).
  const char* f = buffer_.format ? buffer_.format : "B";
  bool native = true;
  if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!') {
    native = (*f == '<') ? kLittleEndian : (*f == '>' || *f == '!') ? !kLittleEndian : true;
    ++f;
  }
  const auto size = static_cast<std::size_t>(buffer_.itemsize);
  char kind = 'x';
  if (std::strchr("efdg", *f) && f[1] == '\0')
    kind = 'f';
  else if (std::strchr("bhilq", *f) && f[1] == '\0')
    kind = 'i';
  else if (std::strchr("BHILQ", *f) && f[1] == '\0')
    kind = 'u';
  else if (*f == '?' && f[1] == '\0')
    kind = 'b';
  else if (*f == 'Z')
    kind = 'c';
  kind_ = kind == 'x' ? 0 : kind;
  format_ = buffer_.format ? buffer_.format : "B";
  itemsize_ = size;
  native_ = native || size == 1;
  type_ = native_ ? element_of(kind, size) : element::other;
  if (!c_contiguous(buffer_.ndim, buffer_.shape, buffer_.strides, buffer_.itemsize)) not_contiguous(name);
  if (writable && buffer_.readonly) read_only(name);
  data_ = buffer_.buf;
  present_ = true;
}

void view::from_array_interface(PyObject* o, PyObject* interface, const char* name, bool writable) {
  const py::dict d = py::reinterpret_borrow<py::object>(interface);
  const py::tuple data = d["data"];
  const py::tuple shape = d["shape"];
  const std::string typestr = py::str(d["typestr"]);
  Py_ssize_t dims[kMaxRank];
  const auto rank = static_cast<int>(shape.size());
  if (rank > kMaxRank) value_error(std::string(name) + " has too many dimensions");
  for (int i = 0; i < rank; ++i) dims[i] = shape[static_cast<std::size_t>(i)].cast<Py_ssize_t>();
  set_shape(rank, dims, name);
  const std::size_t size = typestr.size() > 2 ? std::stoul(typestr.substr(2)) : 0;
  const char order = typestr.empty() ? '|' : typestr[0];
  const char kind = typestr.size() > 1 ? typestr[1] : '?';
  kind_ = kind;
  itemsize_ = size;
  native_ = !(size > 1 && (order == '<' ? !kLittleEndian : order == '>' ? kLittleEndian : false));
  type_ = native_ ? element_of(kind, size) : element::other;
  if (d.contains("strides") && !d["strides"].is_none()) {
    const py::tuple st = d["strides"];
    Py_ssize_t strides[kMaxRank];
    for (int i = 0; i < rank; ++i) strides[i] = st[static_cast<std::size_t>(i)].cast<Py_ssize_t>();
    if (!c_contiguous(rank, dims, strides, static_cast<Py_ssize_t>(size))) not_contiguous(name);
  }
  if (writable && data[1].cast<bool>()) read_only(name);
  data_ = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  Py_INCREF(o);
  owner_ = o;
  present_ = true;
}

void view::from_dlpack(PyObject* o, const char* name) {
  PyObject* capsule = PyObject_CallMethod(o, "__dlpack__", nullptr);
  if (capsule == nullptr) {
    const py::error_already_set e;
    value_error(std::string(name) + ": __dlpack__() failed: " + e.what());
  }
  auto* m = static_cast<dl_managed_tensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (m == nullptr) {
    PyErr_Clear();
    Py_DECREF(capsule);
    type_error(std::string(name) + ": __dlpack__() did not return a DLPack capsule");
  }
  // Consumed: the capsule no longer owns the tensor, this view does (the DLPack protocol).
  PyCapsule_SetName(capsule, "used_dltensor");
  Py_DECREF(capsule);
  dlpack_ = m;
  const dl_tensor& t = m->tensor;
  if (t.device.device_type != 1)
    value_error(std::string(name) + " is not in CPU memory (DLPack device type " +
                std::to_string(t.device.device_type) + "); move it to the CPU first");
  Py_ssize_t dims[kMaxRank];
  if (t.ndim > kMaxRank) value_error(std::string(name) + " has too many dimensions");
  for (int i = 0; i < t.ndim; ++i) dims[i] = static_cast<Py_ssize_t>(t.shape[i]);
  set_shape(t.ndim, dims, name);
  const std::size_t size = t.dtype.bits / 8u;
  static constexpr char kinds[] = {'i', 'u', 'f', '?', 'B', 'c', 'b'};
  const char kind = t.dtype.code < sizeof kinds ? kinds[t.dtype.code] : '?';
  type_ = t.dtype.lanes != 1         ? element::other
          : kind == 'B' && size == 2 ? element::bf16
                                     : element_of(kind, size);
  kind_ = kind;
  itemsize_ = size;
  native_ = true;
  if (t.strides != nullptr) {
    Py_ssize_t strides[kMaxRank];
    for (int i = 0; i < t.ndim; ++i) strides[i] = static_cast<Py_ssize_t>(t.strides[i]);
    if (!c_contiguous(t.ndim, dims, strides, 1)) not_contiguous(name);
  }
  data_ = static_cast<char*>(t.data) + t.byte_offset;
  present_ = true;
}

}  // namespace groupnorm::python
