// Zero-copy views of Python objects' memory: NumPy arrays (read directly: a quarter of the cost of their
// buffer export), the buffer protocol (memoryview, array, bytes),
// __array_interface__, or DLPack (__dlpack__: CPU torch.Tensor, without importing torch). Never copies;
// a non-contiguous buffer is an error that says what to do.
#pragma once

#include <Python.h>

#include <cstddef>
#include <string>

namespace groupnorm::python {

// Element types the library can store, and everything else (named in messages).
enum class element : int { f32, f16, u16, bf16, other };

// The most dimensions a view may have (NumPy's limit).
inline constexpr int kMaxRank = 32;

class view {
 public:
  view() = default;
  view(const view&) = delete;
  view& operator=(const view&) = delete;
  ~view() { release(); }

  // Views o's memory as argument `name`; `writable`: it is an output. Raises TypeError when o exposes no
  // memory and ValueError when it is not C-contiguous, read-only (for an output) or not native-endian.
  void acquire(PyObject* o, const char* name, bool writable);

  bool present() const noexcept { return present_; }
  void* data() const noexcept { return data_; }
  int rank() const noexcept { return rank_; }
  Py_ssize_t dim(int i) const noexcept { return shape_[i]; }
  const Py_ssize_t* shape() const noexcept { return shape_; }
  std::size_t count() const noexcept { return count_; }
  element type() const noexcept { return type_; }
  std::string type_name() const;  // NumPy spelling ("float32"), for messages
  std::string shape_string() const;

 private:
  void release() noexcept;
  void from_numpy(PyObject* o, const char* name, bool writable);
  void from_buffer(PyObject* o, const char* name, bool writable);
  void from_array_interface(PyObject* o, PyObject* interface, const char* name, bool writable);
  void from_dlpack(PyObject* o, const char* name);
  void set_shape(int rank, const Py_ssize_t* shape, const char* name);

  bool present_ = false;
  void* data_ = nullptr;
  int rank_ = 0;
  Py_ssize_t shape_[kMaxRank];  // rank_ entries set; not cleared: views are made per call
  std::size_t count_ = 0;
  element type_ = element::other;
  // What type_name() spells: a kind ('f', 'i', 'u', 'c', 'b', 'B' bfloat, or 0: the struct format below) and
  // a size in bytes; whether the byte order is native.
  char kind_ = 0;
  std::size_t itemsize_ = 0;
  bool native_ = true;
  const char* format_ = "";
  Py_buffer buffer_;  // valid while has_buffer_
  bool has_buffer_ = false;
  PyObject* owner_ = nullptr;  // a reference keeping the memory alive (__array_interface__ object)
  void* dlpack_ = nullptr;     // DLManagedTensor* to hand back to its deleter
};

// C-contiguity of a shape / strides pair (dimensions of extent 1 may have any stride).
bool c_contiguous(int rank, const Py_ssize_t* shape, const Py_ssize_t* strides, Py_ssize_t itemsize);

}  // namespace groupnorm::python
